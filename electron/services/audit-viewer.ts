// What the Audit screen reads: this data folder's own log, or — in auditor mode — an audit
// database or audit export someone handed over, opened read-only. Both are read with the same SQL
// (an export's events are loaded into an in-memory table of the same shape), so filters, paging
// and event details behave the same for every source, and 10,000 events page in milliseconds.
//
// A file opened for audit is hostile until verified: it is copied into the data folder's staging
// folder first and only that copy is read (the auditor's original evidence is never touched, not
// even by SQLite's -shm file), and every JSON column is parsed defensively.
import Database from 'better-sqlite3';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type {
  AuditCheckpointInfo,
  AuditDigestInfo,
  AuditEventDetail,
  AuditEventSummary,
  AuditFacets,
  AuditLogRequest,
  AuditPage,
  AuditSourceInfo,
  AuditVerdict,
} from '../ipc/audit-contract';
import { eventHash, GENESIS_HASH, type EventRow } from '../audit/chain';
import { readAuditExport } from '../audit/export-format';
import { auditPath, openReader, type Db } from '../audit/store';
import type { VerifyReport } from '../audit/verify';
import { verifyAuditDatabase, verifyAuditExport, type AuditLog } from './audit';
import { parsePublicKey, readPublicKey, type PublicKeyInfo } from './keys';
import { ServiceError } from './service-error';

/** Files larger than this are refused for review (an audit log of years is far smaller). */
export const AUDIT_REVIEW_MAX_BYTES = 4 * 1024 ** 3;
const DEFAULT_PAGE = 100;
const SHOWN_PROBLEMS = 20;
const SQLITE_MAGIC = 'SQLite format 3\u0000';
const STAGING_PREFIX = 'audit-review-';

export interface AuditViewer {
  /** True while a record is open read-only (auditor mode). */
  readonly auditorMode: boolean;
  source(): AuditSourceInfo;
  page(request: AuditLogRequest): AuditPage;
  event(seq: number): AuditEventDetail;
  verify(options?: { trust?: string[] }): AuditVerdict;
  /** Enters (or switches) auditor mode on an audit database or export file. */
  open(path: string): AuditSourceInfo;
  /** Leaves auditor mode. */
  leave(): AuditSourceInfo;
  close(): void;
}

interface Opened {
  kind: 'database' | 'export';
  /** The file the auditor chose. */
  original: string;
  /** Our staging copy (what is actually read). */
  copy: string;
  folder: string;
  db: Db;
  exportedAt: string | null;
}

// ── Reading rows ─────────────────────────────────────────────────────────────────────────────

const COLUMNS = 'seq, ts, actor, action, reason, payload, prev_hash, hash';
/** json_extract errors on malformed JSON, and a tampered row may hold anything. */
const RUN_ID = `(CASE WHEN json_valid(payload) THEN json_extract(payload, '$.run_id') END)`;

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function actorOf(text: string): { os: string; app: string | null } {
  const a = parseObject(text);
  if (!a) return { os: '(unreadable actor)', app: null };
  return { os: str(a.os) ?? '(unknown)', app: str(a.app) };
}

export function actorLabel(actor: { os: string; app: string | null }): string {
  return actor.app ? `${actor.app} (${actor.os})` : actor.os;
}

