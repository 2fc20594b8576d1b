/**
 * The whole offsite-tuning pipeline on the bundled demo assets (`offsite demo`, and the app could
 * call it the same way), plus the five-column results table for one task (`offsite table`).
 * Plain Node (no Electron import); every heavy stage runs in a worker thread inside the service it
 * calls (emulator build and plug-in: services/emulators; tuning: services/runs; evaluation:
 * services/evaluations), so this module only orchestrates, times and reports.
 *
 *   const r = await runDemo({ out, quick: true }, { onProgress: (p) => …, signal });
 *   r.tasks[0].table   // { fullZS, emuZS, emuFT, plugin, fullFT } on task A's test split
 *
 *   const t = await runFiveColumns(home, { model, emulator, train, eval, out, tuning }, hooks);
 *
 * Roles: the demo plays the model owner and the data owner in ONE data folder (one audit log): each
 * has its own key pair, and each trusts the other's public key there (the model owner's for
 * emulator packages, the data owner's for adapter packages). The Full FT baseline needs the full
 * model and the data together, which no real party has: it exists only to measure utility.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEMO_BASE_DIR, DEMO_TASKS_DIR } from '../../native-models/demo/paths';
import { DEMO_UTILITY_MARGIN, demoBudget, type DemoBudget, type DemoTaskName, type DemoTuning } from '../../native-models/demo/pipeline-config';
import type { EmulatorManifest } from '../../native-models/formats/package';
import type { SessionSettings } from '../../native-models/runtime/session';
import type { BuildProgress } from '../../native-models/scaleot/build';
import { TUNE_DEFAULTS, type TuneConfig, type TuneEmulator } from '../../native-models/tune/config';
import { emulatorAdapterBlocks } from '../../native-models/tune/emulator';
import type { TuneProgress, TuneResult } from '../../native-models/tune/engine';
import type { EvalMetric } from '../../native-models/eval/tasks';
import { openAudit, type AuditLog, type JsonValue } from './audit';
import { isImportedEmulator, verifyEmulatorPackage } from './emulator-trust';
import { buildEmulatorPackage, JobCancelledError, plugInAdapter, type BuiltEmulator } from './emulators';
import { EvaluationsService, type EvaluationView, type ResultColumn } from './evaluations';
import { writeFileAtomic } from './atomic-write';
import { generateKey, readPublicKey, trustKeyFile } from './keys';
import { buildAdapterPackage, importPackage } from './packages';
import { openRuns, type RunsService } from './runs';
import { ServiceError } from './service-error';

export const COLUMNS: readonly ResultColumn[] = ['fullZS', 'emuZS', 'emuFT', 'plugin', 'fullFT'];
export const COLUMN_TITLES: Record<ResultColumn, string> = { fullZS: 'Full ZS', emuZS: 'Emu ZS', emuFT: 'Emu FT', plugin: 'Plug-in', fullFT: 'Full FT' };

/** Progress of a pipeline: stage boundaries (with wall and CPU time) and detail lines. */
export type DemoProgress =
  | { kind: 'stage'; phase: 'start'; index: number; total: number; title: string }
  | { kind: 'stage'; phase: 'done'; index: number; total: number; title: string; seconds: number; cpuSeconds: number; summary: string }
  | { kind: 'detail'; message: string };

export interface DemoHooks {
  onProgress?: (p: DemoProgress) => void;
  signal?: AbortSignal;
}

export interface StageTiming {
  stage: string;
  seconds: number;
  /** CPU time of the whole process (all worker threads) during the stage. */
  cpuSeconds: number;
}

/** The headline number of each column (ppl, or acc for multiple choice). */
export type FiveColumns = Record<ResultColumn, number>;

export interface TaskTable {
  task: string;
  /** Headline metric: ppl (lower is better), acc (higher is better) or em. */
  metric: 'ppl' | 'acc' | 'em';
  higherIsBetter: boolean;
  table: FiveColumns;
  /** utility = Full FT − Plug-in, privacy = Plug-in − Emu FT (same sign convention as the Evaluate screen). */
  gaps: { utility: number; privacy: number };
  /** Every score of every column (ppl/nll/tokens, or acc/acc_norm/n). */
  scores: Record<ResultColumn, Record<string, number>>;
  evaluations: Array<{ column: ResultColumn; id: string; auditSeq: number | null; seconds: number }>;
  trainFile: string;
  testFile: string;
  testExamples: number;
  runs: TaskRun[];
  plugin: { out: string; auditSeq: number; format: string; merged: boolean; layerMapping: Array<{ adapterLayer: number; modelLayer: number }> };
}

