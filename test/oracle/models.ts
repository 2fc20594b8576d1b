// The tiny models the PyTorch oracle and the bench compare: their forward in our graph builder
// (with the nn composites), seeded initial weights and batches. torch's side is train_oracle.py.
import type { Graph, Value } from '../../native-models/onnx';
import { causalSelfAttention, crossEntropy, geluTanh, layerNorm, linear, rmsNorm } from '../../native-models/nn';
import type { ModelFn, ParamInit } from '../../native-models/train';

/** mulberry32: small, seeded, the same on every machine. */
export function seededRandom(seed: number): { uniform: () => number; normal: () => number } {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

function randn(r: ReturnType<typeof seededRandom>, shape: number[], std: number, dtype: 'float32' | 'float64'): ParamInit {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = r.normal() * std;
  return { data, shape };
}

// ── 2-layer MLP ──────────────────────────────────────────────────────────────
export interface MlpConfig { inputs: number; hidden: number; outputs: number; batch: number }

export function mlpModel(c: MlpConfig, dtype: 'float32' | 'float64' = 'float32'): ModelFn {
  return (g: Graph, p: Record<string, Value>) => {
    const x = g.input('x', dtype, ['batch', c.inputs]);
    const y = g.input('y', dtype, ['batch', c.outputs]);
    const h = geluTanh(g, linear(g, x, p.w1!, p.b1!));
    const d = g.sub(linear(g, h, p.w2!, p.b2!), y);
    return { loss: g.reduceMean(g.mul(d, d), [0, 1], false) };
  };
}

export function mlpParams(c: MlpConfig, seed: number, dtype: 'float32' | 'float64' = 'float32'): Record<string, ParamInit> {
  const r = seededRandom(seed);
  return {
    w1: randn(r, [c.hidden, c.inputs], 1 / Math.sqrt(c.inputs), dtype),
    b1: randn(r, [c.hidden], 0.1, dtype),
    w2: randn(r, [c.outputs, c.hidden], 1 / Math.sqrt(c.hidden), dtype),
    b2: randn(r, [c.outputs], 0.1, dtype),
  };
}

export function mlpBatch(c: MlpConfig, seed: number, dtype: 'float32' | 'float64' = 'float32') {
  const r = seededRandom(seed);
  return { x: randn(r, [c.batch, c.inputs], 1, dtype), y: randn(r, [c.batch, c.outputs], 1, dtype) };
}

// ── one causal self-attention block with a vocabulary head ───────────────────
export interface AttentionConfig { batch: number; seq: number; d: number; heads: number; vocab: number; norm: 'rms' | 'layer'; eps: number }

export function attentionModel(c: AttentionConfig): ModelFn {
  return (g: Graph, p: Record<string, Value>) => {
    const tokens = g.input('tokens', 'int64', [c.batch, c.seq]);
    const labels = g.input('labels', 'int64', [c.batch, c.seq]);
    const mask = g.input('mask', 'float32', [c.batch, c.seq]);
    const x = g.gather(p.emb!, tokens, 0);
    const h = c.norm === 'rms' ? rmsNorm(g, x, p.norm_w!, c.eps) : layerNorm(g, x, p.norm_w!, p.norm_b!, c.eps);
    const q = linear(g, h, p.wq!);
    const k = linear(g, h, p.wk!);
    const v = linear(g, h, p.wv!);
    const att = causalSelfAttention(g, q, k, v, { numHeads: c.heads, numKvHeads: c.heads, headDim: c.d / c.heads });
    const y = g.add(x, linear(g, att.out, p.wo!));
    return { loss: crossEntropy(g, linear(g, y, p.head!), labels, mask) };
  };
}

export function attentionParams(c: AttentionConfig, seed: number): Record<string, ParamInit> {
  const r = seededRandom(seed);
  const s = 1 / Math.sqrt(c.d);
  const ones = (n: number) => ({ data: Float32Array.from({ length: n }, () => 1 + 0.1 * r.normal()), shape: [n] });
  return {
    emb: randn(r, [c.vocab, c.d], 1, 'float32'),
    norm_w: ones(c.d),
    ...(c.norm === 'layer' ? { norm_b: randn(r, [c.d], 0.1, 'float32') } : {}),
    wq: randn(r, [c.d, c.d], s, 'float32'),
    wk: randn(r, [c.d, c.d], s, 'float32'),
    wv: randn(r, [c.d, c.d], s, 'float32'),
    wo: randn(r, [c.d, c.d], s, 'float32'),
    head: randn(r, [c.vocab, c.d], s, 'float32'),
  };
}

/** Tokens, next-token labels (−100 at ignored positions, about one in eight) and the float mask. */
export function attentionBatch(c: AttentionConfig, seed: number) {
  const r = seededRandom(seed);
  const n = c.batch * c.seq;
  const tokens = new BigInt64Array(n);
  const labels = new BigInt64Array(n);
  const mask = new Float32Array(n);
  for (let i = 0; i < n; i++) tokens[i] = BigInt(Math.floor(r.uniform() * c.vocab));
  for (let i = 0; i < n; i++) {
    const ignored = r.uniform() < 0.125;
    labels[i] = ignored ? -100n : BigInt(Math.floor(r.uniform() * c.vocab));
    mask[i] = ignored ? 0 : 1;
  }
  return { tokens, labels, mask };
}
