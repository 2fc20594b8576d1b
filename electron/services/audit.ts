/**
 * The audit trail: a tamper-evident, append-only record of every action, in `<home>/audit.sqlite`.
 *
 * Service API (plain Node; no Electron import, so the app, the CLI and tests share it):
 *
 *   const audit = openAudit(home, { executionProvider: 'cpu' });   // one writer per process, shared
 *   audit.append('dataset.imported', {                              // → { seq, hash, ts }
 *     inputs:  { data: await hashFile(src) },                       // name → sha256 hex or Digest
 *     outputs: { staged: await hashFile(dst) },
 *     details: { rows: 1200, format: 'jsonl' },                     // any canonical-JSON value
 *     reason:  'publisher key not trusted; imported on purpose',   // required wording for overrides
 *     runId, corrects,                                              // optional: run id, seq corrected
 *   });
 *   const { runId } = audit.startRun({ kind: 'tune', config, inputs });   // run.started + runs row
 *   audit.recordMetrics(runId, [{ step, loss, lr, selected, importance }]); // buffered, batched
 *   audit.finishRun(runId, 'finished' | 'failed' | 'cancelled', { outputs, result, error });
 *   audit.recordEmulator / recordDataset / recordEvaluation / recordSettingsChanges(...)
 *   audit.addTrustedKey / removeTrustedKey / trustedKeys()          // see also services/keys.ts
 *   audit.log({ runId, action, afterSeq, limit })   // read-only connection; never blocks the writer
 *   audit.metrics(runId) / runs() / run(id)
 *   audit.verify({ trust, checkpoints })            // → VerifyReport { ok, firstBadSeq, verdict, … }
 *   audit.checkpoint(signingKey)                    // a signed checkpoint of the current head
 *   audit.export({ out, signingKey })               // JSON + HTML + checkpoint file, audit.exported
 *   await audit.backup(file)                        // SQLite online backup
 *   audit.close()
 *
 * Every event carries the actor (OS user + the Settings user name), wall-clock time, seq, input
 * and output hashes, app version, machine id and execution provider; the row's hash chains it to
 * the one before. There is no switch that turns logging off. Readers that hold no writer use
 * readAuditLog / verifyAuditDatabase / verifyAuditExport. Jobs in worker threads do not write
 * here: they post progress to the main thread, which records it through its one writer.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic-write';
import { appUserFromSettings, currentActor, machineId, type Actor } from './actor';
import { isSha256Hex, sha256Hex, type Digest } from './hashing';
import { homeSigningKey, parsePublicKey, type PublicKeyInfo, type SigningKey, type TrustedKey } from './keys';
import { ServiceError } from './service-error';
import { appVersion } from './version';
import { canonicalJson, type JsonValue } from '../audit/canonical';
import { eventHash, GENESIS_HASH, type EventRow } from '../audit/chain';
import { checkpointFileSchema, checkpointFileText, signCheckpoint, type SignedCheckpoint } from '../audit/checkpoint';
import { EXPORT_FORMAT, exportCompanions, readAuditExport, type AuditExport } from '../audit/export-format';
import { MetricsWriter, type MetricRow, type MetricsWriterOptions } from '../audit/metrics-writer';
import { renderAuditReport } from '../audit/report-html';
import { auditPath, integrityCheck, openReader, openWriter, type Db } from '../audit/store';
import { verifyLog, type CheckpointSource, type VerifyReport } from '../audit/verify';

export type { MetricRow } from '../audit/metrics-writer';
export type { VerifyReport } from '../audit/verify';
export type { JsonValue } from '../audit/canonical';

/** The actions the app writes; others may be added as `area.verb` (lower case). */
export const AUDIT_ACTIONS = [
  'emulator.imported',
  'emulator.built',
  'dataset.imported',
  'run.started',
  'run.finished',
  'run.failed',
  'run.cancelled',
  'evaluation.finished',
  'adapter.exported',
  'plugin.finished',
  'key.generated',
  'key.trusted',
  'key.untrusted',
  'settings.changed',
  'audit.exported',
  'audit.checkpoint',
  'audit.corrected',
] as const;
export type KnownAuditAction = (typeof AUDIT_ACTIONS)[number];
export type AuditAction = KnownAuditAction | `${string}.${string}`;

const ACTION_PATTERN = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$/;

/** A hash as recorded: bare SHA-256 hex, or a Digest from services/hashing. */
export type DigestValue = string | Digest;

export interface AppendOptions {
  inputs?: Record<string, DigestValue>;
  outputs?: Record<string, DigestValue>;
  /** Why the user overrode a check (or why a correction was made). */
  reason?: string;
  details?: Record<string, JsonValue | undefined>;
  runId?: string;
  /** The seq of an earlier event this one corrects (nothing is ever rewritten). */
  corrects?: number;
  /** Overrides the handle's execution provider for this event. */
  executionProvider?: string;
}