export interface TaskRun {
  task: string;
  /** emulator: the data owner's IST LoRA run on the emulator; full: the Full FT baseline. */
  role: 'emulator' | 'full';
  runId: string;
  out: string;
  adapter: string;
  adapterPackage: { path: string; manifestSha256: string; signerKeyId: string | null; auditSeq: number } | null;
  steps: number;
  finalLoss: number | null;
  tokensPerSecond: number;
  tunedLayers: number[];
  parameterCount: number;
  seconds: number;
}

// ── Stage timing ────────────────────────────────────────────────────────────────────────────────

class Stages {
  readonly timings: StageTiming[] = [];
  private index = 0;
  constructor(
    private readonly total: number,
    private readonly hooks: DemoHooks,
  ) {}

  detail(message: string): void {
    this.hooks.onProgress?.({ kind: 'detail', message });
  }

  async run<T>(title: string, fn: () => Promise<T>, summarize: (t: T) => string = () => ''): Promise<T> {
    cancelled(this.hooks.signal, title);
    const index = ++this.index;
    this.hooks.onProgress?.({ kind: 'stage', phase: 'start', index, total: this.total, title });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const value = await fn();
    const seconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    const cpuSeconds = (c.user + c.system) / 1e6;
    this.timings.push({ stage: title, seconds, cpuSeconds });
    this.hooks.onProgress?.({ kind: 'stage', phase: 'done', index, total: this.total, title, seconds, cpuSeconds, summary: summarize(value) });
    return value;
  }
}

function cancelled(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new JobCancelledError(`Cancelled before or during ${what}; the folders written so far stay as they are.`);
}

/** A cancelled package copy or verification rejects with an AbortError: the same as any cancel. */
export function asCancel(e: unknown): unknown {
  return (e as Error)?.name === 'AbortError' ? new JobCancelledError('Cancelled; the folders written so far stay as they are.') : e;
}

// ── One task: the five columns ─────────────────────────────────────────────────────────────────

export interface FiveColumnsRequest {
  /** The full model (Hugging Face folder or llama2.c file). */
  model: string;
  /** The emulator package, verified and inside the data folder (importEmulatorForTable / importPackage). */
  emulator: { path: string; ref: TuneEmulator; manifest: EmulatorManifest };
  /** The emulator package the model owner plugs with (default: `emulator.path`). */
  ownerEmulator?: string;
  task: string;
  train: string;
  eval: string;
  metric?: EvalMetric;
  /** Folder for this task's runs, adapter package and plugged-in model (must be new or empty). */
  out: string;
  tuning: DemoTuning;
  /** The data owner's private key: the adapter is exported as a signed package, and plugged in from it. */
  signKey?: string | null;
  evalBatchSize?: number;
  provider?: 'auto' | 'cpu' | 'cuda';
  threads?: number | null;
}

interface Shared {
  home: string;
  audit: AuditLog;
  runs: RunsService;
  evals: EvaluationsService;
  stages: Stages;
  hooks: DemoHooks;
}

function tuneConfig(req: FiveColumnsRequest, role: 'emulator' | 'full', out: string): TuneConfig {
  const t = req.tuning;
  return {
    ...TUNE_DEFAULTS,
    model: role === 'emulator' ? req.emulator.path : resolve(req.model),
    ...(role === 'emulator' ? { emulator: req.emulator.ref } : {}),
    data: resolve(req.train),
    evalData: null,
    out,
    peft: 'lora',
    rank: t.rank,
    alpha: t.alpha,
    dropout: t.dropout,
    targets: [...t.targets],
    // The emulator run tunes its adapter blocks; the Full FT baseline every layer of the full model.
    layers: role === 'emulator' ? emulatorAdapterBlocks(req.emulator.manifest) : null,
    sampler: t.sampler,
    ist: { ...TUNE_DEFAULTS.ist, ratio: t.istRatio },
    lr: t.lr,
    warmup: t.warmup,
    schedule: t.schedule,
    steps: t.steps,
    epochs: null,
    batchSize: t.batchSize,
    gradAccum: 1,
    seqLen: t.seqLen,
    seed: t.seed,
    shuffle: true,
    checkpointEvery: Math.max(t.steps, 1),
    provider: req.provider ?? 'auto',
    threads: req.threads ?? null,
  };
}

