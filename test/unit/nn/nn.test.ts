// Forward values of the nn compositions against plain-loop references written here.
import { describe, expect, it } from 'vitest';
import { gradients } from '../../../native-models/autodiff';
import * as nn from '../../../native-models/nn';
import { Graph, type DType } from '../../../native-models/onnx';
import { rng } from '../autodiff/gradcheck';
import { runGraph, type Feed } from '../autodiff/run';

const rand = rng(7);
const randn = (n: number) => Array.from({ length: n }, () => 2 * rand() - 1);
const feed = (dtype: Feed['dtype'], data: number[], shape: number[]): Feed => ({ dtype, data, shape });

function expectClose(actual: number[], expected: number[], tol: number): void {
  expect(actual.length).toBe(expected.length);
  const worst = actual.reduce((m, a, i) => Math.max(m, Math.abs(a - expected[i]!) / Math.max(1, Math.abs(expected[i]!))), 0);
  expect(worst).toBeLessThanOrEqual(tol);
}

const TOL: Record<'float32' | 'float64', number> = { float32: 2e-6, float64: 1e-12 };

describe.each(['float32', 'float64'] as const)('nn forward (%s)', (dt) => {
  const tol = TOL[dt];

  it('rmsNorm and layerNorm normalise the last axis', async () => {
    const [R, D] = [3, 5];
    const x = randn(R * D);
    const w = randn(D);
    const b = randn(D);
    const g = new Graph();
    const xv = g.input('x', dt, [R, D]);
    const wv = g.input('w', dt, [D]);
    const bv = g.input('b', dt, [D]);
    g.output(nn.rmsNorm(g, xv, wv, 1e-6), 'rms');
    g.output(nn.layerNorm(g, xv, wv, bv, 1e-5), 'ln');
    const out = await runGraph(g, { x: feed(dt, x, [R, D]), w: feed(dt, w, [D]), b: feed(dt, b, [D]) });
    const rms: number[] = [];
    const ln: number[] = [];
    for (let r = 0; r < R; r++) {
      const row = x.slice(r * D, r * D + D);
      const ms = row.reduce((s, v) => s + v * v, 0) / D;
      const mean = row.reduce((s, v) => s + v, 0) / D;
      const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / D;
      row.forEach((v, i) => {
        rms.push((v / Math.sqrt(ms + 1e-6)) * w[i]!);
        ln.push(((v - mean) / Math.sqrt(variance + 1e-5)) * w[i]! + b[i]!);
      });
    }
    expectClose(out.rms!.data, rms, tol);
    expectClose(out.ln!.data, ln, tol);
  });

  it('geluTanh, silu and swiGLU match their formulas', async () => {
    const x = [-4, -1.5, -0.3, 0, 0.2, 1, 2.5, 6];
    const g = new Graph();
    const xv = g.input('x', dt, [2, 4]);
    g.output(nn.geluTanh(g, xv), 'gelu');
    g.output(nn.silu(g, xv), 'silu');
    const wg = randn(12);
    const wu = randn(12);
    const wd = randn(12);
    const W = (n: string, shape: number[]) => g.input(n, dt, shape);
    g.output(nn.swiGLU(g, xv, W('wg', [3, 4]), W('wu', [3, 4]), W('wd', [4, 3])), 'mlp');
    const out = await runGraph(g, { x: feed(dt, x, [2, 4]), wg: feed(dt, wg, [3, 4]), wu: feed(dt, wu, [3, 4]), wd: feed(dt, wd, [4, 3]) });
    const gelu = x.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    const silu = x.map((v) => v / (1 + Math.exp(-v)));
    expectClose(out.gelu!.data, gelu, tol);
    expectClose(out.silu!.data, silu, tol);
    const mlp: number[] = [];
    for (let r = 0; r < 2; r++) {
      const xr = x.slice(r * 4, r * 4 + 4);
      const h = [0, 1, 2].map((j) => {
        const gate = xr.reduce((s, v, i) => s + v * wg[j * 4 + i]!, 0);
        const up = xr.reduce((s, v, i) => s + v * wu[j * 4 + i]!, 0);
        return (gate / (1 + Math.exp(-gate))) * up;
      });
      for (let o = 0; o < 4; o++) mlp.push(h.reduce((s, v, j) => s + v * wd[o * 3 + j]!, 0));
    }
    expectClose(out.mlp!.data, mlp, tol);
  });

  it('linear (W [out,in]) equals conv1d with the transposed weight', async () => {
    const w = randn(6);
    const wt = [0, 1, 2].flatMap((i) => [0, 1].map((o) => w[o * 3 + i]!));
    const x = randn(6);
    const bias = [0.5, -0.25];
    const g = new Graph();
    const xv = g.input('x', dt, [2, 3]);
    const bv = g.input('b', dt, [2]);
    g.output(nn.linear(g, xv, g.input('w', dt, [2, 3]), bv), 'lin');
    g.output(nn.conv1d(g, xv, g.input('wt', dt, [3, 2]), bv), 'conv');
    const out = await runGraph(g, { x: feed(dt, x, [2, 3]), b: feed(dt, bias, [2]), w: feed(dt, w, [2, 3]), wt: feed(dt, wt, [3, 2]) });
    const ref = [0, 1].flatMap((r) => [0, 1].map((o) => bias[o]! + [0, 1, 2].reduce((s, i) => s + x[r * 3 + i]! * w[o * 3 + i]!, 0)));
    expectClose(out.lin!.data, ref, tol);
    expectClose(out.conv!.data, ref, tol);
  });

  it('rope rotates the two halves of each head by position·θ^(−2i/d)', async () => {
    const [T, D] = [3, 4];
    const x = randn(T * D);
    const g = new Graph();
    const xv = g.input('x', dt, ['T', D]);
    const table = nn.ropeConstants(g, nn.ropeTables(D, 16, 10000), dt);
    const offset = g.input('offset', 'int64', []);
    const { cos, sin } = nn.ropeAt(g, table, nn.positionIds(g, xv, 0, offset));
    g.output(nn.rope(g, xv, cos, sin), 'y');
    const out = await runGraph(g, { x: feed(dt, x, [T, D]), offset: feed('int64', [5], []) });
    const ref: number[] = [];
    for (let t = 0; t < T; t++) {
      const p = 5 + t;
      const row = x.slice(t * D, t * D + D);
      const half = D / 2;
      const y = new Array<number>(D);
      for (let i = 0; i < half; i++) {
        const a = p / Math.pow(10000, (2 * i) / D);
        y[i] = row[i]! * Math.cos(a) - row[i + half]! * Math.sin(a);
        y[i + half] = row[i + half]! * Math.cos(a) + row[i]! * Math.sin(a);
      }
      ref.push(...y);
    }
    expectClose(out.y!.data, ref, tol);
  });

  it('crossEntropy is the mean NLL over unmasked positions; tokenLogProbs is log p(target)', async () => {
    const [B, T, V] = [2, 3, 4];
    const logits = randn(B * T * V).map((v) => 5 * v);
    const targets = [1, 3, -100, 0, 2, 2];
    const mask = [1, 1, 0, 1, 0, 1];
    const g = new Graph();
    const lv = g.input('logits', dt, ['B', 'T', V]);
    const tv = g.input('targets', 'int64', ['B', 'T']);
    g.output(nn.crossEntropy(g, lv, tv, g.input('mask', dt, ['B', 'T'])), 'loss');
    const tSafe = g.input('tsafe', 'int64', ['B', 'T']);
    g.output(nn.tokenLogProbs(g, lv, tSafe), 'lp');
    const safe = targets.map((t) => Math.max(t, 0));
    const out = await runGraph(g, {
      logits: feed(dt, logits, [B, T, V]),
      targets: feed('int64', targets, [B, T]),
      mask: feed(dt, mask, [B, T]),
      tsafe: feed('int64', safe, [B, T]),
    });
    const lp = safe.map((t, r) => {
      const row = logits.slice(r * V, r * V + V);
      const m = Math.max(...row);
      return row[t]! - m - Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    });
    const nll = -lp.reduce((s, v, r) => s + v * mask[r]!, 0) / mask.reduce((s, v) => s + v, 0);
    expectClose(out.lp!.data, lp, tol);
    expectClose(out.loss!.data, [nll], tol);
  });
});