export interface AppendResult {
  seq: number;
  hash: string;
  ts: string;
}

export interface EventPayload {
  app_version: string;
  machine_id: string;
  execution_provider: string;
  inputs: Record<string, DigestValue>;
  outputs: Record<string, DigestValue>;
  details: Record<string, JsonValue>;
  run_id?: string;
  corrects?: number;
}

/** An event as readers see it (actor and payload parsed). */
export interface AuditEvent {
  seq: number;
  ts: string;
  actor: Actor;
  action: string;
  reason: string | null;
  payload: EventPayload;
  prevHash: string;
  hash: string;
}

export interface LogFilter {
  runId?: string;
  /** Exact action, or a prefix ending in "." or ".*" (e.g. "run.*"). */
  action?: string;
  afterSeq?: number;
  limit?: number;
  newestFirst?: boolean;
}

export type RunStatus = 'running' | 'finished' | 'failed' | 'cancelled';

export interface RunRecord {
  id: string;
  kind: string;
  status: RunStatus;
  config: Record<string, JsonValue>;
  emulatorId: string | null;
  datasetId: string | null;
  /** Where the run writes its adapter and checkpoints. */
  output: string | null;
  result: JsonValue | null;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
}

export interface StartRunOptions {
  runId?: string;
  kind: string;
  config: Record<string, JsonValue>;
  inputs?: Record<string, DigestValue>;
  emulatorId?: string;
  datasetId?: string;
  output?: string;
  details?: Record<string, JsonValue | undefined>;
  reason?: string;
  executionProvider?: string;
}

export interface FinishRunOptions {
  outputs?: Record<string, DigestValue>;
  result?: JsonValue;
  /** For a failed run: the error sentence. */
  error?: string;
  reason?: string;
  details?: Record<string, JsonValue | undefined>;
  executionProvider?: string;
}

export interface VerifyOptions {
  /** Public keys the verifier trusts for checkpoints (e.g. from --trust files). */
  trust?: PublicKeyInfo[];
  /** Extra checkpoints kept outside the database (e.g. --checkpoint files). */
  checkpoints?: CheckpointSource[];
  /**
   * Also trust the keys this log itself trusted through key.trusted events. Default: true when the
   * data folder verifies its own log (`audit.verify()`), false for `verifyAuditDatabase` on a file
   * (an auditor's copy is judged only by the keys the auditor passes).
   */
  trustLocalKeys?: boolean;
}

export interface ExportOptions {
  /** The JSON export; the HTML report and the checkpoint file are written beside it. */
  out: string;
  /** Signs the checkpoint; default: this data folder's audit signing key (created on first use). */
  signingKey?: SigningKey;
}

export interface ExportResult {
  json: string;
  html: string;
  checkpointFile: string;
  checkpoint: SignedCheckpoint;
  report: VerifyReport;
  /** The seq of the audit.exported event recording this export. */
  seq: number;
}

/** A metrics row as stored (missing or non-finite numbers read back as null). */
export interface StoredMetricRow {
  step: number;
  ts: string;
  loss: number | null;
  lr: number | null;
  tokensPerSecond: number | null;
  selected: number[] | null;
  importance: number[] | null;
}

export interface OpenAuditOptions {
  /** The app user recorded next to the OS user; default: userName in <home>/settings.json. */
  appUser?: string;
  /** Recorded in events that do not name their own (default "none": no model ran). */
  executionProvider?: string;
  metrics?: MetricsWriterOptions;
}

