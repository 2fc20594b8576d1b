// stories260K (a real llama2.c checkpoint, GQA): greedy generation from BOS and NLL against a
// PyTorch reference that applies llama2.c's ADJACENT-pair RoPE to the original weights, so a
// mistake in the importer's wq/wk permutation to half-split RoPE cannot cancel out.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { perplexity } from '../../../native-models/eval/perplexity';
import { generate } from '../../../native-models/generate/generate';
import { loadModel, type LoadedModel } from '../../../native-models/models/load';
import { ModelRunner } from '../../../native-models/models/runner';
import { fixedTokens, runOracle, stories260K } from './oracle';

interface Expected { greedy: number[]; nll: number; rolling: { window: number; nll: number; tokens: number } }

const sequence = fixedTokens(100, 512);
const WINDOW = 24;
let dir: string;
let expected: Expected;
let model: LoadedModel;
let runner: ModelRunner;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-stories-'));
  const out = join(dir, 'expected.json');
  runOracle(['llama2c', stories260K, out, '--steps', '64', '--tokens', sequence.join(','), '--window', String(WINDOW)]);
  expected = JSON.parse(readFileSync(out, 'utf8'));
  model = await loadModel(stories260K);
  runner = new ModelRunner(model, { settings: { provider: 'cpu', intraOpThreads: 1 } });
});
afterAll(async () => {
  await runner?.release();
  rmSync(dir, { recursive: true, force: true });
});

describe('stories260K', () => {
  it('is read as a GQA LLaMA', () => {
    expect(model.source.kind).toBe('llama2c');
    expect(model.spec).toMatchObject({ family: 'llama', hiddenSize: 64, layers: 5, heads: 8, kvHeads: 4, vocabSize: 512, maxPositions: 512, tiedEmbeddings: true });
  });

  it('generates the reference greedy continuation of BOS, token for token (64 tokens, with the cache)', async () => {
    const res = await generate(runner, [1], { maxNewTokens: 64, stopTokens: [], useCache: true });
    expect([1, ...res.tokens]).toEqual(expected.greedy);
  });

  it('generates the same 64 tokens without the cache', async () => {
    const res = await generate(runner, [1], { maxNewTokens: 64, stopTokens: [], useCache: false });
    expect([1, ...res.tokens]).toEqual(expected.greedy);
  });

  it('samples the same tokens with and without the cache for one seed', async () => {
    const opts = { maxNewTokens: 48, stopTokens: [], temperature: 1, topP: 0.95, seed: 2024 };
    const a = await generate(runner, [1], { ...opts, useCache: true });
    const b = await generate(runner, [1], { ...opts, useCache: false });
    const c = await generate(runner, [1], { ...opts, seed: 2025, useCache: true });
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('has the reference mean NLL on a fixed token sequence (≤ 1e-5)', async () => {
    const res = await perplexity(runner, [sequence], { seqLen: 512, batchSize: 1 });
    expect(res.tokens).toBe(sequence.length - 1);
    expect(Math.abs(res.nll - expected.nll)).toBeLessThan(1e-5);
  });

  it('scores rolling windows like the reference (lm-evaluation-harness style)', async () => {
    const res = await perplexity(runner, [sequence], { seqLen: WINDOW, batchSize: 3 });
    expect(res.tokens).toBe(expected.rolling.tokens);
    expect(res.windows).toBeGreaterThan(1);
    expect(Math.abs(res.nll - expected.rolling.nll)).toBeLessThan(1e-5);
    expect(res.ppl).toBeCloseTo(Math.exp(res.nll), 10);
  });
});
