// Importing packages into a data folder: copy into staging, verify there, file under
// emulators/<manifest sha256>/ (or adapters/), audit events with hashes the test recomputes.
import { cpSync, existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loraKey, writePeftAdapter } from '../../../native-models/formats/peft';
import { openAudit } from '../../../electron/services/audit';
import { readPublicKey } from '../../../electron/services/keys';
import { importPackage } from '../../../electron/services/packages';
import { buildEmulatorPackage, keyPair, offsite, sha256, tempDir } from '../../unit/packages/helpers';

let tmp: { dir: string; cleanup: () => void };
let good: string;
let unsigned: string;
let owner: { key: string; pub: string };
let dataOwner: { key: string; pub: string };
let n = 0;

beforeAll(async () => {
  tmp = tempDir('offsite-import-');
  owner = keyPair(tmp.dir, 'owner.key');
  dataOwner = keyPair(tmp.dir, 'data-owner.key');
  good = join(tmp.dir, 'good');
  unsigned = join(tmp.dir, 'unsigned');
  await buildEmulatorPackage(good, owner.key);
  await buildEmulatorPackage(unsigned, null);
});
afterAll(() => tmp.cleanup());

const freshHome = () => join(tmp.dir, `home-${n++}`);
const trust = () => [{ publicKey: readPublicKey(owner.pub).publicKey, label: 'model owner' }];
const listing = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

function events(home: string, action: string) {
  const audit = openAudit(home);
  try {
    return audit.log({ action });
  } finally {
    audit.close();
  }
}

