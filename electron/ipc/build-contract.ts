// The model owner's part of the IPC contract: building an emulator (emulatorBuild.*) and plugging a
// returned adapter into the full model (plugin.run). contract.ts spreads these into its one
// channel map. Like contract.ts, this file imports nothing but zod and schemas.ts (the renderer imports it
// type-only, the e2e bridge bundles it). Settings a build request leaves out take BUILD_DEFAULTS
// (native-models/scaleot/build.ts), which the form reads through emulatorBuild.defaults, so the
// screen and `offsite emulator build` start from the same numbers.
import { z } from 'zod';
import { noRequest, fullPath, wholeNumber } from './schemas';

function ratio(what: string, minOpen: boolean) {
  const sentence = `The ${what} must be a number ${minOpen ? 'above 0' : 'from 0'} ${minOpen ? 'and at most 1' : 'to 1'}.`;
  const s = z.number({ error: sentence }).max(1, { error: sentence });
  return minOpen ? s.gt(0, { error: sentence }) : s.min(0, { error: sentence });
}

const sha256Id = (what: string, where: string) =>
  z.string({ error: `${what} must be text.` }).regex(/^[0-9a-f]{64}$/, { error: `${what} is the 64-character SHA-256 shown in ${where}.` });

const jobId = z.string({ error: 'A build job id must be text.' }).regex(/^build-[0-9a-f]{12}$/, { error: 'A build job id looks like build-0123456789ab, as emulatorBuild.start returned it.' });

export const BUILD_METHODS = ['scaleot', 'uniform'] as const;
export type BuildMethodName = (typeof BUILD_METHODS)[number];

export const emulatorBuildRequestSchema = z
  .object({
    /** The full model: a Hugging Face folder or a llama2.c .bin file. */
    model: fullPath('path of the full model', '/models/tinyllama'),
    /** The new emulator package folder (must not exist yet). */
    out: fullPath('package folder', '/media/usb/tinyllama-emulator'),
    /** The model owner's distillation text (JSONL/CSV). */
    distillData: fullPath('path of the distillation text', '/data/distill.jsonl'),
    method: z.enum(BUILD_METHODS, { error: 'The method must be scaleot (ScaleOT) or uniform (uniform LayerDrop).' }).optional(),
    /** N_a: [bottom, top] adapter layers. */
    adapterLayers: z.tuple([wholeNumber('number of bottom adapter layers', 0, 4096), wholeNumber('number of top adapter layers', 0, 4096)], { error: 'The adapter layers are two whole numbers: bottom and top.' }).optional(),
    /** α: fraction of each group replaced by harmonizers (uniform: dropped). */
    alpha: ratio('replace ratio α', false).optional(),
    /** β: rank ratio of Selective Rank Compression; 1 = off. */
    beta: ratio('rank ratio β', true).optional(),
    groupSize: wholeNumber('group size', 1, 4096).optional(),
    steps: wholeNumber('number of steps', 0, 10_000_000).optional(),
    batchSize: wholeNumber('batch size', 1, 4096).optional(),
    seqLen: wholeNumber('sequence length', 2, 1 << 20).optional(),
    seed: wholeNumber('seed', 0, 2 ** 31 - 1).optional(),
    /** Distil with KD to the full model as well (slower). */
    kd: z.boolean({ error: 'KD must be on or off.' }).optional(),
    /** The private key file (offsite keygen) that signs the package; absent or null: unsigned. */
    signKey: fullPath('path of the signing key', '/home/me/keys/owner.key').nullable().optional(),
  })
  .strict();

export type EmulatorBuildRequestView = z.input<typeof emulatorBuildRequestSchema>;

const overrideSchema = z
  .object({
    reason: z
      .string({ error: 'The override reason must be text.' })
      .trim()
      .min(1, { error: 'Give a reason for the override; it is recorded in the audit log with the plug-in.' })
      .max(1000, { error: 'The override reason must be at most 1000 characters.' }),
  })
  .strict();

export const plugInRequestSchema = z
  .object({
    model: fullPath('path of the full model', '/models/tinyllama'),
    /** An imported adapter package (adapters.list)… */
    adapterId: sha256Id('An adapter id', 'the list of imported adapters').optional(),
    /** …or an adapter folder where it is (an adapter package, a PEFT LoRA folder or full adapter layers). */
    adapterPath: fullPath('adapter folder', '/media/usb/adapter-package').optional(),
    /** The new folder for the tuned model (must not exist yet). */
    out: fullPath('output folder', '/models/tinyllama-tuned'),
    /** Merge LoRA into the weights; otherwise the LoRA adapter is kept beside the unchanged model. */
    merge: z.boolean({ error: 'Merge must be on or off.' }).optional(),
    /** The emulator the adapter was tuned on: an imported one, or a package folder. Default: found by its hash. */
    emulatorId: sha256Id('An emulator id', 'the list of imported emulators').optional(),
    emulatorPath: fullPath('emulator package folder', '/media/usb/tinyllama-emulator').optional(),
    /** Accept an unsigned or untrusted adapter package; the reason goes into the audit log. */
    override: overrideSchema.optional(),
  })
  .strict()
  .refine((r) => (r.adapterId === undefined) !== (r.adapterPath === undefined), { error: 'Choose either an imported adapter or an adapter folder, not both and not neither.' })
  .refine((r) => r.emulatorId === undefined || r.emulatorPath === undefined, { error: 'Name the emulator by its id or by its folder, not both.' });

