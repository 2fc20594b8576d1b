// PyTorch oracle: the engine's loss, gradients and ten AdamW updates (clipping, warmup + cosine,
// weight decay) against torch 1.13 on a 2-layer MLP and a causal self-attention block, float32.
import type * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { gradients } from '../../../native-models/autodiff';
import { Graph, serialize, type TensorData } from '../../../native-models/onnx';
import { openSession } from '../../../native-models/runtime/session';
import { toOrt } from '../../../native-models/runtime/tensors';
import { compileTrainStep, type Batch, type ModelFn, type ParamInit } from '../../../native-models/train';
import { attentionBatch, attentionModel, attentionParams, mlpBatch, mlpModel, mlpParams, type AttentionConfig, type MlpConfig } from '../../oracle/models';
import { decodeRecord, encodeTensor, runPython, type Numeric, type WireTensor } from '../../oracle/run-python';

const ORACLE = new URL('../../oracle/train_oracle.py', import.meta.url);
const STEPS = 10;
const OPT = { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1, warmup: 3, total: STEPS, decay: 'cosine' as const, min_lr: 3e-4 };
const CLIP = 1.0;

interface OracleOut { loss: number; grads: Record<string, WireTensor>; losses: number[]; params: Record<string, WireTensor> }

/** Scale-aware max error: max |a − b| / max(1, max |b|) over one tensor. */
function maxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let scale = 1;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m / scale;
}

/** Loss and gradients from a graph built by the engine (forward + autodiff), no optimizer. */
async function engineGradients(model: ModelFn, params: Record<string, ParamInit>, batch: Batch): Promise<{ loss: number; grads: Record<string, Float32Array> }> {
  const g = new Graph('grads');
  const values = Object.fromEntries(Object.entries(params).map(([n, p]) => [n, g.input(n, 'float32', p.shape)]));
  const { loss } = model(g, values);
  const names = Object.keys(params);
  const grads = gradients(g, loss, names.map((n) => values[n]!));
  g.output(loss, 'loss');
  names.forEach((n, i) => g.output(grads[i]!, `grad/${n}`));
  const { session } = await openSession({ bytes: serialize(g).model }, { intraOpThreads: 1 });
  const feeds: Record<string, ort.Tensor> = {};
  for (const [n, p] of Object.entries(params)) feeds[n] = toOrt('float32', p.data, p.shape);
  for (const [n, f] of Object.entries(batch)) feeds[n] = f as ort.Tensor;
  const out = await session.run(feeds);
  await session.release();
  return { loss: (out.loss!.data as Float32Array)[0]!, grads: Object.fromEntries(names.map((n) => [n, out[`grad/${n}`]!.data as Float32Array])) };
}

