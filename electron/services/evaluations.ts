/**
 * Local evaluations: perplexity, multiple choice and exact match (native-models/eval), shared by
 * the app's IPC gateway and `offsite eval`. Plain Node (no Electron import).
 *
 *   const prepared = await prepareEvaluation(request, { trustedKeys });   // hashes, verifies an emulator
 *   const result = await runEvaluation(prepared.spec, hooks);             // CLI: in its own thread
 *   recordEvaluationResult(audit, prepared, result);                      // evaluation.finished
 *
 *   const evals = new EvaluationsService(home, { audit, emit });          // the app: a worker per job
 *   const { id } = await evals.start(request); evals.cancel(id); await evals.wait(id);
 *   evals.list(); evals.table();
 *
 * Every finished evaluation is recorded as evaluation.finished with the hashes of the model (or
 * the emulator package's manifest), the adapter folder and the data file, the execution provider
 * and the scores, so the results table can be rebuilt from the audit trail alone.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { FormatError } from '../../native-models/formats/errors';
import type { PackageVerifyReport, TrustedKeyLike } from '../../native-models/formats/package';
import { startJob, type JobHandle } from '../../native-models/runtime/jobs';
import type { SessionSettings } from '../../native-models/runtime/session';
import { EvalInputError, headlineValue, type EvalProgress, type EvaluationResult, type EvaluationSpec } from '../../native-models/eval/evaluate';
import type { EvalMetric } from '../../native-models/eval/tasks';
import {
  RESULT_COLUMNS,
  type EvaluationScoresView,
  type EvaluationView,
  type ResultColumn,
  type ResultsTableRow,
} from '../ipc/eval-contract';
import type { AuditLog, DigestValue, JsonValue } from './audit';
import { verifyEmulatorPackage } from './emulator-trust';
import { hashPath } from './hashing';
import { ServiceError } from './service-error';
import { jobWorker } from './job-workers';

export type { EvaluationView, ResultsTableRow, ResultColumn } from '../ipc/eval-contract';

export interface EvaluationRequest {
  /** A model folder or llama2.c file. */
  model?: string;
  /** An emulator package folder. */
  emulator?: string;
  adapter?: string | null;
  /** The data file. */
  data: string;
  /** The task's name in lists and the results table (default: the file's name). */
  taskName?: string;
  metric?: EvalMetric;
  seqLen?: number;
  batchSize?: number;
  maxNewTokens?: number;
  /** The results-table column (default: inferred when unambiguous, see inferColumn). */
  column?: ResultColumn | null;
  settings?: SessionSettings;
}

/** An emulator package that failed verification (the CLI exits 3). */
export class EvaluationVerificationError extends ServiceError {
  override name = 'EvaluationVerificationError';
  constructor(readonly report: PackageVerifyReport) {
    super(report.verdict);
  }
}

export interface PreparedEvaluation {
  spec: EvaluationSpec;
  /** Audit inputs known before the run (the data file's hash comes with the result). */
  inputs: Record<string, DigestValue>;
  source: { kind: 'model' | 'emulator'; name: string };
  adapterName: string | null;
  taskName: string;
  column: ResultColumn | null;
  emulator: { manifestSha256: string; signerKeyId: string | null; override: string | null } | null;
}

export interface PrepareOptions {
  /** Keys an emulator's signer must be among (--trust files and the data folder's trusted keys). */
  trustedKeys?: TrustedKeyLike[];
  /** Accept an intact but unsigned or untrusted emulator; the reason goes into the audit event. */
  allowUnsigned?: { reason: string };
  /** The data folder: emulators imported into it were verified (and any override recorded) at import. */
  home?: string;
}

/**
 * Emu ZS, Emu FT and Full ZS follow from what is evaluated; a full model with an adapter is Plug-in
 * (tuned on the emulator) or Full FT (tuned on the full model), which only the user knows.
 */
export function inferColumn(kind: 'model' | 'emulator', hasAdapter: boolean): ResultColumn | null {
  if (kind === 'emulator') return hasAdapter ? 'emuFT' : 'emuZS';
  return hasAdapter ? null : 'fullZS';
}

