import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../electron/audit/canonical';
import { openReader } from '../../../electron/audit/store';
import { openAudit, readAuditLog, verifyAuditDatabase, type AuditLog } from '../../../electron/services/audit';
import { HOME_SIGNING_KEY, readSigningKey, writeKeyPair } from '../../../electron/services/keys';
import { appVersion } from '../../../electron/services/version';
import { tempHome } from './helpers';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});
function open(options?: Parameters<typeof openAudit>[1]): { audit: AuditLog; home: string } {
  const h = tempHome('service');
  const audit = openAudit(h.home, options);
  cleanups.push(h.cleanup, () => audit.close());
  return { audit, home: h.home };
}
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('audit service: events', () => {
  it('records who, what, when, hashes, version, machine and provider on every event', () => {
    const { audit, home } = open({ executionProvider: 'cpu' });
    writeFileSync(join(home, 'settings.json'), JSON.stringify({ userName: '  Dana Data-Owner ' }));
    const r = audit.append('dataset.imported', {
      inputs: { data: sha('raw') },
      outputs: { staged: { sha256: sha('staged'), size: 6 } },
      details: { rows: 3, skipped: undefined },
      reason: 'imported without a signature on purpose',
    });
    expect(r.seq).toBe(1);
    const [e] = audit.log();
    expect(e!.seq).toBe(1);
    expect(e!.hash).toBe(r.hash);
    expect(e!.actor).toEqual({ os: userInfo().username, app: 'Dana Data-Owner' });
    expect(e!.action).toBe('dataset.imported');
    expect(e!.reason).toBe('imported without a signature on purpose');
    expect(Date.parse(e!.ts)).not.toBeNaN();
    expect(e!.payload).toEqual({
      app_version: appVersion(),
      machine_id: expect.stringMatching(/^[0-9a-f]{32}$/),
      execution_provider: 'cpu',
      inputs: { data: sha('raw') },
      outputs: { staged: { sha256: sha('staged'), size: 6 } },
      details: { rows: 3 },
    });
    // The machine id is stable and is not the bare hostname.
    expect(audit.append('settings.changed').seq).toBe(2);
    expect(audit.log()[1]!.payload.machine_id).toBe(e!.payload.machine_id);
    expect(e!.payload.machine_id).not.toContain(hostname());
  });

  it('chains each event to the one before', () => {
    const { audit } = open();
    const a = audit.append('key.generated');
    const b = audit.append('key.trusted');
    const events = audit.log();
    expect(events[0]!.prevHash).toBe('0'.repeat(64));
    expect(events[1]!.prevHash).toBe(a.hash);
    expect(events[1]!.hash).toBe(b.hash);
  });

  it('refuses malformed actions and digests instead of logging garbage', () => {
    const { audit } = open();
    expect(() => audit.append('Imported Stuff' as 'x.y')).toThrow(/area\.verb/);
    expect(() => audit.append('dataset.imported', { inputs: { data: 'not-a-hash' } })).toThrow(/SHA-256/);
    expect(() => audit.append('dataset.imported', { details: { loss: NaN } })).toThrow(/NaN/);
    expect(audit.log()).toEqual([]);
  });

  it('corrections are new events that reference the old seq and must say why', () => {
    const { audit } = open();
    audit.append('dataset.imported', { details: { rows: 10 } });
    expect(() => audit.append('audit.corrected', { corrects: 1 })).toThrow(/reason/);
    expect(() => audit.append('audit.corrected', { corrects: 5, reason: 'x' })).toThrow(/does not exist/);
    const c = audit.append('audit.corrected', { corrects: 1, reason: 'row count was 12', details: { rows: 12 } });
    const events = audit.log();
    expect(events).toHaveLength(2);
    expect(events[0]!.payload.details).toEqual({ rows: 10 }); // the original is untouched
    expect(events[1]!.seq).toBe(c.seq);
    expect(events[1]!.payload.corrects).toBe(1);
  });

  it('filters the log by run, action prefix and seq; readers work without the writer', () => {
    const { audit, home } = open();
    const { runId } = audit.startRun({ kind: 'tune', config: { lr: 0.001, steps: 4 }, inputs: { dataset: sha('d') } });
    audit.append('dataset.imported');
    audit.finishRun(runId, 'finished', { outputs: { adapter: sha('a') }, result: { finalLoss: 1.25 } });
    expect(audit.log({ runId }).map((e) => e.action)).toEqual(['run.started', 'run.finished']);
    expect(audit.log({ action: 'run.*' }).map((e) => e.seq)).toEqual([1, 3]);
    expect(audit.log({ action: 'dataset.imported' }).map((e) => e.seq)).toEqual([2]);
    expect(audit.log({ afterSeq: 1, limit: 1 }).map((e) => e.seq)).toEqual([2]);
    expect(readAuditLog(join(home, 'audit.sqlite'), { runId }).map((e) => e.seq)).toEqual([1, 3]);
    expect(audit.run(runId)).toMatchObject({ status: 'finished', kind: 'tune', config: { lr: 0.001, steps: 4 }, result: { finalLoss: 1.25 } });
  });
});