async function tune(s: Shared, req: FiveColumnsRequest, role: 'emulator' | 'full', out: string): Promise<{ runId: string; result: TuneResult; seconds: number }> {
  const t0 = performance.now();
  const started = await s.runs.start(tuneConfig(req, role, out));
  let lastTenth = -1;
  const off = s.runs.onProgress((e) => {
    if (e.runId !== started.runId) return;
    const p: TuneProgress = e.progress;
    if (p.kind === 'started') s.stages.detail(`  tuning ${p.parameterCount} LoRA parameters in layers ${p.tunableLayers.join(', ')} on ${p.provider.toUpperCase()}; ${p.examples} examples, sequences of ${p.seqLen}, ${p.totalSteps} updates`);
    if (p.kind === 'step') {
      const tenth = Math.floor(((p.step + 1) * 10) / p.totalSteps);
      if (tenth !== lastTenth || p.step === 0) {
        lastTenth = tenth;
        s.stages.detail(`  step ${p.step + 1}/${p.totalSteps} loss ${p.loss.toFixed(4)} layers ${p.selected.join(',')} ${Math.round(p.tokensPerSecond)} tok/s`);
      }
    }
  });
  const onAbort = () => s.runs.cancel(started.runId);
  s.hooks.signal?.addEventListener('abort', onAbort);
  try {
    const outcome = await started.done;
    if (outcome.status === 'cancelled') throw new JobCancelledError(`Tuning was cancelled; its checkpoint is in ${join(out, 'checkpoint')}.`);
    if (outcome.status === 'failed') throw new ServiceError(`Tuning ${role === 'emulator' ? 'on the emulator' : 'the full model'} failed: ${outcome.error}`);
    if (!outcome.result.adapter) throw new ServiceError(`Tuning finished without writing an adapter into ${out}.`);
    return { runId: started.runId, result: outcome.result, seconds: (performance.now() - t0) / 1000 };
  } finally {
    s.hooks.signal?.removeEventListener('abort', onAbort);
    off();
  }
}

async function evaluate(s: Shared, req: FiveColumnsRequest, column: ResultColumn, source: { model?: string; emulator?: string; adapter?: string | null }): Promise<EvaluationView & { seconds: number }> {
  const t0 = performance.now();
  const settings: SessionSettings = { provider: req.provider ?? 'auto', ...(req.threads ? { intraOpThreads: req.threads } : {}) };
  const { id } = await s.evals.start({ ...source, data: req.eval, taskName: req.task, column, ...(req.metric ? { metric: req.metric } : {}), batchSize: req.evalBatchSize ?? 8, settings });
  const onAbort = () => s.evals.cancel(id);
  s.hooks.signal?.addEventListener('abort', onAbort);
  try {
    const v = await s.evals.wait(id);
    if (v.status === 'cancelled') throw new JobCancelledError(`The ${COLUMN_TITLES[column]} evaluation was cancelled.`);
    if (v.status !== 'finished' || !v.scores) throw new ServiceError(`The ${COLUMN_TITLES[column]} evaluation on ${req.task} failed: ${v.error ?? 'no scores came back'}`);
    return { ...v, seconds: (performance.now() - t0) / 1000 };
  } finally {
    s.hooks.signal?.removeEventListener('abort', onAbort);
  }
}

function headline(metric: EvaluationView['metric'], scores: Record<string, number>): { metric: TaskTable['metric']; value: number } {
  if (metric === 'ppl') return { metric: 'ppl', value: scores.ppl! };
  if (metric === 'mc') return { metric: 'acc', value: scores.acc! };
  return { metric: 'em', value: scores.em! };
}

/** A number as the results table prints it: one decimal from 100 up, four below (the Demo screen uses it too). */
export const fmt = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4));

async function ensureEmptyFolder(dir: string, what: string): Promise<void> {
  if (existsSync(dir) && (await readdir(dir)).length > 0) throw new ServiceError(`The ${what} ${dir} already exists and is not empty; choose a new folder.`);
  await mkdir(dir, { recursive: true });
}

async function countLines(file: string): Promise<number> {
  return (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim() !== '').length;
}

