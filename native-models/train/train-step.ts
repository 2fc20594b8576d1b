// compileTrainStep: forward (the model function), backward (autodiff), gradient clipping, the
// learning-rate schedule and the optimizer compiled into ONNX graphs run by ORT as inference.
//
// Where tensors live: frozen weights are initializers (loaded once with the session); trainable
// parameters and optimizer slots are graph inputs and outputs kept host-side between steps. Each
// step writes its outputs into a spare set of buffers and hands those back as the new state; the
// state passed in becomes the next spare set (no allocation per step).
//
// Gradient accumulation (accumulation > 1) compiles two graphs instead of one fused graph:
//   accumulate: forward + backward, grad_acc_next = grad_acc + ∂loss/∂p   (run once per micro-batch)
//   apply:      grad = grad_acc / k, clipping, schedule, optimizer           (run once per update)
// so the accumulated gradient is the mean of the micro-batch gradients and the update equals the
// big-batch update when micro-batch losses are means over equally sized micro-batches. Frozen
// weights live only in the accumulate graph, so they are loaded once either way.
import type * as ort from 'onnxruntime-node';
import { gradients } from '../autodiff';
import { allocate, Graph, type DType, type TensorData, type Value } from '../onnx';
import type { ProviderChoice } from '../runtime/providers';
import type { SessionSettings } from '../runtime/session';
import { scalarValue, toOrt } from '../runtime/tensors';
import { batchFeeds, batchInputsOf, checkLoss, declareParams, paramDType, sessionFor, type Batch, type InputSpec, type ParamInit } from './graph-parts';
import { applyOptimizer, checkOptimizer, globalGradNorm, optimizerScalars, optimizerSlots, ScalarCache, type OptimizerSpec } from './optimizers';
import { checkSchedule, learningRate, type ScheduleSpec } from './schedule';
import { gateAt, layerwiseGradients, type BlockBoundary } from './layerwise';

export type { Batch, Feed, ParamInit } from './graph-parts';
export type { BlockBoundary } from './layerwise';

/**
 * Builds the forward pass: declares its batch inputs with g.input() and returns the scalar loss,
 * and (for sparse layer tuning) the hidden state entering and leaving each transformer block.
 */
export type ModelFn = (g: Graph, params: Record<string, Value>) => { loss: Value; blocks?: BlockBoundary[] };

/** Sparse layer tuning (IST / uniform sampling): which layer each trainable parameter belongs to. */
export interface LayerSelectionOptions {
  /** Layer index of a trainable parameter (every trainable parameter must have one). */
  layerOf: (name: string) => number | undefined;
}

export interface TrainStepOptions {
  trainable: Record<string, ParamInit>;
  frozen?: Record<string, ParamInit>;
  optimizer: OptimizerSpec;
  schedule: ScheduleSpec;
  /** Maximum global gradient L2 norm (default 1.0); 0 turns clipping off. */
  clip?: number;
  /** Micro-batches per update (default 1 = one fused graph). */
  accumulation?: number;
  /** Parameters for which weight decay is skipped (e.g. norms and biases). Default: none skipped. */
  noDecay?: (name: string) => boolean;
  /**
   * Compile for sparse layer tuning (see layerwise.ts): each step then takes the selected layers;
   * unselected layers cost no parameter-gradient work and keep parameters and optimizer state,
   * and backward stops at the lowest selected layer. The model function must return `blocks`.
   */
  layers?: LayerSelectionOptions;
  session?: SessionSettings;
  /** Frozen initializers of at least this many bytes are passed as external data (default 1 MiB). */
  externalThreshold?: number;
}

/** Trainable parameters and optimizer slots are float32 or float64. */
export type ParamArray = Float32Array | Float64Array;

export interface TrainState {
  /** Updates done so far; the next update uses t = step + 1 for bias correction and the schedule. */
  step: number;
  params: Record<string, ParamArray>;
  /** Optimizer state by slot ("m", "v" for AdamW; "momentum" for SGD), then by parameter. */
  slots: Record<string, Record<string, ParamArray>>;
}

