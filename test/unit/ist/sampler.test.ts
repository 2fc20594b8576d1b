import { describe, expect, it } from 'vitest';
import { createLayerSampler, IST_DEFAULTS, restoreLayerSampler, type SamplerState } from '../../../native-models/train/ist';

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

describe('IST sampler (ALGORITHMS.md §4)', () => {
  it('has the reference constants as defaults', () => {
    expect(IST_DEFAULTS).toEqual({ ratio: 0.25, interval: 10, rlSteps: 3, suppressRatio: 0.5, suppressFactor: 0.25, scoreLr: 10 });
  });

  it('every step selects floor(0.25·L) distinct layers (at least 1), ascending, in range', () => {
    for (const L of [1, 2, 3, 4, 7, 8, 22, 32]) {
      const s = createLayerSampler({ kind: 'ist', layers: L, seed: L });
      const want = Math.max(1, Math.floor(0.25 * L));
      for (let step = 0; step < 50; step++) {
        const sel = s.select(step);
        expect(sel.length).toBe(want);
        expect(new Set(sel).size).toBe(want);
        expect(sel).toEqual([...sel].sort((a, b) => a - b));
        for (const i of sel) expect(i >= 0 && i < L).toBe(true);
      }
    }
  });

  it('the score vector changes only on steps 10, 20, …; each update uses 3 distinct sets of floor(0.5·L) layers scaled by 0.25', async () => {
    const L = 8;
    const s = createLayerSampler({ kind: 'ist', layers: L, seed: 1 });
    const changedAt: number[] = [];
    let calls = 0;
    for (let step = 0; step <= 45; step++) {
      const before = s.scores();
      expect(s.needsImportanceUpdate(step)).toBe(step > 0 && step % 10 === 0);
      if (s.needsImportanceUpdate(step)) {
        const seenSets: string[] = [];
        const update = await s.updateImportance((scales, suppressed) => {
          calls++;
          expect(suppressed.length).toBe(4);
          expect(Array.from(scales)).toEqual(Array.from({ length: L }, (_, i) => (suppressed.includes(i) ? 0.25 : 1)));
          seenSets.push(suppressed.join(','));
          // Loss depends on which layers are suppressed, so rewards are not all zero.
          return 1 + suppressed.reduce((a, i) => a + 0.1 * i, 0);
        });
        expect(update.sets.length).toBe(3);
        expect(new Set(seenSets).size).toBe(3);
        expect(update.sets.map((x) => x.join(','))).toEqual(seenSets);
      }
      s.select(step);
      if (s.scores().some((v, i) => v !== before[i])) changedAt.push(step);
    }
    expect(changedAt).toEqual([10, 20, 30, 40]);
    expect(calls).toBe(12);
  });

  it('applies the update rule exactly: reward_k = exp(−loss_k) − mean, score_i += 10·reward_k·p_i(1−p_i) with p taken once', async () => {
    const L = 4;
    const s = createLayerSampler({ kind: 'ist', layers: L, seed: 9 });
    // First update from scores 0: p = 0.5, p(1−p) = 0.25.
    const losses = [2, 1, 3];
    let k = 0;
    const u1 = await s.updateImportance(() => losses[k++]!);
    const e = losses.map((l) => Math.exp(-l));
    const mean = (e[0]! + e[1]! + e[2]!) / 3;
    const expected = new Array<number>(L).fill(0);
    u1.sets.forEach((set, j) => set.forEach((i) => (expected[i]! += 10 * (e[j]! - mean) * 0.25)));
    expect(u1.rewards).toEqual(e.map((x) => x - mean));
    u1.scores.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 12));
    // Second update: p comes from the scores before it, for every set.
    const p = expected.map(sigmoid);
    k = 0;
    const u2 = await s.updateImportance(() => losses[k++]!);
    const second = [...expected];
    u2.sets.forEach((set, j) => set.forEach((i) => (second[i]! += 10 * (e[j]! - mean) * p[i]! * (1 - p[i]!))));
    u2.scores.forEach((v, i) => expect(v).toBeCloseTo(second[i]!, 12));
  });

  it('a layer whose suppression changes nothing ends with the highest score (least important) after 100 steps', async () => {
    const L = 8;
    const useless = 5;
    for (const seed of [1, 2, 3]) {
      const s = createLayerSampler({ kind: 'ist', layers: L, seed });
      for (let step = 0; step < 100; step++) {
        if (s.needsImportanceUpdate(step)) {
          await s.updateImportance((scales) => {
            // Every other layer adds to the loss when its output is scaled down.
            let loss = 1;
            for (let i = 0; i < L; i++) if (i !== useless) loss += 0.5 * (1 - scales[i]!);
            return loss;
          });
        }
        s.select(step);
      }
      const scores = s.scores();
      for (let i = 0; i < L; i++) if (i !== useless) expect(scores[useless]).toBeGreaterThan(scores[i]!);
      expect(scores[useless]).toBeGreaterThan(0);
    }
  });

  it('selection follows sigmoid(−score): an important layer (low score) is trained far more often', () => {
    const L = 4;
    const s = createLayerSampler({ kind: 'ist', layers: L, seed: 11 });
    // Scores: layer 0 very important (−4), layer 3 unimportant (+4).
    s.restore({ ...s.state(), scores: [-4, 0, 0, 4] });
    const counts = new Array<number>(L).fill(0);
    for (let step = 0; step < 2000; step++) for (const i of s.select(step)) counts[i]!++;
    // Expected frequency ∝ sigmoid(−score): 0.982 : 0.5 : 0.5 : 0.018 (one layer per step).
    const w = [-4, 0, 0, 4].map((x) => sigmoid(-x));
    const total = w.reduce((a, b) => a + b, 0);
    counts.forEach((c, i) => expect(Math.abs(c / 2000 - w[i]! / total)).toBeLessThan(0.04));
  });

  it('state round trip (through JSON) gives identical future selections and updates', async () => {
    const loss = (scales: Float32Array): number => 2 + scales.reduce((a, x, i) => a + (i % 3) * (1 - x), 0);
    const a = createLayerSampler({ kind: 'ist', layers: 12, seed: 77 });
    for (let step = 0; step < 23; step++) {
      if (a.needsImportanceUpdate(step)) await a.updateImportance(loss);
      a.select(step);
    }
    const saved = JSON.parse(JSON.stringify(a.state())) as SamplerState;
    const b = restoreLayerSampler(saved);
    const c = createLayerSampler({ kind: 'ist', layers: 12, seed: 1 });
    c.restore(saved);
    for (let step = 23; step < 60; step++) {
      for (const s of [a, b, c]) if (s.needsImportanceUpdate(step)) await s.updateImportance(loss);
      const x = a.select(step);
      expect(b.select(step)).toEqual(x);
      expect(c.select(step)).toEqual(x);
      expect(b.scores()).toEqual(a.scores());
      expect(c.record()).toEqual(a.record());
    }
  });

  it('refuses to restore a state of another shape, and steps that do not increase', () => {
    const s = createLayerSampler({ kind: 'ist', layers: 4 });
    expect(() => s.restore({ ...s.state(), layers: 5 })).toThrow(/resume with the same settings/);
    expect(() => s.restore({ ...s.state(), settings: { ...IST_DEFAULTS, interval: 5 } })).toThrow(/different settings \(interval\)/);
    s.select(3);
    expect(() => s.select(3)).toThrow(/already chosen/);
  });

  it('every constant is a setting: ratio, interval, rlSteps, suppressRatio, suppressFactor, scoreLr', async () => {
    const s = createLayerSampler({ kind: 'ist', layers: 10, seed: 2, ratio: 0.5, interval: 4, rlSteps: 2, suppressRatio: 0.3, suppressFactor: 0, scoreLr: 0 });
    expect(s.select(0).length).toBe(5);
    expect([4, 8, 10, 12].map((t) => s.needsImportanceUpdate(t))).toEqual([true, true, false, true]);
    const u = await s.updateImportance((scales, set) => {
      expect(set.length).toBe(3);
      expect(Array.from(scales).filter((x) => x === 0).length).toBe(3);
      return set[0]!;
    });
    expect(u.sets.length).toBe(2);
    expect(u.scores).toEqual(new Array(10).fill(0)); // scoreLr 0: no change
  });

  it('uses fewer sets only when fewer distinct sets exist (L = 2: two sets of 1)', async () => {
    const s = createLayerSampler({ kind: 'ist', layers: 2, seed: 4 });
    const u = await s.updateImportance((_, set) => set[0]!);
    expect(u.sets.map((x) => x.join(',')).sort()).toEqual(['0', '1']);
  });

  it('refuses a loss that is not a finite number and leaves the scores unchanged', async () => {
    const s = createLayerSampler({ kind: 'ist', layers: 4, seed: 4 });
    await expect(s.updateImportance(() => Number.NaN)).rejects.toThrow(/not a finite number/);
    expect(s.scores()).toEqual([0, 0, 0, 0]);
  });
});