/** Checks and hashes what an evaluation reads; verifies an emulator package. */
export async function prepareEvaluation(req: EvaluationRequest, opts: PrepareOptions = {}): Promise<PreparedEvaluation> {
  if ((req.model === undefined) === (req.emulator === undefined)) throw new ServiceError('Give either a model or an emulator package to evaluate, not both and not neither.');
  const inputs: Record<string, DigestValue> = {};
  let emulator: PreparedEvaluation['emulator'] = null;
  let sourcePath: string;
  let kind: 'model' | 'emulator';
  if (req.model !== undefined) {
    kind = 'model';
    sourcePath = resolve(req.model);
    if (!existsSync(sourcePath)) throw new ServiceError(`The model ${req.model} does not exist; give a model folder (config.json + safetensors) or a llama2.c .bin file.`);
    inputs.model = await hashPath(sourcePath);
  } else {
    kind = 'emulator';
    sourcePath = resolve(req.emulator!);
    if (!existsSync(sourcePath)) throw new ServiceError(`The emulator package ${req.emulator} does not exist.`);
    // Shared with `offsite tune --emulator` (services/emulator-trust): an emulator imported into the
    // data folder is verified again, and its signer need not be re-trusted.
    const report = await verifyEmulatorPackage(sourcePath, { trustedKeys: opts.trustedKeys ?? [], ...(opts.allowUnsigned ? { allowUnsigned: opts.allowUnsigned } : {}), ...(opts.home !== undefined ? { home: opts.home } : {}) });
    if (!report.ok || !report.manifestSha256) throw new EvaluationVerificationError(report);
    emulator = { manifestSha256: report.manifestSha256, signerKeyId: report.signer?.keyId ?? null, override: report.override?.reason ?? null };
    inputs.emulator = report.manifestSha256;
  }
  let adapterName: string | null = null;
  let adapter: string | null = null;
  if (req.adapter) {
    adapter = resolve(req.adapter);
    if (!existsSync(adapter)) throw new ServiceError(`The adapter folder ${req.adapter} does not exist.`);
    inputs.adapter = await hashPath(adapter);
    adapterName = basename(adapter);
  }
  const data = resolve(req.data);
  if (!existsSync(data)) throw new ServiceError(`The data file ${req.data} does not exist.`);
  const column = req.column === undefined || req.column === null ? inferColumn(kind, adapter !== null) : req.column;
  return {
    spec: {
      source: { kind, path: sourcePath },
      adapter,
      data,
      ...(req.metric ? { metric: req.metric } : {}),
      ...(req.seqLen !== undefined ? { seqLen: req.seqLen } : {}),
      ...(req.batchSize !== undefined ? { batchSize: req.batchSize } : {}),
      ...(req.maxNewTokens !== undefined ? { maxNewTokens: req.maxNewTokens } : {}),
      ...(req.settings ? { settings: req.settings } : {}),
    },
    inputs,
    source: { kind, name: basename(sourcePath) },
    adapterName,
    taskName: req.taskName ?? basename(data),
    column,
    emulator,
  };
}

/** The scores of a result as plain numbers (what lists, the table and the audit event carry). */
export function scoresOf(r: EvaluationResult): EvaluationScoresView {
  if (r.metric === 'ppl') return { ppl: r.ppl, nll: r.nll, tokens: r.tokens };
  if (r.metric === 'mc') return { acc: r.acc, acc_norm: r.acc_norm, n: r.n };
  return { em: r.em, n: r.n };
}

/** Appends evaluation.finished: input hashes, execution provider, scores and where they belong. */
export function recordEvaluationResult(audit: AuditLog, p: PreparedEvaluation, r: EvaluationResult, id?: string): { id: string; seq: number } {
  const result: Record<string, JsonValue> = {
    ...(scoresOf(r) as Record<string, number>),
    task: { name: p.taskName, sha256: r.data.sha256, format: r.data.format, examples: r.data.examples },
    source: { kind: p.source.kind, name: p.source.name, model_type: r.model.modelType, layers: r.model.layers },
    adapter: p.adapterName === null || r.adapter === null ? null : { name: p.adapterName, kind: r.adapter.kind, layers: r.adapter.layers, weights_changed: r.adapter.weights.length },
    column: p.column,
    seq_len: r.seqLen,
    batch_size: r.batchSize,
    ...(r.metric === 'em' ? { max_new_tokens: r.maxNewTokens } : {}),
    ...(p.emulator ? { emulator_signer: p.emulator.signerKeyId, emulator_override: p.emulator.override } : {}),
  };
  const ev = audit.recordEvaluation({
    ...(id ? { id } : {}),
    metric: r.metric,
    value: headlineValue(r),
    result,
    inputs: { ...p.inputs, data: { sha256: r.data.sha256, size: r.data.bytes } },
    executionProvider: r.executionProvider,
  });
  return { id: ev.id, seq: ev.seq };
}