export interface StepResult {
  /** Loss before the update (mean over micro-batches when accumulating). */
  loss: number;
  /** Learning rate used by this update. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  state: TrainState;
}

export interface TrainStep {
  readonly mode: 'fused' | 'accumulate';
  readonly provider: ProviderChoice;
  /** The inputs a batch must provide. */
  readonly batchInputs: InputSpec[];
  readonly trainableNames: string[];
  /** Trainable parameters the loss does not depend on: never updated (as torch skips grad-less parameters). */
  readonly unused: string[];
  /** Number of transformer blocks when compiled for sparse layer tuning, else 0. */
  readonly layerCount: number;
  /** Fresh state: copies of the initial trainable values, zero optimizer slots, step 0. */
  initState(): TrainState;
  /**
   * One update. `batch` is one batch, or the micro-batches of one update when compiled with
   * accumulation > 1. Takes ownership of `state`'s arrays (they become the next output buffers):
   * use the returned state, and cloneState() to keep a copy.
   */
  step(batch: Batch | Batch[], state: TrainState, options?: StepOptions): Promise<StepResult>;
  /**
   * Whether forwardLoss is available: compiled for sparse layer tuning, without accumulation.
   */
  readonly canForwardLoss: boolean;
  /**
   * The loss (the model function's, e.g. the masked mean) of `batch` at `params`, updating
   * nothing: the train-step session run with no layer selected, so every backward and update
   * branch is skipped. IST's suppression passes use it instead of a second session that would
   * hold its own copy of the frozen weights. Only when canForwardLoss.
   */
  forwardLoss(batch: Batch, params: Record<string, ParamArray>): Promise<number>;
  dispose(): Promise<void>;
}

export interface StepOptions {
  /** Sparse layer tuning: the layers whose parameters this update trains (required then). */
  selected?: readonly number[];
}

const STEP = 'optimizer/step';
/** bool [L]: the layers trained this step. */
export const IST_SELECTED = 'ist/selected';
/** bool [L]: blocks backward passes through (lowest selected layer and above). */
export const IST_ACTIVE = 'ist/active';
const GRAD_SCALE = 'optimizer/grad_scale';
const LOSS = 'train/loss';
const LR = 'train/lr';
const NORM = 'train/grad_norm';
const slotIn = (slot: string, p: string) => `optimizer/${slot}/${p}`;
const next = (name: string) => `${name}/next`;
const accIn = (p: string) => `grad_acc/${p}`;

export function cloneState(s: TrainState): TrainState {
  const copy = (r: Record<string, ParamArray>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.slice()]));
  return { step: s.step, params: copy(s.params), slots: Object.fromEntries(Object.entries(s.slots).map(([k, v]) => [k, copy(v)])) };
}

interface ParamInfo {
  name: string;
  dtype: DType;
  shape: number[];
  size: number;
}

/**
 * Emits clipping and the optimizer for `used` params given their (averaged) gradients. With
 * `gate`, each layer's updates sit in If(selected[layer]) whose else-branch passes parameters and
 * slots through unchanged (no update, no weight decay, moments untouched).
 */
