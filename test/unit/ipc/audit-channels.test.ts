// The audit.* and keys.* channels through the real gateway and services: every answer a value,
// every refusal a sentence, and auditor mode refusing each channel that mutates.
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { channelFlags, channels, type Channel, type IpcResult, type Response } from '../../../electron/ipc/contract';
import { auditorModeRefusal, createGateway } from '../../../electron/ipc/gateway';
import { createServices, type Services } from '../../../electron/ipc/handlers';
import { openAudit } from '../../../electron/services/audit';
import { readPublicKey, writeKeyPair } from '../../../electron/services/keys';
import { createAuditedSettingsStore } from '../../../electron/services/settings-audit';
import { useTempHomes } from './helpers';

const APP = 'app://offsite';
const PAGE = 'app://offsite/index.html';
const tempHome = useTempHomes();
const opened: Services[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});

function studio(home = tempHome()) {
  const services = createServices(home, { events: { emit: () => {} } });
  opened.push(services);
  const gateway = createGateway(services, { appOrigin: APP });
  async function call<C extends Channel>(channel: C, request?: unknown): Promise<Response<C>> {
    const r = (await gateway.handle(channel, request, PAGE)) as IpcResult<Response<C>>;
    if (!r.ok) throw new Error(`${channel} failed: ${r.error.code}: ${r.error.message}`);
    return r.value;
  }
  async function refusal(channel: string, request?: unknown) {
    const r = await gateway.handle(channel, request, PAGE);
    if (r.ok) throw new Error(`${channel} was expected to fail, got ${JSON.stringify(r.value)}`);
    return r.error;
  }
  return { home, services, gateway, call, refusal };
}

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const fileSha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Drops the guard trigger and edits one row, as a forger with file access would. */
function tamper(home: string, sql: string): void {
  const raw = new Database(join(home, 'audit.sqlite'));
  try {
    raw.exec(sql);
  } finally {
    raw.close();
  }
}

describe('settings changes are audited', () => {
  it('a settings.set through the gateway appends one settings.changed event with old and new values', async () => {
    const s = studio();
    await s.call('settings.set', { threads: 2, userName: 'Ada' });
    await s.call('settings.set', { threads: 2 }); // no change: no event
    const page = await s.call('audit.log', {});
    expect(page.total).toBe(1);
    const [e] = page.events;
    expect(e!.action).toBe('settings.changed');
    expect(e!.summary).toBe('userName: "" → "Ada"; threads: "auto" → 2');
    expect(e!.actor.app).toBe('Ada');
    const detail = await s.call('audit.event', { seq: e!.seq });
    expect(JSON.parse(detail.details)).toEqual({
      changes: [
        { key: 'userName', old: '', new: 'Ada' },
        { key: 'threads', old: 'auto', new: 2 },
      ],
    });
  });

  it('reading settings creates no audit database; the command-line store records changes like the app', async () => {
    const s = studio();
    await s.call('settings.get');
    await s.call('audit.source');
    await s.call('audit.log', {});
    expect(existsSync(join(s.home, 'audit.sqlite'))).toBe(false);

    const home = tempHome();
    const audit = openAudit(home);
    try {
      createAuditedSettingsStore(home, () => audit).set({ executionProvider: 'cpu' });
      const [e] = audit.log({ action: 'settings.changed' });
      expect(e!.payload.details).toEqual({ changes: [{ key: 'executionProvider', old: 'auto', new: 'cpu' }] });
    } finally {
      audit.close();
    }
  });
});

