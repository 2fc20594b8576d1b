// Tiny random LLaMA (GQA, untied head), Qwen2 (q/k/v biases), multi-head tied LLaMA and GPT-2,
// written as Hugging Face folders by the PyTorch oracle: our graphs must give the oracle's logits
// (1e-4) and mean next-token NLL over masked, right-padded batches (1e-5).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../../native-models/generate/generate';
import { buildLogitsGraph } from '../../../native-models/models/graphs';
import { loadModel, type LoadedModel } from '../../../native-models/models/load';
import { ModelRunner, openGraphSession } from '../../../native-models/models/runner';
import { toOrt } from '../../../native-models/runtime/tensors';
import { maxAbsDiff, runOracle } from './oracle';

interface Case { tokens: number[][]; mask: number[][]; logits: number[]; logits_shape: number[]; nll: number }

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-oracle-'));
  runOracle(['hf', dir]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const settings = { provider: 'cpu' as const, intraOpThreads: 1 };

describe.each([
  ['llama_gqa', 'llama', 2],
  ['qwen2', 'qwen2', 1],
  ['llama_bytes', 'llama', 4],
  ['gpt2', 'gpt2', 4],
])('%s against the PyTorch oracle', (name, modelType, kvHeads) => {
  let model: LoadedModel;
  let cases: Case[];
  beforeAll(async () => {
    model = await loadModel(join(dir, name));
    cases = JSON.parse(readFileSync(join(dir, name, 'expected.json'), 'utf8')).cases;
  });

  it('reads the spec from config.json', () => {
    expect(model.spec.modelType).toBe(modelType);
    expect(model.spec.kvHeads).toBe(kvHeads);
  });

  it('gives the same logits (max abs difference ≤ 1e-4)', async () => {
    const { session } = await openGraphSession(buildLogitsGraph(model), settings);
    try {
      for (const c of cases) {
        const [B, T] = [c.tokens.length, c.tokens[0]!.length];
        const ids = BigInt64Array.from(c.tokens.flat(), (t) => BigInt(t));
        const res = await session.run({ input_ids: toOrt('int64', ids, [B, T]) });
        expect(res.logits!.dims).toEqual(c.logits_shape);
        // Real positions only: the oracle masks padding keys, which changes nothing for real tokens
        // (they never attend to later positions) but does change the padded rows themselves.
        const V = c.logits_shape[2]!;
        const got = res.logits!.data as Float32Array;
        let compared = 0;
        c.mask.forEach((row, b) => row.forEach((m, t) => {
          if (!m) return;
          const o = (b * T + t) * V;
          expect(maxAbsDiff(got.subarray(o, o + V), c.logits.slice(o, o + V))).toBeLessThan(1e-4);
          compared++;
        }));
        expect(compared).toBe(c.mask.flat().filter((m) => m === 1).length);
      }
    } finally {
      await session.release();
    }
  });

  it('gives the same mean NLL over unmasked targets (≤ 1e-5)', async () => {
    const runner = new ModelRunner(model, { settings });
    try {
      for (const c of cases) {
        const windows = c.tokens.map((row, b) => ({ input: row, targets: [...row.slice(1), 0], scored: [...c.mask[b]!.slice(1), 0] }));
        const lps = await runner.scoreBatch(windows);
        let total = 0;
        let n = 0;
        lps.forEach((lp, b) => windows[b]!.scored.forEach((s, j) => {
          if (s) {
            total -= lp[j]!;
            n++;
          }
        }));
        expect(Math.abs(total / n - c.nll)).toBeLessThan(1e-5);
      }
    } finally {
      await runner.release();
    }
  });

  it('generates the same tokens with and without the key/value cache', async () => {
    const runner = new ModelRunner(model, { settings });
    try {
      // A one-token prompt takes greedy decoding straight into the in-graph loop from an empty cache.
      for (const prompt of [cases[0]!.tokens[0]!.slice(0, 5), cases[0]!.tokens[0]!.slice(0, 1)]) {
        for (const opts of [{ temperature: 0 }, { temperature: 0.9, topP: 0.9, seed: 7 }]) {
          const cached = await generate(runner, prompt, { maxNewTokens: 20, stopTokens: [], useCache: true, ...opts });
          const full = await generate(runner, prompt, { maxNewTokens: 20, stopTokens: [], useCache: false, ...opts });
          expect(cached.tokens).toHaveLength(20);
          expect(cached.tokens).toEqual(full.tokens);
        }
      }
    } finally {
      await runner.release();
    }
  });
});
