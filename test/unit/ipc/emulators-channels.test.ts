// The emulators.* and adapters.* channels through the real gateway and services: check a package
// where it is, import it (staged, verified, audited), list, describe and remove it; overrides only
// for intact unsigned/untrusted packages and only with a reason; auditor mode refuses the rest.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Channel, EventName, EventPayload, IpcResult, Response } from '../../../electron/ipc/contract';
import { auditorModeRefusal, createGateway } from '../../../electron/ipc/gateway';
import { createServices, type Services } from '../../../electron/ipc/handlers';
import { trustKeyFile } from '../../../electron/services/keys';
import { writePackage } from '../../../native-models/formats/package';
import { buildEmulatorPackage, keyPair, LAYER_MAP, sha256 } from '../packages/helpers';
import { useTempHomes } from './helpers';

const APP = 'app://offsite';
const PAGE = 'app://offsite/index.html';
const tempHome = useTempHomes();
const opened: Services[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});

type Emitted = { [E in EventName]: { event: E; payload: EventPayload<E> } }[EventName];

function studio(home = tempHome()) {
  const emitted: Emitted[] = [];
  const services = createServices(home, { events: { emit: (event, payload) => void emitted.push({ event, payload } as Emitted) } });
  opened.push(services);
  const gateway = createGateway(services, { appOrigin: APP });
  async function call<C extends Channel>(channel: C, request?: unknown): Promise<Response<C>> {
    const r = (await gateway.handle(channel, request, PAGE)) as IpcResult<Response<C>>;
    if (!r.ok) throw new Error(`${channel} failed: ${r.error.code}: ${r.error.message}`);
    return r.value;
  }
  async function refusal(channel: string, request?: unknown) {
    const r = await gateway.handle(channel, request, PAGE);
    if (r.ok) throw new Error(`${channel} was expected to fail, got ${JSON.stringify(r.value).slice(0, 300)}`);
    return r.error;
  }
  return { home, services, gateway, call, refusal, emitted };
}

/** A workspace with the model owner's key pair and packages built by the real writer. */
async function packages() {
  const dir = tempHome();
  const owner = keyPair(dir, 'owner.key');
  const signed = await buildEmulatorPackage(join(dir, 'signed'), owner.key);
  const unsigned = await buildEmulatorPackage(join(dir, 'unsigned'), null);
  return { dir, owner, signed, unsigned };
}

/** Flips one byte in the middle of a file, keeping its size. */
function flipByte(path: string): void {
  const b = readFileSync(path);
  b[b.length >> 1] ^= 0xff;
  writeFileSync(path, b);
}

const libraryEntries = (home: string) => (existsSync(join(home, 'emulators')) ? readdirSync(join(home, 'emulators')) : []);