/** Tune on the emulator → export (+ sign) → plug in → Full FT → the five evaluations. */
async function fiveColumnsWith(s: Shared, req: FiveColumnsRequest): Promise<TaskTable> {
  const out = resolve(req.out);
  await ensureEmptyFolder(out, 'task folder');
  const task = req.task;
  const emuRunDir = join(out, 'data-owner', 'emulator-run');
  const fullRunDir = join(out, 'full-ft-run');
  const pluggedDir = join(out, 'model-owner', 'plugged-in-model');
  const runs: TaskRun[] = [];

  const emu = await s.stages.run(`${task}: IST LoRA tuning on the emulator (data owner)`, () => tune(s, req, 'emulator', emuRunDir), (r) => `${r.result.stepsDone} updates, final loss ${r.result.finalLoss?.toFixed(4) ?? '—'}`);
  cancelled(s.hooks.signal, 'tuning');
  let adapterPackage: TaskRun['adapterPackage'] = null;
  if (req.signKey) {
    const pkg = await s.stages.run(`${task}: adapter export, signed by the data owner`, () =>
      buildAdapterPackage(s.home, {
        adapterDir: emu.result.adapter!,
        emulatorDir: req.emulator.path,
        out: join(emuRunDir, 'adapter-package'),
        signingKey: req.signKey!,
        runId: emu.runId,
        audit: s.audit,
        training: {
          runId: emu.runId,
          peft: 'lora',
          sampler: req.tuning.sampler,
          steps: emu.result.stepsDone,
          finalLoss: emu.result.finalLoss,
          tunedBlocks: emu.result.tunableLayers,
          layerMapping: (emu.result.layerMapping ?? []).map((m) => ({ adapterLayer: m.adapterLayer, modelLayer: m.modelLayer })),
          rank: req.tuning.rank,
          alpha: req.tuning.alpha,
          targets: [...req.tuning.targets],
        },
      }),
      (p) => `manifest ${p.manifestSha256.slice(0, 16)}…, key ${p.signerKeyId ?? 'none'}`,
    );
    adapterPackage = { path: pkg.dir, manifestSha256: pkg.manifestSha256, signerKeyId: pkg.signerKeyId, auditSeq: pkg.event.seq };
  }
  runs.push({ task, role: 'emulator', runId: emu.runId, out: emuRunDir, adapter: emu.result.adapter!, adapterPackage, steps: emu.result.stepsDone, finalLoss: emu.result.finalLoss, tokensPerSecond: emu.result.tokensPerSecond, tunedLayers: emu.result.tunableLayers, parameterCount: emu.result.parameterCount, seconds: emu.seconds });

  const plugged = await s.stages.run(`${task}: plug-in into the full model (model owner)`, () =>
    plugInAdapter(s.home, {
      model: req.model,
      adapter: adapterPackage?.path ?? emu.result.adapter!,
      out: pluggedDir,
      emulator: req.ownerEmulator ?? req.emulator.path,
      merge: true,
      // The data folder's trusted keys: the demo trusted the data owner's key there.
      trustedKeys: s.audit.trustedKeys().map((k) => ({ publicKey: k.publicKey, label: k.label })),
    }, { audit: s.audit, ...(s.hooks.signal ? { signal: s.hooks.signal } : {}) }),
    (p) => `LoRA merged: ${p.result.layerMapping.map((m) => `block ${m.adapterLayer} → layer ${m.modelLayer}`).join(', ')}`,
  );
  cancelled(s.hooks.signal, 'the plug-in');

  const full = await s.stages.run(`${task}: Full FT baseline (LoRA on the full model, same budget)`, () => tune(s, req, 'full', fullRunDir), (r) => `${r.result.stepsDone} updates, final loss ${r.result.finalLoss?.toFixed(4) ?? '—'}`);
  runs.push({ task, role: 'full', runId: full.runId, out: fullRunDir, adapter: full.result.adapter!, adapterPackage: null, steps: full.result.stepsDone, finalLoss: full.result.finalLoss, tokensPerSecond: full.result.tokensPerSecond, tunedLayers: full.result.tunableLayers, parameterCount: full.result.parameterCount, seconds: full.seconds });
  cancelled(s.hooks.signal, 'tuning');

  const testExamples = await countLines(req.eval);
  const evaluated = await s.stages.run(`${task}: evaluating the five columns on ${testExamples} test examples`, async () => {
    const sources: Record<ResultColumn, { model?: string; emulator?: string; adapter?: string | null }> = {
      fullZS: { model: req.model },
      emuZS: { emulator: req.emulator.path },
      emuFT: { emulator: req.emulator.path, adapter: emu.result.adapter! },
      plugin: { model: plugged.result.out },
      fullFT: { model: req.model, adapter: full.result.adapter! },
    };
    const views = {} as Record<ResultColumn, EvaluationView & { seconds: number }>;
    for (const c of COLUMNS) {
      views[c] = await evaluate(s, req, c, sources[c]);
      const h = headline(views[c].metric, views[c].scores as Record<string, number>);
      s.stages.detail(`  ${COLUMN_TITLES[c].padEnd(8)} ${h.metric} ${fmt(h.value)}  (${views[c].seconds.toFixed(1)} s)`);
    }
    return views;
  });

  const scores = {} as TaskTable['scores'];
  const table = {} as FiveColumns;
  let metric: TaskTable['metric'] = 'ppl';
  for (const c of COLUMNS) {
    scores[c] = { ...(evaluated[c].scores as Record<string, number>) };
    const h = headline(evaluated[c].metric, scores[c]);
    table[c] = h.value;
    metric = h.metric;
  }
  return {
    task,
    metric,
    higherIsBetter: metric !== 'ppl',
    table,
    gaps: { utility: table.fullFT - table.plugin, privacy: table.plugin - table.emuFT },
    scores,
    evaluations: COLUMNS.map((c) => ({ column: c, id: evaluated[c].id, auditSeq: evaluated[c].auditSeq, seconds: evaluated[c].seconds })),
    trainFile: resolve(req.train),
    testFile: resolve(req.eval),
    testExamples,
    runs,
    plugin: { out: plugged.result.out, auditSeq: plugged.event.seq, format: plugged.result.format, merged: plugged.result.merged, layerMapping: plugged.result.layerMapping },
  };
}