describe('audit.log, audit.source, audit.event', () => {
  it('pages 10,000 events newest first and filters by run, actor, action and text', async () => {
    const s = studio();
    const grace = openAudit(s.home, { appUser: 'Grace' });
    const audit = s.services.audit;
    audit.transaction(() => {
      for (let i = 1; i <= 10_000; i++) {
        const who = i % 10 === 0 ? grace : audit;
        if (i % 100 === 0) who.append('run.started', { runId: `run-${i / 100}`, details: { kind: 'tune' } });
        else who.append('dataset.imported', { inputs: { data: sha(`d${i}`) }, details: { name: `file-${i}.jsonl` } });
      }
    });
    grace.close();

    const first = await s.call('audit.log', { limit: 50 });
    expect(first.total).toBe(10_000);
    expect(first.events.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 10_000 - i));
    const last = await s.call('audit.log', { offset: 9_950, limit: 500 });
    expect(last.events.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 50 - i));

    const runs = await s.call('audit.log', { runId: 'run-7' });
    expect(runs.events.map((e) => [e.seq, e.action, e.summary])).toEqual([[700, 'run.started', 'tune started']]);

    const source = await s.call('audit.source');
    expect(source).toMatchObject({ mode: 'local', kind: 'database', events: 10_000, lastSeq: 10_000, path: join(s.home, 'audit.sqlite') });
    expect(source.facets.actions).toEqual(['dataset.imported', 'run.started']);
    expect(source.facets.runs).toHaveLength(100);
    expect(source.facets.runs[0]).toMatchObject({ id: 'run-100', kind: 'tune' });
    const graceActor = source.facets.actors.find((a) => a.label.startsWith('Grace ('));
    expect(graceActor?.events).toBe(1_000);

    const byGrace = await s.call('audit.log', { actor: graceActor!.value, action: 'run.*', limit: 3 });
    expect(byGrace.total).toBe(100);
    expect(byGrace.events.map((e) => e.seq)).toEqual([10_000, 9_900, 9_800]);

    const text = await s.call('audit.log', { text: 'FILE-4321.JSONL' });
    expect(text.events.map((e) => e.seq)).toEqual([4321]);
    // The user's % is a plain character, not a wildcard.
    expect((await s.call('audit.log', { text: 'file-%' })).total).toBe(0);
  });

  it('gives one event with its hashes, and says when an event does not exist', async () => {
    const s = studio();
    const audit = s.services.audit;
    const a = audit.append('dataset.imported', { inputs: { data: { sha256: sha('x'), size: 12 } }, details: { name: 'train.jsonl' } });
    const b = audit.append('adapter.exported', { runId: 'r1', outputs: { package: sha('y') }, reason: 'sent to the model owner' });
    const detail = await s.call('audit.event', { seq: b.seq });
    expect(detail).toMatchObject({
      seq: 2,
      action: 'adapter.exported',
      runId: 'r1',
      reason: 'sent to the model owner',
      hash: b.hash,
      prevHash: a.hash,
      hashOk: true,
      linkOk: true,
      inputs: [],
      outputs: [{ name: 'package', sha256: sha('y'), size: null }],
      executionProvider: 'none',
    });
    expect(JSON.parse(detail.payload).outputs.package).toBe(sha('y'));
    expect((await s.call('audit.event', { seq: 1 })).inputs).toEqual([{ name: 'data', sha256: sha('x'), size: 12 }]);

    expect(await s.refusal('audit.event', { seq: 3 })).toEqual({ code: 'failed', message: 'There is no event seq 3 in this data folder’s audit log.' });
    expect((await s.refusal('audit.event', { seq: 0 })).message).toBe('The event number (seq) must be a whole number of 1 or more.');
    expect((await s.refusal('audit.log', { limit: 501 })).message).toBe('The page size must be a whole number from 1 to 500.');
  });
});

describe('audit.verify', () => {
  it('says intact, then names the first bad seq and what to do after a row is edited', async () => {
    const s = studio();
    await s.call('settings.set', { threads: 3 });
    await s.call('settings.set', { threads: 4 });
    await s.call('settings.set', { threads: 5 });
    const intact = await s.call('audit.verify', {});
    expect(intact).toMatchObject({ ok: true, size: 3, firstBadSeq: null, problemCount: 0, lastCheckpoint: null, advice: '', mode: 'local' });
    expect(intact.headHash).toBe((await s.call('audit.event', { seq: 3 })).hash);

    tamper(s.home, `DROP TRIGGER audit_events_no_update; UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 2;`);
    const broken = await s.call('audit.verify', {});
    expect(broken.ok).toBe(false);
    expect(broken.firstBadSeq).toBe(2);
    expect(broken.problems[0]!.message).toMatch(/event seq 2 does not match its hash/);
    expect(broken.advice).toMatch(/^Events from seq 2 on cannot be relied on\. Do not try to repair the log/);
    expect((await s.call('audit.event', { seq: 2 })).hashOk).toBe(false);
    expect((await s.call('audit.event', { seq: 3 })).linkOk).toBe(true);
  });
});

