// Sparse layer tuning (layerwise.ts): with every layer selected the layer-gated train step equals
// the plain one; with a subset, selected layers get exactly the plain step's update (SGD, no
// clipping) and the others keep parameters and optimizer moments bit for bit.
import { describe, expect, it } from 'vitest';
import type { Graph, Value } from '../../../native-models/onnx';
import { compileTrainStep, cloneState, type ModelFn, type ParamInit, type TrainStepOptions } from '../../../native-models/train';

const L = 4;
const D = 6;
const R = 2;

function rand(n: number, seed: number, scale = 0.3): Float32Array {
  let x = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return ((x / 2 ** 32) * 2 - 1) * scale;
  });
}

// Blocks h ← h + tanh(norm(h)·w ⊙ (h·Wᵀ + s·(h·Aᵀ)·Bᵀ)): a frozen W, a LoRA pair (A, B) and a
// norm-like weight w per layer, so frontier nodes include MatMuls and an elementwise Mul.
const frozen: Record<string, ParamInit> = Object.fromEntries(Array.from({ length: L }, (_, i) => [`W${i}`, { data: rand(D * D, 100 + i), shape: [D, D] }]));
function trainable(): Record<string, ParamInit> {
  const t: Record<string, ParamInit> = {};
  for (let i = 0; i < L; i++) {
    t[`A${i}`] = { data: rand(R * D, 200 + i), shape: [R, D] };
    t[`B${i}`] = { data: rand(D * R, 300 + i), shape: [D, R] };
    t[`w${i}`] = { data: Float32Array.from(rand(D, 400 + i, 0.1), (v) => 1 + v), shape: [D] };
  }
  return t;
}

const model: ModelFn = (g: Graph, p: Record<string, Value>) => {
  const x = g.input('x', 'float32', ['batch', D]);
  const y = g.input('y', 'float32', ['batch', D]);
  let h = x;
  const blocks = [];
  for (let i = 0; i < L; i++) {
    const input = h;
    const base = g.matmul(h, g.transpose(p[`W${i}`]!, [1, 0]));
    const lora = g.mul(g.matmul(g.matmul(h, g.transpose(p[`A${i}`]!, [1, 0])), g.transpose(p[`B${i}`]!, [1, 0])), g.scalar(2));
    h = g.add(h, g.tanh(g.mul(g.add(base, lora), p[`w${i}`]!)));
    blocks.push({ input, output: h });
  }
  const d = g.sub(h, y);
  return { loss: g.reduceMean(g.mul(d, d), [0, 1], false), blocks };
};

const batch = { x: { data: rand(3 * D, 7, 1), dims: [3, D] }, y: { data: rand(3 * D, 8, 1), dims: [3, D] } };
const layerOf = (n: string) => Number(n.slice(1));
const session = { intraOpThreads: 1 };

async function oneStep(opts: Omit<TrainStepOptions, 'trainable'>, selected?: number[]) {
  const ts = await compileTrainStep(model, { trainable: trainable(), ...opts, session });
  try {
    let state = ts.initState();
    const results = [];
    for (let k = 0; k < 3; k++) {
      const r = await ts.step(batch, state, selected ? { selected } : undefined);
      state = r.state;
      results.push({ loss: r.loss, gradNorm: r.gradNorm });
    }
    return { state: cloneState(state), results };
  } finally {
    await ts.dispose();
  }
}

