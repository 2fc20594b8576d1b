// Handlers of the runs.* channels (see runs-contract.ts). handlers.ts spreads them into the one
// handler map and wires the RunsService into Services. Each run trains in a worker thread
// (services/runs.ts); its progress reaches the renderer as job.progress events with kind "tune"
// (forwardRunProgress) and its end as job.finished, sent once the end is in the audit trail so a
// screen that refreshes on job.finished reads the final status.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { RunDetails, RunJson, RunMetricPoint, RunMetricsPage, RunSummary, RunsResponses, TuneDefaultsView } from './runs-contract';
import type { EventPayload, ParsedRequest } from './contract';
import type { EventSink, Handlers, Services } from './handlers';
import { adapterDir, checkpointDir, type TuneProgress } from '../../native-models/tune/engine';
import { TUNE_DEFAULTS, type TuneConfig } from '../../native-models/tune/config';
import { getDataset } from '../services/datasets';
import { hashFolder } from '../services/hashing';
import { importedPackagePath } from '../services/packages';
import type { RunOutcome, RunsService, RunView, StartedRun } from '../services/runs';
import { ServiceError } from '../services/service-error';

type RunsChannel = keyof RunsResponses;

/** Where runs go when the form names no folder. */
export const runsFolder = (home: string): string => join(home, 'runs');

export function tuneDefaultsView(): TuneDefaultsView {
  const d = TUNE_DEFAULTS;
  return {
    peft: d.peft,
    rank: d.rank,
    alpha: d.alpha,
    dropout: d.dropout,
    targets: d.targets,
    layers: d.layers,
    sampler: d.sampler,
    istRatio: d.ist.ratio,
    lr: d.lr,
    weightDecay: d.weightDecay,
    warmup: d.warmup,
    schedule: d.schedule,
    clip: d.clip,
    steps: d.steps,
    epochs: d.epochs,
    batchSize: d.batchSize,
    seqLen: d.seqLen,
    seed: d.seed,
    shuffle: d.shuffle,
    checkpointEvery: d.checkpointEvery,
  };
}

/** A fresh run folder name: sortable by time, unique by its random tail. */
function newRunFolder(home: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return join(runsFolder(home), `run-${stamp}-${randomBytes(3).toString('hex')}`);
}

/** The TuneConfig a runs.start request asks for: TUNE_DEFAULTS plus what the request names. */
export function buildTuneConfig(services: Pick<Services, 'home' | 'settings'>, req: ParsedRequest<'runs.start'>): TuneConfig {
  const home = services.home;
  let model: string;
  if (req.emulatorId !== undefined) {
    // An imported emulator passed verification at import (its override, if any, is audited there).
    model = importedPackagePath(home, 'emulator', req.emulatorId);
    if (!existsSync(model)) throw new ServiceError(`No imported emulator has the id ${req.emulatorId}; import it on the Emulators screen first.`);
  } else {
    model = req.model!;
  }
  const data = getDataset(home, req.dataset).path;
  const evalData = req.evalDataset !== undefined ? getDataset(home, req.evalDataset).path : null;
  const s = services.settings.get();
  const steps = req.steps ?? (req.epochs !== undefined ? null : TUNE_DEFAULTS.steps);
  const epochs = req.epochs ?? (req.steps !== undefined ? null : TUNE_DEFAULTS.epochs);
  return {
    ...TUNE_DEFAULTS,
    model,
    data,
    evalData,
    out: req.out ?? newRunFolder(home),
    peft: req.peft ?? TUNE_DEFAULTS.peft,
    rank: req.rank ?? TUNE_DEFAULTS.rank,
    alpha: req.alpha ?? TUNE_DEFAULTS.alpha,
    // Full-layer tuning has no dropout: the default only applies to LoRA.
    dropout: req.dropout ?? (req.peft === 'full' ? 0 : TUNE_DEFAULTS.dropout),
    targets: req.targets === undefined ? TUNE_DEFAULTS.targets : req.targets,
    layers: req.layers === undefined ? TUNE_DEFAULTS.layers : req.layers,
    sampler: req.sampler ?? TUNE_DEFAULTS.sampler,
    ist: { ...TUNE_DEFAULTS.ist, ratio: req.istRatio ?? TUNE_DEFAULTS.ist.ratio },
    lr: req.lr ?? TUNE_DEFAULTS.lr,
    weightDecay: req.weightDecay ?? TUNE_DEFAULTS.weightDecay,
    warmup: req.warmup ?? TUNE_DEFAULTS.warmup,
    schedule: req.schedule ?? TUNE_DEFAULTS.schedule,
    clip: req.clip ?? TUNE_DEFAULTS.clip,
    steps,
    epochs,
    batchSize: req.batchSize ?? TUNE_DEFAULTS.batchSize,
    seqLen: req.seqLen ?? TUNE_DEFAULTS.seqLen,
    seed: req.seed ?? TUNE_DEFAULTS.seed,
    shuffle: req.shuffle ?? TUNE_DEFAULTS.shuffle,
    checkpointEvery: req.checkpointEvery ?? TUNE_DEFAULTS.checkpointEvery,
    provider: s.executionProvider,
    threads: s.threads === 'auto' ? null : s.threads,
  };
}