function short(v: unknown): string {
  if (typeof v === 'string') return v.length > 40 ? `"${v.slice(0, 40)}…"` : JSON.stringify(v);
  if (v === undefined) return '—';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** One line saying what the event records, for the timeline. */
function summarise(action: string, payload: Record<string, unknown> | null): string {
  if (!payload) return 'The payload cannot be read (not valid JSON).';
  const d = (payload.details ?? {}) as Record<string, unknown>;
  const s = (k: string) => str(d[k]);
  switch (action) {
    case 'settings.changed': {
      const changes = Array.isArray(d.changes) ? (d.changes as Array<Record<string, unknown>>) : [];
      return changes.map((c) => `${String(c.key)}: ${short(c.old)} → ${short(c.new)}`).join('; ');
    }
    case 'key.trusted':
    case 'key.untrusted':
      return `key ${s('key_id') ?? '?'}${s('label') ? ` (${s('label')})` : ''}`;
    case 'key.generated':
      return `key ${s('key_id') ?? '?'}${s('public_key_file') ? ` → ${s('public_key_file')}` : ''}`;
    case 'audit.exported':
      return `${String(d.size ?? '?')} events → ${s('out') ?? '?'}`;
    case 'audit.checkpoint':
      return `checkpoint of ${String(d.size ?? '?')} events, key ${s('key_id') ?? '?'}`;
    case 'dataset.imported':
    case 'emulator.imported':
    case 'emulator.built':
      return s('name') ?? '';
    case 'evaluation.finished':
      return `${s('metric') ?? 'metric'} = ${typeof d.value === 'number' ? d.value : '—'}`;
    case 'run.started':
      return `${s('kind') ?? 'run'} started`;
    case 'run.failed':
      return s('error') ?? 'failed';
    default: {
      const names = [...Object.keys((payload.inputs ?? {}) as object).map((n) => `in: ${n}`), ...Object.keys((payload.outputs ?? {}) as object).map((n) => `out: ${n}`)];
      return names.join(', ');
    }
  }
}

function toSummary(row: EventRow): AuditEventSummary {
  const payload = parseObject(row.payload);
  return {
    seq: row.seq,
    ts: row.ts,
    action: row.action,
    actor: actorOf(row.actor),
    reason: row.reason,
    runId: payload ? str(payload.run_id) : null,
    summary: summarise(row.action, payload),
    hash: row.hash,
  };
}

function digestsOf(v: unknown): AuditDigestInfo[] {
  if (v === null || typeof v !== 'object') return [];
  return Object.entries(v as Record<string, unknown>).map(([name, d]) => {
    if (typeof d === 'string') return { name, sha256: d, size: null };
    const o = (d ?? {}) as Record<string, unknown>;
    return { name, sha256: str(o.sha256) ?? '(not recorded)', size: typeof o.size === 'number' ? o.size : null };
  });
}

function hashOf(row: EventRow): string | null {
  try {
    return eventHash(row);
  } catch {
    return null;
  }
}

interface Where {
  sql: string;
  params: unknown[];
}

function whereOf(q: AuditLogRequest): Where {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.runId) {
    where.push(`${RUN_ID} = ?`);
    params.push(q.runId);
  }
  if (q.actor) {
    where.push('actor = ?');
    params.push(q.actor);
  }
  if (q.action) {
    const prefix = q.action.endsWith('.*') ? q.action.slice(0, -1) : q.action.endsWith('.') ? q.action : undefined;
    if (prefix) {
      where.push('substr(action, 1, ?) = ?');
      params.push(prefix.length, prefix);
    } else {
      where.push('action = ?');
      params.push(q.action);
    }
  }
  const text = q.text?.trim();
  if (text) {
    // instr, not LIKE: the user's % and _ are plain characters.
    where.push(`instr(lower(action || ' ' || coalesce(reason, '') || ' ' || actor || ' ' || payload || ' ' || hash), lower(?)) > 0`);
    params.push(text);
  }
  return { sql: where.length ? ` WHERE ${where.join(' AND ')}` : '', params };
}

function queryPage(db: Db, q: AuditLogRequest): { events: AuditEventSummary[]; total: number; offset: number; limit: number } {
  const limit = q.limit ?? DEFAULT_PAGE;
  const offset = q.offset ?? 0;
  const w = whereOf(q);
  const total = (db.prepare(`SELECT count(*) AS n FROM audit_events${w.sql}`).get(...w.params) as { n: number }).n;
  const rows = db.prepare(`SELECT ${COLUMNS} FROM audit_events${w.sql} ORDER BY seq DESC LIMIT ? OFFSET ?`).all(...w.params, limit, offset) as EventRow[];
  return { events: rows.map(toSummary), total, offset, limit };
}