/** A sentence for a failed evaluation: input problems as they are, anything else as a bug report. */
export function failureSentence(name: string | undefined, message: string): string {
  if (name === 'FormatError' || name === 'DataFileError' || name === 'EvalInputError' || name === 'ServiceError') return message;
  return `The evaluation failed unexpectedly: ${message.replace(/\.$/, '')}. Please report this with the audit export.`;
}

/** True for errors that are the user's input (the CLI exits 2 for them). */
export function isInputError(e: unknown): boolean {
  return e instanceof FormatError || e instanceof EvalInputError;
}

// ── The app's service: one worker thread per evaluation ───────────────────────────────────────

export interface EvaluationEvents {
  progress(id: string, p: EvalProgress): void;
  finished(id: string, outcome: 'done' | 'failed' | 'cancelled', message: string): void;
}

export interface EvaluationsOptions {
  audit: () => AuditLog;
  events?: EvaluationEvents;
  /** Session settings from the app's settings (execution provider, threads). */
  settings?: () => SessionSettings;
  /** Trusted keys for emulator packages (default: the audit log's). */
  trustedKeys?: () => TrustedKeyLike[];
  workerModule?: URL;
}


interface LiveEvaluation {
  view: EvaluationView;
  handle: JobHandle<EvaluationResult> | null;
  done: Promise<EvaluationView>;
}

function viewOfEvent(e: ReturnType<AuditLog['log']>[number]): EvaluationView | null {
  const d = e.payload.details as Record<string, JsonValue>;
  const r = d.result as Record<string, JsonValue> | undefined;
  if (!r || typeof d.evaluation_id !== 'string') return null;
  const task = (r.task ?? {}) as Record<string, JsonValue>;
  const source = (r.source ?? {}) as Record<string, JsonValue>;
  const adapter = r.adapter as Record<string, JsonValue> | null | undefined;
  const scores: EvaluationScoresView = {};
  for (const k of ['ppl', 'nll', 'tokens', 'acc', 'acc_norm', 'em', 'n'] as const) if (typeof r[k] === 'number') scores[k] = r[k] as number;
  const metric = d.metric === 'ppl' || d.metric === 'mc' || d.metric === 'em' ? d.metric : null;
  const column = (RESULT_COLUMNS as readonly unknown[]).includes(r.column) ? (r.column as ResultColumn) : null;
  return {
    id: d.evaluation_id,
    status: 'finished',
    startedAt: null,
    finishedAt: e.ts,
    metric,
    task: { name: String(task.name ?? ''), sha256: String(task.sha256 ?? '') },
    source: { kind: source.kind === 'emulator' ? 'emulator' : 'model', name: String(source.name ?? '') },
    adapter: adapter && typeof adapter.name === 'string' ? adapter.name : null,
    column,
    scores,
    progress: null,
    error: null,
    executionProvider: e.payload.execution_provider,
    auditSeq: e.seq,
  };
}

/** The results table from finished evaluations (latest value per task, metric and column). */
export function resultsTable(views: readonly EvaluationView[]): ResultsTableRow[] {
  const rows = new Map<string, ResultsTableRow>();
  // Oldest first, so a later evaluation overwrites an earlier one in its cell.
  const ordered = [...views].filter((v) => v.status === 'finished' && v.column && v.scores).sort((a, b) => (a.auditSeq ?? 0) - (b.auditSeq ?? 0));
  for (const v of ordered) {
    const metrics: ResultsTableRow['metric'][] = v.metric === 'ppl' ? ['ppl'] : v.metric === 'mc' ? ['acc', 'acc_norm'] : ['em'];
    for (const m of metrics) {
      const value = v.scores![m];
      if (value === undefined) continue;
      const key = `${v.task.sha256}\u0000${m}`;
      const row = rows.get(key) ?? { task: v.task, metric: m, higherIsBetter: m !== 'ppl', columns: {}, gaps: { utility: null, privacy: null } };
      row.columns[v.column!] = value;
      rows.set(key, row);
    }
  }
  for (const row of rows.values()) {
    const c = row.columns;
    row.gaps = {
      utility: c.fullFT !== undefined && c.plugin !== undefined ? c.fullFT - c.plugin : null,
      privacy: c.plugin !== undefined && c.emuFT !== undefined ? c.plugin - c.emuFT : null,
    };
  }
  return [...rows.values()];
}

export class EvaluationsService {
  private readonly live = new Map<string, LiveEvaluation>();

