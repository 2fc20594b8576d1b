// The in-graph optimizers against a hand-written float64 reference of ALGORITHMS.md §6 (AdamW)
// and torch.optim.SGD, on a linear regression whose gradient is written out by hand here.
import { describe, expect, it } from 'vitest';
import { compileTrainStep, type OptimizerSpec, type ScheduleSpec, type TrainState } from '../../../native-models/train';
import type { Graph, Value } from '../../../native-models/onnx';

const IN = 3;
const OUT = 2;

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function makeData(rows: number, seed: number) {
  const r = rng(seed);
  return { x: Float64Array.from({ length: rows * IN }, () => 4 * r()), y: Float64Array.from({ length: rows * OUT }, () => 2 * r()) };
}

const model = (g: Graph, p: Record<string, Value>) => {
  const x = g.input('x', 'float64', ['batch', IN]);
  const y = g.input('y', 'float64', ['batch', OUT]);
  const d = g.sub(g.add(g.matmul(x, p.w!), p.b!), y);
  return { loss: g.reduceMean(g.mul(d, d), [0, 1], false) };
};

// ── reference ────────────────────────────────────────────────────────────────
type P = { w: number[]; b: number[] };

function lossAndGrad(p: P, x: Float64Array, y: Float64Array): { loss: number; g: P } {
  const rows = x.length / IN;
  const n = rows * OUT;
  const gw = new Array(IN * OUT).fill(0);
  const gb = new Array(OUT).fill(0);
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < OUT; o++) {
      let pred = p.b[o]!;
      for (let i = 0; i < IN; i++) pred += x[r * IN + i]! * p.w[i * OUT + o]!;
      const d = pred - y[r * OUT + o]!;
      loss += (d * d) / n;
      gb[o] += (2 * d) / n;
      for (let i = 0; i < IN; i++) gw[i * OUT + o] += (2 * d * x[r * IN + i]!) / n;
    }
  }
  return { loss, g: { w: gw, b: gb } };
}

function refLr(t: number, s: ScheduleSpec): number {
  const step = t - 1;
  const warm = s.warmupSteps ?? 0;
  if (step < warm) return (s.lr * (step + 1)) / warm;
  if ((s.decay ?? 'constant') === 'constant') return s.lr;
  const p = Math.min(1, Math.max(0, (step - warm) / Math.max(1, s.totalSteps! - warm)));
  const min = s.minLr ?? 0;
  return s.decay === 'linear' ? min + (s.lr - min) * (1 - p) : min + (s.lr - min) * 0.5 * (1 + Math.cos(Math.PI * p));
}

interface RefState { p: P; m: P; v: P; buf: P }

function refStep(st: RefState, grad: P, t: number, opt: OptimizerSpec, sched: ScheduleSpec, clip: number, noDecay: Set<string>): { lr: number; norm: number } {
  const lr = refLr(t, sched);
  let sq = 0;
  for (const k of ['w', 'b'] as const) for (const gv of grad[k]) sq += gv * gv;
  const norm = Math.sqrt(sq);
  const coef = clip > 0 ? Math.min(1, clip / (norm + 1e-6)) : 1;
  for (const k of ['w', 'b'] as const) {
    const wd = noDecay.has(k) ? 0 : (opt.weightDecay ?? 0);
    for (let i = 0; i < st.p[k].length; i++) {
      const g = grad[k][i]! * coef;
      const p = st.p[k][i]!;
      if (opt.type === 'adamw') {
        const b1 = opt.beta1 ?? 0.9, b2 = opt.beta2 ?? 0.999, eps = opt.eps ?? 1e-8;
        const m = b1 * st.m[k][i]! + (1 - b1) * g;
        const v = b2 * st.v[k][i]! + (1 - b2) * g * g;
        const mh = m / (1 - b1 ** t);
        const vh = v / (1 - b2 ** t);
        st.m[k][i] = m;
        st.v[k][i] = v;
        st.p[k][i] = p - lr * (mh / (Math.sqrt(vh) + eps) + wd * p);
      } else {
        const mu = opt.momentum ?? 0;
        const gd = g + wd * p;
        const dir = mu > 0 ? (t === 1 ? gd : mu * st.buf[k][i]! + gd) : gd;
        st.buf[k][i] = dir;
        st.p[k][i] = p - lr * dir;
      }
    }
  }
  return { lr, norm };
}

