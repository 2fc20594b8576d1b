// Token choice must not depend on the order in which near-equal probabilities sort: a cached step
// and a full recompute differ in the last bits of the logits, and the same seed must still pick
// the same token.
import { describe, expect, it } from 'vitest';
import { Rng, sampleToken } from '../../../native-models/generate/sampling';

describe('sampling with near-ties', () => {
  it('picks the same token for every seed when two almost equal probabilities swap order', () => {
    const base = [Math.log(0.1), Math.log(0.3), Math.log(0.3), Math.log(0.3)];
    const a = Float32Array.from(base, (x, i) => (i === 1 ? x + 1e-6 : x)); // token 1 sorts first
    const b = Float32Array.from(base, (x, i) => (i === 2 ? x + 1e-6 : x)); // token 2 sorts first
    const seen = new Set<number>();
    for (let seed = 0; seed < 300; seed++) {
      for (const topP of [1, 0.95]) {
        const ta = sampleToken(a, { temperature: 1, topP }, new Rng(seed));
        const tb = sampleToken(b, { temperature: 1, topP }, new Rng(seed));
        expect(tb).toBe(ta);
        seen.add(ta);
      }
    }
    expect([...seen].sort()).toEqual([0, 1, 2, 3]);
  });
});
