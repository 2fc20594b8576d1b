// The package format's rules one by one: path rules, strict manifest parsing (duplicate keys,
// unknown fields, layer maps), canonical signature text, the writer, and the caps.
import { generateKeyPairSync, sign } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '../../../native-models/formats/errors';
import { packagePathProblem, parseManifest, readPackageManifest, verifyPackage, writePackage } from '../../../native-models/formats/package';
import { decodeSignatureText, keyIdOf } from '../../../native-models/formats/package-keys';
import { readPublicKey } from '../../../electron/services/keys';
import { buildEmulatorPackage, emulatorManifest, keyPair, LAYER_MAP, sha256, stageEmulatorFiles, tempDir } from './helpers';

let tmp: { dir: string; cleanup: () => void };
let owner: { key: string; pub: string };
let good: string;
let goodText: string;

beforeAll(async () => {
  tmp = tempDir();
  owner = keyPair(tmp.dir, 'owner.key');
  good = join(tmp.dir, 'good');
  await buildEmulatorPackage(good, owner.key);
  goodText = readFileSync(join(good, 'manifest.json'), 'utf8');
});
afterAll(() => tmp.cleanup());

const ruleOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (e instanceof FormatError) return e.rule;
    throw e;
  }
  return 'no error';
};
const edited = (edit: (m: Record<string, any>) => void): string => {
  const m = JSON.parse(goodText);
  edit(m);
  return JSON.stringify(m);
};

describe('package path rules', () => {
  it.each([
    ['', 'package.path.empty'],
    ['a\\b.bin', 'package.path.backslash'],
    ['/etc/passwd', 'package.path.absolute'],
    ['C:/x.bin', 'package.path.absolute'],
    ['../x', 'package.path.dotdot'],
    ['a/../../x', 'package.path.dotdot'],
    ['a//b', 'package.path.empty-segment'],
    ['./a', 'package.path.empty-segment'],
    ['a/', 'package.path.empty-segment'],
    ['a\u0000b', 'package.path.control-character'],
    ['file.bin:stream', 'package.path.colon'],
    ['manifest.json', 'package.path.reserved'],
    ['manifest.sig', 'package.path.reserved'],
  ])('refuses %j (%s)', (path, rule) => {
    expect(packagePathProblem(path)?.rule).toBe(rule);
  });
  it('accepts plain relative paths', () => {
    for (const p of ['model.safetensors', 'harmonizers/layer3.safetensors', 'a/b/c.d', 'sub/manifest.json']) expect(packagePathProblem(p)).toBeUndefined();
  });
});

describe('manifest parsing', () => {
  it('parses what the writer wrote', () => {
    const m = parseManifest(goodText);
    expect(m.kind).toBe('emulator');
    if (m.kind !== 'emulator') return;
    expect(m.layerMap).toEqual(LAYER_MAP);
    expect(m.signer?.keyId).toBe(readPublicKey(owner.pub).keyId);
    expect(m.files.map((f) => f.path)).toEqual(['config.json', 'harmonizers/layer3.bin.txt', 'model.safetensors', 'tokenizer.json']);
    for (const f of m.files) {
      const bytes = readFileSync(join(good, f.path));
      expect(f).toEqual({ path: f.path, size: bytes.length, sha256: sha256(bytes) });
    }
  });

  it('refuses duplicate keys, which JSON.parse would silently resolve', () => {
    const dup = goodText.replace('"kind": "emulator",', '"kind": "emulator",\n  "kind": "adapter",');
    expect(dup).not.toBe(goodText);
    expect(ruleOf(() => parseManifest(dup))).toBe('package.manifest.duplicate-key');
  });

  it.each<[string, (m: Record<string, any>) => void, string]>([
    ['an unknown format version', (m) => (m.formatVersion = 2), 'package.manifest.version'],
    ['another format', (m) => (m.format = 'zip'), 'package.manifest.format'],
    ['an unknown kind', (m) => (m.kind = 'model'), 'package.manifest.kind'],
    ['an unknown field', (m) => (m.loader = 'pickle'), 'package.manifest.unknown-field'],
    ['a missing field', (m) => delete m.triplet, 'package.manifest.missing-field'],
    ['a bad hash', (m) => (m.files[0].sha256 = 'XYZ'), 'package.manifest.format'],
    ['a negative size', (m) => (m.files[0].size = -1), 'package.manifest.range'],
    ['a fractional size', (m) => (m.files[0].size = 1.5), 'package.manifest.type'],
    ['weights not among the files', (m) => (m.model.weights = ['other.safetensors']), 'package.manifest.unlisted-file'],
    ['β of 0', (m) => (m.triplet.beta = 0), 'package.manifest.range'],
    ['α above 1', (m) => (m.triplet.alpha = 1.5), 'package.manifest.range'],
    ['a layer map of the wrong length', (m) => m.layerMap.pop(), 'package.manifest.layer-count'],
    ['an unknown role', (m) => (m.layerMap[3].role = 'removed'), 'package.manifest.role'],
    ['a middle layer marked adapter', (m) => (m.layerMap[3].role = 'adapter'), 'package.manifest.adapter-layers'],
    ['an adapter layer not marked adapter', (m) => (m.layerMap[0].role = 'kept'), 'package.manifest.adapter-layers'],
    ['a dropped layer with an index', (m) => (m.layerMap[4].index = 4), 'package.manifest.layer-index'],
    ['indices out of order', (m) => ([m.layerMap[2].index, m.layerMap[3].index] = [3, 2]), 'package.manifest.layer-index'],
    ['layers out of order', (m) => ([m.layerMap[2].layer, m.layerMap[3].layer] = [3, 2]), 'package.manifest.layer-order'],
    ['a signer key id that is not hex', (m) => (m.signer.keyId = 'nothex'), 'package.manifest.format'],
    ['a non-UTC time', (m) => (m.created = '2025-01-02 03:04'), 'package.manifest.format'],
  ])('refuses %s', (_what, edit, rule) => {
    expect(ruleOf(() => parseManifest(edited(edit)))).toBe(rule);
  });

  it('names the field and the rule in the message', () => {
    try {
      parseManifest(edited((m) => (m.layerMap[4].index = 4)));
      expect.unreachable();
    } catch (e) {
      expect((e as FormatError).message).toMatch(/manifest\.json: "layerMap\[4\]\.index" must be null for a dropped layer \(rule: manifest\.layer-index\)/);
    }
  });
});

