// The tuning part of the IPC contract: request schemas and response types of the runs.* channels.
// contract.ts spreads these into its one channel map. Like contract.ts, this file imports nothing
// but zod (the renderer imports it type-only, the e2e bridge bundles it). Every setting a request
// leaves out takes its value from TUNE_DEFAULTS (native-models/tune/config.ts), which the renderer
// reads through runs.defaults, so the form and the CLI start from the same numbers.
import { z } from 'zod';
import { noRequest, fullPath, wholeNumber } from './schemas';

function between(what: string, min: number, max: number, opts: { minOpen?: boolean; maxOpen?: boolean } = {}) {
  const lo = opts.minOpen ? `above ${min}` : `at least ${min}`;
  const hi = opts.maxOpen ? `below ${max}` : `at most ${max}`;
  const sentence = `The ${what} must be a number ${lo} and ${hi}.`;
  let s = z.number({ error: sentence });
  s = opts.minOpen ? s.gt(min, { error: sentence }) : s.min(min, { error: sentence });
  s = opts.maxOpen ? s.lt(max, { error: sentence }) : s.max(max, { error: sentence });
  return s;
}

const sha256Id = (what: string, where: string) =>
  z.string({ error: `${what} must be text.` }).regex(/^[0-9a-f]{64}$/, { error: `${what} is the 64-character SHA-256 shown in ${where}.` });

const runId = z.uuid({ error: 'A run id is a UUID, as shown in the list of runs.' });

export const PEFT_METHODS = ['lora', 'full'] as const;
export const SAMPLERS = ['all', 'ist', 'uniform'] as const;
export const SCHEDULES = ['constant', 'linear', 'cosine'] as const;
export type SamplerName = (typeof SAMPLERS)[number];
export type ScheduleName = (typeof SCHEDULES)[number];

/** The LoRA target modules: projection names such as q_proj or c_attn. */
const moduleName = z.string({ error: 'A target module must be text.' }).regex(/^[A-Za-z_][A-Za-z0-9_.]{0,63}$/, { error: 'A target module is a projection name such as q_proj or v_proj.' });
const layerIndex = wholeNumber('layer index', 0, 100_000);

export const tuneRequestSchema = z
  .object({
    /** A model folder (config.json + safetensors) or a llama2.c .bin file. */
    model: fullPath('path of the model', '/models/tinyllama').optional(),
    /** An emulator imported into the data folder (emulators.list): its verified folder is tuned. */
    emulatorId: sha256Id('An emulator id', 'the list of imported emulators').optional(),
    /** The imported training dataset (datasets.list). */
    dataset: sha256Id('A dataset id', 'the list of imported datasets'),
    /** An imported held-out dataset: its mean token loss is measured before and after tuning. */
    evalDataset: sha256Id('An evaluation dataset id', 'the list of imported datasets').optional(),
    /** The run folder; default: <data folder>/runs/<new folder>. */
    out: fullPath('output folder', '/home/me/runs/first-run').optional(),
    peft: z.enum(PEFT_METHODS, { error: 'The adapter type must be lora or full.' }).optional(),
    rank: wholeNumber('LoRA rank', 1, 4096).optional(),
    alpha: between('LoRA alpha', 0, 1e6, { minOpen: true }).optional(),
    dropout: between('dropout', 0, 1, { maxOpen: true }).optional(),
    targets: z.array(moduleName, { error: 'The target modules must be a list of names.' }).min(1, { error: 'Name at least one target module, or leave the field empty for the model’s defaults.' }).max(64).nullable().optional(),
    layers: z.array(layerIndex, { error: 'The layers must be a list of layer indices.' }).min(1, { error: 'Name at least one layer, or leave the field empty for all layers.' }).max(4096).nullable().optional(),
    sampler: z.enum(SAMPLERS, { error: 'The layer sampler must be all, ist or uniform.' }).optional(),
    istRatio: between('IST ratio', 0, 1, { minOpen: true }).optional(),
    lr: between('learning rate', 0, 10).optional(),
    weightDecay: between('weight decay', 0, 10).optional(),
    warmup: wholeNumber('number of warmup steps', 0, 10_000_000).optional(),
    schedule: z.enum(SCHEDULES, { error: 'The schedule must be constant, linear or cosine.' }).optional(),
    clip: between('clipping norm', 0, 1e6).optional(),
    steps: wholeNumber('number of steps', 1, 10_000_000).optional(),
    epochs: between('number of epochs', 0, 10_000, { minOpen: true }).optional(),
    batchSize: wholeNumber('batch size', 1, 4096).optional(),
    seqLen: wholeNumber('sequence length', 2, 1 << 20).optional(),
    seed: wholeNumber('seed', 0, 2 ** 31 - 1).optional(),
    shuffle: z.boolean({ error: 'Shuffle must be on or off.' }).optional(),
    checkpointEvery: wholeNumber('checkpoint interval', 1, 10_000_000).optional(),
  })
  .strict()
  .refine((r) => (r.model === undefined) !== (r.emulatorId === undefined), { error: 'Choose either a model or an imported emulator to tune, not both and not neither.' })
  .refine((r) => r.steps === undefined || r.epochs === undefined, { error: 'Give the number of steps or the number of epochs, not both.' })
  .refine((r) => r.peft !== 'full' || (r.layers ?? null) !== null, { error: 'Full-layer tuning needs the layers to tune, such as 0,1.' });