export interface AuditLog {
  readonly home: string;
  readonly path: string;
  append(action: AuditAction, options?: AppendOptions): AppendResult;
  /** Runs `fn` in one IMMEDIATE transaction: events and domain rows it writes commit together. */
  transaction<T>(fn: () => T): T;
  recordMetrics(runId: string, rows: MetricRow[]): void;
  flushMetrics(): void;
  metrics(runId: string): StoredMetricRow[];
  /** SHA-256 of the run's stored metrics (canonical JSON of the rows), recorded at run end. */
  metricsDigest(runId: string): Digest & { rows: number };
  startRun(options: StartRunOptions): AppendResult & { runId: string };
  finishRun(runId: string, outcome: Exclude<RunStatus, 'running'>, options?: FinishRunOptions): AppendResult;
  runs(): RunRecord[];
  run(id: string): RunRecord | undefined;
  recordEmulator(e: {
    id?: string;
    name: string;
    path: string;
    sha256: string;
    signerKeyId?: string | null;
    details?: Record<string, JsonValue>;
    inputs?: Record<string, DigestValue>;
    reason?: string;
    action?: 'emulator.imported' | 'emulator.built';
    executionProvider?: string;
  }): AppendResult & { id: string };
  recordDataset(d: {
    id?: string;
    name: string;
    path: string;
    sha256: string;
    rows: number;
    format: string;
    inputs?: Record<string, DigestValue>;
    reason?: string;
  }): AppendResult & { id: string };
  recordEvaluation(ev: {
    id?: string;
    runId?: string;
    metric: string;
    value: number | null;
    result: Record<string, JsonValue>;
    inputs?: Record<string, DigestValue>;
    outputs?: Record<string, DigestValue>;
    executionProvider?: string;
  }): AppendResult & { id: string };
  recordSettingsChanges(changes: Array<{ key: string; oldValue: JsonValue; newValue: JsonValue }>, reason?: string): AppendResult;
  addTrustedKey(key: PublicKeyInfo, label: string, reason?: string): TrustedKey;
  removeTrustedKey(keyId: string, reason?: string): AppendResult;
  trustedKeys(): TrustedKey[];
  isTrusted(keyId: string): boolean;
  log(filter?: LogFilter): AuditEvent[];
  verify(options?: VerifyOptions): VerifyReport;
  checkpoint(key: SigningKey): SignedCheckpoint & { seq: number };
  export(options: ExportOptions): ExportResult;
  backup(destination: string): Promise<void>;
  setAppUser(name: string | undefined): void;
  setExecutionProvider(ep: string): void;
  close(): void;
}

// ── The shared writer ─────────────────────────────────────────────────────────────────────────

interface Store {
  path: string;
  db: Db;
  reader: Db | undefined;
  metrics: MetricsWriter;
  refs: number;
}

const stores = new Map<string, Store>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Buffered metrics are written on a normal exit too, not only on close().
  process.once('exit', () => {
    for (const s of stores.values()) {
      try {
        s.metrics.flush();
      } catch {
        // the process is ending; nothing left to report to
      }
    }
  });
}

/** Opens (or joins) this process's one writer for `<home>/audit.sqlite`. */
export function openAudit(home: string, options: OpenAuditOptions = {}): AuditLog {
  const path = auditPath(home);
  let store = stores.get(path);
  if (!store) {
    const db = openWriter(path);
    store = { path, db, reader: undefined, metrics: new MetricsWriter(db, options.metrics), refs: 0 };
    stores.set(path, store);
    installExitHook();
  }
  store.refs++;
  return new AuditLogImpl(store, home, options);
}

// ── Row helpers ──────────────────────────────────────────────────────────────────────────────

const EVENT_COLUMNS = 'seq, ts, actor, action, reason, payload, prev_hash, hash';

