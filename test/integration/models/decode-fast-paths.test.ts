// The decode fast paths on stories260K: stacked (packed) projections against one MatMul per
// linear, the fused residual + RMSNorm seam, the cache rows a step returns, and greedy decoding
// inside one onnxruntime Loop against picking each token host-side, with and without a cache.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../../native-models/generate/generate';
import { argmax } from '../../../native-models/generate/sampling';
import { buildCacheStepGraph, buildGreedyLoopGraph, buildNextTokenGraph } from '../../../native-models/models/graphs';
import { loadModel, type LoadedModel } from '../../../native-models/models/load';
import { ModelRunner, type KVCache } from '../../../native-models/models/runner';
import type { ForwardHooks } from '../../../native-models/models/spec';
import type { Graph } from '../../../native-models/onnx/graph';
import { fixedTokens, maxAbsDiff, stories260K } from './oracle';

const settings = { provider: 'cpu' as const, intraOpThreads: 1 };
// A linear hook that builds every linear as loaded: it turns stacking off (hooks decide how
// linears are built), so it yields the one-MatMul-per-linear graph with the same weights.
const plainLinears: ForwardHooks = { linear: (_name, x, base) => base(x) };
let model: LoadedModel;
let packed: ModelRunner;
let unpacked: ModelRunner;
let perStep: ModelRunner;

beforeAll(async () => {
  model = await loadModel(stories260K);
  packed = new ModelRunner(model, { settings, contextLength: 48 });
  unpacked = new ModelRunner(model, { settings, contextLength: 48, hooks: plainLinears });
  // fused: false has no greedy loop, so generate() picks every token host-side.
  perStep = new ModelRunner(model, { settings, contextLength: 48, fused: false });
});
afterAll(async () => {
  for (const r of [packed, unpacked, perStep]) await r?.release();
});

const count = (g: Graph, op: string): number => g.nodes.filter((n) => n.op === op).length;

/** Greedy tokens picked one cache step at a time, host-side, and the cache after them. */
async function stepwise(runner: ModelRunner, prompt: number[], n: number): Promise<{ tokens: number[]; cache: KVCache }> {
  let res = await runner.cacheStep([prompt], runner.emptyCache(1));
  const tokens: number[] = [];
  for (;;) {
    tokens.push(argmax(res.logits[0]!));
    if (tokens.length === n) return { tokens, cache: res.cache };
    res = await runner.cacheStep([[tokens.at(-1)!]], res.cache);
  }
}

describe('stacked projections', () => {
  it('run q/k/v and gate/up as one MatMul each when the linears are plain weights, except one position per sequence', () => {
    const L = model.spec.layers;
    const stacked = buildCacheStepGraph(model, { contextLength: 48 });
    const plain = buildCacheStepGraph(model, { contextLength: 48, hooks: plainLinears });
    // Per layer: q, k, v, o, gate, up, down; plus the LM head.
    expect(count(plain, 'MatMul')).toBe(7 * L + 1);
    expect(count(stacked, 'MatMul')).toBe(4 * L + 1);
    // One Split per stacked MatMul, and one that cuts the cache input into layers.
    expect(count(stacked, 'Split')).toBe(2 * L + 1);
    // A one-token decode step keeps one MatMul per linear: there the Split costs more than it saves.
    const decode = buildCacheStepGraph(model, { singleToken: true, contextLength: 48 });
    expect(count(decode, 'MatMul')).toBe(7 * L + 1);
    expect(count(decode, 'Split')).toBe(1);
    // Every residual add carries the next RMSNorm; only the first block's input norm stands alone.
    expect(count(decode, 'SkipSimplifiedLayerNormalization')).toBe(2 * L);
    expect(count(decode, 'RMSNormalization')).toBe(1);
  });

  it('give the same logits as one MatMul per linear (≤ 1e-5)', async () => {
    const seqs = [fixedTokens(19, 512, 21), fixedTokens(19, 512, 22)];
    const a = await packed.nextTokenLogits(seqs);
    const b = await unpacked.nextTokenLogits(seqs);
    for (let i = 0; i < 2; i++) expect(maxAbsDiff(a[i]!, b[i]!)).toBeLessThan(1e-5);
    const ca = await packed.cacheStep([seqs[0]!], packed.emptyCache(1));
    const cb = await unpacked.cacheStep([seqs[0]!], unpacked.emptyCache(1));
    expect(maxAbsDiff(ca.logits[0]!, cb.logits[0]!)).toBeLessThan(1e-5);
    expect(maxAbsDiff(packed.cacheTensor(ca.cache).data as Float32Array, unpacked.cacheTensor(cb.cache).data as Float32Array)).toBeLessThan(1e-5);
  });

  it('are not used in the differentiable (unfused) graphs', () => {
    const g = buildNextTokenGraph(model, { contextLength: 16, fused: false });
    expect(count(g, 'MatMul')).toBe(7 * model.spec.layers + 1);
    expect(count(g, 'SkipSimplifiedLayerNormalization')).toBe(0);
  });
});

