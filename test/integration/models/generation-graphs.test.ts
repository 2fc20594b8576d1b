// The generation graphs (models/graphs.ts) on stories260K: fused inference kernels against the
// primitive formulation, the stacked key/value cache against recomputing the whole prefix (prefill,
// a multi-token chunk after a past, single-token decode, two sequences at once), and the graph
// hygiene that keeps a decode step cheap (no dead nodes, no fused kernel in a differentiable graph).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gradients } from '../../../native-models/autodiff/index';
import { buildCacheStepGraph, buildLogitsGraph, buildNextTokenGraph, cacheHeads, pruneUnused } from '../../../native-models/models/graphs';
import { loadModel, type LoadedModel } from '../../../native-models/models/load';
import { ModelRunner } from '../../../native-models/models/runner';
import { rmsNorm } from '../../../native-models/nn/norm';
import { fusedKernels, useFusedKernels } from '../../../native-models/nn/fused';
import { Graph } from '../../../native-models/onnx/graph';
import { fixedTokens, maxAbsDiff, stories260K } from './oracle';

const settings = { provider: 'cpu' as const, intraOpThreads: 1 };
let model: LoadedModel;
let fused: ModelRunner;
let primitive: ModelRunner;

beforeAll(async () => {
  model = await loadModel(stories260K);
  fused = new ModelRunner(model, { settings, contextLength: 32 });
  primitive = new ModelRunner(model, { settings, contextLength: 32, fused: false });
});
afterAll(async () => {
  await fused?.release();
  await primitive?.release();
});

const ops = (g: Graph): Set<string> => new Set(g.nodes.map((n) => n.op));

describe('generation graphs', () => {
  it('use fused kernels by default and primitives on request', () => {
    const f = ops(buildCacheStepGraph(model, { singleToken: true, contextLength: 32 }));
    for (const op of ['Attention', 'RotaryEmbedding', 'RMSNormalization', 'SkipSimplifiedLayerNormalization']) expect(f.has(op)).toBe(true);
    // The primitive (differentiable) formulation may use kernels that have gradient rules, such as
    // RotaryEmbedding, but none of the inference-only ones.
    const p = ops(buildCacheStepGraph(model, { singleToken: true, contextLength: 32, fused: false }));
    for (const op of ['Attention', 'RMSNormalization', 'SkipSimplifiedLayerNormalization']) expect(p.has(op)).toBe(false);
    expect(p.has('Softmax')).toBe(true);
  });

  it('build the causal mask once per forward pass when composed from primitives', () => {
    const g = buildNextTokenGraph(model, { contextLength: 32, fused: false });
    expect(g.nodes.filter((n) => n.op === 'LessOrEqual')).toHaveLength(1);
    expect(g.nodes.filter((n) => n.op === 'Softmax')).toHaveLength(model.spec.layers);
  });

  it('give the same next-token logits fused and primitive (≤ 1e-4)', async () => {
    const seqs = [fixedTokens(17, 512, 3), fixedTokens(17, 512, 4)];
    const a = await fused.nextTokenLogits(seqs);
    const b = await primitive.nextTokenLogits(seqs);
    expect(a).toHaveLength(2);
    for (let i = 0; i < 2; i++) {
      expect(a[i]).toHaveLength(512);
      expect(maxAbsDiff(a[i]!, b[i]!)).toBeLessThan(1e-4);
    }
    // Two different sequences must give different logits (the batch rows are not mixed up).
    expect(maxAbsDiff(a[0]!, a[1]!)).toBeGreaterThan(1e-2);
  });

  it.each([['fused', () => fused], ['primitive', () => primitive]])('%s: prefill, a 3-token chunk after a past, then decode match recomputing the prefix (≤ 1e-4)', async (_, get) => {
    const runner = get();
    const seqs = [fixedTokens(12, 512, 7), fixedTokens(12, 512, 8)];
    const cut = (n: number, m = 0) => seqs.map((s) => s.slice(m, n));
    let step = await runner.cacheStep(cut(5), runner.emptyCache(2));
    expect(step.cache.length).toBe(5);
    expect(runner.cacheTensor(step.cache).dims).toEqual([5, 2, cacheHeads(model.spec), model.spec.headDim]);
    const check = async (n: number) => {
      const full = await runner.nextTokenLogits(cut(n));
      for (let b = 0; b < 2; b++) expect(maxAbsDiff(step.logits[b]!, full[b]!)).toBeLessThan(1e-4);
    };
    await check(5);
    step = await runner.cacheStep(cut(8, 5), step.cache);
    expect(step.cache.length).toBe(8);
    await check(8);
    for (let n = 9; n <= 12; n++) {
      step = await runner.cacheStep(cut(n, n - 1), step.cache);
      await check(n);
    }
    expect(runner.cacheTensor(step.cache).dims[0]).toBe(12);
  });

  it('keeps an older cache valid: stepping from it again copies instead of overwriting the newer one', async () => {
    const seq = fixedTokens(8, 512, 9);
    const base = await fused.cacheStep([seq.slice(0, 4)], fused.emptyCache(1));
    const a = await fused.cacheStep([[seq[4]!]], base.cache); // appends in place
    const b = await fused.cacheStep([[seq[5]!]], base.cache); // a second continuation of the same prefix
    expect(b.cache.store).not.toBe(a.cache.store);
    const a2 = await fused.cacheStep([[seq[6]!]], a.cache);
    const [refA] = await fused.nextTokenLogits([[...seq.slice(0, 5), seq[6]!]]);
    const [refB] = await fused.nextTokenLogits([[...seq.slice(0, 4), seq[5]!]]);
    expect(maxAbsDiff(a2.logits[0]!, refA!)).toBeLessThan(1e-4);
    expect(maxAbsDiff(b.logits[0]!, refB!)).toBeLessThan(1e-4);
  });

  it('refuses a cache for a different number of sequences', async () => {
    await expect(fused.cacheStep([[1, 2]], fused.emptyCache(2))).rejects.toThrow(/2 sequences but 1/);
  });

  it('keep no dead nodes (a decode step runs only what its outputs need)', () => {
    const g = buildCacheStepGraph(model, { singleToken: true, contextLength: 32 });
    const read = new Set(g.nodes.flatMap((n) => n.inputs.filter((x) => x !== null).map((x) => x!.name)));
    for (const o of g.outputs) read.add(o.name);
    for (const n of g.nodes) expect(n.outputs.some((o) => read.has(o.name))).toBe(true);
    // The fused rotary kernel reads the table itself: no per-position table rows are gathered.
    expect(g.nodes.filter((n) => n.op === 'Gather')).toHaveLength(1); // the token embedding
  });
});