describe('crossEntropy edge cases and gradient cost', () => {
  it('is 0 (not NaN) when every position is masked', async () => {
    const g = new Graph();
    g.output(nn.crossEntropy(g, g.input('l', 'float32', [1, 2, 3]), g.input('t', 'int64', [1, 2]), g.input('m', 'float32', [1, 2])), 'loss');
    const out = await runGraph(g, { l: feed('float32', randn(6), [1, 2, 3]), t: feed('int64', [-100, -100], [1, 2]), m: feed('float32', [0, 0], [1, 2]) });
    expect(out.loss!.data).toEqual([0]);
  });

  it('its fused gradient is (softmax − onehot)·mask/count and materialises nothing beyond [B,T,V]', async () => {
    const [B, T, V] = [2, 2, 7];
    const logits = randn(B * T * V);
    const targets = [3, 0, 6, 6];
    const mask = [1, 0, 1, 1];
    const g = new Graph();
    const lv = g.input('logits', 'float32', [B, T, V]);
    const loss = nn.crossEntropy(g, lv, g.input('targets', 'int64', [B, T]), g.input('mask', 'float32', [B, T]));
    const before = g.nodes.length;
    const [d] = gradients(g, loss, [lv]);
    const emitted = g.nodes.slice(before);
    const sizes = emitted.flatMap((n) => n.outputs.map((o) => o.shape.reduce<number>((p, q) => p * (q as number), 1)));
    expect(Math.max(...sizes)).toBe(B * T * V);
    expect(sizes.filter((s) => s === B * T * V).length).toBeLessThanOrEqual(3); // exp, ·w, scatter-add
    g.output(d!, 'd');
    const out = await runGraph(g, { logits: feed('float32', logits, [B, T, V]), targets: feed('int64', targets, [B, T]), mask: feed('float32', mask, [B, T]) });
    const count = 3;
    const ref = targets.flatMap((t, r) => {
      const row = logits.slice(r * V, r * V + V);
      const m = Math.max(...row);
      const z = row.reduce((s, v) => s + Math.exp(v - m), 0);
      return row.map((v, j) => ((Math.exp(v - m) / z - (j === t ? 1 : 0)) * mask[r]!) / count);
    });
    expectClose(out.d!.data, ref, 1e-6);
  });
});