describe('importPackage', () => {
  it('files a good package under emulators/<manifest sha256>/ and records emulator.imported with matching hashes', async () => {
    const home = freshHome();
    const result = await importPackage(home, good, { trustedKeys: trust() });
    expect(result.ok, result.report.verdict).toBe(true);
    const manifestHash = sha256(readFileSync(join(good, 'manifest.json')));
    const target = join(home, 'emulators', manifestHash);
    expect(result.path).toBe(target);
    expect(result.report.steps.map((s) => s.name)).toEqual(['staging', 'folder', 'manifest', 'signature', 'signer', 'paths', 'limits', 'files', 'hashes']);
    for (const f of ['manifest.json', 'manifest.sig', 'config.json', 'tokenizer.json', 'model.safetensors', 'harmonizers/layer3.bin.txt']) {
      expect(readFileSync(join(target, f)).equals(readFileSync(join(good, f))), f).toBe(true);
    }
    expect(listing(join(home, 'staging'))).toEqual([]);

    const [ev] = events(home, 'emulator.imported');
    expect(ev).toBeDefined();
    expect(ev!.seq).toBe(result.event.seq);
    expect(ev!.payload.outputs.emulator).toBe(manifestHash);
    expect(ev!.payload.inputs.manifest).toEqual({ sha256: manifestHash, size: readFileSync(join(good, 'manifest.json')).length });
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors', 'harmonizers/layer3.bin.txt']) {
      const bytes = readFileSync(join(good, f));
      expect(ev!.payload.inputs[`file:${f}`], f).toEqual({ sha256: sha256(bytes), size: bytes.length });
    }
    expect(ev!.payload.details).toMatchObject({ kind: 'emulator', signer_key_id: readPublicKey(owner.pub).keyId, signer_trusted: true, override: null });
    expect(ev!.reason).toBeNull();

    // Importing the same package again replaces the copy and writes a second event.
    const again = await importPackage(home, good, { trustedKeys: trust() });
    expect(again.ok).toBe(true);
    expect(listing(join(home, 'emulators'))).toEqual([manifestHash]);
    expect(events(home, 'emulator.imported')).toHaveLength(2);
  });

  it('leaves nothing imported for a tampered package and records emulator.import_rejected with the failing step', async () => {
    const home = freshHome();
    const pkg = join(tmp.dir, `tampered-${n++}`);
    cpSync(good, pkg, { recursive: true });
    const bytes = readFileSync(join(pkg, 'model.safetensors'));
    bytes[bytes.length - 3]! ^= 0x40;
    writeFileSync(join(pkg, 'model.safetensors'), bytes);
    const result = await importPackage(home, pkg, { trustedKeys: trust() });
    expect(result.ok).toBe(false);
    expect(result.path).toBeNull();
    expect(result.report.failure).toMatchObject({ step: 'hashes', file: 'model.safetensors', rule: 'package.hash-mismatch' });
    expect(listing(join(home, 'emulators'))).toEqual([]);
    expect(listing(join(home, 'staging'))).toEqual([]);
    expect(events(home, 'emulator.imported')).toEqual([]);
    const [ev] = events(home, 'emulator.import_rejected');
    expect(ev!.payload.details).toMatchObject({ step: 'hashes', rule: 'package.hash-mismatch', file: 'model.safetensors', kind: 'emulator' });
    expect(ev!.payload.inputs.manifest).toEqual({ sha256: sha256(readFileSync(join(pkg, 'manifest.json'))), size: readFileSync(join(pkg, 'manifest.json')).length });
  });

  it('refuses a package holding a symbolic link while copying it into staging', async () => {
    const home = freshHome();
    const pkg = join(tmp.dir, `linked-${n++}`);
    cpSync(good, pkg, { recursive: true });
    symlinkSync('/etc/hostname', join(pkg, 'harmonizers', 'evil'));
    const result = await importPackage(home, pkg, { trustedKeys: trust() });
    expect(result.ok).toBe(false);
    expect(result.report.failure).toMatchObject({ step: 'staging', rule: 'package.symlink' });
    expect(listing(join(home, 'emulators'))).toEqual([]);
    expect(listing(join(home, 'staging'))).toEqual([]);
    expect(events(home, 'package.import_rejected')[0]!.payload.details).toMatchObject({ step: 'staging', rule: 'package.symlink' });
  });

  it('rejects an untrusted signer, and imports an unsigned package only with an override whose reason is logged', async () => {
    const home = freshHome();
    const untrusted = await importPackage(home, good, { trustedKeys: [] });
    expect(untrusted.report.failure).toMatchObject({ step: 'signer', rule: 'package.signer.untrusted' });
    const plain = await importPackage(home, unsigned, { trustedKeys: trust() });
    expect(plain.report.failure).toMatchObject({ step: 'signature', rule: 'package.unsigned' });
    expect(listing(join(home, 'emulators'))).toEqual([]);
    expect(events(home, 'emulator.import_rejected')).toHaveLength(2);

    const reason = 'test fixture built on this machine';
    const ok = await importPackage(home, unsigned, { trustedKeys: trust(), override: { reason } });
    expect(ok.ok).toBe(true);
    const [ev] = events(home, 'emulator.imported');
    expect(ev!.reason).toBe(reason);
    expect(ev!.payload.details).toMatchObject({ override: { because: 'unsigned' }, signer_key_id: null });
  });

  it('uses the data folder’s trusted keys by default', async () => {
    const home = freshHome();
    const audit = openAudit(home);
    audit.addTrustedKey(readPublicKey(owner.pub), 'model owner');
    audit.close();
    const r = await importPackage(home, good);
    expect(r.ok, r.report.verdict).toBe(true);
    expect(r.report.signer).toMatchObject({ trusted: true, label: 'model owner' });
  });
});