  constructor(
    readonly home: string,
    private readonly options: EvaluationsOptions,
  ) {}

  /** Checks and hashes the inputs here (errors come back at once), then runs the job in a worker. */
  async start(req: EvaluationRequest): Promise<{ id: string }> {
    const trustedKeys = this.options.trustedKeys?.() ?? this.options.audit().trustedKeys().map((k) => ({ publicKey: k.publicKey, label: k.label }));
    const settings = req.settings ?? this.options.settings?.();
    const prepared = await prepareEvaluation({ ...req, ...(settings ? { settings } : {}) }, { trustedKeys, home: this.home });
    const id = randomUUID();
    const view: EvaluationView = {
      id,
      status: 'running',
      startedAt: new Date().toISOString(),
      finishedAt: null,
      metric: req.metric ?? null,
      task: { name: prepared.taskName, sha256: '' },
      source: prepared.source,
      adapter: prepared.adapterName,
      column: prepared.column,
      scores: null,
      progress: { done: 0, total: null, message: 'Starting' },
      error: null,
      executionProvider: null,
      auditSeq: null,
    };
    const handle = startJob<EvaluationSpec, EvalProgress, EvaluationResult>(this.options.workerModule ?? jobWorker('eval'), prepared.spec, {
      name: `offsite-eval-${id.slice(0, 8)}`,
      onProgress: (p) => {
        view.progress = { done: p.done, total: p.total, message: p.message };
        this.options.events?.progress(id, p);
      },
    });
    const done = handle.result.then((outcome) => {
      view.finishedAt = new Date().toISOString();
      view.progress = null;
      let message: string;
      if (outcome.status === 'done') {
        const r = outcome.value;
        try {
          const rec = recordEvaluationResult(this.options.audit(), prepared, r, id);
          view.auditSeq = rec.seq;
          view.status = 'finished';
          view.metric = r.metric;
          view.task = { name: prepared.taskName, sha256: r.data.sha256 };
          view.scores = scoresOf(r);
          view.executionProvider = r.executionProvider;
          message = `Evaluation finished: ${summary(r)} on ${prepared.taskName}.`;
        } catch (e) {
          view.status = 'failed';
          view.error = `The evaluation finished but could not be recorded in the audit trail: ${(e as Error).message}`;
          message = view.error;
        }
      } else if (outcome.status === 'cancelled') {
        view.status = 'cancelled';
        message = 'The evaluation was cancelled; nothing was recorded.';
      } else {
        view.status = 'failed';
        view.error = failureSentence(outcome.error.name, outcome.error.message);
        message = view.error;
      }
      this.options.events?.finished(id, view.status === 'finished' ? 'done' : view.status === 'cancelled' ? 'cancelled' : 'failed', message);
      return { ...view };
    });
    this.live.set(id, { view, handle, done });
    return { id };
  }

  cancel(id: string): { id: string; cancelled: boolean } {
    const e = this.live.get(id);
    if (!e) throw new ServiceError(`No evaluation with the id ${id} is running in this session.`);
    if (e.view.status !== 'running') return { id, cancelled: false };
    e.handle?.cancel();
    return { id, cancelled: true };
  }

  /** Resolves with the evaluation's final view. */
  wait(id: string): Promise<EvaluationView> {
    const e = this.live.get(id);
    if (!e) return Promise.reject(new ServiceError(`No evaluation with the id ${id} was started in this session.`));
    return e.done;
  }

  /** Live and failed ones of this session, then every finished one from the audit trail, newest first. */
  list(): EvaluationView[] {
    const recorded = this.options.audit().log({ action: 'evaluation.finished', newestFirst: true }).map(viewOfEvent).filter((v): v is EvaluationView => v !== null);
    const seen = new Set(recorded.map((v) => v.id));
    const session = [...this.live.values()].map((e) => ({ ...e.view })).filter((v) => !seen.has(v.id)).reverse();
    return [...session, ...recorded];
  }

  table(): ResultsTableRow[] {
    return resultsTable(this.list());
  }
}

export function summary(r: EvaluationResult): string {
  if (r.metric === 'ppl') return `perplexity ${r.ppl.toFixed(4)} over ${r.tokens} tokens`;
  if (r.metric === 'mc') return `acc ${r.acc.toFixed(4)}, acc_norm ${r.acc_norm.toFixed(4)} over ${r.n} items`;
  return `exact match ${r.em.toFixed(4)} over ${r.n} items`;
}
