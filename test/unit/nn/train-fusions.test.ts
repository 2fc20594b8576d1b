// The training forms of RMSNorm, rotary embedding and the SwiGLU gate (nn/train-fusions.ts): their
// hand-written gradients against finite differences in float32, where they run ORT's
// SimplifiedLayerNormalization / RotaryEmbedding kernels (the float64 forms are in the autodiff
// finite-difference table, NN_CASES), and the backward they emit.
import { describe, expect, it } from 'vitest';
import { customGradient, gradients } from '../../../native-models/autodiff';
import * as nn from '../../../native-models/nn';
import { Graph, type Value } from '../../../native-models/onnx';
import { checkCase, relativeError, rng, type GradCase } from '../autodiff/gradcheck';
import { runGraph } from '../autodiff/run';

const f32 = (shape: number[]) => ({ shape, dtype: 'float32' as const });

function rope32(g: Graph, x: Value): { cos: Value; sin: Value } {
  const t = nn.ropeConstants(g, nn.ropeTables(4, 16), 'float32');
  return nn.ropeAt(g, t, nn.positionIds(g, x, 1));
}

// float32 finite differences: the error bound is the float32 stencil's, as for Erf in cases.ts.
const FD_CASES: GradCase[] = [
  { name: 'rmsNorm (SimplifiedLayerNormalization forward), x and weight', inputs: [f32([2, 3, 8]), f32([8])], build: (g, [x, w]) => nn.rmsNorm(g, x!, w!, 1e-5), tol: 3e-3 },
];

describe('training fusions: gradients against float32 finite differences', () => {
  it.each(FD_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const r = await checkCase(c);
    for (const e of r.perInput) expect(e).not.toBe('none');
    expect(r.maxError).toBeLessThanOrEqual(c.tol!);
  });
});

/**
 * Gradients of L = Σ out ⊙ W built in float32 (ORT kernels: SimplifiedLayerNormalization,
 * RotaryEmbedding, Sigmoid) against the same function built in float64 (primitive forwards, whose
 * gradients the float64 finite-difference table NN_CASES checks), on the same data.
 */
interface PairCase { name: string; shapes: number[][]; build(g: Graph, xs: Value[]): Value }

const PAIR_CASES: PairCase[] = [
  {
    name: 'attention with rotary (RotaryEmbedding forward and backward), GQA 4/2 heads',
    shapes: [[2, 5, 16], [2, 5, 8], [2, 5, 8]],
    build: (g, [q, k, v]) => {
      const t = nn.ropeConstants(g, nn.ropeTables(4, 16), q!.dtype);
      return nn.causalSelfAttention(g, q!, k!, v!, { numHeads: 4, numKvHeads: 2, headDim: 4, rope: nn.ropeAt(g, t, nn.positionIds(g, q!, 1)) }).out;
    },
  },
  { name: 'swiGLU (σ reused)', shapes: [[2, 3, 4], [6, 4], [6, 4], [4, 6]], build: (g, [x, wg, wu, wd]) => nn.swiGLU(g, x!, wg!, wu!, wd!) },
  { name: 'rmsNorm', shapes: [[2, 3, 8], [8]], build: (g, [x, w]) => nn.rmsNorm(g, x!, w!, 1e-5) },
];

async function gradsIn(dt: 'float32' | 'float64', c: PairCase, data: number[][], weights: (n: number) => number[]): Promise<number[][]> {
  const g = new Graph();
  const xs = c.shapes.map((s, i) => g.input(`x${i}`, dt, s));
  const out = c.build(g, xs);
  const n = out.shape.reduce<number>((a, d) => a * (d as number), 1);
  const w = g.constant(weights(n), out.shape as number[], dt);
  const loss = g.reduceSum(g.mul(out, w), out.shape.map((_, i) => i), false);
  gradients(g, loss, xs).forEach((d, i) => g.output(d!, `d${i}`));
  const feeds = Object.fromEntries(c.shapes.map((s, i) => [`x${i}`, { dtype: dt, data: data[i]!, shape: s }]));
  const r = await runGraph(g, feeds);
  return c.shapes.map((_, i) => r[`d${i}`]!.data);
}

describe('training fusions: float32 kernels give the float64 gradients', () => {
  it.each(PAIR_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const rand = rng(11);
    const data = c.shapes.map((s) => Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => 2 * rand() - 1));
    const weights = (n: number) => Array.from({ length: n }, (_, i) => Math.sin(1 + 0.7 * i));
    const g32 = await gradsIn('float32', c, data, weights);
    const g64 = await gradsIn('float64', c, data, weights);
    g32.forEach((a, i) => expect(relativeError(a, g64[i]!)).toBeLessThanOrEqual(1e-4));
  });
});

function opsOf(g: Graph, from: number): string[] {
  return g.nodes.slice(from).map((n) => n.op);
}

describe('training fusions: the backward they emit', () => {
  it('rmsNorm is one kernel forward and no Sqrt/Reciprocal/ReduceMean-of-squares chain backward', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 3, 8]);
    const w = g.input('w', 'float32', [8]);
    const y = nn.rmsNorm(g, x, w, 1e-5);
    expect(g.nodes.map((n) => n.op)).toContain('SimplifiedLayerNormalization');
    const loss = g.reduceSum(g.mul(y, y), [0, 1, 2], false);
    const mark = g.nodes.length;
    const [dx] = gradients(g, loss, [x]);
    expect(dx).toBeDefined();
    const ops = opsOf(g, mark);
    expect(ops).not.toContain('Sqrt');
    expect(ops).not.toContain('Reciprocal');
    // dy (2: Mul + its seed/reduce path) then gw, gw·x, mean, r², ·dot, x·c, Sub, ·r.
    expect(ops.filter((o) => o === 'ReduceMean')).toHaveLength(1);
  });

  it('rotary in float32 is one RotaryEmbedding forward per projection and one (with −sin) backward', () => {
    const g = new Graph();
    const q = g.input('q', 'float32', [1, 4, 8]);
    const k = g.input('k', 'float32', [1, 4, 8]);
    const v = g.input('v', 'float32', [1, 4, 8]);
    const out = nn.causalSelfAttention(g, q, k, v, { numHeads: 2, numKvHeads: 2, headDim: 4, rope: rope32(g, q) }).out;
    const fwd = opsOf(g, 0);
    expect(fwd.filter((o) => o === 'RotaryEmbedding')).toHaveLength(2);
    expect(fwd).not.toContain('Concat');
    const mark = g.nodes.length;
    gradients(g, g.reduceSum(out, [0, 1, 2], false), [q, k]);
    const bwd = opsOf(g, mark);
    expect(bwd.filter((o) => o === 'RotaryEmbedding')).toHaveLength(2);
    expect(bwd).not.toContain('Concat');
    expect(bwd).not.toContain('Split');
  });

  it('a loss through another output of a custom-gradient node is refused, naming it', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [2, 3]);
    const [a, b] = g.emit('Split', [x, g.ints([1, 2])], { axis: 1 }, [
      { dtype: 'float64', shape: [2, 1] },
      { dtype: 'float64', shape: [2, 2] },
    ]) as [Value, Value];
    customGradient(a, [x], ({ g: h, GO }) => [h.concat([GO(0), h.zerosLike(b)], 1)]);
    const loss = g.reduceSum(b, [0, 1], false);
    expect(() => gradients(g, loss, [x])).toThrow(/custom gradient covers/);
  });
});