// ── Progress → job.progress ──────────────────────────────────────────────────────────────────

/** Only finite numbers travel (a diverged loss is NaN; the event schema takes finite numbers). */
function finite(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => Number.isFinite(v)));
}

const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** The job.progress payload of one TuneProgress report; `last` keeps the step counter between reports. */
export function tuneProgressPayload(runId: string, p: TuneProgress, last: { step: number; total: number | null }): EventPayload<'job.progress'> {
  const base = { jobId: runId, kind: 'tune', stage: p.kind };
  switch (p.kind) {
    case 'status':
      return { ...base, step: last.step, total: last.total, message: p.message, metrics: {} };
    case 'started':
      last.step = p.startStep;
      last.total = p.totalSteps > 0 ? p.totalSteps : null;
      return {
        ...base,
        step: p.startStep,
        total: last.total,
        message: `${p.startStep > 0 ? `Resumed at step ${p.startStep}` : 'Started'} on ${p.provider.toUpperCase()}: ${p.tunableLayers.length} tunable layers, ${p.parameterCount.toLocaleString('en-US')} trainable parameters.`,
        metrics: finite({ parameterCount: p.parameterCount, examples: p.examples, seqLen: p.seqLen }),
        series: { tunableLayers: p.tunableLayers },
      };
    case 'step':
      // The engine numbers updates from 0; the screen counts updates done (1 after the first).
      last.step = p.step + 1;
      last.total = p.totalSteps > 0 ? p.totalSteps : last.total;
      return {
        ...base,
        step: p.step + 1,
        total: last.total,
        message: `Step ${p.step + 1} of ${p.totalSteps}: loss ${fixed(p.loss, 4)}.`,
        metrics: finite({ loss: p.loss, lr: p.lr, gradNorm: p.gradNorm, tokensPerSecond: p.tokensPerSecond, etaSeconds: p.etaSeconds, elapsedSeconds: p.elapsedSeconds }),
        series: { selected: p.selected, importance: p.importance.map((v) => (Number.isFinite(v) ? v : 0)) },
      };
    case 'importance':
      return {
        ...base,
        step: last.step,
        total: last.total,
        message: `Layer importance updated at step ${p.step}.`,
        metrics: {},
        series: { scores: p.scores.map((v) => (Number.isFinite(v) ? v : 0)), losses: p.losses.filter(Number.isFinite), rewards: p.rewards.filter(Number.isFinite) },
      };
    case 'evaluated':
      return {
        ...base,
        step: last.step,
        total: last.total,
        message: `Held-out loss ${p.when} tuning: ${fixed(p.loss, 4)} over ${p.tokens} tokens.`,
        metrics: finite(p.when === 'before' ? { evalLossBefore: p.loss, evalTokens: p.tokens } : { evalLossAfter: p.loss, evalTokens: p.tokens }),
      };
    case 'checkpoint':
      return { ...base, step: last.step, total: last.total, message: `Checkpoint written at step ${p.step}.`, metrics: { checkpointStep: p.step } };
  }
}

/** Sends every run's progress to the renderer as job.progress (kind "tune"); returns the unsubscribe. */
export function forwardRunProgress(runs: RunsService, events: EventSink): () => void {
  const counters = new Map<string, { step: number; total: number | null }>();
  return runs.onProgress(({ runId, progress }) => {
    let last = counters.get(runId);
    if (!last) counters.set(runId, (last = { step: 0, total: null }));
    events.emit('job.progress', tuneProgressPayload(runId, progress, last));
  });
}

/** The sentence job.finished carries for a run's end. */
export function outcomeMessage(o: RunOutcome): string {
  if (o.status === 'finished') {
    const r = o.result;
    return `Tuning finished: ${r.stepsDone} steps${r.finalLoss !== null ? `, final loss ${fixed(r.finalLoss, 4)}` : ''}; the adapter is in ${r.adapter ?? 'the run folder'}.`;
  }
  if (o.status === 'cancelled') {
    return o.result ? `Tuning cancelled after step ${o.result.stepsDone} of ${o.result.totalSteps}; the checkpoint is kept, so Resume continues from there.` : 'Tuning cancelled before its first step.';
  }
  return `Tuning failed: ${o.error}`;
}

