// The verifier through the CLI entry: each kind of tampering exits 3 naming the first bad seq; an
// untouched log exits 0 with a one-line verdict.
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signCheckpoint, checkpointFileText } from '../../../electron/audit/checkpoint';
import { openAudit } from '../../../electron/services/audit';
import { readSigningKey, writeKeyPair } from '../../../electron/services/keys';
import { cli, tempHome } from '../../unit/audit/helpers';

let home: string;
let cleanup: () => void;
let db: string;
let exportFile: string;
let checkpointFile: string;
let signer: string;
let stranger: string;

/** Seq 1–6 app events; export signed by `signer` (seq 7 key.trusted, checkpoint size 7, seq 8 audit.exported); seq 9–10 after. */
beforeEach(async () => {
  ({ home, cleanup } = tempHome('verify'));
  db = join(home, 'audit.sqlite');
  signer = join(home, 'signer.key');
  stranger = join(home, 'stranger.key');
  writeKeyPair(signer);
  writeKeyPair(stranger);
  const audit = openAudit(home, { appUser: 'Dana' });
  const h = (c: string) => c.repeat(64);
  audit.append('dataset.imported', { inputs: { data: h('a') } });
  audit.append('emulator.imported', { inputs: { package: h('b') }, reason: 'publisher key not trusted; checked by phone' });
  const { runId } = audit.startRun({ kind: 'tune', config: { lr: 0.001 }, inputs: { dataset: h('a'), emulator: h('b') } });
  audit.recordMetrics(runId, [{ step: 0, loss: 3.2 }]);
  audit.finishRun(runId, 'finished', { outputs: { adapter: h('c') } });
  audit.append('evaluation.finished', { runId, inputs: { adapter: h('c') } });
  audit.append('adapter.exported', { runId, outputs: { package: h('d') } });
  audit.close();
  exportFile = join(home, 'export.json');
  checkpointFile = join(home, 'export.checkpoint.json');
  const r = await cli(['audit', 'export', '--out', exportFile, '--sign-key', signer, '--home', home, '--json']);
  expect(r.code, r.err).toBe(0);
  expect(JSON.parse(r.out).checkpoint.checkpoint.size).toBe(7);
  const after = openAudit(home);
  after.append('settings.changed', { details: { key: 'threads' } });
  after.append('plugin.finished');
  after.close();
});
afterEach(() => cleanup());

function tamper(sql: string): void {
  const raw = new Database(db);
  try {
    // A forger is not stopped by foreign keys either (better-sqlite3 turns them on by default).
    raw.pragma('foreign_keys = OFF');
    raw.exec(sql);
  } finally {
    raw.close();
  }
}

const firstBadSeq = (stderr: string) => Number(/failed at seq (\d+)/.exec(stderr)?.[1]);