function queryEvent(db: Db, seq: number, where: string): AuditEventDetail {
  const row = db.prepare(`SELECT ${COLUMNS} FROM audit_events WHERE seq = ?`).get(seq) as EventRow | undefined;
  if (!row) throw new ServiceError(`There is no event seq ${seq} in ${where}.`);
  const before = db.prepare('SELECT seq, hash FROM audit_events WHERE seq < ? ORDER BY seq DESC LIMIT 1').get(seq) as { seq: number; hash: string } | undefined;
  const expectedPrev = seq === 1 ? GENESIS_HASH : before?.seq === seq - 1 ? before.hash : null;
  const payload = parseObject(row.payload);
  const details = payload?.details;
  return {
    ...toSummary(row),
    prevHash: row.prev_hash,
    payload: row.payload,
    actorJson: row.actor,
    appVersion: payload ? str(payload.app_version) : null,
    machineId: payload ? str(payload.machine_id) : null,
    executionProvider: payload ? str(payload.execution_provider) : null,
    inputs: digestsOf(payload?.inputs),
    outputs: digestsOf(payload?.outputs),
    details: details === undefined ? '{}' : JSON.stringify(details, null, 2),
    corrects: payload && typeof payload.corrects === 'number' ? payload.corrects : null,
    hashOk: hashOf(row) === row.hash,
    linkOk: expectedPrev !== null && row.prev_hash === expectedPrev,
  };
}

function queryFacets(db: Db): AuditFacets {
  const actions = (db.prepare('SELECT DISTINCT action FROM audit_events ORDER BY action').all() as Array<{ action: string }>).map((r) => r.action);
  const actors = (db.prepare('SELECT actor, count(*) AS n FROM audit_events GROUP BY actor ORDER BY n DESC, actor LIMIT 200').all() as Array<{ actor: string; n: number }>).map(
    (r) => ({ value: r.actor, label: actorLabel(actorOf(r.actor)), events: r.n }),
  );
  const runs = db
    .prepare(
      `SELECT run_id AS id, max(kind) AS kind, min(ts) AS startedAt FROM (
         SELECT ${RUN_ID} AS run_id,
                CASE WHEN action = 'run.started' AND json_valid(payload) THEN json_extract(payload, '$.details.kind') END AS kind, ts
         FROM audit_events)
       WHERE typeof(run_id) = 'text' GROUP BY run_id ORDER BY startedAt DESC LIMIT 500`,
    )
    .all() as Array<{ id: string; kind: unknown; startedAt: string }>;
  return { actions, actors, runs: runs.map((r) => ({ id: r.id, kind: typeof r.kind === 'string' ? r.kind : null, startedAt: r.startedAt })) };
}

function lastSeqOf(db: Db): { events: number; lastSeq: number | null } {
  const r = db.prepare('SELECT count(*) AS n, max(seq) AS last FROM audit_events').get() as { n: number; last: number | null };
  return { events: r.n, lastSeq: r.last };
}

const EMPTY_FACETS: AuditFacets = { actions: [], actors: [], runs: [] };

// ── Verdicts ─────────────────────────────────────────────────────────────────────────────────

function adviceFor(report: VerifyReport, mode: 'local' | 'auditor', path: string): string {
  if (report.ok) return '';
  const onlyTrust = report.problems.every((p) => /which is not trusted/.test(p.message));
  if (onlyTrust) {
    return mode === 'local'
      ? 'The events link up, but a checkpoint is signed by a key this workstation does not trust. If you know the signer, add their public key in Settings → Trusted keys and verify again.'
      : 'The events link up, but a checkpoint is signed by a key you have not trusted. Get the signer’s public key (KEYFILE.pub) from its owner by a separate channel, give it below or add it in Settings → Trusted keys, and verify again.';
  }
  const from = report.firstBadSeq ?? 1;
  return mode === 'local'
    ? `Events from seq ${from} on cannot be relied on. Do not try to repair the log: keep the audit database (${path}) unchanged as evidence, do not delete it, and tell whoever audits this workstation; an earlier export with its signed checkpoint shows what the log held then.`
    : `Treat this record as altered from seq ${from} on. Keep the file unchanged as evidence, and ask its owner for the original audit database or a fresh export with its signed checkpoint to compare.`;
}