function openShared(home: string, stages: Stages, hooks: DemoHooks): Shared {
  const audit = openAudit(home);
  const runs = openRuns(home);
  const evals = new EvaluationsService(home, { audit: () => audit });
  return { home, audit, runs, evals, stages, hooks };
}

function closeShared(s: Shared): void {
  s.runs.close();
  s.audit.close();
}

/** Stages one task adds to a pipeline (for the "[i/n]" counter). */
export const stagesPerTask = (signed: boolean): number => (signed ? 5 : 4);

export interface TableRequest extends Omit<FiveColumnsRequest, 'emulator'> {
  /** An emulator package anywhere: verified (and imported into the data folder) first. */
  emulator: string;
  /** Keys trusted for the emulator's signature besides the data folder's own trusted keys. */
  trustedKeys?: Array<{ publicKey: string | import('node:crypto').KeyObject; label: string }>;
  /** Accept an intact but unsigned or untrusted emulator; recorded with the reason. */
  override?: { reason: string };
}

export interface TableResult extends TaskTable {
  emulator: { path: string; manifestSha256: string; signerKeyId: string | null; override: string | null };
  out: string;
  timings: StageTiming[];
  totalSeconds: number;
}

/** Verifies an emulator package and files it in the data folder (as `offsite tune --emulator` does). */
async function prepareEmulator(home: string, audit: AuditLog, path: string, o: { trustedKeys?: TableRequest['trustedKeys']; override?: { reason: string }; signal?: AbortSignal }): Promise<FiveColumnsRequest['emulator']> {
  const src = resolve(path);
  if (!existsSync(src)) throw new ServiceError(`The emulator package ${path} does not exist.`);
  const trustedKeys = [...(o.trustedKeys ?? []), ...audit.trustedKeys().map((k) => ({ publicKey: k.publicKey, label: k.label }))];
  if (isImportedEmulator(home, src)) {
    const report = await verifyEmulatorPackage(src, { trustedKeys, home, ...(o.signal ? { signal: o.signal } : {}), ...(o.override ? { allowUnsigned: o.override } : {}) });
    if (!report.ok || report.manifest?.kind !== 'emulator' || !report.manifestSha256) throw new PackageRejectedError(report.verdict);
    return { path: src, manifest: report.manifest, ref: { manifestSha256: report.manifestSha256, signerKeyId: report.signer?.keyId ?? null, override: report.override?.reason ?? null } };
  }
  const r = await importPackage(home, src, { trustedKeys, kind: 'emulator', audit, ...(o.signal ? { signal: o.signal } : {}), ...(o.override ? { override: o.override } : {}) });
  if (!r.ok || !r.path || r.report.manifest?.kind !== 'emulator' || !r.report.manifestSha256) throw new PackageRejectedError(`${r.report.verdict} (audit event #${r.event.seq} ${r.event.action})`);
  return { path: r.path, manifest: r.report.manifest, ref: { manifestSha256: r.report.manifestSha256, signerKeyId: r.report.signer?.keyId ?? null, override: r.report.override?.reason ?? null } };
}

/** The emulator package failed verification (the CLI exits 3). */
export class PackageRejectedError extends ServiceError {
  override name = 'PackageRejectedError';
}