const W0 = [0.3, -0.2, 0.1, 0.5, -0.4, 0.25];
const B0 = [0.05, -0.1];
const zeros = (): P => ({ w: new Array(6).fill(0), b: new Array(2).fill(0) });

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(expected[i]!)));
}

const cases: { name: string; opt: OptimizerSpec; sched: ScheduleSpec; clip: number; noDecay?: string[] }[] = [
  { name: 'AdamW, constant lr, no clipping, no decay', opt: { type: 'adamw' }, sched: { lr: 0.05 }, clip: 0 },
  { name: 'AdamW, warmup 3 + cosine, clipping 1.0, weight decay 0.1', opt: { type: 'adamw', weightDecay: 0.1, beta1: 0.8, beta2: 0.95, eps: 1e-6 }, sched: { lr: 0.1, warmupSteps: 3, totalSteps: 8, decay: 'cosine', minLr: 0.01 }, clip: 1.0 },
  { name: 'AdamW, warmup 2 + linear, no clipping, no decay on the bias', opt: { type: 'adamw', weightDecay: 0.05 }, sched: { lr: 0.08, warmupSteps: 2, totalSteps: 6, decay: 'linear' }, clip: 0, noDecay: ['b'] },
  { name: 'SGD with momentum, linear decay, clipping 2.0, L2 0.01', opt: { type: 'sgd', momentum: 0.9, weightDecay: 0.01 }, sched: { lr: 0.02, totalSteps: 8, decay: 'linear' }, clip: 2.0 },
  { name: 'plain SGD, cosine without warmup', opt: { type: 'sgd' }, sched: { lr: 0.01, totalSteps: 8, decay: 'cosine' }, clip: 0 },
];