function toEvent(row: EventRow): AuditEvent {
  return {
    seq: row.seq,
    ts: row.ts,
    actor: JSON.parse(row.actor) as Actor,
    action: row.action,
    reason: row.reason,
    payload: JSON.parse(row.payload) as EventPayload,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

function queryLog(db: Db, filter: LogFilter = {}): AuditEvent[] {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.runId !== undefined) {
    where.push(`json_extract(payload, '$.run_id') = ?`);
    params.push(filter.runId);
  }
  if (filter.action) {
    const prefix = filter.action.endsWith('.*') ? filter.action.slice(0, -1) : filter.action.endsWith('.') ? filter.action : undefined;
    if (prefix) {
      where.push('substr(action, 1, ?) = ?');
      params.push(prefix.length, prefix);
    } else {
      where.push('action = ?');
      params.push(filter.action);
    }
  }
  if (filter.afterSeq !== undefined) {
    where.push('seq > ?');
    params.push(filter.afterSeq);
  }
  let sql = `SELECT ${EVENT_COLUMNS} FROM audit_events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${filter.newestFirst ? 'DESC' : 'ASC'}`;
  if (filter.limit !== undefined) {
    sql += ' LIMIT ?';
    params.push(Math.max(0, Math.floor(filter.limit)));
  }
  return (db.prepare(sql).all(...params) as EventRow[]).map(toEvent);
}

function readCheckpoints(db: Db, source: string): CheckpointSource[] {
  const rows = db.prepare('SELECT size, head_hash, time, key_id, public_key, signature FROM audit_checkpoints ORDER BY id').all() as Array<{
    size: number;
    head_hash: string;
    time: string;
    key_id: string;
    public_key: string;
    signature: string;
  }>;
  return rows.map((r) => ({
    checkpoint: { size: r.size, head_hash: r.head_hash, time: r.time, key_id: r.key_id },
    signature: r.signature,
    public_key: r.public_key,
    source,
  }));
}

/**
 * The keys a log trusts, replayed from its own key.trusted / key.untrusted events (not from the
 * keys table, which is only an index): a key slipped into the table without an event is not trusted.
 */
function trustFromChain(db: Db): PublicKeyInfo[] {
  const rows = db
    .prepare(`SELECT seq, action, payload FROM audit_events WHERE action IN ('key.trusted', 'key.untrusted') ORDER BY seq`)
    .all() as Array<{ seq: number; action: string; payload: string }>;
  const keys = new Map<string, PublicKeyInfo>();
  for (const r of rows) {
    const details = (JSON.parse(r.payload) as EventPayload).details ?? {};
    const keyId = typeof details.key_id === 'string' ? details.key_id : undefined;
    if (!keyId) continue;
    if (r.action === 'key.untrusted') keys.delete(keyId);
    else if (typeof details.public_key === 'string') {
      try {
        const info = parsePublicKey(details.public_key, `The key in event seq ${r.seq}`);
        if (info.keyId === keyId) keys.set(keyId, info);
      } catch {
        // a malformed key in an event grants no trust
      }
    }
  }
  return [...keys.values()];
}

function* iterateEvents(db: Db): Generator<EventRow> {
  yield* db.prepare(`SELECT ${EVENT_COLUMNS} FROM audit_events ORDER BY seq`).iterate() as IterableIterator<EventRow>;
}

function verifyDb(db: Db, source: string, options: VerifyOptions, localTrust: boolean): VerifyReport {
  const integrity = integrityCheck(db);
  const run = db.transaction(() => {
    const trust = [...(options.trust ?? []), ...(localTrust ? trustFromChain(db) : [])];
    return verifyLog(iterateEvents(db), [...readCheckpoints(db, source), ...(options.checkpoints ?? [])], trust);
  });
  const report = run();
  if (integrity !== 'ok') {
    const problem = { seq: 1, message: `the database file is damaged (SQLite integrity check: ${integrity}).` };
    return { ...report, ok: false, problems: [problem, ...report.problems], firstBadSeq: report.firstBadSeq ?? null, verdict: `Audit database damaged: ${integrity}` };
  }
  return report;
}

function digestOf(name: string, value: DigestValue): DigestValue {
  if (typeof value === 'string') {
    if (!isSha256Hex(value)) throw new TypeError(`Audit digest "${name}" must be 64 lower-case hex digits (SHA-256), got "${value}".`);
    return value;
  }
  if (!value || !isSha256Hex(value.sha256) || !Number.isInteger(value.size) || value.size < 0) {
    throw new TypeError(`Audit digest "${name}" must be a SHA-256 hex string or { sha256, size }.`);
  }
  const d: Digest = { sha256: value.sha256, size: value.size };
  if (value.files !== undefined) d.files = value.files;
  return d;
}

function digests(map: Record<string, DigestValue> | undefined): Record<string, DigestValue> {
  const out: Record<string, DigestValue> = {};
  for (const [k, v] of Object.entries(map ?? {})) out[k] = digestOf(k, v);
  return out;
}

function cleanDetails(details: Record<string, JsonValue | undefined> | undefined): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(details ?? {})) if (v !== undefined) out[k] = v;
  return out;
}

interface RunRow {
  id: string;
  kind: string;
  status: RunStatus;
  config: string;
  emulator_id: string | null;
  dataset_id: string | null;
  output: string | null;
  result: string | null;
  error: string | null;
  started_at: string;
  finished_at: string | null;
}

