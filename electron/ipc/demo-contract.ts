// The bundled demo's part of the IPC contract (demo.*): the whole offsite-tuning pipeline of
// `offsite demo` started from the Demo screen. contract.ts spreads these into its one channel map.
// Like contract.ts, this file imports nothing but zod and schemas.ts (the renderer imports it
// type-only, the e2e bridge bundles it).
//
// Progress goes out as job.progress with kind "demo": stage "stage-start" (step = stage number,
// message = its title), "stage-done" (message = its summary line; metrics seconds and cpuSeconds)
// or "detail" (message = one detail line, such as a tuning step); the end as job.finished.
import { z } from 'zod';
import { fullPath, noRequest } from './schemas';
import type { ResultColumn } from './eval-contract';

const jobId = z.string({ error: 'A demo job id must be text.' }).regex(/^demo-[0-9a-f]{12}$/, { error: 'A demo job id looks like demo-0123456789ab, as demo.start returned it.' });

export const demoStartRequestSchema = z
  .object({
    /** The much smaller budget of `offsite demo --quick`: checks the pipeline, says little about quality. */
    quick: z.boolean({ error: 'Quick must be on or off.' }),
    /** A new or empty folder for everything the demo writes. */
    out: fullPath('output folder', '/home/me/offsite-demo'),
  })
  .strict();

export type DemoStartRequestView = z.input<typeof demoStartRequestSchema>;

export const demoRequests = {
  /** A suggested output folder (a new demo-<date-time> folder in the data folder, as the CLI uses). */
  'demo.defaults': noRequest,
  /** Starts the demo; progress on job.progress (kind "demo"), the end on job.finished. One at a time. */
  'demo.start': demoStartRequestSchema,
  /** Asks the running demo to stop; the folders written so far stay. */
  'demo.cancel': z.object({ jobId }).strict(),
  /** One demo's state with every stage and detail line so far; without a job id, the latest demo. */
  'demo.status': z.object({ jobId: jobId.optional() }).strict(),
} as const;

/** A number with its text exactly as `offsite demo` / `offsite table` print it. */
export interface DemoCell {
  value: number;
  text: string;
}

export interface DemoColumnView {
  id: ResultColumn;
  /** Full ZS, Emu ZS, Emu FT, Plug-in, Full FT. */
  title: string;
  headline: DemoCell;
  /** acc_norm, for multiple-choice tasks; null otherwise. */
  accNorm: DemoCell | null;
}

export interface DemoTaskView {
  task: string;
  /** Headline metric: ppl (lower is better), acc or em (higher is better). */
  metric: 'ppl' | 'acc' | 'em';
  higherIsBetter: boolean;
  testExamples: number;
  /** The five columns in the order the CLI prints them. */
  columns: DemoColumnView[];
  /** utility = Full FT − Plug-in, privacy = Plug-in − Emu FT. */
  gaps: { utility: DemoCell; privacy: DemoCell };
  /** The task's block of the CLI's output, line by line. */
  lines: string[];
}

export interface DemoResultView {
  budget: string;
  tasks: DemoTaskView[];
  emulator: {
    path: string;
    manifestSha256: string;
    signerKeyId: string | null;
    triplet: { adapterLayers: [number, number]; alpha: number; beta: number };
    replaced: number[];
    referencePpl: { emuZS: number; fullZS: number };
    parameterCount: number;
    sourceParameterCount: number;
  };
  auditVerified: boolean;
  audit: { database: string; events: number; verdict: string; export: string; report: string };
  out: string;
  home: string;
  resultsFile: string;
  totalSeconds: number;
}

export interface DemoStageView {
  index: number;
  title: string;
  /** stopped: the demo was cancelled or failed while this stage ran. */
  status: 'running' | 'done' | 'stopped';
  seconds: number | null;
  cpuSeconds: number | null;
  summary: string | null;
  /** Detail lines reported while the stage ran (tuning steps, evaluations, …). */
  details: string[];
}

export interface DemoJobView {
  jobId: string;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  quick: boolean;
  out: string;
  startedAt: string;
  finishedAt: string | null;
  /** The latest status sentence. */
  message: string;
  /** Stages the pipeline has; known once the first stage starts. */
  totalStages: number | null;
  stages: DemoStageView[];
  result: DemoResultView | null;
  error: string | null;
}

export interface DemoResponses {
  'demo.defaults': { out: string };
  'demo.start': { jobId: string; out: string };
  'demo.cancel': { jobId: string; cancelled: boolean };
  'demo.status': DemoJobView | null;
}

export const demoChannelFlags = {
  'demo.defaults': { mutates: false },
  // Writes keys, packages, runs and an audit log, and runs workers.
  'demo.start': { mutates: true },
  'demo.cancel': { mutates: true },
  'demo.status': { mutates: false },
} as const;
