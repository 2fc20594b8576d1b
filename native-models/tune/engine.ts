// The tuning loop (ARCHITECTURE.md, "Data flow of a tuning run"), run inside a job worker:
// load model and data → build the adapter (LoRA or full layers) → compile the train step (with
// layer gating for the ist / uniform samplers) and, for IST or held-out data, a no-gradient eval
// graph with per-layer adapter scales → loop (select layers → batch → step → importance update
// every `interval` steps) → progress → checkpoints → export.
//
// Determinism: everything random comes from seeded mulberry32 streams whose states are saved
// in checkpoints (LoRA init, shuffling, IST choices, the importance loader, dropout masks), so a
// resumed run on the CPU with the same thread count reproduces an uninterrupted one bit for bit.
import { basename } from 'node:path';
import { Batcher, type Batch as DataBatch } from '../data/batches';
import { Rng, seedState } from '../data/prng';
import { loadExamples } from '../data/summary';
import { padIdOf, type Example } from '../data/tokenize';
import { toFloat32 } from '../formats/dtypes';
import { readPeftAdapter, type LoraAdapterConfigInput, writePeftAdapter } from '../formats/peft';
import { loadModel, type LoadedModel } from '../models/load';
import { crossEntropy } from '../nn/loss';
import type { Graph, Value } from '../onnx';
import { planFullLayers, readFullLayersAdapter, writeFullLayersAdapter, type FullLayersPlan } from '../peft/full';
import { dropoutInput, dropoutMasks, initLora, LORA_DEFAULT_TARGETS, layerOfName, loraLinearHook, planLora, type LoraPlan } from '../peft/lora';
import type { SessionSettings } from '../runtime/session';
import { createLayerSampler, type LayerSampler } from '../train/ist';
import { compileEvalStep, type EvalStep } from '../train/eval-step';
import { cloneState, compileTrainStep, type Batch, type BlockBoundary, type ParamInit, type TrainState } from '../train/train-step';
import { readCheckpoint, writeCheckpoint, type StepRecord } from './checkpoint';
import { checkTuneConfig, type TuneConfig } from './config';
import { layerMappingOf, loadTuningEmulator } from './emulator';
import { join } from 'node:path';
import { contextOf } from '../models/spec';

/** What the worker streams to the main process (and the CLI prints). */
export type TuneProgress =
  | { kind: 'status'; message: string }
  | {
      kind: 'started';
      startStep: number;
      totalSteps: number;
      provider: string;
      providerReason: string;
      tunableLayers: number[];
      parameterCount: number;
      examples: number;
      seqLen: number;
    }
  | {
      kind: 'step';
      step: number;
      totalSteps: number;
      loss: number;
      lr: number;
      gradNorm: number;
      selected: number[];
      /** Scores per tunable layer after this step (high = less important). */
      importance: number[];
      tokensPerSecond: number;
      etaSeconds: number;
      elapsedSeconds: number;
    }
  | { kind: 'importance'; step: number; sets: number[][]; losses: number[]; rewards: number[]; scores: number[] }
  | { kind: 'evaluated'; when: 'before' | 'after'; loss: number; tokens: number }
  | { kind: 'checkpoint'; step: number; dir: string };

export interface TuneResult {
  status: 'finished' | 'cancelled';
  /** The exported adapter folder (finished runs). */
  adapter: string | null;
  checkpoint: string;
  stepsDone: number;
  totalSteps: number;
  finalLoss: number | null;
  tokensPerSecond: number;
  steps: StepRecord[];
  /** Model layers the sampler chooses from, aligned with `importance`. */
  tunableLayers: number[];
  importance: number[];
  evalLossBefore: number | null;
  evalLossAfter: number | null;
  provider: string;
  peft: 'lora' | 'full';
  parameterCount: number;
  /** Emulator runs: each tuned emulator block and the full model's layer it stands for (the emulator's layer map). */
  layerMapping?: Array<{ adapterLayer: number; modelLayer: number }>;
}

