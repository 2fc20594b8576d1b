// `offsite emulator verify` acceptance (issue 7): every kind of tampering exits 3 naming the step
// and the file; a good package with the right trust key, and an unsigned one with an explicit
// override and reason, exit 0.
import { cpSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEmulatorPackage, keyPair, offsite, sha256, signWith, tempDir } from '../../unit/packages/helpers';

let tmp: { dir: string; cleanup: () => void };
let home: string;
let good: string;
let unsigned: string;
let owner: { key: string; pub: string };
let stranger: { key: string; pub: string };
let n = 0;

beforeAll(async () => {
  tmp = tempDir('offsite-verify-cli-');
  home = join(tmp.dir, 'home');
  owner = keyPair(tmp.dir, 'owner.key');
  stranger = keyPair(tmp.dir, 'stranger.key');
  good = join(tmp.dir, 'good');
  unsigned = join(tmp.dir, 'unsigned');
  await buildEmulatorPackage(good, owner.key);
  await buildEmulatorPackage(unsigned, null);
});
afterAll(() => tmp.cleanup());

/** A fresh copy of a package to damage. */
function copyOf(src: string): string {
  const dst = join(tmp.dir, `case-${n++}`);
  cpSync(src, dst, { recursive: true });
  return dst;
}

function filesOf(dir: string, rel = ''): string[] {
  return readdirSync(join(dir, rel)).flatMap((name) => {
    const p = rel ? `${rel}/${name}` : name;
    return statSync(join(dir, p)).isDirectory() ? filesOf(dir, p) : [p];
  });
}

const verify = (pkg: string, ...extra: string[]) => offsite('emulator', 'verify', pkg, '--home', home, ...extra);

/** Rewrites manifest.json with `edit` applied and signs it again with the owner's (trusted) key. */
function editManifest(pkg: string, edit: (m: Record<string, any>) => void): void {
  const m = JSON.parse(readFileSync(join(pkg, 'manifest.json'), 'utf8'));
  edit(m);
  const bytes = Buffer.from(`${JSON.stringify(m, null, 2)}\n`);
  writeFileSync(join(pkg, 'manifest.json'), bytes);
  writeFileSync(join(pkg, 'manifest.sig'), signWith(owner.key, bytes));
}

async function expectFailure(pkg: string, step: string, file: string | null, extra: string[] = ['--trust', owner.pub]) {
  const r = await verify(pkg, ...extra);
  expect(r.code, r.out + r.err).toBe(3);
  expect(r.err).toContain(`step "${step}"`);
  if (file) expect(r.err).toContain(file);
  const json = await verify(pkg, ...extra, '--json');
  expect(json.code).toBe(3);
  const report = JSON.parse(json.out);
  expect(report.ok).toBe(false);
  expect(report.failure.step).toBe(step);
  if (file) expect(report.failure.file).toBe(file);
  return report;
}