describe('emulators.verify', () => {
  it('reports every step passed for an intact package signed by a trusted key, and imports nothing', async () => {
    const p = await packages();
    const s = studio();
    trustKeyFile(s.services.audit, p.owner.pub, 'Model owner');
    const eventsBefore = s.services.audit.log().length;

    const check = await s.call('emulators.verify', { path: p.signed.dir });
    expect(check.report.ok).toBe(true);
    expect(check.report.steps.map((st) => [st.name, st.status])).toEqual([
      ['folder', 'passed'],
      ['manifest', 'passed'],
      ['signature', 'passed'],
      ['signer', 'passed'],
      ['paths', 'passed'],
      ['limits', 'passed'],
      ['files', 'passed'],
      ['hashes', 'passed'],
    ]);
    expect(check.report.manifestSha256).toBe(sha256(readFileSync(join(p.signed.dir, 'manifest.json'))));
    expect(check.report.signer).toEqual({ keyId: p.signed.signerKeyId, signatureValid: true, trusted: true, label: 'Model owner' });
    expect(check.findings).toEqual([]);
    expect(check.overridable).toBeNull();
    expect(check.report.manifest?.kind).toBe('emulator');
    expect(libraryEntries(s.home)).toEqual([]);
    expect(s.services.audit.log().length).toBe(eventsBefore);
  });

  it('names the changed file, the rule and what to do for a tampered package, and offers no override', async () => {
    const p = await packages();
    const s = studio();
    trustKeyFile(s.services.audit, p.owner.pub, 'Model owner');
    flipByte(join(p.signed.dir, 'model.safetensors'));

    const check = await s.call('emulators.verify', { path: p.signed.dir });
    expect(check.report.ok).toBe(false);
    const hashes = check.report.steps.find((st) => st.name === 'hashes')!;
    expect(hashes.status).toBe('failed');
    expect(hashes.problems.map((x) => [x.rule, x.file])).toEqual([['package.hash-mismatch', 'model.safetensors']]);
    // The signature still checks out: only the file changed.
    expect(check.report.steps.find((st) => st.name === 'signature')!.status).toBe('passed');
    expect(check.findings).toEqual([
      {
        step: 'hashes',
        rule: 'package.hash-mismatch',
        file: 'model.safetensors',
        sentence: 'model.safetensors does not match its SHA-256 in the manifest: the package was changed after it was signed, or damaged on the way.',
        action: 'Ask the model owner for a fresh copy of the package. A damaged package or a bad signature cannot be overridden.',
      },
    ]);
    expect(check.overridable).toBeNull();
  });

  it('offers an override for an intact unsigned package and for an untrusted signer, never for a bad signature', async () => {
    const p = await packages();
    const s = studio();
    const unsigned = await s.call('emulators.verify', { path: p.unsigned.dir });
    expect(unsigned.overridable).toBe('unsigned');
    expect(unsigned.findings.map((f) => [f.step, f.rule])).toEqual([['signature', 'package.unsigned']]);

    const untrusted = await s.call('emulators.verify', { path: p.signed.dir });
    expect(untrusted.overridable).toBe('untrusted');
    expect(untrusted.report.signer).toMatchObject({ keyId: p.signed.signerKeyId, signatureValid: true, trusted: false });
    expect(untrusted.findings.map((f) => [f.step, f.rule])).toEqual([['signer', 'package.signer.untrusted']]);
    expect(untrusted.findings[0]!.action).toContain('Settings → trusted keys');

    // The manifest edited after signing (one character of the notes-free JSON changed): bad signature.
    const manifestPath = join(p.signed.dir, 'manifest.json');
    writeFileSync(manifestPath, readFileSync(manifestPath, 'utf8').replace('"tiny-llama"', '"tiny-llamb"'));
    const forged = await s.call('emulators.verify', { path: p.signed.dir });
    expect(forged.report.steps.find((st) => st.name === 'signature')!.status).toBe('failed');
    expect(forged.findings[0]).toMatchObject({ step: 'signature', rule: 'package.signature.invalid' });
    expect(forged.overridable).toBeNull();

    // An unsigned package with a damaged file: the damage rules out an override.
    flipByte(join(p.unsigned.dir, 'tokenizer.json'));
    const damaged = await s.call('emulators.verify', { path: p.unsigned.dir });
    expect(damaged.findings.map((f) => f.rule)).toEqual(['package.unsigned', 'package.hash-mismatch']);
    expect(damaged.overridable).toBeNull();
  });

  it('says plainly when the folder is not a package, and refuses a relative path', async () => {
    const s = studio();
    const empty = join(s.home, 'not-a-package');
    mkdirSync(empty);
    const check = await s.call('emulators.verify', { path: empty });
    expect(check.findings[0]).toMatchObject({ step: 'manifest', rule: 'package.manifest.missing', sentence: 'The folder holds no manifest.json, so it is not an Offsite Studio package.' });
    expect((await s.refusal('emulators.verify', { path: 'relative/pkg' })).message).toContain('must be a full path');
  });
});