describe('manifest.sig text', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const sig = sign(null, Buffer.from('x'), privateKey);
  const b64 = sig.toString('base64');
  it('accepts canonical base64 of 64 bytes, with or without one newline', () => {
    expect(decodeSignatureText(b64)?.equals(sig)).toBe(true);
    expect(decodeSignatureText(`${b64}\n`)?.equals(sig)).toBe(true);
  });
  it('refuses anything else, including texts Node would decode to the same bytes', () => {
    const last = b64[85]!;
    // Changing only the padding bits of the last character decodes to the same 64 bytes.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const v = alphabet.indexOf(last);
    const sibling = alphabet[(v & ~3) | ((v + 1) & 3)]!;
    const nonCanonical = `${b64.slice(0, 85)}${sibling}==`;
    expect(Buffer.from(nonCanonical, 'base64').equals(sig)).toBe(true);
    for (const bad of [nonCanonical, `${b64}\n\n`, `${b64} `, ` ${b64}`, `${b64.slice(0, 40)}*${b64.slice(41)}`, `${b64}\r\n`, b64.slice(0, 84), '']) {
      expect(decodeSignatureText(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });
  it('key ids match keys.ts (first 16 hex of SHA-256 of the raw key)', () => {
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
    expect(keyIdOf(raw)).toBe(sha256(raw).slice(0, 16));
    expect(readPublicKey(owner.pub).keyId).toBe(parseManifest(goodText).signer!.keyId);
  });
});

describe('writePackage', () => {
  it('builds from a staged folder, signs, and leaves no temporary folders', async () => {
    const staged = join(tmp.dir, 'staged');
    mkdirSync(staged);
    await stageEmulatorFiles(staged);
    const out = join(tmp.dir, 'from-staged');
    const w = await writePackage(out, { producer: { app: 'Offsite Studio', version: '0.1.0-test' }, signingKey: owner.key, from: staged, manifest: emulatorManifest(), created: new Date('2025-01-02T03:04:05.000Z') });
    expect(w.manifestSha256).toBe(sha256(readFileSync(join(out, 'manifest.json'))));
    // Same files, same metadata → the same manifest as the package built with `fill`.
    expect(readFileSync(join(out, 'manifest.json'), 'utf8')).toBe(goodText);
    expect(readdirSync(tmp.dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect((await readPackageManifest(out)).manifestSha256).toBe(w.manifestSha256);
    await expect(writePackage(out, { producer: { app: 'a', version: 'b' }, signingKey: null, from: staged, manifest: emulatorManifest() })).rejects.toThrow(/already exists/);
  });

  it('never writes a manifest the verifier would refuse', async () => {
    const out = join(tmp.dir, 'invalid');
    await expect(
      writePackage(out, { producer: { app: 'a', version: 'b' }, signingKey: null, fill: stageEmulatorFiles, manifest: emulatorManifest({ model: { config: null, weights: ['missing.safetensors'], tokenizer: null } }) }),
    ).rejects.toThrow(/not in "files"/);
    expect(readdirSync(tmp.dir).filter((n) => n.startsWith('invalid') || n.includes('.invalid.tmp'))).toEqual([]);
  });

  it('refuses staged files named like the package’s own files', async () => {
    await expect(
      writePackage(join(tmp.dir, 'reserved'), { producer: { app: 'a', version: 'b' }, signingKey: null, fill: async (d) => { await stageEmulatorFiles(d); writeFileSync(join(d, 'manifest.sig'), 'x'); }, manifest: emulatorManifest() }),
    ).rejects.toThrow(/manifest\.sig/);
  });
});

describe('limits', () => {
  it('caps the entry count and the total size', async () => {
    const trusted = [{ publicKey: readFileSync(owner.pub, 'utf8') }];
    const few = await verifyPackage(good, { trustedKeys: trusted, limits: { maxFiles: 3 } });
    expect(few.ok).toBe(false);
    expect(few.failure).toMatchObject({ step: 'limits', rule: 'package.too-many-files', file: 'manifest.json' });
    // The folder walk is bounded too: a folder stuffed with files stops it early.
    const stuffed = join(tmp.dir, 'stuffed');
    cpSync(good, stuffed, { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(stuffed, `junk-${i}`), '');
    const walk = await verifyPackage(stuffed, { trustedKeys: trusted, limits: { maxFiles: 5 } });
    expect(walk.steps.find((s) => s.name === 'files')!.problems.map((p) => p.rule)).toContain('package.too-many-files');
    const small = await verifyPackage(good, { trustedKeys: trusted, limits: { maxTotalBytes: 100 } });
    expect(small.failure).toMatchObject({ step: 'limits', rule: 'package.too-large' });
    const tinyManifest = await verifyPackage(good, { trustedKeys: trusted, limits: { maxManifestBytes: 64 } });
    expect(tinyManifest.failure).toMatchObject({ step: 'manifest', rule: 'package.manifest.too-large' });
    expect((await verifyPackage(good, { trustedKeys: trusted })).ok).toBe(true);
  });
});