describe('offsite emulator verify', () => {
  it('passes a good package with the right trust key: exit 0 and a summary', async () => {
    const r = await verify(good, '--trust', owner.pub);
    expect(r.code, r.err).toBe(0);
    const manifestHash = sha256(readFileSync(join(good, 'manifest.json')));
    expect(r.out).toContain(manifestHash);
    expect(r.out).toMatch(/Package verified: emulator package, 4 files/);
    const json = await verify(good, '--trust', owner.pub, '--json');
    const report = JSON.parse(json.out);
    expect(report).toMatchObject({ ok: true, kind: 'emulator', manifestSha256: manifestHash, override: null, failure: null });
    expect(report.signer).toMatchObject({ signatureValid: true, trusted: true });
    expect(report.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`)).toEqual(
      ['folder', 'manifest', 'signature', 'signer', 'paths', 'limits', 'files', 'hashes'].map((s) => `${s}:passed`),
    );
  });

  it('fails on one flipped byte in every file of the package, the manifest and the signature included', async () => {
    const files = filesOf(good).sort();
    expect(files).toEqual(['config.json', 'harmonizers/layer3.bin.txt', 'manifest.json', 'manifest.sig', 'model.safetensors', 'tokenizer.json']);
    for (const file of files) {
      const size = statSync(join(good, file)).size;
      for (const at of [0, Math.floor(size / 2), size - 1]) {
        const pkg = copyOf(good);
        const bytes = readFileSync(join(pkg, file));
        bytes[at]! ^= 0x01;
        writeFileSync(join(pkg, file), bytes);
        const r = await verify(pkg, '--trust', owner.pub, '--json');
        expect(r.code, `${file} byte ${at}: ${r.err}`).toBe(3);
        const report = JSON.parse(r.out);
        if (file === 'manifest.json') expect(['manifest', 'signature']).toContain(report.failure.step);
        else if (file === 'manifest.sig') expect(report.failure.step).toBe('signature');
        else {
          expect(report.failure).toMatchObject({ step: 'hashes', rule: 'package.hash-mismatch', file });
          expect(r.err).toContain(file);
        }
        rmSync(pkg, { recursive: true });
      }
    }
  });

  it('fails on a renamed file (one missing, one extra)', async () => {
    const pkg = copyOf(good);
    renameSync(join(pkg, 'tokenizer.json'), join(pkg, 'tokenizer2.json'));
    const report = await expectFailure(pkg, 'files', 'tokenizer2.json');
    const files = report.steps.find((s: { name: string }) => s.name === 'files');
    expect(files.problems.map((p: { rule: string; file: string }) => `${p.rule} ${p.file}`).sort()).toEqual(['package.extra-file tokenizer2.json', 'package.missing-file tokenizer.json']);
  });

  it('fails on an extra file', async () => {
    const pkg = copyOf(good);
    writeFileSync(join(pkg, 'harmonizers', 'payload.py'), 'print("hi")\n');
    const report = await expectFailure(pkg, 'files', 'harmonizers/payload.py');
    expect(report.failure.rule).toBe('package.extra-file');
  });

  it('fails on a manifest path with ".." even when the manifest is properly signed', async () => {
    const pkg = copyOf(good);
    writeFileSync(join(tmp.dir, 'outside.txt'), 'harmonizer 3 stand-in\n');
    editManifest(pkg, (m) => {
      m.files.find((f: { path: string }) => f.path === 'harmonizers/layer3.bin.txt').path = '../outside.txt';
    });
    const report = await expectFailure(pkg, 'paths', '../outside.txt');
    expect(report.failure.rule).toBe('package.path.dotdot');
    expect(report.steps.find((s: { name: string }) => s.name === 'signature').status).toBe('passed');
  });

  it('fails on an absolute manifest path', async () => {
    const pkg = copyOf(good);
    editManifest(pkg, (m) => {
      m.files.find((f: { path: string }) => f.path === 'tokenizer.json').path = '/etc/hostname';
      m.model.tokenizer = '/etc/hostname';
    });
    const report = await expectFailure(pkg, 'paths', '/etc/hostname');
    expect(report.failure.rule).toBe('package.path.absolute');
  });

  it('fails on a symbolic link in the package, even to an identical file', async () => {
    const pkg = copyOf(good);
    const outside = join(tmp.dir, 'tokenizer-copy.json');
    cpSync(join(pkg, 'tokenizer.json'), outside);
    rmSync(join(pkg, 'tokenizer.json'));
    symlinkSync(outside, join(pkg, 'tokenizer.json'));
    const report = await expectFailure(pkg, 'files', 'tokenizer.json');
    expect(report.failure.rule).toBe('package.symlink');

    const pkg2 = copyOf(good);
    symlinkSync(join(pkg2, 'config.json'), join(pkg2, 'harmonizers', 'link.json'));
    expect((await expectFailure(pkg2, 'files', 'harmonizers/link.json')).failure.rule).toBe('package.symlink');
  });

  it('fails on a signature by an untrusted key', async () => {
    const report = await expectFailure(good, 'signer', 'manifest.json', ['--trust', stranger.pub]);
    expect(report.failure.rule).toBe('package.signer.untrusted');
    expect(report.signer).toMatchObject({ signatureValid: true, trusted: false });
    await expectFailure(good, 'signer', null, []);
  });

  it('fails on a package re-signed by another key that keeps the owner as named signer', async () => {
    const pkg = copyOf(good);
    writeFileSync(join(pkg, 'manifest.sig'), signWith(stranger.key, readFileSync(join(pkg, 'manifest.json'))));
    expect((await expectFailure(pkg, 'signature', 'manifest.sig')).failure.rule).toBe('package.signature.invalid');
  });

  it('fails on an unsigned package without an override', async () => {
    const report = await expectFailure(unsigned, 'signature', 'manifest.json', ['--trust', owner.pub]);
    expect(report.failure.rule).toBe('package.unsigned');
  });

  it('passes an unsigned package with --allow-unsigned and a reason, and reports the override', async () => {
    const reason = 'publisher handed over the USB stick in person; no key yet';
    const r = await verify(unsigned, '--allow-unsigned', '--reason', reason);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`accepted on override: ${reason}`);
    expect(r.err).toContain(reason);
    const report = JSON.parse((await verify(unsigned, '--allow-unsigned', '--reason', reason, '--json')).out);
    expect(report).toMatchObject({ ok: true, override: { reason, because: 'unsigned' } });
    expect(report.steps.find((s: { name: string }) => s.name === 'signature').status).toBe('overridden');

    const untrusted = await verify(good, '--allow-unsigned', '--reason', reason, '--json');
    expect(untrusted.code).toBe(0);
    expect(JSON.parse(untrusted.out).override).toEqual({ reason, because: 'untrusted' });
  });

  it('never overrides a broken signature or damaged files', async () => {
    const pkg = copyOf(good);
    const sig = readFileSync(join(pkg, 'manifest.sig'), 'utf8');
    writeFileSync(join(pkg, 'manifest.sig'), `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`);
    await expectFailure(pkg, 'signature', 'manifest.sig', ['--allow-unsigned', '--reason', 'testing']);
    const pkg2 = copyOf(unsigned);
    writeFileSync(join(pkg2, 'config.json'), '{}');
    await expectFailure(pkg2, 'hashes', 'config.json', ['--allow-unsigned', '--reason', 'testing']);
  });

  it('refuses an override without a reason, and bad arguments, with exit 2', async () => {
    expect((await verify(unsigned, '--allow-unsigned')).code).toBe(2);
    expect((await verify(unsigned, '--allow-unsigned', '--reason', '   ')).code).toBe(2);
    expect((await verify(unsigned, '--reason', 'x')).code).toBe(2);
    expect((await verify(good, '--trust', owner.key)).err).toMatch(/private key/);
    expect((await verify(join(tmp.dir, 'nope'))).code).toBe(2);
  });
});
