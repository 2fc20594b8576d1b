/**
 * The bundled demo as a job of the desktop app: one demo at a time, cancellable, its stages and
 * detail lines kept so a screen opened mid-demo can show everything so far, each report relayed as
 * job.progress (kind "demo") and the end as job.finished. The pipeline itself is runDemo
 * (services/demo.ts), the same function `offsite demo` calls; its heavy stages run in workers.
 * Plain Node: the IPC handlers, the CLI and tests share it.
 *
 *   const jobs = new DemoJobs(events, () => ({ provider: 'auto', threads: null }));
 *   const { jobId } = jobs.start({ quick: true, out: '/home/me/offsite-demo' });
 *   jobs.cancel(jobId); await jobs.stop();
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { DemoCell, DemoColumnView, DemoJobView, DemoResultView, DemoTaskView } from '../ipc/demo-contract';
import type { EventPayload } from '../ipc/contract';
import type { EventSink } from '../ipc/handlers';
import { asCancel, COLUMN_TITLES, COLUMNS, fmt, formatTaskTable, runDemo, type DemoProgress, type DemoResult, type TaskTable } from './demo';
import { JobCancelledError } from './emulators';
import { stampedFolder } from './home';
import { ServiceError } from './service-error';

/** A number as `offsite demo` and `offsite table` print it in the results table. */
export const demoNumber = fmt;

const cell = (value: number): DemoCell => ({ value, text: demoNumber(value) });

/** One task of a demo result, as the Demo screen shows it (the same columns, gaps and text as the CLI). */
export function demoTaskView(t: TaskTable): DemoTaskView {
  const columns: DemoColumnView[] = COLUMNS.map((id) => ({
    id,
    title: COLUMN_TITLES[id],
    headline: cell(t.table[id]),
    accNorm: t.metric === 'acc' ? cell(t.scores[id].acc_norm ?? NaN) : null,
  }));
  return {
    task: t.task,
    metric: t.metric,
    higherIsBetter: t.higherIsBetter,
    testExamples: t.testExamples,
    columns,
    gaps: { utility: cell(t.gaps.utility), privacy: cell(t.gaps.privacy) },
    lines: formatTaskTable(t).split('\n'),
  };
}

export function demoResultView(r: DemoResult): DemoResultView {
  const e = r.emulator;
  return {
    budget: r.budget,
    tasks: r.tasks.map(demoTaskView),
    emulator: {
      path: e.path,
      manifestSha256: e.manifestSha256,
      signerKeyId: e.signerKeyId,
      triplet: { adapterLayers: [e.triplet.adapterLayers[0], e.triplet.adapterLayers[1]], alpha: e.triplet.alpha, beta: e.triplet.beta },
      replaced: [...e.replaced],
      referencePpl: { ...e.referencePpl },
      parameterCount: e.parameterCount,
      sourceParameterCount: e.sourceParameterCount,
    },
    auditVerified: r.auditVerified,
    audit: { ...r.audit },
    out: r.out,
    home: r.home,
    resultsFile: r.resultsFile,
    totalSeconds: r.totalSeconds,
  };
}

/** Folds one DemoProgress report into the job's view; returns the job.progress payload to send. */
export function applyDemoProgress(view: DemoJobView, p: DemoProgress): EventPayload<'job.progress'> {
  const base = { jobId: view.jobId, kind: 'demo', total: view.totalStages };
  const done = () => view.stages.filter((s) => s.status === 'done').length;
  if (p.kind === 'detail') {
    const line = p.message.trim();
    view.stages.at(-1)?.details.push(line);
    return { ...base, stage: 'detail', step: done(), message: line, metrics: {} };
  }
  view.totalStages = p.total;
  if (p.phase === 'start') {
    view.stages.push({ index: p.index, title: p.title, status: 'running', seconds: null, cpuSeconds: null, summary: null, details: [] });
    view.message = `Stage ${p.index} of ${p.total}: ${p.title}…`;
    return { ...base, total: p.total, stage: 'stage-start', step: done(), message: p.title, metrics: {} };
  }
  const stage = view.stages.find((s) => s.index === p.index);
  if (stage) Object.assign(stage, { status: 'done', seconds: p.seconds, cpuSeconds: p.cpuSeconds, summary: p.summary });
  view.message = `Stage ${p.index} of ${p.total} done in ${p.seconds.toFixed(1)} s (CPU ${p.cpuSeconds.toFixed(1)} s)${p.summary ? `: ${p.summary}` : '.'}`;
  return { ...base, total: p.total, stage: 'stage-done', step: done(), message: p.summary, metrics: { seconds: p.seconds, cpuSeconds: p.cpuSeconds } };
}