describe('offsite emulator import, inspect, and adapter sign / verify / import', () => {
  it('imports through the CLI (exit 0) and rejects a tampered copy (exit 3)', async () => {
    const home = freshHome();
    const r = await offsite('emulator', 'import', good, '--trust', owner.pub, '--home', home, '--json');
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(r.out);
    expect(out).toMatchObject({ ok: true, kind: 'emulator', manifestSha256: sha256(readFileSync(join(good, 'manifest.json'))) });
    const pkg = join(tmp.dir, `tampered-${n++}`);
    cpSync(good, pkg, { recursive: true });
    writeFileSync(join(pkg, 'extra.txt'), 'x');
    const bad = await offsite('emulator', 'import', pkg, '--trust', owner.pub, '--home', home);
    expect(bad.code).toBe(3);
    expect(bad.err).toContain('step "files" (extra.txt)');
  });

  it('offsite inspect describes a package (kind, triplet, layer map, signer, files) and refuses a damaged one', async () => {
    const r = await offsite('inspect', good, '--json');
    expect(r.code, r.err).toBe(0);
    const d = JSON.parse(r.out);
    expect(d).toMatchObject({ kind: 'emulator-package', method: 'scaleot', triplet: { adapterLayers: [2, 2], alpha: 0.25, beta: 0.5 }, emulatorLayers: 7 });
    expect(d.signer).toEqual({ keyId: readPublicKey(owner.pub).keyId, signatureValid: true });
    expect(d.layerRoles).toEqual({ adapter: 4, 'kept-compressed': 1, harmonizer: 1, dropped: 1, kept: 1 });
    expect(d.files.map((f: { path: string }) => f.path)).toEqual(['config.json', 'harmonizers/layer3.bin.txt', 'model.safetensors', 'tokenizer.json']);
    const text = await offsite('inspect', good);
    expect(text.out).toContain('layer map: 0-1 adapter, 2 kept-compressed, 3 harmonizer, 4 dropped, 5 kept, 6-7 adapter');
    const pkg = join(tmp.dir, `damaged-${n++}`);
    cpSync(good, pkg, { recursive: true });
    writeFileSync(join(pkg, 'tokenizer.json'), '{"changed":true}');
    const bad = await offsite('inspect', pkg);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('tokenizer.json');
  });

  it('the data owner signs a PEFT adapter package that references the emulator; the model owner verifies and imports it', async () => {
    const adapterDir = join(tmp.dir, 'lora');
    const mat = (r: number, c: number) => ({ dtype: 'F32' as const, shape: [r, c], data: Float32Array.from({ length: r * c }, (_, i) => (i % 5) / 10) });
    const tensors: Record<string, ReturnType<typeof mat>> = {};
    for (const layer of [0, 7]) {
      tensors[loraKey(`model.layers.${layer}.self_attn.q_proj`, 'A')] = mat(2, 4);
      tensors[loraKey(`model.layers.${layer}.self_attn.q_proj`, 'B')] = mat(4, 2);
    }
    await writePeftAdapter(adapterDir, { r: 2, lora_alpha: 4, target_modules: ['q_proj'], layers_to_transform: [0, 7] }, tensors);
    const home = freshHome();
    const out = join(tmp.dir, 'adapter-pkg');
    const s = await offsite('adapter', 'sign', '--adapter', adapterDir, '--emulator', good, '--out', out, '--sign-key', dataOwner.key, '--home', home, '--json');
    expect(s.code, s.err).toBe(0);
    const signed = JSON.parse(s.out);
    expect(signed.manifest).toMatchObject({
      kind: 'adapter',
      emulator: { manifestSha256: sha256(readFileSync(join(good, 'manifest.json'))), signerKeyId: readPublicKey(owner.pub).keyId },
      adapter: { format: 'peft-lora', layers: [0, 7], files: ['adapter_config.json', 'adapter_model.safetensors'] },
    });
    expect(events(home, 'adapter.exported')[0]!.payload.outputs.package).toBe(sha256(readFileSync(join(out, 'manifest.json'))));

    expect((await offsite('adapter', 'verify', out, '--trust', dataOwner.pub, '--home', home)).code).toBe(0);
    expect((await offsite('adapter', 'verify', out, '--trust', owner.pub, '--home', home)).code).toBe(3);
    // An adapter package is not an emulator.
    const wrongKind = await offsite('emulator', 'verify', out, '--trust', dataOwner.pub, '--home', home);
    expect(wrongKind.code).toBe(3);
    expect(wrongKind.err).toContain('says this is an adapter package, but an emulator package was expected');

    const ownerHome = freshHome();
    const imported = await importPackage(ownerHome, out, { trustedKeys: [{ publicKey: readFileSync(dataOwner.pub, 'utf8') }], kind: 'adapter' });
    expect(imported.ok, imported.report.verdict).toBe(true);
    expect(imported.path).toBe(join(ownerHome, 'adapters', sha256(readFileSync(join(out, 'manifest.json')))));
    expect(events(ownerHome, 'adapter.imported')[0]!.payload.details).toMatchObject({ emulator_manifest_sha256: sha256(readFileSync(join(good, 'manifest.json'))), adapter_format: 'peft-lora' });
  });
});