async function compare(label: string, model: ModelFn, params: Record<string, ParamInit>, batches: Batch[], wire: { model: string; config?: unknown; batches: Record<string, WireTensor>[] }) {
  const oracle = await runPython<OracleOut>(ORACLE, {
    model: wire.model,
    config: wire.config ?? {},
    params: Object.fromEntries(Object.entries(params).map(([n, p]) => [n, encodeTensor(p.data as Numeric, p.shape)])),
    batches: wire.batches,
    optimizer: OPT,
    clip: CLIP,
    steps: STEPS,
    threads: 1,
  });

  // Loss and gradients at the initial weights.
  const ours = await engineGradients(model, params, batches[0]!);
  const lossErr = Math.abs(ours.loss - oracle.loss) / Math.max(1, Math.abs(oracle.loss));
  const torchGrads = decodeRecord(oracle.grads);
  let gradErr = 0;
  for (const n of Object.keys(params)) gradErr = Math.max(gradErr, maxErr(ours.grads[n]!, torchGrads[n] as Float32Array));

  // Ten AdamW updates through the compiled train step.
  const ts = await compileTrainStep(model, {
    trainable: params,
    optimizer: { type: 'adamw', beta1: OPT.beta1, beta2: OPT.beta2, eps: OPT.eps, weightDecay: OPT.weight_decay },
    schedule: { lr: OPT.lr, warmupSteps: OPT.warmup, totalSteps: OPT.total, decay: OPT.decay, minLr: OPT.min_lr },
    clip: CLIP,
    session: { intraOpThreads: 1 },
  });
  let state = ts.initState();
  const losses: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const r = await ts.step(batches[i % batches.length]!, state);
    losses.push(r.loss);
    state = r.state;
  }
  await ts.dispose();
  const torchParams = decodeRecord(oracle.params);
  let paramErr = 0;
  let moved = 0;
  for (const n of Object.keys(params)) {
    paramErr = Math.max(paramErr, maxErr(state.params[n]! as Float32Array, torchParams[n] as Float32Array));
    moved = Math.max(moved, maxErr(state.params[n]! as Float32Array, params[n]!.data as Float32Array));
  }
  let stepLossErr = 0;
  losses.forEach((l, i) => (stepLossErr = Math.max(stepLossErr, Math.abs(l - oracle.losses[i]!) / Math.max(1, Math.abs(oracle.losses[i]!)))));

  console.log(`[oracle] ${label}: loss ${lossErr.toExponential(2)}, gradients ${gradErr.toExponential(2)}, ${STEPS}-step losses ${stepLossErr.toExponential(2)}, parameters after ${STEPS} AdamW steps ${paramErr.toExponential(2)} (max relative-to-scale errors)`);
  expect(lossErr).toBeLessThan(1e-5);
  expect(gradErr).toBeLessThan(1e-5);
  expect(stepLossErr).toBeLessThan(1e-5);
  expect(paramErr).toBeLessThan(1e-5);
  // The comparison means something only if training moved the parameters and lowered the loss.
  expect(moved).toBeGreaterThan(1e-3);
  expect(losses[STEPS - 1]!).toBeLessThan(losses[0]!);
}

const wireOf = (b: Record<string, { data: TensorData; shape: number[] }>) =>
  Object.fromEntries(Object.entries(b).map(([k, v]) => [k, encodeTensor(v.data as Numeric, v.shape)]));

describe('PyTorch oracle (float32)', () => {
  it('2-layer MLP: loss, gradients and 10 AdamW steps match torch', async () => {
    const c: MlpConfig = { inputs: 12, hidden: 24, outputs: 5, batch: 8 };
    const params = mlpParams(c, 1);
    const raw = [0, 1, 2].map((i) => mlpBatch(c, 100 + i));
    const batches: Batch[] = raw.map((b) => ({ x: toOrt('float32', b.x.data, b.x.shape), y: toOrt('float32', b.y.data, b.y.shape) }));
    await compare('MLP', mlpModel(c), params, batches, { model: 'mlp', batches: raw.map((b) => wireOf(b)) });
  });

  for (const norm of ['rms', 'layer'] as const) {
    it(`causal self-attention block with ${norm === 'rms' ? 'RMSNorm' : 'LayerNorm'} and cross-entropy matches torch`, async () => {
      const c: AttentionConfig = { batch: 2, seq: 8, d: 32, heads: 4, vocab: 24, norm, eps: 1e-5 };
      const params = attentionParams(c, 7);
      const raw = [0, 1, 2].map((i) => attentionBatch(c, 200 + i));
      const shape = [c.batch, c.seq];
      const batches: Batch[] = raw.map((b) => ({ tokens: toOrt('int64', b.tokens, shape), labels: toOrt('int64', b.labels, shape), mask: toOrt('float32', b.mask, shape) }));
      const wire = raw.map((b) => ({ tokens: encodeTensor(b.tokens, shape), labels: encodeTensor(b.labels, shape) }));
      await compare(`attention (${norm})`, attentionModel(c), params, batches, { model: 'attention', config: { d: c.d, heads: c.heads, norm, eps: c.eps }, batches: wire });
    });
  }
});