describe('greedy decoding in one run', () => {
  it('carries the cache inside an onnxruntime Loop with ArgMax in its body', () => {
    const g = buildGreedyLoopGraph(model, { contextLength: 48 });
    const loop = g.nodes.find((n) => n.op === 'Loop');
    expect(loop).toBeDefined();
    const body = (loop!.attrs.body as { g: Graph }).g;
    expect(count(body, 'ArgMax')).toBe(1);
    expect(count(body, 'Attention')).toBe(model.spec.layers);
    // The cache is re-laid out once per run, not once per token: inside the loop each layer's
    // keys and values go straight into its attention kernel (positions are counted by the loop).
    const carried = new Set(body.inputs.filter((v) => v.name.startsWith('past_')).map((v) => v.name));
    expect(carried.size).toBe(2 * model.spec.layers);
    const readers = body.nodes.filter((n) => n.inputs.some((x) => x && carried.has(x.name)));
    expect(new Set(readers.map((n) => n.op))).toEqual(new Set(['Attention']));
    // Outside the loop, once per run: the cache split into layers before, the new rows cut after.
    expect(g.nodes.filter((n) => n.op === 'Transpose')).toHaveLength(2);
    // Per token nothing but the step, its pick and the stop test: no copies for the outputs.
    expect(count(body, 'Identity') + count(body, 'Concat')).toBe(0);
    expect(count(body, 'ReduceMin')).toBe(1);
  });

  it('picks the same tokens and builds the same cache as host-side argmax step by step', async () => {
    const prompt = fixedTokens(6, 512, 31);
    const ref = await stepwise(packed, prompt, 25);
    const pre = await packed.cacheStep([prompt], packed.emptyCache(1));
    const first = argmax(pre.logits[0]!);
    expect(first).toBe(ref.tokens[0]);
    const res = await packed.greedySteps([[first]], pre.cache, 24, []);
    expect([first, ...res.tokens[0]!]).toEqual(ref.tokens);
    // The reference cache holds the prompt and every token but the last, as does the loop's.
    expect(res.cache.length).toBe(ref.cache.length);
    expect(maxAbsDiff(packed.cacheTensor(res.cache).data as Float32Array, packed.cacheTensor(ref.cache).data as Float32Array)).toBeLessThan(1e-5);
    // The cache it returns continues like any other.
    const more = await packed.greedySteps([[res.tokens[0]!.at(-1)!]], res.cache, 3, []);
    const ref2 = await stepwise(packed, prompt, 28);
    expect(more.tokens[0]).toEqual(ref2.tokens.slice(25));
  });

  it('stops after the step that picks a stop token', async () => {
    const prompt = fixedTokens(4, 512, 41);
    const ref = await stepwise(packed, prompt, 20);
    const pre = await packed.cacheStep([prompt], packed.emptyCache(1));
    // Stop at the reference's 8th token (index 7 overall, step 7 of the loop), unless it came earlier.
    const stopAt = ref.tokens[7]!;
    const firstHit = ref.tokens.slice(1).indexOf(stopAt) + 1;
    const res = await packed.greedySteps([[ref.tokens[0]!]], pre.cache, 19, [stopAt, 100000]);
    expect(res.tokens[0]).toEqual(ref.tokens.slice(1, firstHit + 1));
    expect(res.cache.length).toBe(prompt.length + firstHit);
  });

  it('starts from an empty cache: a one-token prompt needs no prompt pass of its own', async () => {
    const ref = await stepwise(packed, [1], 10);
    const res = await packed.greedySteps([[1]], packed.emptyCache(1), 10, []);
    expect(res.tokens[0]).toEqual(ref.tokens);
    // BOS and every picked token but the last, as the step-by-step cache.
    expect(res.cache.length).toBe(ref.cache.length);
    expect(maxAbsDiff(packed.cacheTensor(res.cache).data as Float32Array, packed.cacheTensor(ref.cache).data as Float32Array)).toBeLessThan(1e-5);
  });

  it('refuses what it cannot continue', async () => {
    const pre = await packed.cacheStep([[1, 2]], packed.emptyCache(1));
    await expect(packed.greedySteps([[1, 2]], pre.cache, 4)).rejects.toThrow(/exactly one token/);
    await expect(packed.greedySteps([[1]], pre.cache, 47)).rejects.toThrow(/exceeds this runner's context of 48/);
    await expect(perStep.greedySteps([[1]], pre.cache, 4)).rejects.toThrow(/fused inference kernels/);
  });

  it('gives generate() the same tokens as picking each one host-side, and as no cache at all', async () => {
    const prompt = fixedTokens(3, 512, 51);
    const seen: number[] = [];
    const fast = await generate(packed, prompt, { maxNewTokens: 40, stopTokens: [], onToken: (t, i) => (seen[i] = t) });
    const slow = await generate(perStep, prompt, { maxNewTokens: 40, stopTokens: [] });
    const full = await generate(packed, prompt, { maxNewTokens: 40, stopTokens: [], useCache: false });
    expect(fast.tokens).toHaveLength(40);
    expect(fast.tokens).toEqual(slow.tokens);
    expect(fast.tokens).toEqual(full.tokens);
    expect(seen).toEqual(fast.tokens);
    expect(fast.finish).toBe('length');
    // A stop token inside a later in-graph run ends generation right there.
    const stop = fast.tokens[30]!;
    const stopped = await generate(packed, prompt, { maxNewTokens: 40, stopTokens: [stop] });
    const at = fast.tokens.indexOf(stop);
    expect(stopped.finish).toBe('stop');
    expect(stopped.tokens).toEqual(fast.tokens.slice(0, at + 1));
  });
});
