// Pretraining of the demo base model with the engine's own train step: full-parameter training of
// a byte-level LLaMA on the Moby Dick training chapters, AdamW with warmup + cosine decay, resumable
// checkpoints, and the held-out perplexity at the end. Runs inside a job worker (pretrain-worker.ts)
// or, for tests, on the calling thread.
//
// Data: every training chapter is tokenized on its own (<s> + bytes, as the tokenizer encodes a
// {"text"} line) and the chapters are concatenated into one stream, cut into windows of
// contextLength + 1 tokens that overlap by one token, so each token is predicted once per epoch.
// The Batcher shuffles windows per epoch from the seed; its cursor is saved in checkpoints.
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Batcher, type DataCursor } from '../data/batches';
import type { Example } from '../data/tokenize';
import { perplexity, parseLmJsonl, type PerplexityResult } from '../eval/perplexity';
import { writeDirAtomic, writeFileAtomic } from '../formats/atomic';
import { toFloat32 } from '../formats/dtypes';
import { readSafetensors, writeSafetensors } from '../formats/safetensors';
import { BYTE_LEVEL_IDS, loadTokenizer, writeByteLevelTokenizerJson, type LoadedTokenizer } from '../formats/tokenizer';
import { llamaFamily } from '../models/llama/index';
import { ModelRunner } from '../models/runner';
import type { BuildableModel } from '../models/graphs';
import type { LlamaSpec, WeightMap } from '../models/spec';
import { crossEntropy } from '../nn/loss';
import { cloneState, compileTrainStep, type TrainState } from '../train/train-step';
import { DEMO_MODEL, demoSpec, initDemoWeights, parameterCount, type DemoModelShape } from './model';

export interface PretrainConfig {
  model: DemoModelShape;
  /** Seeds the initial weights and the data order. */
  seed: number;
  batchSize: number;
  steps: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  beta1: number;
  beta2: number;
  weightDecay: number;
  clip: number;
}

export interface PretrainInput {
  config: PretrainConfig;
  /** JSONL of {"text"} lines: the training chapters. */
  trainFile: string;
  /** JSONL of {"text"} lines: the held-out chapters (perplexity at the end). */
  heldoutFile: string;
  /** Where checkpoints and the tokenizer used for training live. */
  workDir: string;
  /** Continue from workDir's checkpoint when it belongs to this configuration and data. */
  resume: boolean;
  threads: number;
  /** Checkpoint every this many updates (and when stopped). */
  checkpointEvery: number;
  /** Stop (checkpointed, as an interruption would) once this many updates are done: tests. */
  stopAfterSteps?: number;
  /** Skip the held-out perplexity (tests of the loop alone). */
  skipHeldout?: boolean;
}

export type PretrainProgress =
  | { kind: 'status'; message: string }
  | { kind: 'started'; startStep: number; totalSteps: number; parameterCount: number; trainTokens: number; windows: number; provider: string; threads: number }
  | { kind: 'step'; step: number; totalSteps: number; loss: number; lr: number; gradNorm: number; tokensPerSecond: number; etaSeconds: number; elapsedSeconds: number }
  | { kind: 'checkpoint'; step: number }
  | { kind: 'evaluating'; done: number; total: number };

export interface LossPoint {
  step: number;
  loss: number;
}

export interface PretrainResult {
  status: 'finished' | 'stopped';
  stepsDone: number;
  totalSteps: number;
  /** The trained weights by Hugging Face name (finished runs). */
  weights: Record<string, Float32Array> | null;
  parameterCount: number;
  /** Mean training loss of each block of LOG_EVERY updates. */
  losses: LossPoint[];
  tokensSeen: number;
  /** Seconds spent in train steps, over every session of a resumed run. */
  trainSeconds: number;
  heldout: PerplexityResult | null;
  trainTokens: number;
  trainSha256: string;
  heldoutSha256: string;
  /** True when this session continued an earlier one's checkpoint. */
  resumed: boolean;
}

export interface PretrainHooks {
  progress?(p: PretrainProgress): void;
  cancelled?(): boolean;
}