function toRun(r: RunRow): RunRecord {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    config: JSON.parse(r.config) as Record<string, JsonValue>,
    emulatorId: r.emulator_id,
    datasetId: r.dataset_id,
    output: r.output,
    result: r.result === null ? null : (JSON.parse(r.result) as JsonValue),
    error: r.error,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

// ── The handle ───────────────────────────────────────────────────────────────────────────────

class AuditLogImpl implements AuditLog {
  readonly path: string;
  private closed = false;
  private appUser: string | undefined;
  private executionProvider: string;

  constructor(private readonly store: Store, readonly home: string, options: OpenAuditOptions) {
    this.path = store.path;
    this.appUser = options.appUser;
    this.executionProvider = options.executionProvider ?? 'none';
  }

  private get db(): Db {
    if (this.closed) throw new Error(`The audit log ${this.path} was closed; open it again with openAudit().`);
    return this.store.db;
  }

  private get reader(): Db {
    if (this.closed) throw new Error(`The audit log ${this.path} was closed; open it again with openAudit().`);
    this.store.reader ??= openReader(this.path);
    return this.store.reader;
  }

  setAppUser(name: string | undefined): void {
    this.appUser = name;
  }

  setExecutionProvider(ep: string): void {
    this.executionProvider = ep;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  append(action: AuditAction, options: AppendOptions = {}): AppendResult {
    if (!ACTION_PATTERN.test(action)) throw new TypeError(`Audit action "${action}" must look like "area.verb" in lower case.`);
    const reason = options.reason?.trim() ? options.reason.trim() : null;
    if (options.corrects !== undefined && !reason) throw new ServiceError('A correction must say why it corrects the earlier event (a reason).');
    const payloadObject: EventPayload = {
      app_version: appVersion(),
      machine_id: machineId(),
      execution_provider: options.executionProvider ?? this.executionProvider,
      inputs: digests(options.inputs),
      outputs: digests(options.outputs),
      details: cleanDetails(options.details),
    };
    if (options.runId !== undefined) payloadObject.run_id = options.runId;
    if (options.corrects !== undefined) payloadObject.corrects = options.corrects;
    const payload = canonicalJson(payloadObject);
    const actor = canonicalJson(currentActor(this.appUser ?? appUserFromSettings(this.home)));
    const db = this.db;
    return db
      .transaction(() => {
        const head = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
        const seq = (head?.seq ?? 0) + 1;
        if (options.corrects !== undefined && !(Number.isInteger(options.corrects) && options.corrects >= 1 && options.corrects < seq)) {
          throw new ServiceError(`Event seq ${options.corrects} does not exist, so it cannot be corrected.`);
        }
        const ts = new Date().toISOString();
        const row = { seq, ts, actor, action, reason, payload, prev_hash: head?.hash ?? GENESIS_HASH };
        const hash = eventHash(row);
        db.prepare(`INSERT INTO audit_events (${EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(
          seq,
          ts,
          actor,
          action,
          reason,
          payload,
          row.prev_hash,
          hash,
        );
        return { seq, hash, ts };
      })
      .immediate();
  }

  recordMetrics(runId: string, rows: MetricRow[]): void {
    if (this.closed) throw new Error(`The audit log ${this.path} was closed; open it again with openAudit().`);
    this.store.metrics.record(runId, rows);
  }

  flushMetrics(): void {
    if (!this.closed) this.store.metrics.flush();
  }

  metrics(runId: string): StoredMetricRow[] {
    const rows = this.reader
      .prepare('SELECT step, ts, loss, lr, tokens_per_second, selected, importance FROM run_metrics WHERE run_id = ? ORDER BY step')
      .all(runId) as Array<{ step: number; ts: string; loss: number | null; lr: number | null; tokens_per_second: number | null; selected: string | null; importance: string | null }>;
    return rows.map((r) => ({
      step: r.step,
      ts: r.ts,
      loss: r.loss,
      lr: r.lr,
      tokensPerSecond: r.tokens_per_second,
      selected: r.selected === null ? null : (JSON.parse(r.selected) as number[]),
      importance: r.importance === null ? null : (JSON.parse(r.importance) as number[]),
    }));
  }

  metricsDigest(runId: string): Digest & { rows: number } {
    this.flushMetrics();
    const rows = this.db
      .prepare('SELECT step, loss, lr, tokens_per_second, selected, importance FROM run_metrics WHERE run_id = ? ORDER BY step')
      .all(runId) as Array<Record<string, JsonValue>>;
    const text = canonicalJson(rows);
    return { sha256: sha256Hex(text), size: Buffer.byteLength(text), rows: rows.length };
  }

  startRun(o: StartRunOptions): AppendResult & { runId: string } {
    const runId = o.runId ?? randomUUID();
    return this.transaction(() => {
      const r = this.append('run.started', {
        runId,
        inputs: o.inputs,
        reason: o.reason,
        executionProvider: o.executionProvider,
        details: { ...o.details, kind: o.kind, config: o.config, emulator_id: o.emulatorId, dataset_id: o.datasetId },
      });
      this.db
        .prepare(
          `INSERT INTO runs (id, kind, status, config, emulator_id, dataset_id, output, started_at) VALUES (?, ?, 'running', ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET status = 'running', finished_at = NULL, error = NULL`,
        )
        .run(runId, o.kind, canonicalJson(o.config), o.emulatorId ?? null, o.datasetId ?? null, o.output ?? null, r.ts);
      return { ...r, runId };
    });
  }

  finishRun(runId: string, outcome: Exclude<RunStatus, 'running'>, o: FinishRunOptions = {}): AppendResult {
    const metrics = this.metricsDigest(runId);
    const outputs: Record<string, DigestValue> = { ...o.outputs };
    if (metrics.rows > 0) outputs.metrics = { sha256: metrics.sha256, size: metrics.size };
    return this.transaction(() => {
      const r = this.append(`run.${outcome}`, {
        runId,
        outputs,
        reason: o.reason,
        executionProvider: o.executionProvider,
        details: { ...o.details, result: o.result, error: o.error, metric_rows: metrics.rows },
      });
      const updated = this.db
        .prepare('UPDATE runs SET status = ?, result = ?, error = ?, finished_at = ? WHERE id = ?')
        .run(outcome, o.result === undefined ? null : canonicalJson(o.result), o.error ?? null, r.ts, runId);
      if (updated.changes === 0) throw new ServiceError(`There is no run "${runId}" to finish; start it with startRun first.`);
      return r;
    });
  }

  runs(): RunRecord[] {
    return (this.reader.prepare('SELECT * FROM runs ORDER BY started_at DESC').all() as RunRow[]).map(toRun);
  }

  run(id: string): RunRecord | undefined {
    const row = this.reader.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
    return row ? toRun(row) : undefined;
  }

  recordEmulator(e: Parameters<AuditLog['recordEmulator']>[0]): AppendResult & { id: string } {
    const id = e.id ?? randomUUID();
    if (!isSha256Hex(e.sha256)) throw new TypeError('recordEmulator needs the package manifest SHA-256 as 64 hex digits.');
    return this.transaction(() => {
      const r = this.append(e.action ?? 'emulator.imported', {
        inputs: e.inputs,
        outputs: { emulator: e.sha256 },
        reason: e.reason,
        executionProvider: e.executionProvider,
        details: { emulator_id: id, name: e.name, path: e.path, signer_key_id: e.signerKeyId ?? null, ...e.details },
      });
      this.db
        .prepare(
          `INSERT INTO emulators (id, name, path, sha256, signer_key_id, details, imported_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET name = excluded.name, path = excluded.path, sha256 = excluded.sha256,
             signer_key_id = excluded.signer_key_id, details = excluded.details, imported_at = excluded.imported_at, seq = excluded.seq`,
        )
        .run(id, e.name, e.path, e.sha256, e.signerKeyId ?? null, canonicalJson(e.details ?? {}), r.ts, r.seq);
      return { ...r, id };
    });
  }

  recordDataset(d: Parameters<AuditLog['recordDataset']>[0]): AppendResult & { id: string } {
    const id = d.id ?? randomUUID();
    if (!isSha256Hex(d.sha256)) throw new TypeError('recordDataset needs the data file SHA-256 as 64 hex digits.');
    return this.transaction(() => {
      const r = this.append('dataset.imported', {
        inputs: d.inputs,
        outputs: { dataset: d.sha256 },
        reason: d.reason,
        details: { dataset_id: id, name: d.name, path: d.path, rows: d.rows, format: d.format },
      });
      this.db
        .prepare(
          `INSERT INTO datasets (id, name, path, sha256, rows, format, imported_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET name = excluded.name, path = excluded.path, sha256 = excluded.sha256,
             rows = excluded.rows, format = excluded.format, imported_at = excluded.imported_at, seq = excluded.seq`,
        )
        .run(id, d.name, d.path, d.sha256, d.rows, d.format, r.ts, r.seq);
      return { ...r, id };
    });
  }

  recordEvaluation(ev: Parameters<AuditLog['recordEvaluation']>[0]): AppendResult & { id: string } {
    const id = ev.id ?? randomUUID();
    return this.transaction(() => {
      const r = this.append('evaluation.finished', {
        runId: ev.runId,
        inputs: ev.inputs,
        outputs: ev.outputs,
        executionProvider: ev.executionProvider,
        details: { evaluation_id: id, metric: ev.metric, value: ev.value, result: ev.result },
      });
      this.db
        .prepare('INSERT INTO evaluations (id, run_id, metric, value, result, created_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(id, ev.runId ?? null, ev.metric, ev.value, canonicalJson(ev.result), r.ts, r.seq);
      return { ...r, id };
    });
  }

  recordSettingsChanges(changes: Array<{ key: string; oldValue: JsonValue; newValue: JsonValue }>, reason?: string): AppendResult {
    if (changes.length === 0) throw new TypeError('recordSettingsChanges needs at least one change.');
    return this.transaction(() => {
      const r = this.append('settings.changed', {
        reason,
        details: { changes: changes.map((c) => ({ key: c.key, old: c.oldValue, new: c.newValue })) },
      });
      const insert = this.db.prepare('INSERT INTO settings_changes (ts, key, old_value, new_value, seq) VALUES (?, ?, ?, ?, ?)');
      for (const c of changes) insert.run(r.ts, c.key, canonicalJson(c.oldValue), canonicalJson(c.newValue), r.seq);
      return r;
    });
  }

  addTrustedKey(key: PublicKeyInfo, label: string, reason?: string): TrustedKey {
    return this.transaction(() => {
      const existing = this.trustedKeyRow(key.keyId);
      if (existing) return existing;
      const r = this.append('key.trusted', {
        reason,
        outputs: { public_key: sha256Hex(key.raw) },
        details: { key_id: key.keyId, label, public_key: key.pem },
      });
      this.db.prepare('INSERT INTO keys (key_id, public_key, label, added_at, added_seq) VALUES (?, ?, ?, ?, ?)').run(key.keyId, key.pem, label, r.ts, r.seq);
      return { keyId: key.keyId, publicKey: key.pem, label, addedAt: r.ts, addedSeq: r.seq };
    });
  }

  removeTrustedKey(keyId: string, reason?: string): AppendResult {
    return this.transaction(() => {
      const existing = this.trustedKeyRow(keyId);
      if (!existing) throw new ServiceError(`No trusted key has the id ${keyId}.`);
      const r = this.append('key.untrusted', { reason, details: { key_id: keyId, label: existing.label } });
      this.db.prepare('DELETE FROM keys WHERE key_id = ?').run(keyId);
      return r;
    });
  }

  private trustedKeyRow(keyId: string): TrustedKey | undefined {
    const r = this.db.prepare('SELECT key_id, public_key, label, added_at, added_seq FROM keys WHERE key_id = ?').get(keyId) as
      | { key_id: string; public_key: string; label: string; added_at: string; added_seq: number }
      | undefined;
    return r && { keyId: r.key_id, publicKey: r.public_key, label: r.label, addedAt: r.added_at, addedSeq: r.added_seq };
  }

  trustedKeys(): TrustedKey[] {
    const rows = this.reader.prepare('SELECT key_id, public_key, label, added_at, added_seq FROM keys ORDER BY added_seq').all() as Array<{
      key_id: string;
      public_key: string;
      label: string;
      added_at: string;
      added_seq: number;
    }>;
    return rows.map((r) => ({ keyId: r.key_id, publicKey: r.public_key, label: r.label, addedAt: r.added_at, addedSeq: r.added_seq }));
  }

  isTrusted(keyId: string): boolean {
    return this.trustedKeyRow(keyId) !== undefined;
  }

  log(filter?: LogFilter): AuditEvent[] {
    return queryLog(this.reader, filter);
  }

  verify(options: VerifyOptions = {}): VerifyReport {
    this.flushMetrics();
    return verifyDb(this.reader, 'the database', options, options.trustLocalKeys !== false);
  }

  /** Signs the current head inside the write lock, so the checkpoint matches a real state of the log. */
  private signHead(key: SigningKey): SignedCheckpoint {
    const db = this.db;
    return this.transaction(() => {
      const head = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
      const checkpoint = signCheckpoint(head?.seq ?? 0, head?.hash ?? GENESIS_HASH, key);
      const c = checkpoint.checkpoint;
      db.prepare('INSERT INTO audit_checkpoints (size, head_hash, time, key_id, public_key, signature) VALUES (?, ?, ?, ?, ?, ?)').run(
        c.size,
        c.head_hash,
        c.time,
        c.key_id,
        checkpoint.public_key,
        checkpoint.signature,
      );
      return checkpoint;
    });
  }

  checkpoint(key: SigningKey): SignedCheckpoint & { seq: number } {
    const checkpoint = this.signHead(key);
    const { seq } = this.append('audit.checkpoint', {
      details: { size: checkpoint.checkpoint.size, head_hash: checkpoint.checkpoint.head_hash, key_id: checkpoint.checkpoint.key_id },
    });
    return { ...checkpoint, seq };
  }

  export(options: ExportOptions): ExportResult {
    const db = this.db;
    const integrity = integrityCheck(db);
    if (integrity !== 'ok') {
      throw new ServiceError(`The audit database ${this.path} is damaged (SQLite integrity check: ${integrity}); keep a copy of the file for the auditor and restore the latest backup.`);
    }
    this.flushMetrics();
    const key = options.signingKey ?? homeSigningKey(this, this.home);
    // Signing with a key is a deliberate act of this data folder's user, so its own self-check trusts it.
    if (!this.isTrusted(key.keyId)) this.addTrustedKey(key, 'audit export signing key', 'signed an audit export');

    // One snapshot: the events, the checkpoint over their head, and every checkpoint so far.
    const snapshot = this.transaction(() => {
      const checkpoint = this.signHead(key);
      const events = db.prepare(`SELECT ${EVENT_COLUMNS} FROM audit_events WHERE seq <= ? ORDER BY seq`).all(checkpoint.checkpoint.size) as EventRow[];
      const checkpoints = readCheckpoints(db, 'the export');
      const report = verifyLog(events, checkpoints, [...trustFromChain(db), key]);
      return { checkpoint, events, checkpoints, report };
    });
    const { checkpoint, events, report } = snapshot;
    const exported: AuditExport = {
      format: EXPORT_FORMAT,
      version: 1,
      exported_at: new Date().toISOString(),
      app_version: appVersion(),
      machine_id: machineId(),
      events,
      chain: { size: checkpoint.checkpoint.size, head_hash: checkpoint.checkpoint.head_hash, genesis_hash: GENESIS_HASH },
      checkpoints: snapshot.checkpoints.map(({ source: _source, ...cp }) => cp),
      verdict: { ok: report.ok, first_bad_seq: report.firstBadSeq, text: report.verdict },
    };
    const companions = exportCompanions(options.out);
    const jsonText = `${JSON.stringify(exported, null, 1)}\n`;
    const htmlText = renderAuditReport(exported);
    const checkpointText = checkpointFileText(checkpoint);
    writeFileAtomic(options.out, jsonText);
    writeFileAtomic(companions.html, htmlText);
    writeFileAtomic(companions.checkpoint, checkpointText);
    const fileDigest = (text: string): Digest => ({ sha256: sha256Hex(text), size: Buffer.byteLength(text) });
    const { seq } = this.append('audit.exported', {
      outputs: { export: fileDigest(jsonText), report: fileDigest(htmlText), checkpoint: fileDigest(checkpointText) },
      details: {
        out: options.out,
        size: checkpoint.checkpoint.size,
        head_hash: checkpoint.checkpoint.head_hash,
        key_id: key.keyId,
        verdict: report.verdict,
      },
    });
    return { json: options.out, html: companions.html, checkpointFile: companions.checkpoint, checkpoint, report, seq };
  }

  async backup(destination: string): Promise<void> {
    this.flushMetrics();
    await this.db.backup(destination);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const s = this.store;
    s.refs--;
    if (s.refs > 0) return;
    stores.delete(s.path);
    try {
      s.metrics.flush();
    } finally {
      s.reader?.close();
      s.db.close();
    }
  }
}

// ── Readers without a writer (auditors, `offsite audit log` / `verify`) ───────────────────────

export function readAuditLog(dbPath: string, filter?: LogFilter): AuditEvent[] {
  const db = openReader(dbPath);
  try {
    return queryLog(db, filter);
  } finally {
    db.close();
  }
}

/**
 * Verifies a database file read-only. `trustLocalKeys`: also trust keys the log trusted itself
 * (right for a user's own data folder; an auditor passes --trust keys instead).
 */
export function verifyAuditDatabase(dbPath: string, options: VerifyOptions = {}): VerifyReport {
  const db = openReader(dbPath);
  try {
    return verifyDb(db, dbPath, options, options.trustLocalKeys === true);
  } finally {
    db.close();
  }
}

export function verifyAuditExport(exportPath: string, options: VerifyOptions = {}): VerifyReport {
  const ex = readAuditExport(exportPath);
  const checkpoints: CheckpointSource[] = [...ex.checkpoints.map((cp) => ({ ...cp, source: exportPath })), ...(options.checkpoints ?? [])];
  const report = verifyLog(ex.events, checkpoints, options.trust ?? []);
  // The export's own summary of the chain must agree with its events.
  if (ex.chain.size !== report.size || ex.chain.head_hash !== report.headHash) {
    const seq = Math.min(ex.chain.size, report.size) + 1;
    const problem = { seq, message: `the export says the log has ${ex.chain.size} events ending in ${ex.chain.head_hash.slice(0, 16)}…, but its events end at seq ${report.size} (${report.headHash.slice(0, 16)}…).` };
    const problems = [...report.problems, problem].sort((a, b) => a.seq - b.seq);
    const first = problems[0]!;
    return { ...report, ok: false, problems, firstBadSeq: first.seq, verdict: `Audit log verification failed at seq ${first.seq}: ${first.message}` };
  }
  return report;
}

/** Reads a checkpoint file (written beside every export) for `verify --checkpoint`. */
export function readCheckpointFile(path: string): CheckpointSource {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw e;
    throw new ServiceError(`${path} is not a checkpoint file (it is not valid JSON).`);
  }
  const result = checkpointFileSchema.safeParse(parsed);
  if (!result.success) {
    throw new ServiceError(`${path} is not an audit checkpoint file written by Offsite Studio (${result.error.issues[0]!.path.join('.') || 'top level'}: ${result.error.issues[0]!.message}).`);
  }
  const { checkpoint, signature, public_key } = result.data;
  return { checkpoint, signature, public_key, source: path };
}
