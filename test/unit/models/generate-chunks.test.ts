// How many tokens greedy decoding in the graph asks for per run: the first run is sized from a
// deliberately slow estimate of the model's speed (so a small model needs one run and a large one
// still streams its first tokens and answers an abort quickly), later runs from the runs measured.
import { describe, expect, it } from 'vitest';
import { generate } from '../../../native-models/generate/generate';
import type { KVCache, ModelRunner } from '../../../native-models/models/runner';

/** A runner stand-in with `weights` floats of weights whose greedy runs take `msPerToken` each token. */
function fakeRunner(weights: number, msPerToken: number): { runner: ModelRunner; asked: number[] } {
  const asked: number[] = [];
  const spec = { family: 'llama', vocabSize: 512, maxPositions: 4096, slidingWindow: null, eosIds: [2] };
  const runner = {
    model: { spec, weights: new Map([['w', { shape: [weights], data: { length: weights } }]]) },
    canDecodeGreedily: true,
    prepareGeneration: async () => {},
    emptyCache: (): KVCache => ({ length: 0, batch: 1, store: { data: new Float32Array(0), used: 0 } }),
    greedySteps: async (_t: number[][], cache: KVCache, n: number) => {
      asked.push(n);
      const until = performance.now() + msPerToken * n;
      while (performance.now() < until);
      return { tokens: [Array.from({ length: n }, () => 7)], cache: { ...cache, length: cache.length + n } };
    },
  } as unknown as ModelRunner;
  return { runner, asked };
}

describe('greedy runs per generation', () => {
  it('gives a small model all its tokens in one run', async () => {
    const { runner, asked } = fakeRunner(260_000, 0.01);
    const res = await generate(runner, [1], { maxNewTokens: 64, stopTokens: [] });
    expect(res.tokens).toHaveLength(64);
    expect(asked).toEqual([64]);
  });

  it('starts a large model with one token per run and sizes later runs by the time measured', async () => {
    const { runner, asked } = fakeRunner(1_000_000_000, 30);
    const seen: number[] = [];
    const res = await generate(runner, [1], { maxNewTokens: 12, stopTokens: [], onToken: (_t, i) => seen.push(i) });
    expect(res.tokens).toHaveLength(12);
    expect(asked[0]).toBe(1);
    // About 100 ms of tokens per later run at 30 ms a token: 3 (2 when a run overshoots).
    expect(asked.slice(1, -1).every((n) => n >= 2 && n <= 3)).toBe(true);
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });
});