function emitUpdate(
  g: Graph,
  opts: TrainStepOptions,
  params: Record<string, Value>,
  grads: Map<string, Value>,
  slotNames: string[],
  stepValue: Value,
  gate?: { selected: Value; layerOf: Map<string, number> },
): void {
  const t = g.cast(stepValue, 'float64');
  const lr = learningRate(g, t, opts.schedule);
  const { norm, factor } = globalGradNorm(g, [...grads.values()], opts.clip ?? 1.0);
  const scalars = optimizerScalars(g, opts.optimizer, { t, lr });
  const cast = new ScalarCache(g);
  const slotsOf = (name: string) => {
    const p = params[name]!;
    return Object.fromEntries(slotNames.map((s) => [s, g.input(slotIn(s, name), p.dtype, p.shape)]));
  };
  const update = (b: Graph, name: string, slots: Record<string, Value>): Value[] => {
    const p = params[name]!;
    const grad0 = grads.get(name)!;
    const grad = factor ? b.mul(grad0, cast.as(factor, p.dtype)) : grad0;
    const out = applyOptimizer(b, opts.optimizer, scalars, cast, { param: p, grad, slots, decay: !(opts.noDecay?.(name) ?? false) });
    return [out.param, ...slotNames.map((s) => out.slots[s]!)];
  };
  const emitOutputs = (name: string, values: Value[]) => {
    g.output(values[0]!, next(name));
    slotNames.forEach((s, i) => g.output(values[1 + i]!, next(slotIn(s, name))));
  };
  if (!gate) {
    for (const name of grads.keys()) emitOutputs(name, update(g, name, slotsOf(name)));
  } else {
    const byLayer = new Map<number, string[]>();
    for (const name of grads.keys()) {
      const l = gate.layerOf.get(name)!;
      byLayer.set(l, [...(byLayer.get(l) ?? []), name]);
    }
    for (const [layer, names] of [...byLayer].sort((a, b) => a[0] - b[0])) {
      const slots = new Map(names.map((n) => [n, slotsOf(n)]));
      const outs = g.if(
        gateAt(g, gate.selected, layer),
        (b) => names.flatMap((n) => update(b, n, slots.get(n)!)),
        () => names.flatMap((n) => [params[n]!, ...slotNames.map((s) => slots.get(n)![s]!)]),
      );
      const per = 1 + slotNames.length;
      names.forEach((n, i) => emitOutputs(n, outs.slice(i * per, (i + 1) * per)));
    }
  }
  g.output(lr, LR);
  g.output(norm, NORM);
}