describe('emulators.import, list, get, remove', () => {
  it('imports a trusted package, lists it with its signer label and shows its manifest; progress is reported', async () => {
    const p = await packages();
    const s = studio();
    trustKeyFile(s.services.audit, p.owner.pub, 'Model owner');

    const r = await s.call('emulators.import', { path: p.signed.dir });
    expect(r.ok).toBe(true);
    expect(r.id).toBe(p.signed.manifestSha256);
    expect(r.report.steps.map((st) => st.status)).toEqual(Array(9).fill('passed'));
    expect(r.report.steps[0]!.name).toBe('staging');
    expect(r.event.action).toBe('emulator.imported');
    expect(libraryEntries(s.home)).toEqual([p.signed.manifestSha256]);
    const event = s.services.audit.log({ action: 'emulator.imported' });
    expect(event.map((e) => e.seq)).toEqual([r.event.seq]);

    const progress = s.emitted.filter((e) => e.event === 'job.progress' && e.payload.kind === 'emulator.import');
    expect(progress.length).toBeGreaterThan(0);
    const done = s.emitted.filter((e) => e.event === 'job.finished');
    expect(done.map((e) => e.payload)).toEqual([expect.objectContaining({ kind: 'emulator.import', outcome: 'done', message: r.report.verdict })]);

    const list = await s.call('emulators.list');
    expect(list).toHaveLength(1);
    const files = p.signed.manifest.files;
    expect(list[0]).toMatchObject({
      id: p.signed.manifestSha256,
      name: 'tiny-llama',
      method: 'scaleot',
      triplet: { adapterLayers: [2, 2], alpha: 0.25, beta: 0.5 },
      emulatorLayers: 7,
      created: '2025-01-02T03:04:05.000Z',
      signer: { keyId: p.signed.signerKeyId, trusted: true, label: 'Model owner' },
      imported: { seq: r.event.seq, source: p.signed.dir, override: null },
      fileCount: files.length,
      bytes: files.reduce((n, f) => n + f.size, 0),
      path: join(s.home, 'emulators', p.signed.manifestSha256),
    });

    const details = await s.call('emulators.get', { id: p.signed.manifestSha256 });
    expect(details.manifest.layerMap).toEqual(LAYER_MAP);
    expect(details.manifest.recommendedTuning).toEqual({ peft: 'lora', rank: 8, lr: 0.0003 });
    expect(details.manifest.reference.emuZS).toEqual([{ task: 'wikitext', metric: 'ppl', value: 41.5 }]);
    expect(details.manifest.files.map((f) => f.path)).toEqual(['config.json', 'harmonizers/layer3.bin.txt', 'model.safetensors', 'tokenizer.json']);
    expect(details.manifest.files.find((f) => f.path === 'model.safetensors')!.sha256).toBe(sha256(readFileSync(join(p.signed.dir, 'model.safetensors'))));

    // Untrusting the key shows in the list: trust is the user's current choice.
    await s.call('keys.untrust', { keyId: p.signed.signerKeyId! });
    expect((await s.call('emulators.list'))[0]!.signer).toEqual({ keyId: p.signed.signerKeyId, trusted: false, label: null });
  });

  it('rejects a tampered package (nothing imported, emulator.import_rejected naming the file), even on an override', async () => {
    const p = await packages();
    const s = studio();
    trustKeyFile(s.services.audit, p.owner.pub, 'Model owner');
    flipByte(join(p.signed.dir, 'model.safetensors'));
    for (const request of [{ path: p.signed.dir }, { path: p.signed.dir, override: { reason: 'I really want it' } }]) {
      const r = await s.call('emulators.import', request);
      expect(r.ok).toBe(false);
      expect(r.id).toBeNull();
      expect(r.overridable).toBeNull();
      expect(r.findings.map((f) => [f.step, f.rule, f.file])).toEqual([['hashes', 'package.hash-mismatch', 'model.safetensors']]);
      expect(r.event.action).toBe('emulator.import_rejected');
    }
    expect(libraryEntries(s.home)).toEqual([]);
    expect(readdirSync(join(s.home, 'staging'))).toEqual([]);
    const rejected = s.services.audit.log({ action: 'emulator.import_rejected' });
    expect(rejected.map((e) => e.payload.details.file)).toEqual(['model.safetensors', 'model.safetensors']);
    expect(await s.call('emulators.list')).toEqual([]);
  });

  it('imports an unsigned package only on an override with a reason, and records the reason', async () => {
    const p = await packages();
    const s = studio();
    const plain = await s.call('emulators.import', { path: p.unsigned.dir });
    expect(plain.ok).toBe(false);
    expect(plain.overridable).toBe('unsigned');
    expect(libraryEntries(s.home)).toEqual([]);

    for (const reason of ['', '   ']) {
      const refused = await s.refusal('emulators.import', { path: p.unsigned.dir, override: { reason } });
      expect(refused).toEqual({ code: 'invalid-request', message: expect.stringContaining('Give a reason for the override; it is recorded in the audit log with the import.') });
    }
    expect(libraryEntries(s.home)).toEqual([]);

    const reason = 'Handed over in person by the model owner on a sealed drive.';
    const r = await s.call('emulators.import', { path: p.unsigned.dir, override: { reason } });
    expect(r.ok).toBe(true);
    expect(r.report.override).toEqual({ reason, because: 'unsigned' });
    expect(r.report.steps.find((st) => st.name === 'signature')!.status).toBe('overridden');
    const event = s.services.audit.log({ action: 'emulator.imported' });
    expect(event).toHaveLength(1);
    expect(event[0]!.reason).toBe(reason);
    expect(event[0]!.payload.details.override).toEqual({ because: 'unsigned' });

    const [entry] = await s.call('emulators.list');
    expect(entry).toMatchObject({ id: p.unsigned.manifestSha256, signer: null, imported: { override: { because: 'unsigned', reason } } });
  });

  it('removes an imported emulator: the folder goes, emulator.removed is recorded, the import event stays', async () => {
    const p = await packages();
    const s = studio();
    trustKeyFile(s.services.audit, p.owner.pub, 'Model owner');
    const r = await s.call('emulators.import', { path: p.signed.dir });
    const removed = await s.call('emulators.remove', { id: r.id! });
    expect(removed.removed).toBe(r.id);
    expect(libraryEntries(s.home)).toEqual([]);
    expect(await s.call('emulators.list')).toEqual([]);
    const events = s.services.audit.log({ action: 'emulator.removed' });
    expect(events.map((e) => e.seq)).toEqual([removed.auditSeq]);
    expect(events[0]!.payload.details).toMatchObject({ emulator_id: r.id, name: 'tiny-llama' });
    expect(s.services.audit.log({ action: 'emulator.imported' })).toHaveLength(1);
    expect(s.services.audit.verify().ok).toBe(true);

    expect(await s.refusal('emulators.remove', { id: r.id })).toEqual({ code: 'failed', message: `No imported emulator has the id ${r.id}; it may have been removed already.` });
    expect(await s.refusal('emulators.get', { id: r.id })).toEqual({
      code: 'failed',
      message: `No imported emulator has the id ${r.id}; it may have been removed. See the list of imported emulators.`,
    });
    expect((await s.refusal('emulators.get', { id: 'abc' })).code).toBe('invalid-request');
  });

  it('says where the folder is missing instead of importing', async () => {
    const s = studio();
    const missing = join(s.home, 'no-such-package');
    expect(await s.refusal('emulators.import', { path: missing })).toEqual({
      code: 'failed',
      message: `There is no folder at ${missing}; check the path and that the removable drive is mounted.`,
    });
  });
});

