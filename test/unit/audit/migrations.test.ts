import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventHash, GENESIS_HASH } from '../../../electron/audit/chain';
import { LATEST_VERSION, migrations } from '../../../electron/audit/migrations/index';
import { integrityCheck, migrate, openWriter, schemaVersion } from '../../../electron/audit/store';
import { signCheckpoint } from '../../../electron/audit/checkpoint';
import { openAudit } from '../../../electron/services/audit';
import { readSigningKey, writeKeyPair } from '../../../electron/services/keys';
import { tempHome } from './helpers';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function home(): string {
  const h = tempHome('migrate');
  cleanups.push(h.cleanup);
  return h.home;
}

/** Inserts a chained event with plain SQL (what a version-1 app would have written). */
function insertEvent(db: Database.Database, seq: number, action: string, payload: object): string {
  const prev = seq === 1 ? GENESIS_HASH : (db.prepare('SELECT hash FROM audit_events WHERE seq = ?').get(seq - 1) as { hash: string }).hash;
  const row = { seq, ts: `2024-01-0${seq}T00:00:00.000Z`, actor: '{"os":"ann"}', action, reason: null, payload: JSON.stringify(payload), prev_hash: prev };
  const hash = eventHash(row);
  db.prepare('INSERT INTO audit_events (seq, ts, actor, action, reason, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
    row.seq, row.ts, row.actor, row.action, row.reason, row.payload, row.prev_hash, hash,
  );
  return hash;
}