export interface TuneHooks {
  progress?(p: TuneProgress): void;
  /** True once the user asked to stop: the loop checkpoints at the next step boundary. */
  cancelled?(): boolean;
}

export interface TuneRunOptions {
  /** Continue from <out>/checkpoint. */
  resume?: boolean;
  /** Stop (as a cancel would) once this many updates are done: tests and scripted pauses. */
  stopAfterSteps?: number;
}

export const checkpointDir = (out: string): string => join(out, 'checkpoint');
export const adapterDir = (out: string): string => join(out, 'adapter');

/** Salts so the data order, the importance loader and dropout use independent streams. */
const IST_LOADER_SALT = 0x15_7a_b1_e5;
const DROPOUT_SALT = 0x0d_0f_0a_17;
const salted = (seed: number, salt: number) => (seedState(seed) ^ salt) >>> 0;

export interface Adapter {
  kind: 'lora' | 'full';
  lora?: LoraPlan;
  full?: FullLayersPlan;
  initial: Map<string, { data: Float32Array; shape: number[] }>;
  layerOf(name: string): number;
}

/** The adapter a run starts from: planned from the settings, initialised from the seed or from --init-adapter. */
export async function prepareAdapter(model: LoadedModel, c: TuneConfig): Promise<Adapter> {
  const shapes = new Map([...model.weights].map(([n, w]) => [n, w.shape]));
  if (c.peft === 'full') {
    const full = planFullLayers(shapes, model.spec.layers, c.layers!);
    const initial = new Map<string, { data: Float32Array; shape: number[] }>();
    let given: Map<string, Float32Array> | undefined;
    if (c.initAdapter) {
      const read = await readFullLayersAdapter(c.initAdapter, new Map(full.names.map((n) => [n, shapes.get(n)!])));
      given = read.tensors;
    }
    for (const n of full.names) initial.set(n, { data: (given?.get(n) ?? model.weights.get(n)!.data).slice(), shape: [...shapes.get(n)!] });
    return { kind: 'full', full, initial, layerOf: (n) => layerOfName(n)! };
  }
  let settings = { rank: c.rank, alpha: c.alpha, dropout: c.dropout, targets: c.targets ?? [...LORA_DEFAULT_TARGETS[model.spec.family]], layers: c.layers };
  let fromAdapter: Map<string, { data: Float32Array; shape: number[] }> | undefined;
  if (c.initAdapter) {
    const a = await readPeftAdapter(c.initAdapter);
    const cfg = a.config;
    const mismatch: string[] = [];
    if (cfg.r !== c.rank) mismatch.push(`rank ${cfg.r} (run: ${c.rank})`);
    if (cfg.lora_alpha !== c.alpha) mismatch.push(`alpha ${cfg.lora_alpha} (run: ${c.alpha})`);
    if (c.targets && [...cfg.target_modules].sort().join(',') !== [...c.targets].sort().join(',')) mismatch.push(`targets ${cfg.target_modules.join(',')} (run: ${c.targets.join(',')})`);
    if (c.layers && JSON.stringify(cfg.layers_to_transform) !== JSON.stringify([...c.layers].sort((x, y) => x - y))) mismatch.push(`layers ${cfg.layers_to_transform?.join(',') ?? 'all'} (run: ${c.layers.join(',')})`);
    if (mismatch.length) throw new RangeError(`The initial adapter ${basename(c.initAdapter)} has ${mismatch.join(', ')}; leave those settings out to take them from the adapter, or make them match.`);
    settings = { ...settings, targets: cfg.target_modules, layers: cfg.layers_to_transform };
    fromAdapter = new Map([...a.tensors].map(([k, t]) => [k, { data: toFloat32(t), shape: [...t.shape] }]));
  }
  const lora = planLora(model.spec, shapes, settings);
  let initial: Map<string, { data: Float32Array; shape: number[] }>;
  if (fromAdapter) {
    initial = new Map();
    for (const m of lora.modules) {
      for (const [key, shape] of [[m.keyA, [settings.rank, m.inFeatures]], [m.keyB, [m.outFeatures, settings.rank]]] as const) {
        const t = fromAdapter.get(key);
        if (!t) throw new RangeError(`The initial adapter ${basename(c.initAdapter!)} has no ${key}, which its targets and layers imply for this model.`);
        if (t.shape.join(',') !== shape.join(',')) throw new RangeError(`The initial adapter's ${key} has shape [${t.shape.join(', ')}], this model needs [${shape.join(', ')}].`);
        initial.set(key, { data: t.data.slice(), shape: [...shape] });
      }
    }
    const extra = [...fromAdapter.keys()].filter((k) => !initial.has(k));
    if (extra.length) throw new RangeError(`The initial adapter ${basename(c.initAdapter!)} adapts modules this model does not have (${extra[0]}).`);
  } else initial = initLora(lora, c.seed);
  return { kind: 'lora', lora, initial, layerOf: (n) => lora.byModule.get(n.replace(/^base_model\.model\./, '').replace(/\.lora_[AB]\.weight$/, ''))!.layer };
}