export async function compileTrainStep(modelFn: ModelFn, opts: TrainStepOptions): Promise<TrainStep> {
  checkOptimizer(opts.optimizer);
  checkSchedule(opts.schedule);
  const k = opts.accumulation ?? 1;
  if (!Number.isInteger(k) || k < 1) throw new Error(`Gradient accumulation must be a whole number of micro-batches ≥ 1 (got ${k}).`);
  const clip = opts.clip ?? 1.0;
  if (!(clip >= 0)) throw new Error(`The gradient clipping norm must be ≥ 0 (0 = off), got ${clip}.`);
  const trainable = opts.trainable;
  const trainableNames = Object.keys(trainable);
  if (trainableNames.length === 0) throw new Error('There is nothing to train: no trainable parameters were given.');
  const slotNames = optimizerSlots(opts.optimizer);
  const info = new Map<string, ParamInfo>(trainableNames.map((n) => {
    const p = trainable[n]!;
    return [n, { name: n, dtype: paramDType(n, p), shape: p.shape, size: p.data.length }];
  }));

  // Forward + backward (in the fused graph, or the accumulate graph).
  const g = new Graph(k === 1 ? 'train_step' : 'accumulate');
  const { params, trainableValues } = declareParams(g, trainable, opts.frozen ?? {});
  const { loss, blocks } = modelFn(g, params);
  checkLoss(loss);
  const batchInputs = batchInputsOf(g, new Set(trainableNames));
  const grads = new Map<string, Value>();
  let layerGate: { selected: Value; active: Value; layerOf: Map<string, number> } | undefined;
  let layerCount = 0;
  if (opts.layers) {
    if (!blocks || blocks.length === 0) throw new Error('Sparse layer tuning needs the model function to return its transformer blocks (blocks).');
    layerCount = blocks.length;
    const layerOf = new Map<string, number>();
    const groups: Value[][] = blocks.map(() => []);
    for (const n of trainableNames) {
      const l = opts.layers.layerOf(n);
      if (l === undefined || !Number.isInteger(l) || l < 0 || l >= layerCount) throw new Error(`Trainable parameter "${n}" belongs to no transformer block (0..${layerCount - 1}); sparse layer tuning trains whole layers only.`);
      layerOf.set(n, l);
      groups[l]!.push(trainableValues[n]!);
    }
    // Batch inputs are read above, so the selection inputs are not mistaken for batch inputs.
    const selected = g.input(IST_SELECTED, 'bool', [layerCount]);
    const active = g.input(IST_ACTIVE, 'bool', [layerCount]);
    layerGate = { selected, active, layerOf };
    const byValue = layerwiseGradients(g, loss, blocks, groups, { selected, active });
    for (const n of trainableNames) grads.set(n, byValue.get(trainableValues[n]!)!);
  } else {
    const wrt = trainableNames.map((n) => trainableValues[n]!);
    const gradList = gradients(g, loss, wrt);
    trainableNames.forEach((n, i) => {
      const gr = gradList[i];
      if (gr) grads.set(n, gr);
    });
  }
  const used = [...grads.keys()];
  const unused = trainableNames.filter((n) => !grads.has(n));
  if (used.length === 0) throw new Error('The loss does not depend on any trainable parameter; check the model function.');
  g.output(loss.shape.length === 0 ? loss : g.reshape(loss, []), LOSS);

  let apply: Graph | undefined;
  if (k === 1) {
    emitUpdate(g, opts, params, grads, slotNames, g.input(STEP, 'int64', []), layerGate);
  } else {
    for (const n of used) {
      const acc = g.input(accIn(n), grads.get(n)!.dtype, info.get(n)!.shape);
      g.output(g.add(acc, grads.get(n)!), next(accIn(n)));
    }
    apply = new Graph('apply');
    const aParams: Record<string, Value> = {};
    const aGrads = new Map<string, Value>();
    const scale = apply.input(GRAD_SCALE, 'float64', []);
    const cast = new ScalarCache(apply);
    for (const n of used) {
      const pi = info.get(n)!;
      aParams[n] = apply.input(n, pi.dtype, pi.shape);
      aGrads.set(n, apply.mul(apply.input(accIn(n), pi.dtype, pi.shape), cast.as(scale, pi.dtype)));
    }
    const applyGate = layerGate ? { selected: apply.input(IST_SELECTED, 'bool', [layerCount]), layerOf: layerGate.layerOf } : undefined;
    emitUpdate(apply, opts, aParams, aGrads, slotNames, apply.input(STEP, 'int64', []), applyGate);
  }

  const main = await sessionFor(g, opts.session, opts.externalThreshold);
  const applySession = apply ? await sessionFor(apply, opts.session) : undefined;

  const alloc = (n: string) => allocate(info.get(n)!.dtype, info.get(n)!.size) as ParamArray;
  const newBuffers = (): TrainState => ({
    step: 0,
    params: Object.fromEntries(used.map((n) => [n, alloc(n)])),
    slots: Object.fromEntries(slotNames.map((s) => [s, Object.fromEntries(used.map((n) => [n, alloc(n)]))])),
  });
  let spare = newBuffers();
  const accBuffers = k > 1 ? [newBuffers().params, newBuffers().params] : [];

  const tensor = (n: string, data: TensorData) => toOrt(info.get(n)!.dtype, data, info.get(n)!.shape);

  /** The selection feeds of one update ({} when not compiled for sparse layer tuning). */
  const selectionFeeds = (o: StepOptions | undefined): { selected?: ort.Tensor; active?: ort.Tensor } => {
    if (!layerGate) {
      if (o?.selected) throw new Error('This train step was compiled without layer selection; do not pass selected layers.');
      return {};
    }
    const sel = o?.selected;
    if (!sel || sel.length === 0) throw new Error(`This train step trains selected layers only; pass at least one selected layer (0..${layerCount - 1}).`);
    const selected = new Uint8Array(layerCount);
    for (const l of sel) {
      if (!Number.isInteger(l) || l < 0 || l >= layerCount) throw new Error(`Selected layer ${l} is not a layer of this model (0..${layerCount - 1}).`);
      selected[l] = 1;
    }
    const lowest = Math.min(...sel);
    const active = new Uint8Array(layerCount);
    for (let i = lowest; i < layerCount; i++) active[i] = 1;
    return { selected: toOrt('bool', selected, [layerCount]), active: toOrt('bool', active, [layerCount]) };
  };

  const checkState = (state: TrainState) => {
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`The train state's step must be a whole number ≥ 0 (got ${state.step}).`);
    for (const n of trainableNames) {
      const d = state.params[n];
      const pi = info.get(n)!;
      if (!d) throw new Error(`The train state has no value for parameter "${n}".`);
      if (d.length !== pi.size || allocate(pi.dtype, 0).constructor !== d.constructor) throw new Error(`The train state's "${n}" is not a ${pi.dtype} array of ${pi.size} values.`);
    }
    for (const s of slotNames) for (const n of used) {
      const d = state.slots[s]?.[n];
      if (!d || d.length !== info.get(n)!.size) throw new Error(`The train state has no optimizer slot "${s}" for parameter "${n}" of the right size.`);
    }
    // Passing the same state twice would make inputs and outputs share memory.
    if (used.some((n) => state.params[n] === spare.params[n])) spare = newBuffers();
  };

  // Feeds and fetches for the optimizer part, writing into `spare`.
  const optimizerIO = (state: TrainState) => {
    const feeds: Record<string, ort.Tensor> = { [STEP]: toOrt('int64', BigInt64Array.of(BigInt(state.step + 1)), []) };
    const fetches: Record<string, ort.Tensor | null> = { [LR]: null, [NORM]: null };
    for (const n of used) {
      feeds[n] = tensor(n, state.params[n]!);
      fetches[next(n)] = tensor(n, spare.params[n]!);
      for (const s of slotNames) {
        feeds[slotIn(s, n)] = tensor(n, state.slots[s]![n]!);
        fetches[next(slotIn(s, n))] = tensor(n, spare.slots[s]![n]!);
      }
    }
    return { feeds, fetches };
  };

  const finish = (state: TrainState, out: ort.InferenceSession.OnnxValueMapType, loss: number): StepResult => {
    const produced = spare;
    const newState: TrainState = {
      step: state.step + 1,
      params: { ...state.params, ...produced.params },
      slots: Object.fromEntries(slotNames.map((s) => [s, { ...state.slots[s], ...produced.slots[s] }])),
    };
    spare = {
      step: 0,
      params: Object.fromEntries(used.map((n) => [n, state.params[n]!])),
      slots: Object.fromEntries(slotNames.map((s) => [s, Object.fromEntries(used.map((n) => [n, state.slots[s]![n]!]))])),
    };
    return { loss, lr: scalarValue(out[LR] as ort.Tensor), gradNorm: scalarValue(out[NORM] as ort.Tensor), state: newState };
  };

  // forwardLoss's optimizer feeds and fetches: its own zero slots and scratch outputs (ignored).
  let lossOnly: { slots: Record<string, Record<string, ParamArray>>; out: TrainState } | undefined;

  return {
    mode: k === 1 ? 'fused' : 'accumulate',
    canForwardLoss: k === 1 && layerGate !== undefined,
    async forwardLoss(batch, values) {
      if (k !== 1 || !layerGate) throw new Error('A loss-only pass needs a train step compiled for sparse layer tuning without gradient accumulation.');
      lossOnly ??= { slots: newBuffers().slots, out: newBuffers() };
      const feeds: Record<string, ort.Tensor> = { ...batchFeeds(batchInputs, batch), [STEP]: toOrt('int64', BigInt64Array.of(1n), []) };
      const none = new Uint8Array(layerCount);
      feeds[IST_SELECTED] = toOrt('bool', none, [layerCount]);
      feeds[IST_ACTIVE] = toOrt('bool', none, [layerCount]);
      const fetches: Record<string, ort.Tensor | null> = { [LOSS]: null, [LR]: null, [NORM]: null };
      for (const n of trainableNames) {
        const d = values[n];
        if (!d || d.length !== info.get(n)!.size) throw new Error(`The loss-only pass needs a value of ${info.get(n)!.size} numbers for parameter "${n}".`);
        feeds[n] = tensor(n, d);
      }
      for (const n of used) {
        fetches[next(n)] = tensor(n, lossOnly.out.params[n]!);
        for (const s of slotNames) {
          feeds[slotIn(s, n)] = tensor(n, lossOnly.slots[s]![n]!);
          fetches[next(slotIn(s, n))] = tensor(n, lossOnly.out.slots[s]![n]!);
        }
      }
      const out = await main.session.run(feeds, fetches);
      return scalarValue(out[LOSS] as ort.Tensor);
    },
    provider: main.provider,
    batchInputs,
    trainableNames,
    unused,
    layerCount,
    initState() {
      return {
        step: 0,
        params: Object.fromEntries(trainableNames.map((n) => [n, trainable[n]!.data.slice() as ParamArray])),
        slots: Object.fromEntries(slotNames.map((s) => [s, Object.fromEntries(used.map((n) => [n, alloc(n)]))])),
      };
    },
    async step(batch, state, stepOptions) {
      checkState(state);
      const sel = selectionFeeds(stepOptions);
      const batches = Array.isArray(batch) ? batch : [batch];
      if (batches.length === 0) throw new Error('A train step needs at least one batch.');
      if (k === 1) {
        if (batches.length !== 1) throw new Error(`This train step was compiled without gradient accumulation; pass one batch, not ${batches.length}.`);
        const { feeds, fetches } = optimizerIO(state);
        Object.assign(feeds, batchFeeds(batchInputs, batches[0]!));
        if (sel.selected) {
          feeds[IST_SELECTED] = sel.selected;
          feeds[IST_ACTIVE] = sel.active!;
        }
        for (const n of unused) feeds[n] = tensor(n, state.params[n]!);
        fetches[LOSS] = null;
        const out = await main.session.run(feeds, fetches);
        return finish(state, out, scalarValue(out[LOSS] as ort.Tensor));
      }
      // Accumulate: ping-pong between two gradient buffers, starting from zero.
      let [cur, nxt] = accBuffers as [Record<string, ParamArray>, Record<string, ParamArray>];
      for (const n of used) cur[n]!.fill(0);
      let lossSum = 0;
      for (const b of batches) {
        const feeds: Record<string, ort.Tensor> = batchFeeds(batchInputs, b);
        if (sel.selected) {
          feeds[IST_SELECTED] = sel.selected;
          feeds[IST_ACTIVE] = sel.active!;
        }
        const fetches: Record<string, ort.Tensor | null> = { [LOSS]: null };
        for (const n of trainableNames) feeds[n] = tensor(n, state.params[n]!);
        for (const n of used) {
          feeds[accIn(n)] = tensor(n, cur[n]!);
          fetches[next(accIn(n))] = tensor(n, nxt[n]!);
        }
        const out = await main.session.run(feeds, fetches);
        lossSum += scalarValue(out[LOSS] as ort.Tensor);
        [cur, nxt] = [nxt, cur];
      }
      const { feeds, fetches } = optimizerIO(state);
      feeds[GRAD_SCALE] = toOrt('float64', Float64Array.of(1 / batches.length), []);
      if (sel.selected) feeds[IST_SELECTED] = sel.selected;
      for (const n of used) feeds[accIn(n)] = tensor(n, cur[n]!);
      const out = await applySession!.session.run(feeds, fetches);
      return finish(state, out, lossSum / batches.length);
    },
    async dispose() {
      await main.session.release();
      await applySession?.session.release();
    },
  };
}