describe('audit service: runs and metrics', () => {
  it('buffers metrics and writes them in batches of maxRows', () => {
    const { audit } = open({ metrics: { maxRows: 4, maxDelayMs: 60_000 } });
    const { runId } = audit.startRun({ kind: 'tune', config: {} });
    audit.recordMetrics(runId, [0, 1, 2].map((step) => ({ step, loss: 3 - step * 0.1, lr: 1e-3 })));
    expect(audit.metrics(runId)).toEqual([]); // still buffered
    audit.recordMetrics(runId, [{ step: 3, loss: 2.7, lr: 1e-3, selected: [1, 3], importance: [0.1, 0.2, 0.3, 0.4] }]);
    const stored = audit.metrics(runId);
    expect(stored.map((m) => m.step)).toEqual([0, 1, 2, 3]);
    expect(stored[3]).toMatchObject({ loss: 2.7, lr: 1e-3, selected: [1, 3], importance: [0.1, 0.2, 0.3, 0.4] });
  });

  it('flushes a partial batch after maxDelayMs', async () => {
    const { audit } = open({ metrics: { maxRows: 1000, maxDelayMs: 20 } });
    audit.recordMetrics('r', [{ step: 0, loss: 1 }]);
    for (let i = 0; i < 200 && audit.metrics('r').length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(audit.metrics('r').map((m) => m.loss)).toEqual([1]);
  });

  it('run.finished carries the hash of the stored metrics; a resumed step replaces the older row', () => {
    const { audit } = open();
    const { runId } = audit.startRun({ kind: 'tune', config: { seed: 1 } });
    audit.recordMetrics(runId, [{ step: 0, loss: 2 }, { step: 1, loss: 1.5 }]);
    audit.recordMetrics(runId, [{ step: 1, loss: 1.4 }]); // re-run after resume
    const done = audit.finishRun(runId, 'cancelled', { reason: 'user pressed cancel' });
    const rows = [
      { importance: null, loss: 2, lr: null, selected: null, step: 0, tokens_per_second: null },
      { importance: null, loss: 1.4, lr: null, selected: null, step: 1, tokens_per_second: null },
    ];
    const text = canonicalJson(rows);
    const e = audit.log({ afterSeq: done.seq - 1 })[0]!;
    expect(e.action).toBe('run.cancelled');
    expect(e.payload.outputs.metrics).toEqual({ sha256: sha(text), size: Buffer.byteLength(text) });
    expect(e.payload.details.metric_rows).toBe(2);
    expect(audit.run(runId)!.status).toBe('cancelled');
  });

  it('finishing an unknown run is refused and leaves no event behind', () => {
    const { audit } = open();
    expect(() => audit.finishRun('nope', 'failed', { error: 'x' })).toThrow(/no run "nope"/);
    expect(audit.log()).toEqual([]);
  });

  it('records emulators, datasets, evaluations and settings changes with their events', () => {
    const { audit } = open();
    const emu = audit.recordEmulator({ name: 'emu-7b', path: '/staging/emu', sha256: sha('m'), signerKeyId: '0123456789abcdef' });
    const ds = audit.recordDataset({ name: 'notes', path: '/staging/notes.jsonl', sha256: sha('n'), rows: 40, format: 'jsonl' });
    const ev = audit.recordEvaluation({ metric: 'ppl', value: 9.5, result: { ppl: 9.5, tokens: 1000 }, inputs: { data: sha('e') } });
    const st = audit.recordSettingsChanges([{ key: 'threads', oldValue: 'auto', newValue: 4 }]);
    expect(audit.log().map((e) => [e.seq, e.action])).toEqual([
      [emu.seq, 'emulator.imported'],
      [ds.seq, 'dataset.imported'],
      [ev.seq, 'evaluation.finished'],
      [st.seq, 'settings.changed'],
    ]);
    const db = openReader(audit.path);
    try {
      expect(db.prepare('SELECT id, seq FROM emulators').all()).toEqual([{ id: emu.id, seq: emu.seq }]);
      expect(db.prepare('SELECT rows, seq FROM datasets').all()).toEqual([{ rows: 40, seq: ds.seq }]);
      expect(db.prepare('SELECT metric, value FROM evaluations').all()).toEqual([{ metric: 'ppl', value: 9.5 }]);
      expect(db.prepare('SELECT key, old_value, new_value FROM settings_changes').all()).toEqual([{ key: 'threads', old_value: '"auto"', new_value: '4' }]);
    } finally {
      db.close();
    }
  });
});

describe('audit service: storage', () => {
  it('a reader holding a snapshot does not block the writer (WAL)', () => {
    const { audit } = open();
    audit.append('key.generated');
    const reader = openReader(audit.path);
    try {
      reader.prepare('BEGIN').run();
      expect((reader.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n).toBe(1);
      // The writer commits while the reader's snapshot is open…
      expect(audit.append('key.trusted').seq).toBe(2);
      audit.recordMetrics('r', [{ step: 0, loss: 1 }]);
      audit.flushMetrics();
      // …and the reader keeps its consistent snapshot until it ends its transaction.
      expect((reader.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n).toBe(1);
      reader.prepare('COMMIT').run();
      expect((reader.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n).toBe(2);
    } finally {
      reader.close();
    }
  });

  it('openAudit twice in one process shares one writer; the last close closes it', () => {
    const h = tempHome('shared');
    cleanups.push(h.cleanup);
    const a = openAudit(h.home);
    const b = openAudit(h.home, { appUser: 'second window' });
    a.append('key.generated');
    a.close();
    expect(b.append('key.trusted').seq).toBe(2);
    expect(b.log()[1]!.actor.app).toBe('second window');
    b.close();
    expect(() => b.append('x.y')).toThrow(/closed/);
  });

  it('backs up through the online backup API into a database that verifies', async () => {
    const { audit, home } = open();
    audit.append('key.generated');
    audit.append('settings.changed');
    const dest = join(home, 'backup.sqlite');
    await audit.backup(dest);
    expect(existsSync(dest)).toBe(true);
    const copy = new Database(dest, { readonly: true });
    try {
      expect(copy.prepare('SELECT seq, hash FROM audit_events ORDER BY seq').all()).toEqual(audit.log().map((e) => ({ seq: e.seq, hash: e.hash })));
    } finally {
      copy.close();
    }
    expect(verifyAuditDatabase(dest)).toMatchObject({ ok: true, size: 2 });
  });

  it('signs a checkpoint of the current head on request, kept in the database and verified', () => {
    const { audit, home } = open();
    writeKeyPair(join(home, 'k'));
    const key = readSigningKey(join(home, 'k'));
    audit.append('key.generated');
    const head = audit.append('run.started', { runId: 'r' });
    const cp = audit.checkpoint(key);
    expect(cp.checkpoint).toMatchObject({ size: 2, head_hash: head.hash, key_id: key.keyId });
    expect(cp.seq).toBe(3); // the audit.checkpoint event follows the head it signed
    expect(audit.verify({ trust: [key], trustLocalKeys: false })).toMatchObject({ ok: true, checkpoints: [{ size: 2, trusted: true, ok: true }] });
    // Without trusting the signer the same checkpoint is reported, not silently accepted.
    expect(audit.verify({ trustLocalKeys: false })).toMatchObject({ ok: false, firstBadSeq: 2 });
  });

  it('refuses to sign exports with a data-folder key other users can read', () => {
    const { audit, home } = open();
    audit.export({ out: join(home, 'first.json') }); // creates keys/audit-signing.key, mode 0600
    expect(statSync(join(home, HOME_SIGNING_KEY)).mode & 0o777).toBe(0o600);
    chmodSync(join(home, HOME_SIGNING_KEY), 0o644);
    expect(() => audit.export({ out: join(home, 'second.json') })).toThrow(/can be read by other users/);
  });
});