describe('audit schema migrations', () => {
  it('numbers the migrations 1, 2, … with no gaps', () => {
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
    expect(LATEST_VERSION).toBe(migrations.length);
    expect(LATEST_VERSION).toBeGreaterThanOrEqual(2);
  });

  it('0001 creates STRICT tables and append-only triggers', () => {
    const db = openWriter(join(home(), 'audit.sqlite'), { targetVersion: 1 });
    try {
      expect(schemaVersion(db)).toBe(1);
      const tables = db.prepare(`SELECT name, sql FROM sqlite_schema WHERE type = 'table' ORDER BY name`).all() as Array<{ name: string; sql: string }>;
      expect(tables.map((t) => t.name)).toEqual(['audit_checkpoints', 'audit_events', 'datasets', 'emulators', 'evaluations', 'keys', 'runs', 'settings_changes']);
      for (const t of tables) expect(t.sql).toMatch(/\)\s*STRICT\s*$/);
      // STRICT: a text where an integer belongs is refused, not stored.
      expect(() => db.prepare(`INSERT INTO datasets VALUES ('d', 'n', 'p', 's', 'many', 'jsonl', 't', 1)`).run()).toThrow(/cannot store TEXT value in INTEGER column/);
      insertEvent(db, 1, 'key.generated', {});
      expect(() => db.prepare(`UPDATE audit_events SET action = 'x.y' WHERE seq = 1`).run()).toThrow(/append-only/);
      expect(() => db.prepare('DELETE FROM audit_events').run()).toThrow(/append-only/);
      expect((db.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n).toBe(1);
    } finally {
      db.close();
    }
  });

  it('0001 → 0002 keeps every row of version 1 and adds run metrics and indexes', () => {
    const h = home();
    const path = join(h, 'audit.sqlite');
    const v1 = openWriter(path, { targetVersion: 1 });
    const h1 = insertEvent(v1, 1, 'dataset.imported', { run_id: null, details: {} });
    const h2 = insertEvent(v1, 2, 'run.started', { run_id: 'run-a', details: {} });
    const h3 = insertEvent(v1, 3, 'run.finished', { run_id: 'run-a', details: {} });
    v1.prepare(`INSERT INTO datasets VALUES ('d1', 'stories', '/data/s.jsonl', ?, 12, 'jsonl', 't', 1)`).run('a'.repeat(64));
    v1.prepare(`INSERT INTO emulators VALUES ('e1', 'emu', '/pkg', ?, 'k1', '{}', 't', 1)`).run('b'.repeat(64));
    v1.prepare(`INSERT INTO runs (id, kind, status, config, started_at) VALUES ('run-a', 'tune', 'finished', '{"lr":0.001}', 't')`).run();
    v1.prepare(`INSERT INTO evaluations VALUES ('ev1', 'run-a', 'ppl', 12.5, '{"ppl":12.5}', 't', 3)`).run();
    v1.prepare(`INSERT INTO keys VALUES ('0123456789abcdef', 'PEM', 'alice', 't', 1)`).run();
    v1.prepare(`INSERT INTO settings_changes (ts, key, old_value, new_value, seq) VALUES ('t', 'threads', '"auto"', '4', 1)`).run();
    writeKeyPair(join(h, 'signer.key'));
    const signer = readSigningKey(join(h, 'signer.key'));
    const cp = signCheckpoint(3, h3, signer);
    v1.prepare(`INSERT INTO audit_checkpoints (size, head_hash, time, key_id, public_key, signature) VALUES (?, ?, ?, ?, ?, ?)`).run(
      cp.checkpoint.size, cp.checkpoint.head_hash, cp.checkpoint.time, cp.checkpoint.key_id, cp.public_key, cp.signature,
    );
    const before = Object.fromEntries(
      ['audit_events', 'datasets', 'emulators', 'runs', 'evaluations', 'keys', 'settings_changes', 'audit_checkpoints'].map((t) => [t, v1.prepare(`SELECT * FROM ${t}`).all()]),
    );
    v1.close();

    const v2 = openWriter(path, { targetVersion: 2 });
    try {
      expect(schemaVersion(v2)).toBe(2);
      for (const [table, rows] of Object.entries(before)) expect(v2.prepare(`SELECT * FROM ${table}`).all()).toEqual(rows);
      expect((v2.prepare('SELECT hash FROM audit_events ORDER BY seq').all() as Array<{ hash: string }>).map((r) => r.hash)).toEqual([h1, h2, h3]);
      // The new table works, and the run filter uses the new expression index over the old rows.
      v2.prepare(`INSERT INTO run_metrics VALUES ('run-a', 0, 't', 2.5, 0.001, NULL, '[0,1]', '[0.5,0.5]')`).run();
      const plan = v2.prepare(`EXPLAIN QUERY PLAN SELECT seq FROM audit_events WHERE json_extract(payload, '$.run_id') = ?`).all('run-a') as Array<{ detail: string }>;
      expect(plan.map((p) => p.detail).join(' ')).toMatch(/audit_events_run/);
      expect(v2.prepare(`SELECT seq FROM audit_events WHERE json_extract(payload, '$.run_id') = ? ORDER BY seq`).all('run-a')).toEqual([{ seq: 2 }, { seq: 3 }]);
      expect(integrityCheck(v2)).toBe('ok');
    } finally {
      v2.close();
    }

    // The service appends onto the migrated chain and the whole chain verifies.
    const audit = openAudit(h);
    try {
      const { seq } = audit.append('settings.changed', { details: { key: 'threads' } });
      expect(seq).toBe(4);
      const report = audit.verify({ trust: [signer], trustLocalKeys: false });
      expect(report.problems).toEqual([]);
      expect(report.size).toBe(4);
      expect(report.checkpoints).toEqual([expect.objectContaining({ size: 3, keyId: signer.keyId, trusted: true, ok: true })]);
    } finally {
      audit.close();
    }
  });

  it('a fresh database is created at the latest version', () => {
    const db = openWriter(join(home(), 'audit.sqlite'));
    try {
      expect(schemaVersion(db)).toBe(LATEST_VERSION);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    } finally {
      db.close();
    }
  });

  it('migrating twice changes nothing', () => {
    const db = openWriter(join(home(), 'audit.sqlite'));
    try {
      const schema = db.prepare('SELECT sql FROM sqlite_schema ORDER BY name').all();
      expect(migrate(db)).toBe(LATEST_VERSION);
      expect(db.prepare('SELECT sql FROM sqlite_schema ORDER BY name').all()).toEqual(schema);
    } finally {
      db.close();
    }
  });

  it('refuses a database written by a newer version', () => {
    const path = join(home(), 'audit.sqlite');
    const raw = new Database(path);
    raw.pragma(`user_version = ${LATEST_VERSION + 1}`);
    raw.close();
    expect(() => openWriter(path)).toThrow(/newer than this Offsite Studio understands/);
  });
});
