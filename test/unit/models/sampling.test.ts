import { describe, expect, it } from 'vitest';
import { argmax, nucleus, Rng, sampleToken, softmaxWithTemperature } from '../../../native-models/generate/sampling';

describe('Rng', () => {
  it('repeats for a seed and differs between seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 8 }, () => a.next());
    expect(Array.from({ length: 8 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.next())).not.toEqual(xs);
  });

  it('draws uniformly from [0, 1)', () => {
    const r = new Rng(7);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 20000; i++) {
      const x = r.next();
      expect(x >= 0 && x < 1).toBe(true);
      bins[Math.floor(x * 10)]++;
    }
    for (const n of bins) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });
});

describe('token choice', () => {
  it('is greedy at temperature 0 (first index on ties)', () => {
    expect(argmax([0.1, 3, -1, 3])).toBe(1);
    expect(sampleToken(Float32Array.of(-2, 5, 4.9), { temperature: 0, topP: 0.1 }, new Rng(1))).toBe(1);
  });

  it('applies the temperature before the softmax', () => {
    const p = softmaxWithTemperature([Math.log(1), Math.log(3)], 1);
    expect(p[1]).toBeCloseTo(0.75, 12);
    const q = softmaxWithTemperature([Math.log(1), Math.log(3)], 0.5);
    expect(q[1]).toBeCloseTo(0.9, 12);
  });

  it('keeps the smallest set of most likely tokens reaching top-p', () => {
    const p = Float64Array.of(0.2, 0.5, 0.3);
    expect(nucleus(p, 0.5)).toEqual([1]);
    expect(nucleus(p, 0.6)).toEqual([1, 2]);
    expect(nucleus(p, 0.81)).toEqual([1, 2, 0]);
    expect(nucleus(p, 1)).toEqual([1, 2, 0]);
  });

  it('samples in proportion to the (renormalised) nucleus', () => {
    const logits = [0.2, 0.5, 0.3].map(Math.log);
    const rng = new Rng(3);
    const counts = [0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, { temperature: 1, topP: 0.8 }, rng)]!++;
    expect(counts[0]).toBe(0);
    expect(counts[1]! / n).toBeCloseTo(0.625, 1);
    expect(counts[2]! / n).toBeCloseTo(0.375, 1);
  });
});