/** `offsite table`: the five columns for one task, every tuning with the same budget. */
export async function runFiveColumns(home: string, req: TableRequest, hooks: DemoHooks = {}): Promise<TableResult> {
  const t0 = performance.now();
  for (const [label, p] of [['model', req.model], ['training data file', req.train], ['evaluation data file', req.eval]] as const) {
    if (!existsSync(resolve(p))) throw new ServiceError(`The ${label} ${p} does not exist.`);
  }
  const out = resolve(req.out);
  await ensureEmptyFolder(out, 'output folder');
  const stages = new Stages(1 + stagesPerTask(Boolean(req.signKey)), hooks);
  const s = openShared(home, stages, hooks);
  try {
    const emulator = await stages.run('verifying the emulator package', () => prepareEmulator(home, s.audit, req.emulator, { ...(req.trustedKeys ? { trustedKeys: req.trustedKeys } : {}), ...(req.override ? { override: req.override } : {}), ...(hooks.signal ? { signal: hooks.signal } : {}) }), (e) => `manifest ${e.ref.manifestSha256.slice(0, 16)}…, signer ${e.ref.signerKeyId ?? 'none'}`);
    const { emulator: _e, trustedKeys: _t, override: _o, ...rest } = req;
    const t = await fiveColumnsWith(s, { ...rest, emulator, out: join(out, 'task') });
    return { ...t, emulator: { path: emulator.path, ...emulator.ref }, out, timings: stages.timings, totalSeconds: (performance.now() - t0) / 1000 };
  } finally {
    closeShared(s);
  }
}

// ── The demo ───────────────────────────────────────────────────────────────────────────────────

export interface DemoRequest {
  /** A new or empty folder for everything the demo writes. */
  out: string;
  /** The data folder (audit log, keys, imported packages); default `<out>/home`. */
  home?: string | null;
  quick?: boolean;
  /** Replaces the budget chosen by `quick` (tests). */
  budget?: DemoBudget;
  provider?: 'auto' | 'cpu' | 'cuda';
  threads?: number | null;
}

export interface DemoResult {
  /** The primary task's (task A) five columns, metric and name. */
  table: FiveColumns;
  metric: TaskTable['metric'];
  task: string;
  /** Every task, primary first. */
  tasks: TaskTable[];
  emulator: {
    path: string;
    importedPath: string;
    manifestSha256: string;
    signerKeyId: string | null;
    method: string;
    triplet: { adapterLayers: [number, number]; alpha: number; beta: number };
    layerMap: Array<{ layer: number; role: string; index: number | null }>;
    replaced: number[];
    replaceability: Record<string, number>;
    distillData: string;
    steps: number;
    referencePpl: { emuZS: number; fullZS: number };
    parameterCount: number;
    sourceParameterCount: number;
  };
  runs: TaskRun[];
  auditVerified: boolean;
  audit: { database: string; events: number; verdict: string; export: string; report: string };
  keys: { modelOwner: { keyId: string; publicKey: string }; dataOwner: { keyId: string; publicKey: string } };
  budget: DemoBudget['name'];
  out: string;
  home: string;
  resultsFile: string;
  timings: StageTiming[];
  totalSeconds: number;
}

const TASK_SPLITS: Record<DemoTaskName, { train: string; test: string; metric: EvalMetric }> = {
  'email-lm': { train: 'email-lm-train.jsonl', test: 'email-lm-test.jsonl', metric: 'ppl' },
  'ham-spam': { train: 'ham-spam-train.jsonl', test: 'ham-spam-test.jsonl', metric: 'mc' },
};

/** The first `n` non-empty lines of a JSONL file, written to `to` (a smaller split for --quick). */
async function firstLines(from: string, to: string, n: number | null): Promise<string> {
  if (n === null) return from;
  const lines = (await readFile(from, 'utf8')).split('\n').filter((l) => l.trim() !== '');
  writeFileAtomic(to, `${lines.slice(0, n).join('\n')}\n`);
  return to;
}

const rel = (from: string, p: string): string => relative(from, p) || '.';

