// The settings of a tuning run: one JSON-serialisable object that the CLI and the app build, the
// audit log records in run.started, the worker receives, and a resumed run reads back from
// <out>/run.json. Defaults follow the IST reference where it applies (ALGORITHMS.md §4).
import { IST_DEFAULTS, type SamplerKind } from '../train/ist';
import type { DecayKind } from '../train/schedule';

/** The emulator package a run tunes (set by the caller after verifying the package). */
export interface TuneEmulator {
  /** SHA-256 of the package's manifest.json bytes: its identity. */
  manifestSha256: string;
  signerKeyId: string | null;
  /** Why an unsigned or untrusted package was accepted (the user's override), else null. */
  override: string | null;
}

export interface TuneConfig {
  /** Hugging Face model folder or llama2.c .bin file; for an emulator run, the verified emulator package folder. */
  model: string;
  /** Set for an emulator run: `model` is an emulator package and `layers` are its adapter blocks (emulator numbering). */
  emulator?: TuneEmulator | null;
  /** Training data (JSONL or CSV). */
  data: string;
  /** Held-out data whose mean token loss is measured before and after tuning. */
  evalData: string | null;
  /** Run folder: run.json, checkpoint/, adapter/. */
  out: string;
  peft: 'lora' | 'full';
  rank: number;
  alpha: number;
  dropout: number;
  /** LoRA target modules; null = the family's PEFT defaults. */
  targets: string[] | null;
  /** Layers to tune; null = all (LoRA only; full tuning needs a list). */
  layers: number[] | null;
  sampler: SamplerKind;
  ist: {
    ratio: number;
    interval: number;
    rlSteps: number;
    suppressRatio: number;
    suppressFactor: number;
    scoreLr: number;
    /** Batch size of the importance-update loader (reference: 16). */
    batchSize: number;
  };
  optimizer: 'adamw' | 'sgd';
  lr: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  momentum: number;
  warmup: number;
  schedule: DecayKind;
  clip: number;
  /** Updates to run; null = derived from epochs. */
  steps: number | null;
  epochs: number | null;
  batchSize: number;
  gradAccum: number;
  seqLen: number | null;
  seed: number;
  shuffle: boolean;
  lossOnPrompt: boolean;
  initAdapter: string | null;
  /** Write a checkpoint every this many updates (and always at cancel and at the end). */
  checkpointEvery: number;
  provider: 'auto' | 'cpu' | 'cuda';
  threads: number | null;
}

export const TUNE_DEFAULTS: Omit<TuneConfig, 'model' | 'data' | 'out'> = {
  evalData: null,
  peft: 'lora',
  rank: 8,
  alpha: 16,
  dropout: 0.05,
  targets: null,
  layers: null,
  sampler: 'ist',
  ist: { ...IST_DEFAULTS, batchSize: 16 },
  optimizer: 'adamw',
  lr: 2e-4,
  weightDecay: 0,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  momentum: 0,
  warmup: 0,
  schedule: 'linear',
  clip: 1.0,
  steps: null,
  epochs: 1,
  batchSize: 4,
  gradAccum: 1,
  seqLen: null,
  seed: 0,
  shuffle: true,
  lossOnPrompt: false,
  initAdapter: null,
  checkpointEvery: 50,
  provider: 'auto',
  threads: null,
};

/** Checks the settings that do not need the model or data; throws a RangeError sentence. */
export function checkTuneConfig(c: TuneConfig): void {
  const whole = (label: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${label} must be a whole number ≥ ${min}, not ${v}.`);
  };
  if (!c.model) throw new RangeError('Name the model to tune.');
  if (!c.data) throw new RangeError('Name the training data file.');
  if (!c.out) throw new RangeError('Name the output folder.');
  if (c.emulator) {
    if (!/^[0-9a-f]{64}$/.test(c.emulator.manifestSha256)) throw new RangeError('The emulator is named by the 64 hex digits of its manifest SHA-256.');
    if (!c.layers || c.layers.length === 0) throw new RangeError('An emulator run tunes its adapter blocks; name them (--layers) or take them from the emulator.');
  }
  if (c.peft !== 'lora' && c.peft !== 'full') throw new RangeError(`The PEFT method must be lora or full, not "${String(c.peft)}".`);
  if (c.peft === 'full' && (!c.layers || c.layers.length === 0)) throw new RangeError('Full-parameter tuning needs the layers to tune (--layers 0,1,…).');
  if (c.peft === 'full' && c.dropout > 0) throw new RangeError('Dropout applies to LoRA only; use --dropout 0 with --peft full.');
  whole('The LoRA rank', c.rank, 1);
  if (!(c.alpha > 0)) throw new RangeError(`The LoRA alpha must be > 0, not ${c.alpha}.`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new RangeError(`The dropout must be at least 0 and below 1, not ${c.dropout}.`);
  if (!['all', 'ist', 'uniform'].includes(c.sampler)) throw new RangeError(`The layer sampler must be all, ist or uniform, not "${String(c.sampler)}".`);
  if (!(c.ist.ratio > 0 && c.ist.ratio <= 1)) throw new RangeError(`The IST ratio must be above 0 and at most 1, not ${c.ist.ratio}.`);
  whole('The IST batch size', c.ist.batchSize, 1);
  if (c.optimizer !== 'adamw' && c.optimizer !== 'sgd') throw new RangeError(`The optimizer must be adamw or sgd, not "${String(c.optimizer)}".`);
  if (!(c.lr >= 0 && Number.isFinite(c.lr))) throw new RangeError(`The learning rate must be a number ≥ 0, not ${c.lr}.`);
  if (!(c.weightDecay >= 0)) throw new RangeError(`The weight decay must be ≥ 0, not ${c.weightDecay}.`);
  whole('Warmup', c.warmup, 0);
  if (!['constant', 'linear', 'cosine'].includes(c.schedule)) throw new RangeError(`The schedule must be constant, linear or cosine, not "${String(c.schedule)}".`);
  if (!(c.clip >= 0)) throw new RangeError(`The clipping norm must be ≥ 0 (0 = off), not ${c.clip}.`);
  if (c.steps === null && c.epochs === null) throw new RangeError('Give the number of steps or epochs.');
  if (c.steps !== null) whole('The number of steps', c.steps, 1);
  if (c.epochs !== null && !(c.epochs > 0)) throw new RangeError(`The number of epochs must be > 0, not ${c.epochs}.`);
  whole('The batch size', c.batchSize, 1);
  whole('Gradient accumulation', c.gradAccum, 1);
  if (c.seqLen !== null) whole('The sequence length', c.seqLen, 2);
  if (!Number.isSafeInteger(c.seed)) throw new RangeError(`The seed must be a whole number, not ${c.seed}.`);
  whole('The checkpoint interval', c.checkpointEvery, 1);
  if (c.threads !== null) whole('The number of threads', c.threads, 1);
}