describe('audit.export', () => {
  it('writes the JSON, HTML and checkpoint files, records audit.exported, and never overwrites an export', async () => {
    const s = studio();
    await s.call('settings.set', { threads: 2 });
    const out = join(s.home, 'export.json');
    const r = await s.call('audit.export', { out });
    expect(r).toMatchObject({ json: out, html: join(s.home, 'export.html'), checkpointFile: join(s.home, 'export.checkpoint.json'), ok: true });
    for (const f of [r.json, r.html, r.checkpointFile]) expect(statSync(f).size).toBeGreaterThan(0);
    const exported = JSON.parse(readFileSync(out, 'utf8')) as { events: unknown[]; chain: { size: number; head_hash: string } };
    expect(exported.chain).toMatchObject({ size: r.size, head_hash: r.headHash });
    const newest = (await s.call('audit.log', { limit: 1 })).events[0]!;
    expect(newest).toMatchObject({ seq: r.seq, action: 'audit.exported' });
    expect((await s.call('audit.event', { seq: r.seq })).outputs.find((o) => o.name === 'export')?.sha256).toBe(fileSha(out));

    expect(await s.refusal('audit.export', { out })).toEqual({ code: 'failed', message: `${out} already exists; choose another file name so an earlier export is not overwritten.` });
    const missing = join(s.home, 'no-such-folder', 'x.json');
    expect((await s.refusal('audit.export', { out: missing })).message).toBe(
      `The folder ${join(s.home, 'no-such-folder')} does not exist; create it first or choose another folder for the export.`,
    );
    expect(await s.refusal('audit.export', { out: 'export.json' })).toEqual({
      code: 'invalid-request',
      message: 'The export file must be a full path, such as /media/usb/audit-export.json.',
    });
  });
});

describe('keys.*', () => {
  it('generates, lists, trusts from a file or pasted text, and untrusts, each with its audit event', async () => {
    const s = studio();
    const out = join(s.home, 'signing.key');
    const g = await s.call('keys.generate', { out, label: 'my signing key' });
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readPublicKey(`${out}.pub`).keyId).toBe(g.keyId);
    expect(g.trusted).toMatchObject({ keyId: g.keyId, label: 'my signing key' });
    const again = await s.refusal('keys.generate', { out });
    expect(again.message).toBe(`${out} already exists; choose another name (a key is never overwritten).`);

    const other = writeKeyPair(join(s.home, 'publisher.key'));
    const pasted = writeKeyPair(join(s.home, 'pasted.key'));
    const raw = writeKeyPair(join(s.home, 'raw.key'));
    const fromFile = await s.call('keys.trust', { path: other.publicPath, label: 'Publisher' });
    expect(fromFile).toMatchObject({ added: true, key: { keyId: other.keyId, label: 'Publisher' } });
    const fromPem = await s.call('keys.trust', { publicKey: readFileSync(pasted.publicPath, 'utf8') });
    expect(fromPem).toMatchObject({ added: true, key: { keyId: pasted.keyId, label: pasted.keyId } });
    const rawBase64 = readPublicKey(raw.publicPath).raw.toString('base64');
    expect((await s.call('keys.trust', { publicKey: rawBase64, label: 'Raw' })).key.keyId).toBe(raw.keyId);
    expect(await s.call('keys.trust', { path: other.publicPath })).toMatchObject({ added: false, key: { label: 'Publisher' } });

    const list = await s.call('keys.list');
    expect(list.map((k) => k.keyId)).toEqual([g.keyId, other.keyId, pasted.keyId, raw.keyId]);
    const removed = await s.call('keys.untrust', { keyId: other.keyId });
    expect((await s.call('keys.list')).map((k) => k.keyId)).toEqual([g.keyId, pasted.keyId, raw.keyId]);

    const actions = (await s.call('audit.log', {})).events.map((e) => e.action).reverse();
    expect(actions).toEqual(['key.generated', 'key.trusted', 'key.trusted', 'key.trusted', 'key.trusted', 'key.untrusted']);
    expect((await s.call('audit.log', { limit: 1 })).events[0]).toMatchObject({ seq: removed.seq, summary: `key ${other.keyId} (Publisher)` });
  });

  it('refuses private keys, junk and ambiguous requests with sentences', async () => {
    const s = studio();
    const pair = writeKeyPair(join(s.home, 'k.key'));
    expect((await s.refusal('keys.trust', { path: pair.privatePath })).message).toBe(
      `${pair.privatePath} is a private key; give the public key instead (KEYFILE.pub), and keep the private key to yourself.`,
    );
    expect((await s.refusal('keys.trust', { publicKey: 'hello' })).message).toBe(
      'The pasted key is not an Ed25519 public key (expected a PEM file such as KEYFILE.pub written by "offsite keygen").',
    );
    const both = await s.refusal('keys.trust', { path: pair.publicPath, publicKey: readFileSync(pair.publicPath, 'utf8') });
    expect(both).toEqual({ code: 'invalid-request', message: 'Give either the public key file or the pasted key text, not both and not neither.' });
    expect((await s.refusal('keys.trust', {})).message).toBe('Give either the public key file or the pasted key text, not both and not neither.');
    expect((await s.refusal('keys.untrust', { keyId: 'abc' })).message).toBe('A key id is 16 hexadecimal digits, as shown in the trusted keys list.');
    expect(await s.refusal('keys.untrust', { keyId: '0123456789abcdef' })).toEqual({
      code: 'failed',
      message: 'No trusted key has the id 0123456789abcdef; it may have been removed already.',
    });
    expect((await s.refusal('keys.trust', { path: join(s.home, 'none.pub') })).message).toBe(`No such file or folder: ${join(s.home, 'none.pub')}.`);
    expect((await s.call('audit.log', {})).total).toBe(0);
  });
});

