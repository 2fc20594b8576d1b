// Ed25519 keys: generating key files, reading them, signing and verifying, and the trusted-key
// list (Settings → trusted keys) kept in the audit database. Private keys live only in files
// (mode 0600); the database holds public keys.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-write';
import { ServiceError } from './service-error';
import type { AuditLog } from './audit';

export interface PublicKeyInfo {
  /** First 16 hex digits of SHA-256 of the raw 32-byte public key. */
  keyId: string;
  publicKey: KeyObject;
  /** SPKI PEM, the form written to KEYFILE.pub and stored in the keys table. */
  pem: string;
  /** The raw 32-byte Ed25519 public key. */
  raw: Buffer;
}

export interface SigningKey extends PublicKeyInfo {
  privateKey: KeyObject;
  /** The private key file it was read from. */
  path: string;
}

export interface TrustedKey {
  keyId: string;
  publicKey: string;
  label: string;
  addedAt: string;
  addedSeq: number;
}

export function keyIdOfRaw(raw: Uint8Array): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

export function publicKeyInfo(publicKey: KeyObject): PublicKeyInfo {
  if (publicKey.asymmetricKeyType !== 'ed25519') {
    throw new ServiceError(`Expected an Ed25519 key, got ${publicKey.asymmetricKeyType ?? 'an unknown key type'}.`);
  }
  const jwk = publicKey.export({ format: 'jwk' });
  const raw = Buffer.from(jwk.x as string, 'base64url');
  return { keyId: keyIdOfRaw(raw), publicKey, pem: publicKey.export({ format: 'pem', type: 'spki' }).toString(), raw };
}

/** A public key given as SPKI PEM or as the base64 of the raw 32 bytes. `where` names its origin. */
export function parsePublicKey(text: string, where: string): PublicKeyInfo {
  const trimmed = text.trim();
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(trimmed)) {
    throw new ServiceError(`${where} is a private key; give the public key instead (KEYFILE.pub), and keep the private key to yourself.`);
  }
  try {
    if (trimmed.startsWith('-----BEGIN')) return publicKeyInfo(createPublicKey(trimmed));
    const raw = Buffer.from(trimmed, 'base64');
    if (raw.length === 32 && /^[A-Za-z0-9+/=_-]+$/.test(trimmed)) {
      return publicKeyInfo(createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' }));
    }
  } catch (e) {
    if (e instanceof ServiceError) throw new ServiceError(`${where}: ${e.message}`);
  }
  throw new ServiceError(`${where} is not an Ed25519 public key (expected a PEM file such as KEYFILE.pub written by "offsite keygen").`);
}

export function readPublicKey(path: string): PublicKeyInfo {
  return parsePublicKey(readFileSync(path, 'utf8'), path);
}

export function readSigningKey(path: string): SigningKey {
  const text = readFileSync(path, 'utf8');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(text);
  } catch {
    throw new ServiceError(`${path} is not a private key (expected the KEYFILE written by "offsite keygen", not KEYFILE.pub).`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new ServiceError(`${path} holds a ${privateKey.asymmetricKeyType} key; Offsite Studio signs with Ed25519 keys.`);
  return { ...publicKeyInfo(createPublicKey(privateKey)), privateKey, path };
}

/** Base64 Ed25519 signature of `data`. */
export function signBytes(key: SigningKey, data: string | Uint8Array): string {
  return sign(null, typeof data === 'string' ? Buffer.from(data, 'utf8') : data, key.privateKey).toString('base64');
}

export function verifyBytes(key: PublicKeyInfo, data: string | Uint8Array, signatureBase64: string): boolean {
  const signature = Buffer.from(signatureBase64, 'base64');
  if (signature.length !== 64) return false;
  return verify(null, typeof data === 'string' ? Buffer.from(data, 'utf8') : data, key.publicKey, signature);
}

export interface GeneratedKey {
  keyId: string;
  privatePath: string;
  publicPath: string;
}

/** Writes KEYFILE (PKCS#8 PEM, mode 0600) and KEYFILE.pub (SPKI PEM). Never overwrites a key. */
export function writeKeyPair(out: string): GeneratedKey {
  const publicPath = `${out}.pub`;
  for (const p of [out, publicPath]) {
    if (existsSync(p)) throw new ServiceError(`${p} already exists; choose another name (a key is never overwritten).`);
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const info = publicKeyInfo(publicKey);
  writeFileAtomic(out, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
  writeFileAtomic(publicPath, info.pem, 0o644);
  return { keyId: info.keyId, privatePath: out, publicPath };
}

/** `offsite keygen`: writes the pair and appends `key.generated` to the audit log. */
export function generateKey(audit: AuditLog, out: string): GeneratedKey & { seq: number } {
  const generated = writeKeyPair(out);
  const publicPem = readFileSync(generated.publicPath);
  const { seq } = audit.append('key.generated', {
    outputs: { public_key: { sha256: createHash('sha256').update(publicPem).digest('hex'), size: publicPem.length } },
    details: { key_id: generated.keyId, public_key_file: generated.publicPath },
  });
  return { ...generated, seq };
}

export const HOME_SIGNING_KEY = join('keys', 'audit-signing.key');

/**
 * The key this data folder signs its audit checkpoints with when no --sign-key is given. Created
 * (and trusted locally, with audit events) on first use.
 */
export function homeSigningKey(audit: AuditLog, home: string): SigningKey {
  const path = join(home, HOME_SIGNING_KEY);
  if (!existsSync(path)) {
    generateKey(audit, path);
  } else if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
    throw new ServiceError(`${path} can be read by other users; run "chmod 600 ${path}" and try again.`);
  }
  const key = readSigningKey(path);
  if (!audit.isTrusted(key.keyId)) trustKey(audit, key.pem, 'this data folder’s audit signing key', 'created to sign audit checkpoints');
  return key;
}

/** Adds a public key to the trusted keys (a `key.trusted` event). Returns the key id. */
export function trustKey(audit: AuditLog, publicKeyText: string, label: string, reason?: string): TrustedKey {
  const info = parsePublicKey(publicKeyText, `The key "${label}"`);
  return audit.addTrustedKey(info, label.trim() || info.keyId, reason);
}

export function trustKeyFile(audit: AuditLog, path: string, label?: string, reason?: string): TrustedKey {
  const info = readPublicKey(path);
  return audit.addTrustedKey(info, label?.trim() || info.keyId, reason);
}

export function listTrustedKeys(audit: AuditLog): TrustedKey[] {
  return audit.trustedKeys();
}

/** Removes a key from the trusted keys (a `key.untrusted` event). */
export function untrustKey(audit: AuditLog, keyId: string, reason?: string): void {
  audit.removeTrustedKey(keyId, reason);
}