// Naive reference: per (b, head) causal softmax attention with GQA head mapping h → h / rep.
function attentionRef(q: number[], k: number[], v: number[], o: { B: number; T: number; S: number; H: number; Hkv: number; Dh: number; pad?: number[] }): number[] {
  const { B, T, S, H, Hkv, Dh } = o;
  const rep = H / Hkv;
  const P = S - T;
  const out = new Array<number>(B * T * H * Dh).fill(0);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const kvh = Math.floor(h / rep);
        const scores: number[] = [];
        for (let s = 0; s < S; s++) {
          let dot = 0;
          for (let d = 0; d < Dh; d++) dot += q[((b * T + t) * H + h) * Dh + d]! * k[((b * S + s) * Hkv + kvh) * Dh + d]!;
          const masked = s > P + t || (o.pad !== undefined && o.pad[b * S + s] === 0);
          scores.push(masked ? -Infinity : dot / Math.sqrt(Dh));
        }
        const m = Math.max(...scores);
        const e = scores.map((x) => Math.exp(x - m));
        const z = e.reduce((a, c) => a + c, 0);
        for (let d = 0; d < Dh; d++) out[((b * T + t) * H + h) * Dh + d] = e.reduce((acc, p, s) => acc + (p / z) * v[((b * S + s) * Hkv + kvh) * Dh + d]!, 0);
      }
  return out;
}