export interface ForwardParts {
  logits: Value;
  targets: Value;
  mask: Value;
  blocks: BlockBoundary[];
}

/** The model's forward with the adapter applied; `layerScale` scales each layer's adapter output. */
export function forwardWith(model: LoadedModel, adapter: Adapter, seqLen: number, g: Graph, params: Record<string, Value>, o: { dropout: boolean; layerScale?: Value }): ForwardParts {
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  const targets = g.input('targets', 'int64', ['batch', 'seq']);
  const mask = g.input('mask', 'float32', ['batch', 'seq']);
  const blocks: BlockBoundary[] = [];
  const tunedLayers = new Set([...adapter.initial.keys()].map((n) => adapter.layerOf(n)));
  const out = model.family.forward(g, model.spec, model.weights, { inputIds: ids, contextLength: seqLen }, {
    param: (name) => {
      const v = params[name];
      if (!v) throw new Error(`The tuning graph has no value for weight ${name}.`);
      return v;
    },
    ...(adapter.lora ? { linear: loraLinearHook(adapter.lora, { params, dropout: o.dropout, ...(o.layerScale ? { layerScale: o.layerScale } : {}) }) } : {}),
    block: (i, h, run, bg) => {
      let y = run(h);
      // Full-layer adapters have no separate output: suppression scales the block's residual update (our choice).
      if (adapter.kind === 'full' && o.layerScale && tunedLayers.has(i)) {
        y = bg.add(h, bg.mul(bg.sub(y, h), bg.gather(o.layerScale, bg.constant(BigInt64Array.of(BigInt(i)), [], 'int64'), 0)));
      }
      blocks[i] = { input: h, output: y };
      return y;
    },
  });
  if (!out.logits) throw new Error('The forward pass returned no logits.');
  return { logits: out.logits, targets, mask, blocks };
}

function batchFeeds(b: DataBatch): Batch {
  return {
    input_ids: { data: b.inputIds, dims: b.dims },
    targets: { data: b.targets, dims: b.dims },
    mask: { data: b.mask, dims: b.dims },
  };
}

/**
 * `b` cut into batches of exactly `rows` rows, the last one filled with fully masked padding rows:
 * loss-only passes through the train-step session then run at the shapes it trains at, so its
 * memory planner and arena need nothing beyond what training already uses (an IST batch of 16 rows
 * through a session trained at 4 would grow its activation memory fourfold).
 */
function asTrainBatches(b: DataBatch, rows: number, padId: number): DataBatch[] {
  const [n, t] = b.dims;
  if (n === rows) return [b];
  const out: DataBatch[] = [];
  for (let r0 = 0; r0 < n; r0 += rows) {
    const take = Math.min(rows, n - r0);
    const inputIds = new BigInt64Array(rows * t).fill(BigInt(padId));
    const targets = new BigInt64Array(rows * t).fill(BigInt(padId));
    const mask = new Float32Array(rows * t);
    inputIds.set(b.inputIds.subarray(r0 * t, (r0 + take) * t));
    targets.set(b.targets.subarray(r0 * t, (r0 + take) * t));
    mask.set(b.mask.subarray(r0 * t, (r0 + take) * t));
    out.push({ ...b, inputIds, targets, mask, dims: [rows, t], examples: b.examples.slice(r0, r0 + take), lines: b.lines.slice(r0, r0 + take) });
  }
  return out;
}