/** keygen → emulator build → sign → verify/import → per task: tune, export, plug-in, Full FT, five columns → audit verify. */
export async function runDemo(req: DemoRequest, hooks: DemoHooks = {}): Promise<DemoResult> {
  const t0 = performance.now();
  const budget = req.budget ?? demoBudget(req.quick === true);
  const out = resolve(req.out);
  await ensureEmptyFolder(out, 'demo output folder');
  const home = req.home ? resolve(req.home) : join(out, 'home');
  await mkdir(home, { recursive: true });
  const stages = new Stages(4 + budget.tasks.length * stagesPerTask(true), hooks);
  const s = openShared(home, stages, hooks);
  try {
    const provider = req.provider ?? 'auto';
    const threads = req.threads ?? null;
    const keysDir = join(out, 'keys');
    const keys = await stages.run('keys for the model owner and the data owner, each trusting the other', async () => {
      const owner = generateKey(s.audit, join(keysDir, 'model-owner.key'));
      const data = generateKey(s.audit, join(keysDir, 'data-owner.key'));
      // One data folder plays both sides: the data owner trusts the model owner's emulator signature,
      // the model owner trusts the data owner's adapter signature.
      trustKeyFile(s.audit, owner.publicPath, 'model owner (demo)', 'the demo\'s data owner accepts emulators signed by the model owner');
      trustKeyFile(s.audit, data.publicPath, 'data owner (demo)', 'the demo\'s model owner accepts adapters signed by the data owner');
      return { owner, data };
    }, (k) => `model owner ${k.owner.keyId}, data owner ${k.data.keyId}`);

    // ScaleOT distils on the MODEL OWNER's data, the pretraining text, never the data owner's task.
    const e = budget.emulator;
    const distillData = await firstLines(join(DEMO_TASKS_DIR, 'moby-dick-train.jsonl'), join(out, 'model-owner', `moby-dick-first-${e.distillChapters}-chapters.jsonl`), e.distillChapters);
    const pkgDir = join(out, 'model-owner', 'emulator-package');
    let lastStep = -1;
    const built: BuiltEmulator = await stages.run(`ScaleOT emulator build (${e.adapterLayers.join('+')} adapter layers, α ${e.alpha}, β ${e.beta}, ${e.steps} steps), signed by the model owner`, () =>
      buildEmulatorPackage(home, {
        model: DEMO_BASE_DIR,
        out: pkgDir,
        distillData,
        method: 'scaleot',
        adapterLayers: e.adapterLayers,
        alpha: e.alpha,
        beta: e.beta,
        groupSize: e.groupSize,
        steps: e.steps,
        interval: e.interval,
        batchSize: e.batchSize,
        seqLen: e.seqLen,
        lr: e.lr,
        validationFraction: e.validationFraction,
        signKey: keys.owner.privatePath,
        provider,
        threads,
      }, {
        audit: s.audit,
        ...(hooks.signal ? { signal: hooks.signal } : {}),
        onProgress: (p: BuildProgress) => {
          if (p.kind === 'step' && Math.floor(((p.step + 1) * 5) / p.steps) !== lastStep) {
            lastStep = Math.floor(((p.step + 1) * 5) / p.steps);
            stages.detail(`  step ${p.step + 1}/${p.steps} loss ${p.loss.toFixed(4)}${p.replaced.length ? ` replacing ${p.replaced.join(',')}` : ''}`);
          } else if (p.kind === 'evaluated') stages.detail(`  ${p.what === 'emuZS' ? 'Emu ZS' : 'Full ZS'} perplexity on held-out Moby Dick chapters: ${p.ppl.toFixed(3)} (${p.tokens} tokens)`);
        },
      }),
      (b) => `layers ${b.result.layerMap.map((l) => `${l.layer}:${l.role}`).join(' ')}`,
    );

    const imported = await stages.run('data owner: verify the emulator signature and import it', () => prepareEmulator(home, s.audit, built.result.out, { ...(hooks.signal ? { signal: hooks.signal } : {}) }), (i) => `imported as ${rel(out, i.path)}`);

    const tasks: TaskTable[] = [];
    for (const tb of budget.tasks) {
      const split = TASK_SPLITS[tb.task];
      const taskDir = join(out, 'tasks', tb.task);
      const testFile = await firstLines(join(DEMO_TASKS_DIR, split.test), join(out, 'data', `${tb.task}-test-first-${tb.evalExamples}.jsonl`), tb.evalExamples);
      tasks.push(
        await fiveColumnsWith(s, {
          model: DEMO_BASE_DIR,
          emulator: imported,
          ownerEmulator: built.result.out,
          task: tb.task,
          train: join(DEMO_TASKS_DIR, split.train),
          eval: testFile,
          metric: split.metric,
          out: taskDir,
          tuning: tb.tuning,
          signKey: keys.data.privatePath,
          evalBatchSize: budget.evalBatchSize,
          provider,
          threads,
        }),
      );
    }

    const exportFile = join(out, 'audit-export.json');
    const audit = await stages.run('audit: export for the auditor and verify the hash chain and signatures', async () => {
      const ex = s.audit.export({ out: exportFile });
      const report = s.audit.verify();
      return { ex, report };
    }, (a) => a.report.verdict);

    const r = built.result;
    const result: DemoResult = {
      table: tasks[0]!.table,
      metric: tasks[0]!.metric,
      task: tasks[0]!.task,
      tasks,
      emulator: {
        path: r.out,
        importedPath: imported.path,
        manifestSha256: r.manifestSha256,
        signerKeyId: r.signerKeyId,
        method: r.method,
        triplet: { adapterLayers: e.adapterLayers, alpha: e.alpha, beta: e.beta },
        layerMap: r.layerMap.map((l) => ({ layer: l.layer, role: l.role, index: l.index })),
        replaced: r.replaced,
        replaceability: Object.fromEntries(Object.entries(r.scores).map(([k, v]) => [k, v])),
        distillData,
        steps: e.steps,
        referencePpl: { emuZS: r.emuZsPpl, fullZS: r.fullZsPpl },
        parameterCount: r.parameterCount,
        sourceParameterCount: r.sourceParameterCount,
      },
      runs: tasks.flatMap((t) => t.runs),
      auditVerified: audit.report.ok,
      audit: { database: s.audit.path, events: s.audit.log().length, verdict: audit.report.verdict, export: audit.ex.json, report: audit.ex.html },
      keys: {
        modelOwner: { keyId: keys.owner.keyId, publicKey: keys.owner.publicPath },
        dataOwner: { keyId: keys.data.keyId, publicKey: keys.data.publicPath },
      },
      budget: budget.name,
      out,
      home,
      resultsFile: join(out, 'results.json'),
      timings: stages.timings,
      totalSeconds: (performance.now() - t0) / 1000,
    };
    writeFileAtomic(result.resultsFile, `${JSON.stringify(result as unknown as JsonValue, null, 2)}\n`);
    return result;
  } finally {
    closeShared(s);
  }
}