function toVerdict(report: VerifyReport, mode: 'local' | 'auditor', kind: 'database' | 'export', path: string, rename?: [string, string]): AuditVerdict {
  const fix = (s: string) => (rename ? s.split(rename[0]).join(rename[1]) : s);
  const checkpoints: AuditCheckpointInfo[] = report.checkpoints.map((c) => ({ ...c, source: fix(c.source) }));
  const last = checkpoints.reduce<AuditCheckpointInfo | null>((best, c) => (best === null || c.size > best.size || (c.size === best.size && c.time > best.time) ? c : best), null);
  return {
    ok: report.ok,
    size: report.size,
    headHash: report.headHash,
    firstBadSeq: report.firstBadSeq,
    verdict: fix(report.verdict),
    problems: report.problems.slice(0, SHOWN_PROBLEMS).map((p) => ({ seq: p.seq, message: fix(p.message) })),
    problemCount: report.problems.length,
    checkpoints,
    lastCheckpoint: last,
    advice: adviceFor(report, mode, path),
    mode,
    kind,
    path,
    checkedAt: new Date().toISOString(),
  };
}

// ── Opening a record for audit ───────────────────────────────────────────────────────────────

function fileKind(path: string): 'database' | 'export' {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(16);
    const n = readSync(fd, head, 0, 16, 0);
    return n === 16 && head.toString('latin1') === SQLITE_MAGIC ? 'database' : 'export';
  } finally {
    closeSync(fd);
  }
}

function loadExportIntoMemory(copy: string): { db: Db; exportedAt: string } {
  const ex = readAuditExport(copy);
  const db = new Database(':memory:');
  db.exec(`CREATE TABLE audit_events (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, reason TEXT,
            payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)`);
  const insert = db.prepare(`INSERT OR IGNORE INTO audit_events (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
  db.transaction(() => {
    for (const e of ex.events) insert.run(e.seq, e.ts, e.actor, e.action, e.reason, e.payload, e.prev_hash, e.hash);
  })();
  return { db, exportedAt: ex.exported_at };
}

function openCopiedDatabase(copy: string, original: string): Db {
  let db: Db;
  try {
    db = openReader(copy);
    const table = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_events'`).get();
    if (!table) {
      db.close();
      throw new ServiceError(`${original} is an SQLite database but not an Offsite Studio audit database (it has no audit_events table).`);
    }
  } catch (e) {
    if (e instanceof ServiceError) throw e;
    throw new ServiceError(`${original} could not be read as an audit database (${(e as Error).message}); check that it is a complete copy of audit.sqlite.`);
  }
  return db;
}

// ── The viewer ───────────────────────────────────────────────────────────────────────────────