describe('pruneUnused', () => {
  it('drops what no output depends on and keeps the rest', () => {
    const g = new Graph('p');
    const x = g.input('x', 'float32', [2]);
    g.exp(g.mul(x, g.scalar(3)));
    const two = g.scalar(2);
    g.output(g.mul(g.neg(x), two), 'y');
    expect(g.nodes.map((n) => n.op)).toEqual(['Mul', 'Exp', 'Neg', 'Mul', 'Identity']);
    expect(g.initializers).toHaveLength(2);
    pruneUnused(g);
    expect(g.nodes.map((n) => n.op)).toEqual(['Neg', 'Mul', 'Identity']);
    expect(g.initializers.map((t) => t.value.name)).toEqual([two.name]);
  });
});

describe('fused kernels', () => {
  it('mark a graph and its subgraphs, and autodiff refuses them', () => {
    const g = new Graph('f');
    useFusedKernels(g);
    expect(fusedKernels(new Graph('branch', g))).toBe(true);
    expect(fusedKernels(new Graph('other'))).toBe(false);
    const x = g.input('x', 'float32', [1, 3, 4]);
    const w = g.input('w', 'float32', [4]);
    const y = g.reduceSum(rmsNorm(g, x, w, 1e-5), [0, 1, 2], false);
    expect(() => gradients(g, y, [w])).toThrow(/no gradient rule for op RMSNormalization/);
  });

  it('are not used for a logits graph built with fused: false', () => {
    expect(ops(buildLogitsGraph(model, { contextLength: 8, fused: false })).has('Attention')).toBe(false);
    expect(ops(buildNextTokenGraph(model, { contextLength: 8 })).has('Attention')).toBe(true);
  });
});