export type PlugInRequestView = z.input<typeof plugInRequestSchema>;

export const buildRequests = {
  /** BUILD_DEFAULTS: what the Build emulator form starts from. */
  'emulatorBuild.defaults': noRequest,
  /** Starts building in a worker; progress on job.progress (kind "emulator.build"), the end on job.finished. */
  'emulatorBuild.start': emulatorBuildRequestSchema,
  /** Asks a running build to stop at its next step; no package is written. */
  'emulatorBuild.cancel': z.object({ jobId }).strict(),
  /** One build's state with its whole history (loss per step, score snapshots); without a job id, the latest build. */
  'emulatorBuild.status': z.object({ jobId: jobId.optional() }).strict(),
  /** Plugs a returned adapter into the full model in a worker and writes the tuned model; audited. */
  'plugin.run': plugInRequestSchema,
} as const;

export interface BuildDefaultsView {
  method: BuildMethodName;
  adapterLayers: [number, number];
  alpha: number;
  beta: number;
  groupSize: number;
  steps: number;
  batchSize: number;
  /** null = min(256, the model's context). */
  seqLen: number | null;
  seed: number;
  kd: boolean;
  /** The importance update interval K and candidate sets R (fixed on this screen; the CLI sets them). */
  interval: number;
  candidates: number;
}

/** A snapshot of the replaceability scores (by original middle layer) after an importance update. */
export interface ScoreSnapshot {
  /** Steps done when the scores were updated. */
  step: number;
  scores: Record<string, number>;
}

export interface LayerMapEntryView {
  layer: number;
  role: 'adapter' | 'kept' | 'kept-compressed' | 'harmonizer' | 'dropped';
  index: number | null;
}

export interface BuildResultView {
  out: string;
  manifestSha256: string;
  signerKeyId: string | null;
  method: BuildMethodName;
  layerMap: LayerMapEntryView[];
  adapterLayers: [number, number];
  alpha: number;
  beta: number;
  scores: Record<string, number>;
  replaced: number[];
  dropped: number[];
  /** Reference perplexities on the held-out distillation text (manifest reference numbers). */
  emuZsPpl: number;
  fullZsPpl: number;
  referenceTask: string | null;
  src: { beta: number; projections: string[]; keptAttentionBefore: number; keptAttentionAfter: number } | null;
  parameterCount: number;
  sourceParameterCount: number;
  /** Bytes of the package's files and of the source model's files. */
  packageBytes: number;
  sourceBytes: number;
  auditSeq: number;
}

export interface BuildJobView {
  jobId: string;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  /** What the request asked for, with the defaults filled in. */
  request: { model: string; out: string; distillData: string; method: BuildMethodName; adapterLayers: [number, number]; alpha: number; beta: number; groupSize: number; steps: number; signKey: string | null };
  startedAt: string;
  finishedAt: string | null;
  /** The latest status sentence. */
  message: string;
  /** Set once the worker has loaded the model. */
  layers: number | null;
  middle: number[];
  groups: number[][];
  /** Steps done and the total (0 for uniform LayerDrop without KD). */
  step: number;
  totalSteps: number | null;
  /** Training loss per step (index = step − 1). */
  losses: number[];
  /** Layers the latest step replaced by their harmonizers. */
  replacedNow: number[];
  /** The latest replaceability per middle layer, and its history. */
  scores: Record<string, number>;
  scoreHistory: ScoreSnapshot[];
  /** Layers that would be replaced if the build ended now: per group, the highest scores. */
  wouldReplace: number[];
  emuZsPpl: number | null;
  fullZsPpl: number | null;
  result: BuildResultView | null;
  error: string | null;
}

export interface PlugInFileView {
  path: string;
  size: number;
  sha256: string;
}

export interface PlugInResultView {
  out: string;
  format: 'peft-lora' | 'full-layers';
  merged: boolean;
  layerMapping: Array<{ adapterLayer: number; modelLayer: number }>;
  changedWeights: number;
  /** SHA-256 of the whole output folder (canonical listing) and of each file. */
  sha256: string;
  files: PlugInFileView[];
  /** Hashes of what went in. */
  inputs: { model: string; adapter: string; emulator: string | null };
  /** The emulator package whose layer map placed the adapter layers, when there was one. */
  emulatorPath: string | null;
  adapterSigner: { keyId: string; trusted: boolean } | null;
  auditSeq: number;
}

export interface BuildResponses {
  'emulatorBuild.defaults': BuildDefaultsView;
  'emulatorBuild.start': { jobId: string; out: string };
  'emulatorBuild.cancel': { jobId: string; cancelled: boolean };
  'emulatorBuild.status': BuildJobView | null;
  'plugin.run': PlugInResultView;
}

export const buildChannelFlags = {
  'emulatorBuild.defaults': { mutates: false },
  // Starts a worker, writes a package and appends emulator.built.
  'emulatorBuild.start': { mutates: true },
  'emulatorBuild.cancel': { mutates: true },
  'emulatorBuild.status': { mutates: false },
  // Writes the tuned model and appends plugin.finished.
  'plugin.run': { mutates: true },
} as const;