function announceEnd(services: Pick<Services, 'events'>, started: StartedRun): void {
  void started.done.then((o) => {
    services.events.emit('job.finished', {
      jobId: o.runId,
      kind: 'tune',
      outcome: o.status === 'finished' ? 'done' : o.status,
      message: outcomeMessage(o),
    });
  });
}

// ── Views ────────────────────────────────────────────────────────────────────────────────────

const num = (v: RunJson | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: RunJson | undefined): string | null => (typeof v === 'string' ? v : null);
const ints = (v: RunJson | undefined): number[] | null => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : null);

function displayName(path: string | null): string {
  if (!path) return 'unknown';
  const name = basename(path);
  // An imported emulator's folder is named by its manifest hash.
  return /^[0-9a-f]{64}$/.test(name) ? `emulator ${name.slice(0, 12)}…` : name;
}

/** The name the user imported a dataset under, when `path` is an imported dataset's stored copy. */
function datasetName(home: string, path: string | null): string | null {
  if (!path) return null;
  const id = basename(dirname(path));
  if (!/^[0-9a-f]{64}$/.test(id)) return null;
  try {
    const d = getDataset(home, id);
    return d.path === path ? d.name : null;
  } catch {
    return null; // removed since the run: the file name is all there is
  }
}

export function runSummary(v: RunView, home?: string): RunSummary {
  const config = v.config as { [key: string]: RunJson };
  const result = (v.result && typeof v.result === 'object' && !Array.isArray(v.result) ? v.result : {}) as { [key: string]: RunJson };
  const out = v.output;
  const adapter = out && v.status === 'finished' && existsSync(join(adapterDir(out), 'adapter_config.json')) ? adapterDir(out) : null;
  const last = v.lastStep;
  return {
    id: v.id,
    status: v.status,
    live: v.live,
    startedAt: v.startedAt,
    finishedAt: v.finishedAt,
    output: out,
    modelName: displayName(str(config.model)),
    dataName: (home !== undefined ? datasetName(home, str(config.data)) : null) ?? displayName(str(config.data)),
    peft: str(config.peft),
    sampler: str(config.sampler),
    stepsDone: last ? last.step + 1 : num(result.steps_done),
    totalSteps: last?.totalSteps ?? num(result.total_steps) ?? num(config.steps),
    finalLoss: last ? (Number.isFinite(last.loss) ? last.loss : null) : num(result.final_loss),
    tokensPerSecond: last ? last.tokensPerSecond : num(result.tokens_per_second),
    evalLossBefore: num(result.eval_loss_before),
    evalLossAfter: num(result.eval_loss_after),
    tunableLayers: ints(result.tunable_layers),
    adapter,
    resumable: !v.live && v.status !== 'finished' && out !== null && existsSync(join(checkpointDir(out), 'checkpoint.json')),
    error: v.error,
    lastStep: last
      ? { step: last.step + 1, totalSteps: last.totalSteps, loss: last.loss, lr: last.lr, tokensPerSecond: last.tokensPerSecond, etaSeconds: last.etaSeconds, selected: last.selected, importance: last.importance }
      : null,
  };
}

/** Every `stride`-th row so that at most `maxPoints` remain, always keeping the last one. */
export function thinRows<T>(rows: T[], maxPoints: number): { stride: number; rows: T[] } {
  if (rows.length <= maxPoints) return { stride: 1, rows };
  // One slot is reserved for the last row, which the stride may skip.
  const stride = Math.ceil(rows.length / (maxPoints - 1));
  const kept = rows.filter((_, i) => i % stride === 0);
  if ((rows.length - 1) % stride !== 0) kept.push(rows[rows.length - 1]!);
  return { stride, rows: kept };
}

// ── Adapter export ───────────────────────────────────────────────────────────────────────────

async function copyTreeDurably(from: string, to: string): Promise<string[]> {
  await mkdir(to);
  const copied: string[] = [];
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const src = join(from, entry.name);
    const dst = join(to, entry.name);
    if (entry.isDirectory()) {
      copied.push(...(await copyTreeDurably(src, dst)).map((f) => `${entry.name}/${f}`));
    } else if (entry.isFile()) {
      await copyFile(src, dst);
      const fh = await open(dst, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      copied.push(entry.name);
    }
  }
  return copied;
}

