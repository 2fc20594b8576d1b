import { describe, expect, it } from 'vitest';
import { perplexity, rollingWindows, type ScoreWindow } from '../../../native-models/eval/perplexity';

describe('rolling windows', () => {
  it('splits a document like lm-evaluation-harness with the first token as context', () => {
    const t = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
    expect(rollingWindows(t, 4)).toEqual([
      { input: [10, 11, 12, 13], targets: [11, 12, 13, 14], scored: [1, 1, 1, 1] },
      { input: [14, 15, 16, 17], targets: [15, 16, 17, 18], scored: [1, 1, 1, 1] },
      // The last window re-reads three tokens of context and scores only the new one.
      { input: [15, 16, 17, 18], targets: [16, 17, 18, 19], scored: [0, 0, 0, 1] },
    ]);
  });

  it('predicts every token after the first exactly once, with at most seqLen inputs', () => {
    for (const n of [1, 2, 3, 17, 64, 65]) {
      for (const L of [1, 2, 5, 16, 64]) {
        const t = Array.from({ length: n }, (_, i) => 100 + i);
        const seen = new Map<number, number>();
        for (const w of rollingWindows(t, L)) {
          expect(w.input.length).toBeLessThanOrEqual(L);
          w.targets.forEach((x, j) => {
            expect(t.indexOf(x)).toBe(t.indexOf(w.input[j]!) + 1);
            if (w.scored[j]) seen.set(x, (seen.get(x) ?? 0) + 1);
          });
        }
        expect([...seen.keys()].sort((a, b) => a - b)).toEqual(t.slice(1));
        expect([...seen.values()].every((c) => c === 1)).toBe(true);
      }
    }
  });

  it('is one window for a document that fits', () => {
    expect(rollingWindows([1, 2, 3], 8)).toEqual([{ input: [1, 2], targets: [2, 3], scored: [1, 1] }]);
    expect(rollingWindows([1], 8)).toEqual([]);
  });
});

describe('perplexity', () => {
  // A scorer whose log-probability of target x after input y is −(x + y)/100: easy to sum by hand.
  const scorer = {
    batches: [] as number[],
    async scoreBatch(ws: ScoreWindow[]) {
      this.batches.push(ws.length);
      return ws.map((w) => Float32Array.from(w.targets, (x, j) => (w.scored[j] ? -(x + w.input[j]!) / 100 : 0)));
    },
  };

  it('averages over predicted tokens of all documents, per document, in batches', async () => {
    scorer.batches = [];
    const docs = [[1, 2, 3, 4, 5], [7], [2, 4]];
    const r = await perplexity(scorer, docs, { seqLen: 2, batchSize: 2 });
    // Predicted pairs (input → target): 1→2, 2→3, 3→4, 4→5 and 2→4.
    const nll = (3 + 5 + 7 + 9 + 6) / 100 / 5;
    expect(r.tokens).toBe(5);
    expect(r.documents).toBe(3);
    expect(r.nll).toBeCloseTo(nll, 6);
    expect(r.ppl).toBeCloseTo(Math.exp(nll), 6);
    expect(scorer.batches).toEqual([2, 1]);
  });

  it('refuses data with nothing to predict', async () => {
    await expect(perplexity(scorer, [[1], []], { seqLen: 4, batchSize: 1 })).rejects.toThrow(/nothing to score/);
  });
});
