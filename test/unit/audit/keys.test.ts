import { createHash, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openAudit } from '../../../electron/services/audit';
import {
  listTrustedKeys,
  parsePublicKey,
  readPublicKey,
  readSigningKey,
  signBytes,
  trustKeyFile,
  untrustKey,
  verifyBytes,
  writeKeyPair,
} from '../../../electron/services/keys';
import { cli, tempHome } from './helpers';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});
function home(): string {
  const h = tempHome('keys');
  cleanups.push(h.cleanup);
  return h.home;
}

/** The raw Ed25519 key is the last 32 bytes of its SPKI DER (RFC 8410). */
function rawFromPem(pem: string): Buffer {
  const der = createPublicKey(pem).export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}

describe('offsite keygen', () => {
  it('writes a 0600 private key and a .pub, and logs key.generated with the key id', async () => {
    const h = home();
    const out = join(h, 'alice.key');
    const r = await cli(['keygen', '--out', out, '--home', h, '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.out) as { keyId: string; privateKey: string; publicKey: string };
    expect(result.privateKey).toBe(out);
    expect(result.publicKey).toBe(`${out}.pub`);
    if (process.platform !== 'win32') expect(statSync(out).mode & 0o777).toBe(0o600);
    const pem = readFileSync(`${out}.pub`, 'utf8');
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(readFileSync(out, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(result.keyId).toBe(createHash('sha256').update(rawFromPem(pem)).digest('hex').slice(0, 16));

    const audit = openAudit(h);
    try {
      const events = audit.log({ action: 'key.generated' });
      expect(events).toHaveLength(1);
      expect(events[0]!.payload.details.key_id).toBe(result.keyId);
      // The private key never enters the database.
      const privateBody = readFileSync(out, 'utf8').split('\n')[1]!;
      for (const f of ['audit.sqlite', 'audit.sqlite-wal']) {
        if (existsSync(join(h, f))) expect(readFileSync(join(h, f)).includes(privateBody)).toBe(false);
      }
    } finally {
      audit.close();
    }
  });

  it('never overwrites an existing key file (exit 2)', async () => {
    const h = home();
    const out = join(h, 'k');
    writeFileSync(out, 'precious');
    const r = await cli(['keygen', '--out', out, '--home', h]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/already exists/);
    expect(readFileSync(out, 'utf8')).toBe('precious');
    expect(existsSync(`${out}.pub`)).toBe(false);
  });

  it('asks for --out (exit 2)', async () => {
    const r = await cli(['keygen', '--home', home()]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--out KEYFILE/);
  });
});

describe('signing keys', () => {
  it('signs and verifies; a changed message or another key does not verify', () => {
    const h = home();
    writeKeyPair(join(h, 'a'));
    writeKeyPair(join(h, 'b'));
    const a = readSigningKey(join(h, 'a'));
    const bPub = readPublicKey(join(h, 'b.pub'));
    const sig = signBytes(a, 'manifest bytes');
    expect(verifyBytes(readPublicKey(join(h, 'a.pub')), 'manifest bytes', sig)).toBe(true);
    expect(verifyBytes(a, 'manifest bytez', sig)).toBe(false);
    expect(verifyBytes(bPub, 'manifest bytes', sig)).toBe(false);
  });

  it('reads a raw base64 public key to the same key id as its PEM', () => {
    const h = home();
    writeKeyPair(join(h, 'a'));
    const pem = readFileSync(join(h, 'a.pub'), 'utf8');
    expect(parsePublicKey(rawFromPem(pem).toString('base64'), 'raw').keyId).toBe(readPublicKey(join(h, 'a.pub')).keyId);
  });

  it('refuses a public key where a private key belongs, and garbage as a public key', () => {
    const h = home();
    writeKeyPair(join(h, 'a'));
    expect(() => readSigningKey(join(h, 'a.pub'))).toThrow(/not a private key/);
    writeFileSync(join(h, 'junk.pub'), 'hello');
    expect(() => readPublicKey(join(h, 'junk.pub'))).toThrow(/not an Ed25519 public key/);
  });
});

describe('trusted keys', () => {
  it('adds, lists and removes trusted keys, each change an audit event', () => {
    const h = home();
    writeKeyPair(join(h, 'pub1'));
    const audit = openAudit(h);
    try {
      const added = trustKeyFile(audit, join(h, 'pub1.pub'), 'Model owner A', 'received on signed paper');
      expect(listTrustedKeys(audit).map((k) => [k.keyId, k.label])).toEqual([[added.keyId, 'Model owner A']]);
      // Adding the same key again changes nothing.
      trustKeyFile(audit, join(h, 'pub1.pub'), 'again');
      expect(audit.log({ action: 'key.trusted' })).toHaveLength(1);
      untrustKey(audit, added.keyId, 'rotated');
      expect(listTrustedKeys(audit)).toEqual([]);
      const events = audit.log({ action: 'key.*' });
      expect(events.map((e) => [e.action, e.payload.details.key_id, e.reason])).toEqual([
        ['key.trusted', added.keyId, 'received on signed paper'],
        ['key.untrusted', added.keyId, 'rotated'],
      ]);
      expect(() => untrustKey(audit, added.keyId)).toThrow(/No trusted key/);
    } finally {
      audit.close();
    }
  });
});