describe('offsite audit verify', () => {
  it('an untouched log verifies: exit 0 and a one-line verdict', async () => {
    for (const args of [
      ['audit', 'verify', '--home', home],
      ['audit', 'verify', '--db', db, '--trust', `${signer}.pub`, '--checkpoint', checkpointFile, '--home', home],
      ['audit', 'verify', '--export', exportFile, '--trust', `${signer}.pub`, '--home', home],
    ]) {
      const r = await cli(args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(0);
      expect(r.out.trim().split('\n')).toHaveLength(1);
      expect(r.out).toMatch(/^Audit log intact: (10|7) events, .*[12] signed checkpoints? verified/);
    }
    const json = await cli(['audit', 'verify', '--home', home, '--json']);
    expect(JSON.parse(json.out)).toMatchObject({ ok: true, size: 10, firstBadSeq: null });
  });

  it('detects an edited event (after dropping the trigger)', async () => {
    tamper(`DROP TRIGGER audit_events_no_update;
            UPDATE audit_events SET payload = json_set(payload, '$.inputs.package', '${'e'.repeat(64)}') WHERE seq = 2;`);
    const r = await cli(['audit', 'verify', '--home', home]);
    expect(r.code).toBe(3);
    expect(firstBadSeq(r.err)).toBe(2);
    expect(r.err).toMatch(/does not match its hash/);
  });

  it('detects an edited event even when the rest of the chain was rehashed, through the signed checkpoint', async () => {
    // A careful forger rewrites seq 3 and recomputes every later hash and link: only the checkpoint can tell.
    const raw = new Database(db);
    const { eventHash } = await import('../../../electron/audit/chain');
    raw.exec('DROP TRIGGER audit_events_no_update;');
    const rows = raw.prepare('SELECT * FROM audit_events ORDER BY seq').all() as Array<Record<string, string | number | null>>;
    let prev = rows[1]!.hash as string;
    for (const row of rows.slice(2)) {
      if (row.seq === 3) row.reason = 'inserted afterwards';
      row.prev_hash = prev;
      row.hash = eventHash(row as never);
      raw.prepare('UPDATE audit_events SET reason = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(row.reason, row.prev_hash, row.hash, row.seq);
      prev = row.hash as string;
    }
    raw.close();
    const r = await cli(['audit', 'verify', '--db', db, '--trust', `${signer}.pub`, '--checkpoint', checkpointFile, '--home', home]);
    expect(r.code).toBe(3);
    expect(firstBadSeq(r.err)).toBe(7);
    expect(r.err).toMatch(/does not match the head hash/);
  });

  it('detects a deleted interior event', async () => {
    tamper(`DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE seq = 5;`);
    const r = await cli(['audit', 'verify', '--home', home]);
    expect(r.code).toBe(3);
    expect(firstBadSeq(r.err)).toBe(5);
    expect(r.err).toMatch(/seq 5 is missing/);
  });

  it('detects truncation below the last signed checkpoint, even when the checkpoints in the database are gone too', async () => {
    tamper(`DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE seq >= 6;
            DROP TRIGGER audit_checkpoints_no_delete; DELETE FROM audit_checkpoints;`);
    // Without the auditor's checkpoint the shortened log is self-consistent…
    expect((await cli(['audit', 'verify', '--db', db, '--home', home])).code).toBe(0);
    // …with it, the truncation shows.
    const r = await cli(['audit', 'verify', '--db', db, '--checkpoint', checkpointFile, '--trust', `${signer}.pub`, '--home', home]);
    expect(r.code).toBe(3);
    expect(firstBadSeq(r.err)).toBe(6);
    expect(r.err).toMatch(/truncated/);
  });

  it('detects truncation against the checkpoint kept in the database', async () => {
    tamper(`DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE seq >= 4;`);
    const r = await cli(['audit', 'verify', '--home', home]);
    expect(r.code).toBe(3);
    expect(firstBadSeq(r.err)).toBe(4);
  });

  it('detects a forged checkpoint file (fields changed, old signature kept)', async () => {
    const file = JSON.parse(readFileSync(checkpointFile, 'utf8'));
    const events = JSON.parse(readFileSync(exportFile, 'utf8')).events as Array<{ seq: number; hash: string }>;
    // Claim the checkpoint covered only 5 events, pointing at the real hash of seq 5.
    file.checkpoint.size = 5;
    file.checkpoint.head_hash = events[4]!.hash;
    const forged = join(home, 'forged.checkpoint.json');
    writeFileSync(forged, JSON.stringify(file));
    const r = await cli(['audit', 'verify', '--db', db, '--checkpoint', forged, '--trust', `${signer}.pub`, '--home', home]);
    expect(r.code).toBe(3);
    expect(firstBadSeq(r.err)).toBe(5);
    expect(r.err).toMatch(/signature does not verify/);
  });

  it('detects a forged checkpoint row in the database', async () => {
    tamper(`DROP TRIGGER audit_checkpoints_no_update; UPDATE audit_checkpoints SET size = 9,
            head_hash = (SELECT hash FROM audit_events WHERE seq = 9);`);
    const r = await cli(['audit', 'verify', '--home', home]);
    expect(r.code).toBe(3);
    expect(firstBadSeq(r.err)).toBe(9);
    expect(r.err).toMatch(/signature does not verify/);
  });

  it('detects a checkpoint signed by a key that is not trusted', async () => {
    // A genuine signature over the real head, but by a stranger's key.
    const events = JSON.parse(readFileSync(exportFile, 'utf8')).events as Array<{ seq: number; hash: string }>;
    const foreign = signCheckpoint(7, events[6]!.hash, readSigningKey(stranger));
    const file = join(home, 'foreign.checkpoint.json');
    writeFileSync(file, checkpointFileText(foreign));
    const r = await cli(['audit', 'verify', '--db', db, '--checkpoint', file, '--trust', `${signer}.pub`, '--home', home]);
    expect(r.code).toBe(3);
    expect(firstBadSeq(r.err)).toBe(7);
    expect(r.err).toMatch(/not trusted/);
    // The export's own checkpoint, checked against the wrong key, fails the same way.
    const e = await cli(['audit', 'verify', '--export', exportFile, '--trust', `${stranger}.pub`, '--home', home]);
    expect(e.code).toBe(3);
    expect(firstBadSeq(e.err)).toBe(7);
    expect(e.err).toMatch(/not trusted/);
  });

  it('detects an edited event inside an export', async () => {
    const ex = JSON.parse(readFileSync(exportFile, 'utf8'));
    ex.events[2].actor = JSON.stringify({ os: 'mallory' });
    const edited = join(home, 'edited.json');
    writeFileSync(edited, JSON.stringify(ex));
    const r = await cli(['audit', 'verify', '--export', edited, '--trust', `${signer}.pub`, '--home', home]);
    expect(r.code).toBe(3);
    expect(firstBadSeq(r.err)).toBe(3);
  });

  it('refuses bad input with exit 2 and a sentence', async () => {
    const both = await cli(['audit', 'verify', '--db', db, '--export', exportFile, '--home', home]);
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/either --db FILE or --export FILE/);
    const missing = await cli(['audit', 'verify', '--db', join(home, 'nope.sqlite'), '--home', home]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/no audit database/);
    const notExport = await cli(['audit', 'verify', '--export', `${signer}.pub`, '--home', home]);
    expect(notExport.code).toBe(2);
    expect(notExport.err).toMatch(/not an audit export/);
    const badTrust = await cli(['audit', 'verify', '--trust', signer, '--home', home]);
    expect(badTrust.code).toBe(2);
    expect(badTrust.err).toMatch(/is a private key/);
  });
});

describe('offsite audit export and log', () => {
  it('writes a self-contained printable report with the verdict and the signed checkpoint', () => {
    const html = readFileSync(join(home, 'export.html'), 'utf8');
    const cp = JSON.parse(readFileSync(checkpointFile, 'utf8'));
    expect(html).not.toMatch(/<script|<link|src=|href=/i);
    expect(html).toContain(`default-src 'none'`);
    expect(html).toMatch(/@media print/);
    expect(html).toContain('Audit log intact: 7 events');
    expect(html).toContain(cp.signature);
    expect(html).toContain(cp.checkpoint.head_hash);
    expect(html).toContain('publisher key not trusted; checked by phone');
    expect(html).toContain('Dana');
  });

  it('escapes event text in the report', async () => {
    const audit = openAudit(home);
    audit.append('dataset.imported', { reason: '<script>alert(1)</script>' });
    audit.close();
    const out = join(home, 'second.json');
    expect((await cli(['audit', 'export', '--out', out, '--sign-key', signer, '--home', home])).code).toBe(0);
    const html = readFileSync(join(home, 'second.html'), 'utf8');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toMatch(/<script/i);
  });

  it('without --sign-key signs with the data folder key, and the folder trusts it', async () => {
    const out = join(home, 'plain.json');
    const r = await cli(['audit', 'export', '--out', out, '--home', home, '--json']);
    expect(r.code, r.err).toBe(0);
    const res = JSON.parse(r.out);
    expect(res.verified).toBe(true);
    expect(res.checkpoint.checkpoint.key_id).toMatch(/^[0-9a-f]{16}$/);
    expect((await cli(['audit', 'verify', '--home', home])).code).toBe(0);
  });

  it('lists events, filtered by run, as text and as one JSON object', async () => {
    const all = await cli(['audit', 'log', '--home', home, '--json']);
    expect(all.code).toBe(0);
    const events = JSON.parse(all.out).events as Array<{ seq: number; action: string; payload: { run_id?: string } }>;
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const runId = events.find((e) => e.action === 'run.started')!.payload.run_id!;
    const byRun = await cli(['audit', 'log', '--run', runId, '--home', home]);
    expect(byRun.code).toBe(0);
    const lines = byRun.out.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual(['#3', '#4', '#5', '#6']);
    expect(lines[0]).toMatch(/Dana \(.+\)\s+run\.started/);
    const last = await cli(['audit', 'log', '--limit', '2', '--home', home, '--json']);
    expect(JSON.parse(last.out).events.map((e: { seq: number }) => e.seq)).toEqual([9, 10]);
  });

  it('audit log on a data folder with no log says so', async () => {
    const empty = tempHome('empty');
    try {
      const r = await cli(['audit', 'log', '--home', empty.home]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/No audit events yet/);
    } finally {
      empty.cleanup();
    }
  });
});