export interface DemoStartRequest {
  quick: boolean;
  out: string;
}

export interface DemoEngineSettings {
  provider: 'auto' | 'cpu' | 'cuda';
  threads: number | null;
}

interface DemoJob {
  view: DemoJobView;
  controller: AbortController;
  done: Promise<void>;
}

export class DemoJobs {
  private readonly jobs = new Map<string, DemoJob>();

  constructor(
    private readonly events: EventSink,
    /** Read at each start, so the demo uses the execution provider and threads in Settings. */
    private readonly engine: () => DemoEngineSettings,
  ) {}

  start(req: DemoStartRequest): { jobId: string; out: string } {
    const running = [...this.jobs.values()].find((j) => j.view.status === 'running');
    // One demo at a time: it already keeps every core busy, and its stages share one audit log.
    if (running) throw new ServiceError(`The demo is already running (writing to ${running.view.out}); wait for it to finish or cancel it first.`);
    const out = resolve(req.out);
    // Cheap checks first, so a wrong folder is an answer to Start, not a failed demo.
    if (existsSync(out)) {
      if (!statSync(out).isDirectory()) throw new ServiceError(`${out} is a file; choose a new or empty folder for the demo's outputs.`);
      if (readdirSync(out).length > 0) throw new ServiceError(`${out} already exists and is not empty; choose a new or empty folder for the demo's outputs.`);
    }
    const jobId = `demo-${randomBytes(6).toString('hex')}`;
    const view: DemoJobView = {
      jobId,
      status: 'running',
      quick: req.quick,
      out,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      message: 'Starting the demo…',
      totalStages: null,
      stages: [],
      result: null,
      error: null,
    };
    const controller = new AbortController();
    const finish = (status: DemoJobView['status'], message: string, outcome: 'done' | 'failed' | 'cancelled') => {
      view.status = status;
      if (status !== 'done') for (const st of view.stages) if (st.status === 'running') st.status = 'stopped';
      view.finishedAt = new Date().toISOString();
      view.message = message;
      this.events.emit('job.finished', { jobId, kind: 'demo', outcome, message });
    };
    const engine = this.engine();
    const done = (async () => {
      try {
        const r = await runDemo(
          { out, quick: req.quick, provider: engine.provider, threads: engine.threads },
          { signal: controller.signal, onProgress: (p) => this.events.emit('job.progress', applyDemoProgress(view, p)) },
        );
        view.result = demoResultView(r);
        finish(
          'done',
          `The demo finished in ${r.totalSeconds.toFixed(1)} s; its audit trail (${r.audit.events} events) ${r.auditVerified ? 'is verified' : 'did NOT verify'}. Outputs are in ${r.out}.`,
          'done',
        );
      } catch (err) {
        const e = asCancel(err);
        const message = e instanceof Error ? e.message : String(e);
        view.error = message;
        if (e instanceof JobCancelledError) finish('cancelled', `The demo was cancelled. ${message}`, 'cancelled');
        else finish('failed', `The demo failed: ${message}`, 'failed');
      }
    })();
    this.jobs.set(jobId, { view, controller, done });
    return { jobId, out };
  }

  /** Asks a running demo to stop; false when it had already ended. */
  cancel(jobId: string): boolean {
    const j = this.job(jobId);
    if (j.view.status !== 'running') return false;
    j.controller.abort();
    return true;
  }

  /** A copy of one demo's view; without an id, the latest demo's (null when none ran). */
  status(jobId?: string): DemoJobView | null {
    if (jobId !== undefined) return structuredClone(this.job(jobId).view);
    const latest = [...this.jobs.values()].at(-1);
    return latest ? structuredClone(latest.view) : null;
  }

  /** Resolves when the demo has ended (tests, quit). */
  async wait(jobId: string): Promise<DemoJobView> {
    const j = this.job(jobId);
    await j.done;
    return structuredClone(j.view);
  }

  /** Cancels every running demo and waits for them to end (app quit, end of a test). */
  async stop(): Promise<void> {
    const all = [...this.jobs.values()];
    for (const j of all) if (j.view.status === 'running') j.controller.abort();
    await Promise.all(all.map((j) => j.done));
  }

  private job(jobId: string): DemoJob {
    const j = this.jobs.get(jobId);
    if (!j) throw new ServiceError(`No demo has the id ${jobId} in this session.`);
    return j;
  }
}

/** A new folder name for a demo's outputs, as `offsite demo` picks without --out. */
export function suggestedDemoFolder(home: string, now = new Date()): string {
  return stampedFolder(home, 'demo', now);
}