export type TuneRequest = z.input<typeof tuneRequestSchema>;

export const runsRequests = {
  /** TUNE_DEFAULTS and where new runs go: what the Tune form starts from. */
  'runs.defaults': noRequest,
  /** Starts a tuning run; progress comes on job.progress (kind "tune"), the end on job.finished. */
  'runs.start': tuneRequestSchema,
  /** Asks a live run to stop at its next step; it writes a checkpoint to resume from. */
  'runs.cancel': z.object({ runId }).strict(),
  /** Continues a cancelled (or failed) run from its checkpoint, with the same model and data. */
  'runs.resume': z.object({ runId }).strict(),
  /** Every tuning run in the audit trail, newest first. */
  'runs.list': noRequest,
  /** One run with its full configuration. */
  'runs.get': z.object({ runId }).strict(),
  /** Stored per-step metrics with step > `afterStep` (steps count updates done), thinned to at most `maxPoints` rows. */
  'runs.metrics': z
    .object({
      runId,
      afterStep: wholeNumber('first step', 0, Number.MAX_SAFE_INTEGER).optional(),
      maxPoints: wholeNumber('number of points', 2, 100_000).optional(),
    })
    .strict(),
  /** Copies a finished run's PEFT adapter folder to `out` (which must not exist yet); audited. */
  'runs.exportAdapter': z.object({ runId, out: fullPath('export folder', '/media/usb/adapter') }).strict(),
} as const;

/** The settings a run starts from when the form leaves them alone (TUNE_DEFAULTS). */
export interface TuneDefaultsView {
  peft: 'lora' | 'full';
  rank: number;
  alpha: number;
  dropout: number;
  targets: string[] | null;
  layers: number[] | null;
  sampler: SamplerName;
  istRatio: number;
  lr: number;
  weightDecay: number;
  warmup: number;
  schedule: ScheduleName;
  clip: number;
  steps: number | null;
  epochs: number | null;
  batchSize: number;
  seqLen: number | null;
  seed: number;
  shuffle: boolean;
  checkpointEvery: number;
}

/** The latest step of a live run. */
export interface RunStepView {
  /** Updates done (1 after the first), as in job.progress. */
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  tokensPerSecond: number;
  etaSeconds: number;
  selected: number[];
  importance: number[];
}

/** One line of the list of runs. */
export interface RunSummary {
  id: string;
  status: 'running' | 'finished' | 'failed' | 'cancelled';
  /** True while this app runs it (a "running" run that is not live was interrupted). */
  live: boolean;
  startedAt: string;
  finishedAt: string | null;
  /** The run folder. */
  output: string | null;
  modelName: string;
  dataName: string;
  peft: string | null;
  sampler: string | null;
  stepsDone: number | null;
  totalSteps: number | null;
  finalLoss: number | null;
  tokensPerSecond: number | null;
  evalLossBefore: number | null;
  evalLossAfter: number | null;
  /** Model layers the sampler chooses from (the heat map's rows). */
  tunableLayers: number[] | null;
  /** The exported PEFT adapter folder of a finished run, when it is on disk. */
  adapter: string | null;
  /** A checkpoint is on disk and the run is not live: Resume continues it. */
  resumable: boolean;
  error: string | null;
  lastStep: RunStepView | null;
}

export type RunJson = string | number | boolean | null | RunJson[] | { [key: string]: RunJson };

export interface RunDetails extends RunSummary {
  /** The run's settings as recorded in run.started. */
  config: { [key: string]: RunJson };
}

/** A stored metrics row (non-finite numbers read back as null). */
export interface RunMetricPoint {
  /** Updates done after this one (1 for the first update), as in job.progress. */
  step: number;
  loss: number | null;
  lr: number | null;
  tokensPerSecond: number | null;
  selected: number[] | null;
  importance: number[] | null;
}

export interface RunMetricsPage {
  runId: string;
  /** Stored rows after `afterStep` before thinning. */
  total: number;
  /** Every `stride`-th row is returned (and always the last one). */
  stride: number;
  rows: RunMetricPoint[];
}

export interface RunsResponses {
  'runs.defaults': { settings: TuneDefaultsView; runsFolder: string };
  'runs.start': { runId: string; out: string };
  'runs.cancel': { runId: string; cancelled: boolean };
  'runs.resume': { runId: string };
  'runs.list': RunSummary[];
  'runs.get': RunDetails;
  'runs.metrics': RunMetricsPage;
  'runs.exportAdapter': { runId: string; out: string; files: string[]; auditSeq: number };
}

export const runsChannelFlags = {
  'runs.defaults': { mutates: false },
  // Starts a worker and appends run.started.
  'runs.start': { mutates: true },
  'runs.cancel': { mutates: true },
  'runs.resume': { mutates: true },
  'runs.list': { mutates: false },
  'runs.get': { mutates: false },
  'runs.metrics': { mutates: false },
  // Writes a folder and appends adapter.exported.
  'runs.exportAdapter': { mutates: true },
} as const;