describe('auditor mode', () => {
  /** A data owner's folder with a few events and an export signed by its own audit key. */
  async function handedOver() {
    const owner = studio();
    await owner.call('settings.set', { userName: 'Dana', threads: 2 });
    owner.services.audit.append('dataset.imported', { inputs: { data: sha('rows') }, details: { name: 'private.jsonl' } });
    const exportFile = join(owner.home, 'handover.json');
    await owner.call('audit.export', { out: exportFile });
    const signingPub = join(owner.home, 'keys', 'audit-signing.key.pub');
    return { owner, exportFile, signingPub };
  }

  it('opens an export read-only: its timeline, its verdict (after trusting the signer), and back to normal', async () => {
    const { owner, exportFile, signingPub } = await handedOver();
    const ownerEvents = (await owner.call('audit.source')).events;
    const auditor = studio();
    const before = fileSha(exportFile);

    const source = await auditor.call('audit.open', { path: exportFile });
    expect(source).toMatchObject({ mode: 'auditor', kind: 'export', path: exportFile });
    expect(source.exportedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    // The export covers everything up to its checkpoint; audit.exported itself comes after.
    expect(source.events).toBe(ownerEvents - 1);
    const page = await auditor.call('audit.log', { action: 'dataset.imported' });
    expect(page).toMatchObject({ mode: 'auditor', total: 1 });
    expect(page.events[0]).toMatchObject({ summary: 'private.jsonl', actor: { app: 'Dana' } });

    const untrusted = await auditor.call('audit.verify', {});
    expect(untrusted.ok).toBe(false);
    expect(untrusted.problems[0]!.message).toMatch(/which is not trusted/);
    expect(untrusted.advice).toMatch(/^The events link up, but a checkpoint is signed by a key you have not trusted\./);
    expect(untrusted.verdict).toContain(exportFile);

    const trusted = await auditor.call('audit.verify', { trust: [signingPub] });
    expect(trusted).toMatchObject({ ok: true, size: source.events, mode: 'auditor', kind: 'export', path: exportFile });
    expect(trusted.lastCheckpoint).toMatchObject({ size: source.events, trusted: true, ok: true });

    expect(fileSha(exportFile)).toBe(before);
    const back = await auditor.call('audit.close');
    expect(back).toMatchObject({ mode: 'local', events: 0 });
    expect(readdirSync(join(auditor.home, 'staging'))).toEqual([]);
    await auditor.call('settings.set', { threads: 3 });
  });

  it('opens an audit database from a copy, leaving the original untouched, and finds tampering in it', async () => {
    const { owner, signingPub } = await handedOver();
    owner.services.close();
    const evidence = join(tempHome(), 'evidence.sqlite');
    copyFileSync(join(owner.home, 'audit.sqlite'), evidence);
    tamper(owner.home, `DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE seq = 2;`);
    const tampered = join(tempHome(), 'tampered.sqlite');
    copyFileSync(join(owner.home, 'audit.sqlite'), tampered);
    const before = fileSha(evidence);

    const auditor = studio();
    const source = await auditor.call('audit.open', { path: evidence });
    expect(source).toMatchObject({ mode: 'auditor', kind: 'database', path: evidence });
    expect((await auditor.call('audit.verify', { trust: [signingPub] })).ok).toBe(true);
    expect(readdirSync(join(evidence, '..'))).toEqual(['evidence.sqlite']);
    expect(fileSha(evidence)).toBe(before);

    await auditor.call('audit.open', { path: tampered });
    const broken = await auditor.call('audit.verify', { trust: [signingPub] });
    expect(broken).toMatchObject({ ok: false, firstBadSeq: 2, path: tampered });
    expect(broken.problems[0]!.message).toBe('event seq 2 is missing (deleted from the log).');
    expect(broken.advice).toMatch(/^Treat this record as altered from seq 2 on\./);
    expect(broken.verdict).not.toContain(join(auditor.home, 'staging'));
  });

  it('refuses files that are not audit records, with sentences', async () => {
    const s = studio();
    const junk = join(s.home, 'notes.txt');
    writeFileSync(junk, 'hello');
    expect((await s.refusal('audit.open', { path: junk })).message).toBe(
      `${junk} is not an audit export (it is not valid JSON). Open an audit database (audit.sqlite) or an export written by “Export” or offsite audit export.`,
    );
    const otherDb = join(s.home, 'other.sqlite');
    new Database(otherDb).exec('CREATE TABLE t (x)');
    expect((await s.refusal('audit.open', { path: otherDb })).message).toBe(
      `${otherDb} is an SQLite database but not an Offsite Studio audit database (it has no audit_events table).`,
    );
    const missing = join(s.home, 'gone.json');
    expect((await s.refusal('audit.open', { path: missing })).message).toBe(`There is no file at ${missing}; check the path and that the removable drive is mounted.`);
    expect((await s.call('audit.source')).mode).toBe('local');
  });

  it('refuses every mutating channel with a sentence, changing nothing; reading channels still answer', async () => {
    const { exportFile } = await handedOver();
    const s = studio();
    await s.call('settings.set', { threads: 2 });
    const eventsBefore = (await s.call('audit.source')).events;
    await s.call('audit.open', { path: exportFile });

    const mutating = channels.filter((c) => channelFlags[c].mutates);
    expect(mutating).toEqual(expect.arrayContaining(['settings.set', 'audit.export', 'keys.trust', 'keys.untrust', 'keys.generate']));
    // Valid requests where this file knows the channel, so only auditor mode can be the reason.
    const requests: Partial<Record<Channel, unknown>> = {
      'settings.set': { threads: 7 },
      'audit.export': { out: join(s.home, 'refused.json') },
      'keys.trust': { path: `${writeKeyPair(join(s.home, 'p.key')).publicPath}` },
      'keys.untrust': { keyId: '0123456789abcdef' },
      'keys.generate': { out: join(s.home, 'refused.key') },
    };
    for (const channel of mutating) {
      expect(await s.refusal(channel, requests[channel]), channel).toEqual({ code: 'read-only', message: auditorModeRefusal(channel) });
    }
    expect(auditorModeRefusal('settings.set')).toMatch(/^Auditor mode is read-only, so this action \(settings\.set\) was refused: .* Choose “Leave auditor mode” on the Audit screen first\.$/);

    expect((await s.call('settings.get')).threads).toBe(2);
    expect(existsSync(join(s.home, 'refused.json'))).toBe(false);
    expect(existsSync(join(s.home, 'refused.key'))).toBe(false);
    for (const channel of channels.filter((c) => !channelFlags[c].mutates && c !== 'audit.open' && c !== 'audit.close')) {
      const request = { 'audit.log': {}, 'audit.event': { seq: 1 }, 'audit.verify': {} }[channel as string];
      const r = await s.gateway.handle(channel, request, PAGE);
      expect(r.ok === false && r.error.code === 'read-only', channel).toBe(false);
    }

    await s.call('audit.close');
    expect((await s.call('audit.source')).events).toBe(eventsBefore);
    expect((await s.call('settings.set', { threads: 7 })).threads).toBe(7);
  });

  it('every channel declares whether it mutates', () => {
    expect(Object.keys(channelFlags).sort()).toEqual([...channels].sort());
    for (const c of channels) expect(typeof channelFlags[c].mutates, c).toBe('boolean');
  });
});
