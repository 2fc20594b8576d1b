// The evaluation part of the IPC contract: request schemas and response types of the eval.*
// channels. contract.ts spreads these into its one channel map. Like contract.ts, this file
// imports nothing but zod and schemas.ts (the renderer imports it type-only, the e2e bridge bundles it).
// services/evaluations.ts builds these shapes; the compiler checks they agree.
import { z } from 'zod';
import { noRequest, fullPath, wholeNumber } from './schemas';

export const EVAL_METRIC_NAMES = ['ppl', 'mc', 'em'] as const;
export type EvalMetricName = (typeof EVAL_METRIC_NAMES)[number];

/** The columns of the offsite-tuning results table (ALGORITHMS.md §1), in display order. */
export const RESULT_COLUMNS = ['fullZS', 'emuZS', 'emuFT', 'plugin', 'fullFT'] as const;
export type ResultColumn = (typeof RESULT_COLUMNS)[number];

export const RESULT_COLUMN_LABELS: Record<ResultColumn, string> = {
  fullZS: 'Full ZS',
  emuZS: 'Emu ZS',
  emuFT: 'Emu FT',
  plugin: 'Plug-in',
  fullFT: 'Full FT',
};

export const evalRequests = {
  /** Starts an evaluation job; progress comes on job.progress (kind "eval"), the end on job.finished. */
  'eval.run': z
    .object({
      /** A model folder (config.json + safetensors) or a llama2.c .bin file. */
      model: fullPath('path of the model', '/models/tinyllama').optional(),
      /** An emulator package folder (verified before use). */
      emulator: fullPath('path of the emulator package', '/media/usb/emulator-pkg').optional(),
      /** An emulator imported into the data folder (emulators.list), by its manifest SHA-256. */
      emulatorId: z.string({ error: 'An emulator id must be text.' }).regex(/^[0-9a-f]{64}$/, { error: 'An emulator id is the 64-character SHA-256 of its manifest.' }).optional(),
      /** A PEFT LoRA or full-layer adapter folder. */
      adapter: fullPath('path of the adapter folder', '/runs/run-1/adapter').optional(),
      /** An imported dataset (datasets.list). */
      dataset: z.string({ error: 'Choose an imported dataset.' }).regex(/^[0-9a-f]{64}$/, { error: 'A dataset id is the 64-character SHA-256 of its file.' }),
      /** Default: from the dataset's format. */
      metric: z.enum(EVAL_METRIC_NAMES, { error: 'The metric must be ppl, mc or em.' }).optional(),
      seqLen: wholeNumber('window length', 2, 1 << 20).optional(),
      batchSize: wholeNumber('batch size', 1, 4096).optional(),
      maxNewTokens: wholeNumber('number of new tokens', 1, 4096).optional(),
      /** Which results-table column this evaluation fills (default: inferred when unambiguous). */
      column: z.enum(RESULT_COLUMNS, { error: 'The results-table column must be one of fullZS, emuZS, emuFT, plugin, fullFT.' }).optional(),
    })
    .strict()
    .refine((r) => [r.model, r.emulator, r.emulatorId].filter((x) => x !== undefined).length === 1, { error: 'Give either a model or an emulator, not both and not neither.' }),
  /** Cancels a running evaluation (it stops after the current batch). */
  'eval.cancel': z.object({ id: z.uuid({ error: 'An evaluation id is a UUID.' }) }).strict(),
  /** This session's evaluations and every finished one in the audit trail, newest first. */
  'eval.list': noRequest,
  /** The offsite-tuning results table of every task with results. */
  'eval.table': noRequest,
} as const;

export interface EvaluationScoresView {
  ppl?: number;
  nll?: number;
  tokens?: number;
  acc?: number;
  acc_norm?: number;
  em?: number;
  n?: number;
}

export interface EvaluationView {
  id: string;
  status: 'running' | 'finished' | 'failed' | 'cancelled';
  startedAt: string | null;
  finishedAt: string | null;
  metric: EvalMetricName | null;
  /** The dataset evaluated on: the results table's task. */
  task: { name: string; sha256: string };
  source: { kind: 'model' | 'emulator'; name: string };
  adapter: string | null;
  column: ResultColumn | null;
  scores: EvaluationScoresView | null;
  progress: { done: number; total: number | null; message: string } | null;
  /** Why it failed, as a sentence. */
  error: string | null;
  executionProvider: string | null;
  /** The evaluation.finished audit event. */
  auditSeq: number | null;
}

/** One row of the offsite-tuning results table: one task, one metric, the latest value per column. */
export interface ResultsTableRow {
  task: { name: string; sha256: string };
  /** ppl, acc, acc_norm or em. */
  metric: 'ppl' | 'acc' | 'acc_norm' | 'em';
  higherIsBetter: boolean;
  columns: Partial<Record<ResultColumn, number>>;
  /** Full FT − Plug-in and Plug-in − Emu FT, when both sides exist. */
  gaps: { utility: number | null; privacy: number | null };
}

export interface EvalResponses {
  'eval.run': { id: string };
  'eval.cancel': { id: string; cancelled: boolean };
  'eval.list': EvaluationView[];
  'eval.table': ResultsTableRow[];
}

export const evalChannelFlags = {
  // Starts a job and appends evaluation.finished.
  'eval.run': { mutates: true },
  'eval.cancel': { mutates: true },
  'eval.list': { mutates: false },
  'eval.table': { mutates: false },
} as const;