/**
 * The three claims of an offsite-tuning table (ALGORITHMS.md §1), read off the numbers: Plug-in
 * beats Full ZS (the adapter transfers), Emu FT stays below Plug-in (privacy: the emulator alone is
 * no substitute), and Plug-in is within DEMO_UTILITY_MARGIN of Full FT (utility).
 */
export function demoChecks(t: Pick<TaskTable, 'metric' | 'higherIsBetter' | 'table'>): { pluginBeatsFullZS: boolean; emuFTBelowPlugin: boolean; pluginNearFullFT: boolean; margin: string } {
  const better = (a: number, b: number) => (t.higherIsBetter ? a > b : a < b);
  const { plugin, fullFT, fullZS, emuFT } = t.table;
  const near =
    t.metric === 'ppl'
      ? plugin <= fullFT * (1 + DEMO_UTILITY_MARGIN.pplRelative)
      : t.higherIsBetter
        ? plugin >= fullFT - DEMO_UTILITY_MARGIN.accAbsolute
        : plugin <= fullFT + DEMO_UTILITY_MARGIN.accAbsolute;
  const margin = t.metric === 'ppl' ? `${DEMO_UTILITY_MARGIN.pplRelative * 100}% of Full FT's perplexity` : `${DEMO_UTILITY_MARGIN.accAbsolute} of Full FT's ${t.metric}`;
  return { pluginBeatsFullZS: better(plugin, fullZS), emuFTBelowPlugin: better(plugin, emuFT), pluginNearFullFT: near, margin };
}

/** The results table as text: per task the five columns, the two gaps and how to read them. */
export function formatTaskTable(t: TaskTable): string {
  const what = t.metric === 'ppl' ? 'perplexity, lower is better' : t.metric === 'acc' ? 'accuracy, higher is better' : 'exact match, higher is better';
  const head = COLUMNS.map((c) => COLUMN_TITLES[c].padStart(9)).join('');
  const row = COLUMNS.map((c) => fmt(t.table[c]).padStart(9)).join('');
  const lines = [`${t.task} — ${t.metric} on ${t.testExamples} test examples (${what})`, head, row];
  if (t.metric === 'acc') lines.push(COLUMNS.map((c) => fmt(t.scores[c].acc_norm ?? NaN).padStart(9)).join('') + '   (acc_norm)');
  lines.push(`utility gap (Full FT − Plug-in) ${fmt(t.gaps.utility)}, privacy gap (Plug-in − Emu FT) ${fmt(t.gaps.privacy)}${t.higherIsBetter ? '' : ' (perplexity: lower is better, so a negative privacy gap means Plug-in is better than Emu FT)'}`);
  const better = (a: number, b: number) => (t.higherIsBetter ? a > b : a < b);
  const yes = (b: boolean) => (b ? 'yes' : 'NO');
  const c = demoChecks(t);
  lines.push(
    `Plug-in better than Full ZS: ${yes(c.pluginBeatsFullZS)}; Emu FT worse than Plug-in: ${yes(c.emuFTBelowPlugin)}; Plug-in ${better(t.table.fullFT, t.table.plugin) ? 'behind' : 'level with or ahead of'} Full FT by ${fmt(Math.abs(t.gaps.utility))}${t.metric === 'ppl' ? ` (${((Math.abs(t.gaps.utility) / t.table.fullFT) * 100).toFixed(1)}% of Full FT)` : ''}, within the stated margin (${c.margin}): ${yes(c.pluginNearFullFT)}.`,
  );
  return lines.join('\n');
}