describe('layer-gated train step', () => {
  const adamw = { optimizer: { type: 'adamw' as const, weightDecay: 0.1 }, schedule: { lr: 0.05 }, clip: 0.5, frozen };

  it('equals the plain train step when every layer is selected', async () => {
    const plain = await oneStep(adamw);
    const gated = await oneStep({ ...adamw, layers: { layerOf } }, [0, 1, 2, 3]);
    gated.results.forEach((r, k) => {
      expect(r.loss).toBeCloseTo(plain.results[k]!.loss, 6);
      expect(r.gradNorm).toBeCloseTo(plain.results[k]!.gradNorm, 6);
    });
    for (const [n, v] of Object.entries(plain.state.params)) {
      const got = gated.state.params[n]!;
      for (let i = 0; i < v.length; i++) expect(got[i]).toBeCloseTo(v[i]!, 6);
    }
  });

  it('updates only the selected layers, with the plain gradient (SGD, no clipping)', async () => {
    const sgd = { optimizer: { type: 'sgd' as const }, schedule: { lr: 0.1 }, clip: 0, frozen };
    // One SGD step: the selected layers' update is −lr·(their full gradient).
    const ts = await compileTrainStep(model, { trainable: trainable(), ...sgd, session });
    const ref = (await ts.step(batch, ts.initState())).state;
    await ts.dispose();
    const gated = await compileTrainStep(model, { trainable: trainable(), ...sgd, layers: { layerOf }, session });
    const init = gated.initState();
    const before = cloneState(init);
    const r = await gated.step(batch, init, { selected: [1, 3] });
    await gated.dispose();
    for (const n of Object.keys(before.params)) {
      const l = layerOf(n);
      const got = r.state.params[n]!;
      const want = l === 1 || l === 3 ? ref.params[n]! : before.params[n]!;
      if (l === 1 || l === 3) for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 6);
      else expect(Array.from(got)).toEqual(Array.from(want));
    }
  });

  it('leaves unselected layers\' AdamW moments untouched and clips over the selected layers only', async () => {
    const ts = await compileTrainStep(model, { trainable: trainable(), ...adamw, layers: { layerOf } , session });
    let state = ts.initState();
    state = (await ts.step(batch, state, { selected: [0, 1, 2, 3] })).state;
    const before = cloneState(state);
    const r = await ts.step(batch, state, { selected: [2] });
    for (const n of Object.keys(before.params)) {
      if (layerOf(n) === 2) {
        expect(Array.from(r.state.params[n]!)).not.toEqual(Array.from(before.params[n]!));
        expect(Array.from(r.state.slots.m![n]!)).not.toEqual(Array.from(before.slots.m![n]!));
      } else {
        expect(Array.from(r.state.params[n]!)).toEqual(Array.from(before.params[n]!));
        expect(Array.from(r.state.slots.m![n]!)).toEqual(Array.from(before.slots.m![n]!));
        expect(Array.from(r.state.slots.v![n]!)).toEqual(Array.from(before.slots.v![n]!));
      }
    }
    // The reported norm is over layer 2's gradients alone: smaller than with all layers selected.
    const all = await ts.step(batch, cloneState(before), { selected: [0, 1, 2, 3] });
    expect(r.gradNorm).toBeGreaterThan(0);
    expect(r.gradNorm).toBeLessThan(all.gradNorm);
    await ts.dispose();
  });

  it('with gradient accumulation, three one-row micro-batches give the update of the whole batch', async () => {
    const half = (k: number) => ({ x: { data: batch.x.data.slice(k * D, (k + 1) * D), dims: [1, D] }, y: { data: batch.y.data.slice(k * D, (k + 1) * D), dims: [1, D] } });
    const sgd = { optimizer: { type: 'sgd' as const }, schedule: { lr: 0.1 }, clip: 0, frozen, layers: { layerOf } };
    const whole = await compileTrainStep(model, { trainable: trainable(), ...sgd, session });
    const acc = await compileTrainStep(model, { trainable: trainable(), ...sgd, accumulation: 3, session });
    const a = await whole.step(batch, whole.initState(), { selected: [0, 2] });
    const b = await acc.step([half(0), half(1), half(2)], acc.initState(), { selected: [0, 2] });
    for (const n of Object.keys(a.state.params)) {
      const x = a.state.params[n]!;
      const y = b.state.params[n]!;
      for (let i = 0; i < x.length; i++) expect(y[i]).toBeCloseTo(x[i]!, 6);
    }
    expect(Array.from(b.state.params.A1!)).toEqual(Array.from(trainable().A1!.data as Float32Array));
    await whole.dispose();
    await acc.dispose();
  });

  it('forwardLoss gives the loss at any parameters without updating anything', async () => {
    const ts = await compileTrainStep(model, { trainable: trainable(), ...adamw, layers: { layerOf }, session });
    try {
      expect(ts.canForwardLoss).toBe(true);
      const state = ts.initState();
      const before = cloneState(state);
      const lossOnly = await ts.forwardLoss(batch, state.params);
      // The loss a step reports is the loss before its update.
      const r = await ts.step(batch, state, { selected: [1, 3] });
      expect(lossOnly).toBe(r.loss);
      // At the updated parameters it is the next step's loss; the state given is not touched.
      const after = cloneState(r.state);
      const lossAfter = await ts.forwardLoss(batch, r.state.params);
      expect(r.state).toEqual(after);
      expect(lossAfter).not.toBe(lossOnly);
      expect((await ts.step(batch, r.state, { selected: [0] })).loss).toBe(lossAfter);
      // A scaled adapter changes the loss (what IST's suppression passes rely on).
      const scaled = { ...before.params, B1: before.params.B1!.map((v) => v * 0.5) };
      expect(await ts.forwardLoss(batch, scaled)).not.toBe(lossOnly);
    } finally {
      await ts.dispose();
    }
    const plain = await compileTrainStep(model, { trainable: trainable(), ...adamw, session });
    expect(plain.canForwardLoss).toBe(false);
    await expect(plain.forwardLoss(batch, plain.initState().params)).rejects.toThrow(/sparse layer tuning/);
    await plain.dispose();
  });

  it('refuses a step without a selection and a parameter outside every layer', async () => {
    const ts = await compileTrainStep(model, { trainable: trainable(), ...adamw, layers: { layerOf }, session });
    await expect(ts.step(batch, ts.initState())).rejects.toThrow(/selected layer/);
    await expect(ts.step(batch, ts.initState(), { selected: [4] })).rejects.toThrow(/not a layer/);
    await ts.dispose();
    await expect(compileTrainStep(model, { trainable: { ...trainable(), extra: { data: new Float32Array(2), shape: [2] } }, ...adamw, layers: { layerOf: (n) => (n === 'extra' ? undefined : layerOf(n)) }, session })).rejects.toThrow(/belongs to no transformer block/);
  });
});