export function createAuditViewer(home: string, audit: () => AuditLog): AuditViewer {
  const localPath = auditPath(home);
  const stagingRoot = join(home, 'staging');
  let localDb: Db | undefined;
  let opened: Opened | undefined;

  /** The data folder's log for reading, or undefined while nothing was ever logged. */
  function local(): Db | undefined {
    if (!localDb && existsSync(localPath)) localDb = openReader(localPath);
    return localDb;
  }

  function trustedHere(): PublicKeyInfo[] {
    const keys: PublicKeyInfo[] = [];
    for (const k of audit().trustedKeys()) {
      try {
        keys.push(parsePublicKey(k.publicKey, `Trusted key ${k.keyId}`));
      } catch {
        // a damaged entry grants no trust; the verifier then reports its checkpoints as untrusted
      }
    }
    return keys;
  }

  function closeOpened(): void {
    if (!opened) return;
    const o = opened;
    opened = undefined;
    try {
      o.db.close();
    } finally {
      rmSync(o.folder, { recursive: true, force: true });
    }
  }

  /** Copies left behind by a crash while a record was open. */
  function sweepStaging(): void {
    if (!existsSync(stagingRoot)) return;
    for (const name of readdirSync(stagingRoot)) {
      if (name.startsWith(STAGING_PREFIX)) rmSync(join(stagingRoot, name), { recursive: true, force: true });
    }
  }

  function sourceInfo(): AuditSourceInfo {
    if (opened) {
      return {
        mode: 'auditor',
        kind: opened.kind,
        path: opened.original,
        dataFolder: home,
        ...lastSeqOf(opened.db),
        exportedAt: opened.exportedAt,
        facets: queryFacets(opened.db),
      };
    }
    const db = local();
    return {
      mode: 'local',
      kind: 'database',
      path: localPath,
      dataFolder: home,
      ...(db ? lastSeqOf(db) : { events: 0, lastSeq: null }),
      exportedAt: null,
      facets: db ? queryFacets(db) : EMPTY_FACETS,
    };
  }

  return {
    get auditorMode() {
      return opened !== undefined;
    },

    source: sourceInfo,

    page(request) {
      const db = opened?.db ?? local();
      const mode = opened ? 'auditor' : 'local';
      if (!db) return { events: [], total: 0, offset: request.offset ?? 0, limit: request.limit ?? DEFAULT_PAGE, mode };
      return { ...queryPage(db, request), mode };
    },

    event(seq) {
      if (opened) return queryEvent(opened.db, seq, opened.original);
      const db = local();
      if (!db) throw new ServiceError(`There is no event seq ${seq}: nothing has been recorded in this data folder yet.`);
      return queryEvent(db, seq, 'this data folder’s audit log');
    },

    verify(options = {}) {
      const extra = (options.trust ?? []).map((p) => readPublicKey(p));
      if (!opened) {
        const report = audit().verify({ trust: extra });
        return toVerdict(report, 'local', 'database', localPath);
      }
      const trust = [...trustedHere(), ...extra];
      const report = opened.kind === 'database' ? verifyAuditDatabase(opened.copy, { trust, trustLocalKeys: false }) : verifyAuditExport(opened.copy, { trust });
      return toVerdict(report, 'auditor', opened.kind, opened.original, [opened.copy, opened.original]);
    },

    open(path) {
      let stat;
      try {
        stat = statSync(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ServiceError(`There is no file at ${path}; check the path and that the removable drive is mounted.`);
        throw e;
      }
      if (!stat.isFile()) throw new ServiceError(`${path} is not a file; give an audit database (audit.sqlite) or an audit export (.json).`);
      if (stat.size > AUDIT_REVIEW_MAX_BYTES) throw new ServiceError(`${path} is larger than 4 GiB, too large to be an audit record Offsite Studio wrote.`);
      if (path === localPath) throw new ServiceError(`${path} is this data folder’s own audit log; it is already shown when auditor mode is off.`);
      const kind = fileKind(path);

      closeOpened();
      sweepStaging();
      mkdirSync(stagingRoot, { recursive: true });
      const folder = mkdtempSync(join(stagingRoot, STAGING_PREFIX));
      const copy = join(folder, kind === 'database' ? 'audit.sqlite' : basename(path));
      try {
        copyFileSync(path, copy);
        // Events committed but not yet checkpointed into the main file live in the -wal file.
        if (kind === 'database' && existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${copy}-wal`);
        const loaded = kind === 'database' ? { db: openCopiedDatabase(copy, path), exportedAt: null } : loadExportIntoMemory(copy);
        opened = { kind, original: path, copy, folder, ...loaded };
      } catch (e) {
        rmSync(folder, { recursive: true, force: true });
        if (e instanceof ServiceError && kind === 'export') {
          throw new ServiceError(`${e.message.replace(copy, path)} Open an audit database (audit.sqlite) or an export written by “Export” or offsite audit export.`);
        }
        throw e;
      }
      return sourceInfo();
    },

    leave() {
      closeOpened();
      return sourceInfo();
    },

    close() {
      closeOpened();
      localDb?.close();
      localDb = undefined;
    },
  };
}