describe.each(['float32', 'float64'] as DType[])('causalSelfAttention (%s)', (dt) => {
  const f = dt as 'float32' | 'float64';
  const [B, T, H, Hkv, Dh] = [2, 4, 4, 2, 3];

  it('matches a naive grouped-query causal attention with a padding mask', async () => {
    const q = randn(B * T * H * Dh);
    const k = randn(B * T * Hkv * Dh);
    const v = randn(B * T * Hkv * Dh);
    const pad = [1, 1, 1, 0, 1, 1, 1, 1];
    const g = new Graph();
    const qv = g.input('q', dt, ['B', 'T', H * Dh]);
    const kv = g.input('k', dt, ['B', 'T', Hkv * Dh]);
    const vv = g.input('v', dt, ['B', 'T', Hkv * Dh]);
    const r = nn.causalSelfAttention(g, qv, kv, vv, { numHeads: H, numKvHeads: Hkv, headDim: Dh, attentionMask: g.input('mask', 'int64', ['B', 'T']) });
    g.output(r.out, 'out');
    const out = await runGraph(g, { q: feed(f, q, [B, T, H * Dh]), k: feed(f, k, [B, T, Hkv * Dh]), v: feed(f, v, [B, T, Hkv * Dh]), mask: feed('int64', pad, [B, T]) });
    expect(out.out!.dims).toEqual([B, T, H * Dh]);
    expectClose(out.out!.data, attentionRef(q, k, v, { B, T, S: T, H, Hkv, Dh, pad }), TOL[f] * 5);
  });

  it('decoding one position with the KV cache equals the last position of the full pass (with rope)', async () => {
    const q = randn(B * T * H * Dh * 2).slice(0, B * T * H * 4);
    const k = randn(B * T * Hkv * 4);
    const v = randn(B * T * Hkv * 4);
    const D = 4;
    const build = (g: Graph, qv: ReturnType<Graph['input']>, kv: ReturnType<Graph['input']>, vv: ReturnType<Graph['input']>, offset?: ReturnType<Graph['input']>, past?: { k: ReturnType<Graph['input']>; v: ReturnType<Graph['input']> }) => {
      const table = nn.ropeConstants(g, nn.ropeTables(D, 32), dt);
      const rope = nn.ropeAt(g, table, nn.positionIds(g, qv, 1, offset));
      return nn.causalSelfAttention(g, qv, kv, vv, { numHeads: H, numKvHeads: Hkv, headDim: D, rope, ...(past ? { past } : {}) });
    };
    // Full pass over T positions.
    const full = new Graph();
    const fr = build(full, full.input('q', dt, ['B', 'T', H * D]), full.input('k', dt, ['B', 'T', Hkv * D]), full.input('v', dt, ['B', 'T', Hkv * D]));
    full.output(fr.out, 'out');
    const fo = await runGraph(full, { q: feed(f, q, [B, T, H * D]), k: feed(f, k, [B, T, Hkv * D]), v: feed(f, v, [B, T, Hkv * D]) });
    // Prefix of T−1 positions, then one step with the cache.
    const rows = (a: number[], w: number, from: number, to: number) => [0, 1].flatMap((b) => a.slice((b * T + from) * w, (b * T + to) * w));
    const pre = new Graph();
    const pr = build(pre, pre.input('q', dt, ['B', 'T', H * D]), pre.input('k', dt, ['B', 'T', Hkv * D]), pre.input('v', dt, ['B', 'T', Hkv * D]));
    pre.output(pr.present.k, 'pk');
    pre.output(pr.present.v, 'pv');
    const po = await runGraph(pre, { q: feed(f, rows(q, H * D, 0, T - 1), [B, T - 1, H * D]), k: feed(f, rows(k, Hkv * D, 0, T - 1), [B, T - 1, Hkv * D]), v: feed(f, rows(v, Hkv * D, 0, T - 1), [B, T - 1, Hkv * D]) });
    const step = new Graph();
    const sr = build(step, step.input('q', dt, ['B', 'T', H * D]), step.input('k', dt, ['B', 'T', Hkv * D]), step.input('v', dt, ['B', 'T', Hkv * D]), step.input('offset', 'int64', []), {
      k: step.input('pk', dt, ['B', Hkv, 'P', D]),
      v: step.input('pv', dt, ['B', Hkv, 'P', D]),
    });
    step.output(sr.out, 'out');
    const so = await runGraph(step, {
      q: feed(f, rows(q, H * D, T - 1, T), [B, 1, H * D]),
      k: feed(f, rows(k, Hkv * D, T - 1, T), [B, 1, Hkv * D]),
      v: feed(f, rows(v, Hkv * D, T - 1, T), [B, 1, Hkv * D]),
      offset: feed('int64', [T - 1], []),
      pk: feed(f, po.pk!.data, po.pk!.dims),
      pv: feed(f, po.pv!.data, po.pv!.dims),
    });
    expect(po.pk!.dims).toEqual([B, Hkv, T - 1, D]);
    expectClose(so.out!.data, rows(fo.out!.data, H * D, T - 1, T), TOL[f] * 5);
  });
});