describe('in-graph optimizers vs a float64 reference', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const noDecay = new Set(c.noDecay ?? []);
      const ts = await compileTrainStep(model, {
        trainable: { w: { data: Float64Array.from(W0), shape: [IN, OUT] }, b: { data: Float64Array.from(B0), shape: [OUT] } },
        optimizer: c.opt,
        schedule: c.sched,
        clip: c.clip,
        noDecay: (n) => noDecay.has(n),
        session: { intraOpThreads: 1 },
      });
      expect(ts.mode).toBe('fused');
      let state: TrainState = ts.initState();
      const ref: RefState = { p: { w: [...W0], b: [...B0] }, m: zeros(), v: zeros(), buf: zeros() };
      let clipped = 0;
      for (let t = 1; t <= 8; t++) {
        const { x, y } = makeData(5, 100 + t);
        const { loss, g } = lossAndGrad(ref.p, x, y);
        const r = refStep(ref, g, t, c.opt, c.sched, c.clip, noDecay);
        if (c.clip > 0 && r.norm > c.clip) clipped++;
        const out = await ts.step({ x: { data: x, dims: [5, IN] }, y: { data: y, dims: [5, OUT] } }, state);
        state = out.state;
        expect(state.step).toBe(t);
        expect(out.loss).toBeCloseTo(loss, 10);
        expect(out.lr).toBeCloseTo(r.lr, 12);
        expect(out.gradNorm).toBeCloseTo(r.norm, 9);
        close(state.params.w!, ref.p.w, 1e-10);
        close(state.params.b!, ref.p.b, 1e-10);
        if (c.opt.type === 'adamw') {
          close(state.slots.m!.w!, ref.m.w, 1e-10);
          close(state.slots.v!.b!, ref.v.b, 1e-10);
        } else if ((c.opt.momentum ?? 0) > 0) close(state.slots.momentum!.w!, ref.buf.w, 1e-10);
      }
      // The clipping cases must actually clip (otherwise they test nothing about clipping).
      if (c.clip > 0) expect(clipped).toBeGreaterThan(0);
      await ts.dispose();
    });
  }

  it('gradient accumulation over two micro-batches equals the big-batch step', async () => {
    const opts = {
      trainable: { w: { data: Float64Array.from(W0), shape: [IN, OUT] }, b: { data: Float64Array.from(B0), shape: [OUT] } },
      optimizer: { type: 'adamw', weightDecay: 0.1 } as OptimizerSpec,
      schedule: { lr: 0.05, warmupSteps: 1, totalSteps: 4, decay: 'cosine' } as ScheduleSpec,
      clip: 1.0,
      session: { intraOpThreads: 1 },
    };
    const big = await compileTrainStep(model, opts);
    const acc = await compileTrainStep(model, { ...opts, accumulation: 2 });
    expect(acc.mode).toBe('accumulate');
    let sBig = big.initState();
    let sAcc = acc.initState();
    for (let t = 1; t <= 4; t++) {
      const { x, y } = makeData(6, 7 * t);
      const half = (a: Float64Array, cols: number, k: number) => ({ data: a.slice(k * 3 * cols, (k + 1) * 3 * cols), dims: [3, cols] });
      const rb = await big.step({ x: { data: x, dims: [6, IN] }, y: { data: y, dims: [6, OUT] } }, sBig);
      const ra = await acc.step([0, 1].map((k) => ({ x: half(x, IN, k), y: half(y, OUT, k) })), sAcc);
      sBig = rb.state;
      sAcc = ra.state;
      expect(ra.loss).toBeCloseTo(rb.loss, 12);
      expect(ra.gradNorm).toBeCloseTo(rb.gradNorm, 12);
      close(sAcc.params.w!, sBig.params.w!, 1e-12);
      close(sAcc.params.b!, sBig.params.b!, 1e-12);
      close(sAcc.slots.v!.w!, sBig.slots.v!.w!, 1e-12);
    }
    // And the parameters did move.
    expect(Math.abs(sBig.params.w![0]! - W0[0]!)).toBeGreaterThan(1e-3);
    await big.dispose();
    await acc.dispose();
  });

  it('leaves parameters the loss does not use untouched and reports them', async () => {
    const ts = await compileTrainStep(model, {
      trainable: { w: { data: Float64Array.from(W0), shape: [IN, OUT] }, b: { data: Float64Array.from(B0), shape: [OUT] }, spare: { data: Float64Array.of(1, 2), shape: [2] } },
      optimizer: { type: 'adamw', weightDecay: 0.5 },
      schedule: { lr: 0.1 },
      session: { intraOpThreads: 1 },
    });
    expect(ts.unused).toEqual(['spare']);
    const { x, y } = makeData(4, 3);
    let state = ts.initState();
    for (let i = 0; i < 2; i++) state = (await ts.step({ x: { data: x, dims: [4, IN] }, y: { data: y, dims: [4, OUT] } }, state)).state;
    expect(Array.from(state.params.spare!)).toEqual([1, 2]);
    expect(state.params.w![0]).not.toBe(W0[0]);
    await ts.dispose();
  });

  it('says which batch input is missing', async () => {
    const ts = await compileTrainStep(model, {
      trainable: { w: { data: Float64Array.from(W0), shape: [IN, OUT] }, b: { data: Float64Array.from(B0), shape: [OUT] } },
      optimizer: { type: 'sgd' },
      schedule: { lr: 0.1 },
    });
    await expect(ts.step({ x: { data: new Float64Array(IN), dims: [1, IN] } }, ts.initState())).rejects.toThrow(/missing "y"/);
    await ts.dispose();
  });
});