/** The shipped recipe (MODEL_CARD.md says why these numbers). */
export const DEMO_PRETRAIN: PretrainConfig = {
  model: DEMO_MODEL,
  seed: 8,
  batchSize: 8,
  steps: 600,
  lr: 3e-3,
  minLr: 3e-4,
  warmupSteps: 30,
  beta1: 0.9,
  beta2: 0.95,
  weightDecay: 0.1,
  clip: 1.0,
};

/** Training losses are averaged over blocks of this many updates for the record. */
export const LOG_EVERY = 25;

/** Held-out perplexity is computed in windows of the model's context, this many windows per run. */
export const HELDOUT_BATCH = 8;

const CHECKPOINT = 'checkpoint';

async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Documents of a {"text"} JSONL file, tokenized as the model's tokenizer encodes a text line (with <s>). */
export async function readTextDocs(path: string, tok: LoadedTokenizer): Promise<number[][]> {
  const lines = parseLmJsonl(await readFile(path, 'utf8'), path);
  return lines.map((l) => {
    if (l.text === undefined) throw new Error(`${path} line ${l.line}: pretraining reads {"text"} lines only.`);
    return tok.encode(l.text);
  });
}

/** Windows of `len` tokens over the concatenated documents, consecutive windows sharing one token. */
export function streamWindows(docs: readonly number[][], len: number): Example[] {
  const stream = Int32Array.from(docs.flat());
  const out: Example[] = [];
  for (let start = 0; start + len <= stream.length; start += len - 1) {
    const lossMask = new Uint8Array(len).fill(1);
    lossMask[0] = 0;
    out.push({ tokens: stream.slice(start, start + len), lossMask, line: out.length + 1 });
  }
  return out;
}

/** Identifies a run: a checkpoint is only resumed by the same configuration on the same data. */
export function runId(config: PretrainConfig, trainSha256: string): string {
  return createHash('sha256').update(JSON.stringify({ config, trainSha256 })).digest('hex').slice(0, 16);
}

interface CheckpointMeta {
  runId: string;
  step: number;
  cursor: DataCursor;
  losses: LossPoint[];
  pending: { sum: number; n: number };
  tokensSeen: number;
  trainSeconds: number;
}

async function writeCheckpoint(workDir: string, state: TrainState, meta: CheckpointMeta): Promise<void> {
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  const put = (key: string, a: ArrayLike<number> & ArrayBufferView) => tensors.set(key, { dtype: 'F32', shape: [a.length], data: a as Float32Array });
  for (const [n, p] of Object.entries(state.params)) put(`param/${n}`, p as Float32Array);
  for (const [slot, byName] of Object.entries(state.slots)) for (const [n, p] of Object.entries(byName)) put(`${slot}/${n}`, p as Float32Array);
  await writeDirAtomic(
    join(workDir, CHECKPOINT),
    async (tmp) => {
      await writeSafetensors(join(tmp, 'state.safetensors'), tensors);
      await writeFileAtomic(join(tmp, 'checkpoint.json'), Buffer.from(`${JSON.stringify(meta, null, 2)}\n`));
    },
    true,
  );
}

/** The checkpoint in workDir when it belongs to run `id`; 'other' when it belongs to another run. */
async function readCheckpoint(workDir: string, id: string, fresh: TrainState): Promise<{ state: TrainState; meta: CheckpointMeta } | 'other' | null> {
  const dir = join(workDir, CHECKPOINT);
  const exists = await stat(join(dir, 'checkpoint.json')).then(() => true, () => false);
  if (!exists) return null;
  const meta = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')) as CheckpointMeta;
  if (meta.runId !== id) return 'other';
  const { tensors } = await readSafetensors(join(dir, 'state.safetensors'));
  const load = (key: string, like: Float32Array | Float64Array): Float32Array => {
    const t = tensors.get(key);
    if (!t || t.shape[0] !== like.length) throw new Error(`The checkpoint in ${dir} lacks ${key} or has the wrong size; remove the folder (or pass --fresh) to start over.`);
    return toFloat32(t).slice();
  };
  const state: TrainState = {
    step: meta.step,
    params: Object.fromEntries(Object.entries(fresh.params).map(([n, p]) => [n, load(`param/${n}`, p)])),
    slots: Object.fromEntries(Object.entries(fresh.slots).map(([s, byName]) => [s, Object.fromEntries(Object.entries(byName).map(([n, p]) => [n, load(`${s}/${n}`, p)]))])),
  };
  return { state, meta };
}