async function syncFolder(folder: string): Promise<void> {
  if (process.platform === 'win32') return;
  const fh = await open(folder, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Copies the run's adapter folder to `out` atomically: into a hidden sibling first, checked
 * file by file against the source's hashes, then renamed into place; recorded as adapter.exported.
 */
export async function exportRunAdapter(services: Pick<Services, 'audit'>, run: RunView, out: string): Promise<RunsResponses['runs.exportAdapter']> {
  if (run.live) throw new ServiceError(`Run ${run.id} is still running; export its adapter once it has finished.`);
  if (run.status !== 'finished' || !run.output) throw new ServiceError(`Run ${run.id} has not finished (it is ${run.status}); only a finished run has an adapter to export. Resume it first.`);
  const src = adapterDir(run.output);
  if (!existsSync(src)) throw new ServiceError(`The adapter folder ${src} of run ${run.id} is missing; was the run folder moved or deleted?`);
  const dest = resolve(out);
  if (await stat(dest).catch(() => undefined)) throw new ServiceError(`${dest} already exists; choose a new folder name for the exported adapter.`);
  const parent = dirname(dest);
  await mkdir(parent, { recursive: true });
  const temp = join(parent, `.${basename(dest)}.${randomBytes(4).toString('hex')}.partial`);
  try {
    const files = await copyTreeDurably(src, temp);
    const [srcHash, copyHash] = await Promise.all([hashFolder(src), hashFolder(temp)]);
    if (srcHash.sha256 !== copyHash.sha256) throw new ServiceError(`The copy of ${src} does not match the original (SHA-256 differs); check the target disk and try again.`);
    await rename(temp, dest);
    await syncFolder(parent);
    const { entries: _entries, ...digest } = srcHash;
    const event = services.audit.append('adapter.exported', {
      runId: run.id,
      inputs: { adapter: digest },
      outputs: { adapter: digest },
      details: { out: dest, from: src, format: str((run.config as { [key: string]: RunJson }).peft) === 'full' ? 'full-layers' : 'peft-lora', files: files.sort() },
    });
    return { runId: run.id, out: dest, files: files.sort(), auditSeq: event.seq };
  } catch (e) {
    await rm(temp, { recursive: true, force: true });
    if (e instanceof ServiceError) throw e;
    throw new ServiceError(`The adapter could not be copied to ${dest}: ${(e as Error).message}`);
  }
}

// ── Handlers ─────────────────────────────────────────────────────────────────────────────────

export function createRunsHandlers(services: Services): Pick<Handlers, RunsChannel> {
  const tuneRun = (runId: string): RunView => {
    const r = services.runs.get(runId);
    if (!r || r.kind !== 'tune') throw new ServiceError(`No tuning run has the id ${runId}; see the list of runs.`);
    return r;
  };
  return {
    'runs.defaults': () => ({ settings: tuneDefaultsView(), runsFolder: runsFolder(services.home) }),
    'runs.start': async (req) => {
      const config = buildTuneConfig(services, req);
      const started = await services.runs.start(config);
      announceEnd(services, started);
      return { runId: started.runId, out: config.out };
    },
    'runs.cancel': ({ runId }) => {
      tuneRun(runId);
      return { runId, cancelled: services.runs.cancel(runId) };
    },
    'runs.resume': async ({ runId }) => {
      const run = tuneRun(runId);
      if (run.live) throw new ServiceError(`Run ${runId} is already running.`);
      if (run.status === 'finished') throw new ServiceError(`Run ${runId} has finished; there is nothing to resume. Start a new run instead.`);
      if (!run.output) throw new ServiceError(`Run ${runId} has no recorded run folder to resume from.`);
      const started = await services.runs.resume(run.output);
      announceEnd(services, started);
      return { runId: started.runId };
    },
    'runs.list': () =>
      services.runs
        .list()
        .filter((r) => r.kind === 'tune')
        .map((r) => runSummary(r, services.home)),
    'runs.get': ({ runId }): RunDetails => {
      const run = tuneRun(runId);
      return { ...runSummary(run, services.home), config: run.config as { [key: string]: RunJson } };
    },
    'runs.metrics': ({ runId, afterStep, maxPoints }): RunMetricsPage => {
      tuneRun(runId);
      // Rows of a live run are written in batches; flush so the page holds every step so far.
      services.audit.flushMetrics();
      // Stored rows number updates from 0, like the engine; the page counts updates done, like job.progress.
      const all = services.runs.metrics(runId).filter((r) => afterStep === undefined || r.step + 1 > afterStep);
      const thin = thinRows(all, maxPoints ?? 2000);
      const rows: RunMetricPoint[] = thin.rows.map((r) => ({ step: r.step + 1, loss: r.loss, lr: r.lr, tokensPerSecond: r.tokensPerSecond, selected: r.selected, importance: r.importance }));
      return { runId, total: all.length, stride: thin.stride, rows };
    },
    'runs.exportAdapter': ({ runId, out }) => exportRunAdapter(services, tuneRun(runId), out),
  };
}