/** Real (non-padding) input positions of a batch: the tokens the step processed. */
function realTokens(examples: readonly Example[], b: DataBatch, seqLen: number): number {
  return b.examples.reduce((s, i) => s + Math.max(0, Math.min(examples[i]!.tokens.length, seqLen) - 1), 0);
}

async function loadData(path: string, model: LoadedModel, c: TuneConfig): Promise<Example[]> {
  const { examples } = await loadExamples(path, { tokenizer: model.tokenizer, lossOnPrompt: c.lossOnPrompt });
  const V = model.spec.vocabSize;
  for (const ex of examples) {
    for (const t of ex.tokens) if (t < 0 || t >= V) throw new RangeError(`${basename(path)} line ${ex.line}: token id ${t} is outside the model's vocabulary (0..${V - 1}).`);
  }
  if (!examples.some((e) => e.lossMask.some((m) => m === 1))) throw new RangeError(`${basename(path)} has no example with a token to predict.`);
  return examples;
}

export async function runTuning(c: TuneConfig, hooks: TuneHooks = {}, o: TuneRunOptions = {}): Promise<TuneResult> {
  checkTuneConfig(c);
  const say = (message: string) => hooks.progress?.({ kind: 'status', message });
  say(`Loading ${c.emulator ? `the emulator ${c.emulator.manifestSha256.slice(0, 16)}…` : basename(c.model)}…`);
  // An emulator run: the middle (kept, compressed, harmonizer blocks) is frozen like any
  // non-adapter weight; only the adapter blocks named in c.layers get parameters.
  const emu = c.emulator ? await loadTuningEmulator(c) : null;
  const model = emu ? emu.model : await loadModel(c.model);
  const layerMapping = emu ? layerMappingOf(emu.manifest, c.layers!) : undefined;
  const baseName = emu ? (emu.manifest.sourceModel.name ?? `emulator ${emu.manifestSha256.slice(0, 16)}`) : basename(c.model);
  const limit = contextOf(model.spec);
  const seqLen = c.seqLen ?? Math.min(256, limit);
  if (seqLen > limit) throw new RangeError(`The sequence length ${seqLen} exceeds the model's context of ${limit} positions.`);
  const examples = await loadData(c.data, model, c);
  const evalExamples = c.evalData ? await loadData(c.evalData, model, c) : null;
  const padId = padIdOf(model.tokenizer);
  const adapter = await prepareAdapter(model, c);
  const trainable: Record<string, ParamInit> = Object.fromEntries([...adapter.initial].map(([n, t]) => [n, { data: t.data, shape: t.shape }]));
  const frozen: Record<string, ParamInit> = {};
  for (const [n, w] of model.weights) if (!(n in trainable)) frozen[n] = { data: w.data, shape: w.shape };
  const tunableLayers = [...new Set([...adapter.initial.keys()].map((n) => adapter.layerOf(n)))].sort((a, b) => a - b);
  const parameterCount = [...adapter.initial.values()].reduce((s, t) => s + t.data.length, 0);
  const session: SessionSettings = { provider: c.provider, ...(c.threads !== null ? { intraOpThreads: c.threads } : {}) };

  const batcher0 = new Batcher(examples, { batchSize: c.batchSize, seqLen, padId, shuffle: c.shuffle, seed: c.seed });
  const totalSteps = c.steps ?? Math.max(1, Math.ceil(((c.epochs ?? 1) * batcher0.batchesPerEpoch) / c.gradAccum));
  const dropout = adapter.kind === 'lora' && c.dropout > 0;

  say(`Compiling the train step (${adapter.kind === 'lora' ? `LoRA r ${c.rank}` : 'full layers'}, sampler ${c.sampler})…`);
  const ts = await compileTrainStep(
    (g, params) => {
      const f = forwardWith(model, adapter, seqLen, g, params, { dropout });
      return { loss: crossEntropy(g, f.logits, f.targets, f.mask), blocks: f.blocks };
    },
    {
      trainable,
      frozen,
      optimizer: c.optimizer === 'adamw' ? { type: 'adamw', beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay } : { type: 'sgd', momentum: c.momentum, weightDecay: c.weightDecay },
      schedule: { lr: c.lr, warmupSteps: c.warmup, totalSteps, decay: c.schedule },
      clip: c.clip,
      accumulation: c.gradAccum,
      ...(c.sampler === 'all' ? {} : { layers: { layerOf: (n: string) => adapter.layerOf(n) } }),
      session,
    },
  );
  let evalStep: EvalStep | undefined;
  // IST's suppression passes and held-out evaluation run through the train-step session itself
  // when it offers a loss-only pass (LoRA, layer-gated, no accumulation): scaling a layer's LoRA
  // output is scaling its B matrix, so the passes need no graph of their own, and the frozen
  // weights are held once. Otherwise a separate no-gradient graph with per-layer scales.
  const lora = adapter.lora;
  const viaTrainStep = lora !== undefined && ts.canForwardLoss;
  try {
    if ((c.sampler === 'ist' || evalExamples) && !viaTrainStep) {
      evalStep = await compileEvalStep(
        (g, params) => {
          const layerScale = g.input('ist/scale', 'float32', [model.spec.layers]);
          const f = forwardWith(model, adapter, seqLen, g, params, { dropout: false, layerScale });
          const count = g.reduceSum(f.mask, [0, 1], false);
          const mean = crossEntropy(g, f.logits, f.targets, f.mask);
          return { nll_sum: g.mul(mean, g.max(count, g.scalar(1))), count };
        },
        { trainable, frozen, session },
      );
    }
    const ones = new Float32Array(model.spec.layers).fill(1);
    const evalLoss = async (batches: DataBatch[], params: TrainState['params'], scale: Float32Array): Promise<{ loss: number; tokens: number }> => {
      let sum = 0;
      let count = 0;
      if (viaTrainStep) {
        const scaled = { ...params };
        for (const m of lora.modules) {
          const s = scale[m.layer]!;
          if (s !== 1) scaled[m.keyB] = params[m.keyB]!.map((v) => v * s);
        }
        for (const b of batches.flatMap((x) => asTrainBatches(x, c.batchSize, padId))) {
          // Dropout masks of ones: no dropout, as in the eval graph.
          const masks = dropout ? Object.fromEntries(lora.modules.map((m) => [dropoutInput(m.module), { data: new Float32Array(b.dims[0] * b.dims[1] * m.inFeatures).fill(1), dims: [b.dims[0], b.dims[1], m.inFeatures] }])) : {};
          const n = b.mask.reduce((a, v) => a + v, 0);
          sum += (await ts.forwardLoss({ ...batchFeeds(b), ...masks }, scaled)) * Math.max(n, 1);
          count += n;
        }
        return { loss: sum / Math.max(1, count), tokens: count };
      }
      for (const b of batches) {
        const out = await evalStep!.run({ ...batchFeeds(b), 'ist/scale': { data: scale, dims: [scale.length] } }, params);
        sum += (out.nll_sum!.data as Float32Array)[0]!;
        count += (out.count!.data as Float32Array)[0]!;
      }
      return { loss: sum / Math.max(1, count), tokens: count };
    };
    const evalBatches = evalExamples ? (() => {
      const eb = new Batcher(evalExamples, { batchSize: c.batchSize, seqLen, padId, shuffle: false });
      return Array.from({ length: eb.batchesPerEpoch }, () => eb.next());
    })() : [];

    // Fresh or resumed state.
    let state = ts.initState();
    let batcher = batcher0;
    const istLoader = () => new Batcher(examples, { batchSize: c.ist.batchSize, seqLen, padId, shuffle: true, seed: salted(c.seed, IST_LOADER_SALT) });
    let istBatcher: Batcher | null = c.sampler === 'ist' ? istLoader() : null;
    const sampler: LayerSampler = createLayerSampler({ kind: c.sampler, layers: tunableLayers.length, seed: c.seed, ratio: c.ist.ratio, interval: c.ist.interval, rlSteps: c.ist.rlSteps, suppressRatio: c.ist.suppressRatio, suppressFactor: c.ist.suppressFactor, scoreLr: c.ist.scoreLr });
    let dropoutRng = Rng.fromState(salted(c.seed, DROPOUT_SALT));
    let history: StepRecord[] = [];
    let elapsedMs = 0;
    let tokens = 0;
    let evalLossBefore: number | null = null;
    const ckDir = checkpointDir(c.out);
    if (o.resume) {
      const { state: restored, meta } = await readCheckpoint(ckDir, ts.initState());
      state = restored;
      batcher = new Batcher(examples, { batchSize: c.batchSize, seqLen, padId, shuffle: c.shuffle, seed: c.seed }, meta.cursor);
      if (c.sampler === 'ist') istBatcher = new Batcher(examples, { batchSize: c.ist.batchSize, seqLen, padId, shuffle: true, seed: salted(c.seed, IST_LOADER_SALT) }, meta.istCursor ?? undefined);
      sampler.restore(meta.sampler);
      dropoutRng = Rng.fromState(meta.dropoutRng);
      history = meta.history;
      elapsedMs = meta.elapsedMs;
      tokens = meta.tokens;
      evalLossBefore = meta.evalLossBefore;
      say(`Resuming at update ${state.step} of ${totalSteps}.`);
    }
    if (evalExamples && !o.resume) {
      const r = await evalLoss(evalBatches, state.params, ones);
      evalLossBefore = r.loss;
      hooks.progress?.({ kind: 'evaluated', when: 'before', loss: r.loss, tokens: r.tokens });
    }
    hooks.progress?.({ kind: 'started', startStep: state.step, totalSteps, provider: ts.provider.chosen, providerReason: ts.provider.reason, tunableLayers, parameterCount, examples: examples.length, seqLen });

    const shapes = new Map(Object.entries(trainable).map(([n, p]) => [n, p.shape]));
    const saveCheckpoint = async () => {
      await writeCheckpoint(ckDir, state, shapes, {
        sampler: sampler.state(),
        cursor: batcher.cursor,
        istCursor: istBatcher ? istBatcher.cursor : null,
        dropoutRng: dropoutRng.state,
        history,
        elapsedMs,
        tokens,
        evalLossBefore,
      });
      hooks.progress?.({ kind: 'checkpoint', step: state.step, dir: ckDir });
    };

    const microBatch = (b: DataBatch): Batch => (dropout ? { ...batchFeeds(b), ...dropoutMasks(adapter.lora!, dropoutRng, b.dims) } : batchFeeds(b));
    let stopped = false;
    while (state.step < totalSteps) {
      if (hooks.cancelled?.() || (o.stopAfterSteps !== undefined && state.step >= o.stopAfterSteps)) {
        stopped = true;
        break;
      }
      const step = state.step;
      if (sampler.needsImportanceUpdate(step)) {
        // One batch from the separate shuffled loader, the same for every suppression set.
        const ib = istBatcher!.next();
        const upd = await sampler.updateImportance(async (scales) => {
          const full = ones.slice();
          tunableLayers.forEach((layer, k) => (full[layer] = scales[k]!));
          return (await evalLoss([ib], state.params, full)).loss;
        });
        hooks.progress?.({ kind: 'importance', step, ...upd });
      }
      const selected = sampler.select(step).map((k) => tunableLayers[k]!);
      const data = Array.from({ length: c.gradAccum }, () => batcher.next());
      const t0 = performance.now();
      const r = await ts.step(c.gradAccum === 1 ? microBatch(data[0]!) : data.map(microBatch), state, c.sampler === 'all' ? undefined : { selected });
      elapsedMs += performance.now() - t0;
      state = r.state;
      const stepTokens = data.reduce((s, b) => s + realTokens(examples, b, seqLen), 0);
      tokens += stepTokens;
      history.push({ step, loss: r.loss, lr: r.lr, gradNorm: r.gradNorm, selected, tokens: stepTokens });
      const perStep = elapsedMs / (step + 1 - (history[0]?.step ?? 0));
      hooks.progress?.({
        kind: 'step',
        step,
        totalSteps,
        loss: r.loss,
        lr: r.lr,
        gradNorm: r.gradNorm,
        selected,
        importance: sampler.scores(),
        tokensPerSecond: tokens / Math.max(1e-9, elapsedMs / 1000),
        etaSeconds: ((totalSteps - state.step) * perStep) / 1000,
        elapsedSeconds: elapsedMs / 1000,
      });
      if (state.step % c.checkpointEvery === 0 && state.step < totalSteps) await saveCheckpoint();
    }
    await saveCheckpoint();
    const base = {
      checkpoint: ckDir,
      stepsDone: state.step,
      totalSteps,
      finalLoss: history.length ? history[history.length - 1]!.loss : null,
      tokensPerSecond: tokens / Math.max(1e-9, elapsedMs / 1000),
      steps: history,
      tunableLayers,
      importance: sampler.scores(),
      evalLossBefore,
      provider: ts.provider.chosen,
      peft: adapter.kind,
      parameterCount,
      ...(layerMapping ? { layerMapping } : {}),
    };
    if (stopped) return { status: 'cancelled', adapter: null, evalLossAfter: null, ...base };
    let evalLossAfter: number | null = null;
    if (evalExamples) {
      const r = await evalLoss(evalBatches, state.params, ones);
      evalLossAfter = r.loss;
      hooks.progress?.({ kind: 'evaluated', when: 'after', loss: r.loss, tokens: r.tokens });
    }
    const out = adapterDir(c.out);
    await exportAdapter(out, model, adapter, cloneState(state).params, c, baseName);
    return { status: 'finished', adapter: out, evalLossAfter, ...base };
  } finally {
    await ts.dispose();
    await evalStep?.dispose();
  }
}