/** The model as the engine's graph builders want it, from weights by name. */
export function buildableModel(spec: LlamaSpec, weights: Record<string, Float32Array>): BuildableModel {
  const map: WeightMap = new Map();
  for (const [name, shape] of llamaFamily.weightShapes(spec)) {
    const data = weights[name];
    if (!data) throw new Error(`The weights lack ${name}.`);
    map.set(name, { shape, data });
  }
  return { spec, family: llamaFamily as BuildableModel['family'], weights: map };
}

/**
 * Held-out perplexity as `offsite eval --metric ppl` computes it: each document on its own, in
 * rolling windows of the model's context length.
 */
export async function heldoutPerplexity(model: BuildableModel, docs: readonly number[][], threads: number, onProgress?: (done: number, total: number) => void): Promise<PerplexityResult> {
  const runner = new ModelRunner(model, { contextLength: model.spec.maxPositions, settings: { provider: 'cpu', intraOpThreads: threads } });
  try {
    return await perplexity(runner, docs, { seqLen: model.spec.maxPositions, batchSize: HELDOUT_BATCH, ...(onProgress ? { onProgress } : {}) });
  } finally {
    await runner.release();
  }
}

export async function runPretraining(input: PretrainInput, hooks: PretrainHooks = {}): Promise<PretrainResult> {
  const c = input.config;
  const say = (message: string) => hooks.progress?.({ kind: 'status', message });
  const spec = demoSpec(c.model);
  const T = spec.maxPositions;

  // The byte-level tokenizer, written as the shipped tokenizer.json and read back through the same loader.
  await mkdir(input.workDir, { recursive: true });
  await writeByteLevelTokenizerJson(input.workDir);
  const tok = await loadTokenizer(input.workDir);
  if (tok.vocabSize !== spec.vocabSize || tok.bosId !== BYTE_LEVEL_IDS.bos) throw new Error('The byte-level tokenizer does not match the model configuration.');

  const trainSha256 = await sha256File(input.trainFile);
  const heldoutSha256 = await sha256File(input.heldoutFile);
  const trainDocs = await readTextDocs(input.trainFile, tok);
  const windows = streamWindows(trainDocs, T + 1);
  const trainTokens = trainDocs.reduce((s, d) => s + d.length, 0);
  const id = runId(c, trainSha256);

  const init = initDemoWeights(spec, c.seed);
  const nParams = parameterCount(init);
  const trainable = Object.fromEntries([...init].map(([n, w]) => [n, { data: w.data, shape: w.shape }]));
  say(`Compiling the train step (${nParams.toLocaleString('en-US')} parameters, batch ${c.batchSize} × ${T} tokens)…`);
  const ts = await compileTrainStep(
    (g, p) => {
      const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
      const targets = g.input('targets', 'int64', ['batch', 'seq']);
      const mask = g.input('mask', 'float32', ['batch', 'seq']);
      const out = llamaFamily.forward(g, spec, init, { inputIds: ids, contextLength: T }, { param: (name) => p[name] });
      return { loss: crossEntropy(g, out.logits!, targets, mask) };
    },
    {
      trainable,
      optimizer: { type: 'adamw', beta1: c.beta1, beta2: c.beta2, eps: 1e-8, weightDecay: c.weightDecay },
      schedule: { lr: c.lr, warmupSteps: c.warmupSteps, totalSteps: c.steps, decay: 'cosine', minLr: c.minLr },
      clip: c.clip,
      // Norm gains are scales around 1: decaying them towards 0 would fight the model (as in GPT/LLaMA recipes).
      noDecay: (name) => name.endsWith('norm.weight'),
      // The CPU provider always: the shipped weights must not depend on which accelerator a machine has.
      session: { provider: 'cpu', intraOpThreads: input.threads },
    },
  );

  try {
    let state = ts.initState();
    const batchOptions = { batchSize: c.batchSize, seqLen: T + 1, padId: BYTE_LEVEL_IDS.pad, shuffle: true, seed: c.seed, dropLast: true };
    let meta: CheckpointMeta = { runId: id, step: 0, cursor: new Batcher(windows, batchOptions).cursor, losses: [], pending: { sum: 0, n: 0 }, tokensSeen: 0, trainSeconds: 0 };
    let resumed = false;
    if (input.resume) {
      const ck = await readCheckpoint(input.workDir, id, state);
      if (ck === 'other') say(`The checkpoint in ${input.workDir} belongs to another configuration or data; starting from step 0.`);
      else if (ck) {
        state = ck.state;
        meta = ck.meta;
        resumed = true;
        say(`Resuming from the checkpoint at step ${meta.step} of ${c.steps}.`);
      }
    }
    const batcher = new Batcher(windows, batchOptions, meta.cursor);
    hooks.progress?.({ kind: 'started', startStep: meta.step, totalSteps: c.steps, parameterCount: nParams, trainTokens, windows: windows.length, provider: ts.provider.chosen, threads: input.threads });

    const save = async () => {
      meta.step = state.step;
      meta.cursor = batcher.cursor;
      await writeCheckpoint(input.workDir, cloneState(state), meta);
      hooks.progress?.({ kind: 'checkpoint', step: state.step });
    };
    const sessionStart = performance.now();
    const sessionStep = state.step;
    const stopAt = Math.min(c.steps, input.stopAfterSteps ?? c.steps);
    while (state.step < stopAt) {
      if (hooks.cancelled?.()) break;
      const b = batcher.next();
      const t0 = performance.now();
      const r = await ts.step({ input_ids: { data: b.inputIds, dims: b.dims }, targets: { data: b.targets, dims: b.dims }, mask: { data: b.mask, dims: b.dims } }, state);
      const dt = (performance.now() - t0) / 1000;
      state = r.state;
      if (!Number.isFinite(r.loss)) throw new Error(`The training loss became ${r.loss} at step ${state.step}; lower the learning rate.`);
      meta.trainSeconds += dt;
      meta.tokensSeen += b.targetTokens;
      meta.pending.sum += r.loss;
      meta.pending.n += 1;
      if (state.step % LOG_EVERY === 0 || state.step === c.steps) {
        meta.losses.push({ step: state.step, loss: meta.pending.sum / meta.pending.n });
        meta.pending = { sum: 0, n: 0 };
      }
      const elapsed = (performance.now() - sessionStart) / 1000;
      const perStep = elapsed / (state.step - sessionStep);
      hooks.progress?.({
        kind: 'step',
        step: state.step,
        totalSteps: c.steps,
        loss: r.loss,
        lr: r.lr,
        gradNorm: r.gradNorm,
        tokensPerSecond: b.targetTokens / dt,
        etaSeconds: perStep * (c.steps - state.step),
        elapsedSeconds: meta.trainSeconds,
      });
      if (state.step % input.checkpointEvery === 0 && state.step < c.steps) await save();
    }
    const base = { totalSteps: c.steps, parameterCount: nParams, losses: meta.losses, tokensSeen: meta.tokensSeen, trainSeconds: meta.trainSeconds, trainTokens, trainSha256, heldoutSha256, resumed };
    if (state.step < c.steps) {
      await save();
      return { status: 'stopped', stepsDone: state.step, weights: null, heldout: null, ...base };
    }
    await save();
    const weights = Object.fromEntries(Object.entries(state.params).map(([n, p]) => [n, Float32Array.from(p)]));
    let heldout: PerplexityResult | null = null;
    if (!input.skipHeldout) {
      say('Measuring the held-out perplexity…');
      const docs = await readTextDocs(input.heldoutFile, tok);
      heldout = await heldoutPerplexity(buildableModel(spec, weights), docs, input.threads, (done, total) => hooks.progress?.({ kind: 'evaluating', done, total }));
    }
    return { status: 'finished', stepsDone: state.step, weights, heldout, ...base };
  } finally {
    await ts.dispose();
  }
}