describe('adapters', () => {
  it('imports an adapter package returned for an imported emulator and lists it; an emulator import refuses it', async () => {
    const p = await packages();
    const s = studio();
    trustKeyFile(s.services.audit, p.owner.pub, 'Model owner');
    const emu = await s.call('emulators.import', { path: p.signed.dir });
    const dataOwner = keyPair(p.dir, 'data-owner.key');
    const adapter = await writePackage(join(p.dir, 'adapter'), {
      producer: { app: 'Offsite Studio', version: '0.1.0-test' },
      signingKey: dataOwner.key,
      fill: async (dir) => writeFileSync(join(dir, 'adapter_model.safetensors.txt'), 'adapter stand-in\n'),
      manifest: {
        kind: 'adapter',
        emulator: { manifestSha256: emu.id!, signerKeyId: p.signed.signerKeyId },
        sourceModel: { sha256: 'ab'.repeat(32) },
        adapter: { format: 'full-layers', layers: [0, 1, 6, 7], files: ['adapter_model.safetensors.txt'] },
      },
    });

    const wrongKind = await s.call('emulators.verify', { path: adapter.dir });
    expect(wrongKind.findings[0]).toMatchObject({ rule: 'package.kind-mismatch', sentence: 'This is an adapter package, not an emulator package.' });
    expect(wrongKind.overridable).toBeNull();

    trustKeyFile(s.services.audit, dataOwner.pub, 'Data owner');
    const r = await s.call('adapters.import', { path: adapter.dir });
    expect(r.ok).toBe(true);
    expect(r.event.action).toBe('adapter.imported');
    const list = await s.call('adapters.list');
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      id: adapter.manifestSha256,
      emulator: { manifestSha256: emu.id, importedHere: true },
      format: 'full-layers',
      layers: [0, 1, 6, 7],
      signer: { keyId: adapter.signerKeyId, trusted: true, label: 'Data owner' },
      imported: { seq: r.event.seq },
    });
    // Adapters are not emulators.
    expect((await s.call('emulators.list')).map((e) => e.id)).toEqual([emu.id]);
  });
});

describe('auditor mode', () => {
  it('refuses import and remove (nothing changes) while verify and list still answer', async () => {
    const p = await packages();
    const owner = studio();
    await owner.call('settings.set', { threads: 2 });
    const exportFile = join(owner.home, 'handover.json');
    await owner.call('audit.export', { out: exportFile });

    const s = studio();
    trustKeyFile(s.services.audit, p.owner.pub, 'Model owner');
    const imported = await s.call('emulators.import', { path: p.signed.dir });
    await s.call('audit.open', { path: exportFile });

    for (const [channel, request] of [
      ['emulators.import', { path: p.unsigned.dir, override: { reason: 'refused anyway' } }],
      ['emulators.remove', { id: imported.id }],
      ['adapters.import', { path: p.signed.dir }],
    ] as const) {
      expect(await s.refusal(channel, request), channel).toEqual({ code: 'read-only', message: auditorModeRefusal(channel) });
    }
    expect(libraryEntries(s.home)).toEqual([imported.id]);
    expect((await s.call('emulators.verify', { path: p.signed.dir })).report.ok).toBe(true);
    expect((await s.call('emulators.list')).map((e) => e.id)).toEqual([imported.id]);
    expect((await s.call('emulators.get', { id: imported.id! })).id).toBe(imported.id);

    await s.call('audit.close');
    expect((await s.call('emulators.remove', { id: imported.id! })).removed).toBe(imported.id);
  });
});