/** Writes the adapter folder atomically: a PEFT LoRA adapter, or the tuned layers' weights. */
export async function exportAdapter(dir: string, model: LoadedModel, adapter: Adapter, params: TrainState['params'], c: Pick<TuneConfig, 'model'>, baseName = basename(c.model)): Promise<void> {
  if (adapter.kind === 'full') {
    const tensors = new Map(adapter.full!.names.map((n) => [n, { data: Float32Array.from(params[n]!), shape: adapter.initial.get(n)!.shape }]));
    await writeFullLayersAdapter(dir, { format: 'full-layers', model_type: model.spec.modelType, base_model_name_or_path: baseName, layers: adapter.full!.layers }, tensors, true);
    return;
  }
  const plan = adapter.lora!;
  const input: LoraAdapterConfigInput = {
    r: plan.settings.rank,
    lora_alpha: plan.settings.alpha,
    lora_dropout: plan.settings.dropout,
    target_modules: plan.settings.targets,
    base_model_name_or_path: baseName,
    layers_to_transform: plan.settings.layers,
    fan_in_fan_out: model.spec.family === 'gpt2',
  };
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  for (const m of plan.modules) {
    tensors.set(m.keyA, { dtype: 'F32', shape: [plan.settings.rank, m.inFeatures], data: Float32Array.from(params[m.keyA]!) });
    tensors.set(m.keyB, { dtype: 'F32', shape: [m.outFeatures, plan.settings.rank], data: Float32Array.from(params[m.keyB]!) });
  }
  await writePeftAdapter(dir, input, tensors, { overwrite: true });
}