describe('all and uniform samplers', () => {
  it('all: every layer every step, never an importance update', () => {
    const s = createLayerSampler({ kind: 'all', layers: 6 });
    for (let step = 0; step < 30; step++) {
      expect(s.select(step)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(s.needsImportanceUpdate(step)).toBe(false);
    }
  });

  it('uniform (LISA): floor(ratio·L) distinct layers, each layer about equally often, scores never change', async () => {
    const L = 8;
    const s = createLayerSampler({ kind: 'uniform', layers: L, seed: 3 });
    const counts = new Array<number>(L).fill(0);
    for (let step = 0; step < 4000; step++) {
      const sel = s.select(step);
      expect(sel.length).toBe(2);
      expect(new Set(sel).size).toBe(2);
      for (const i of sel) counts[i]!++;
      expect(s.needsImportanceUpdate(step)).toBe(false);
    }
    for (const c of counts) expect(Math.abs(c / 4000 - 0.25)).toBeLessThan(0.03);
    expect(s.scores()).toEqual(new Array(L).fill(0));
    await expect(s.updateImportance(() => 1)).rejects.toThrow(/Only the ist sampler/);
  });

  it('the same seed gives the same selections; another seed does not', () => {
    const run = (seed: number): number[][] => {
      const s = createLayerSampler({ kind: 'uniform', layers: 16, seed });
      return Array.from({ length: 20 }, (_, t) => s.select(t));
    };
    expect(run(5)).toEqual(run(5));
    expect(run(6)).not.toEqual(run(5));
  });
});
