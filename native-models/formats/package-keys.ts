// Ed25519 for packages, on node:crypto only (native-models may not import electron/services).
// Key files and key ids are the same as electron/services/keys.ts: private keys are PKCS#8 PEM
// (written by `offsite keygen`), public keys SPKI PEM or base64 of the raw 32 bytes, and a key id
// is the first 16 hex digits of SHA-256 of the raw public key.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { FormatError } from './errors';

export interface PackagePublicKey {
  keyId: string;
  publicKey: KeyObject;
  /** The raw 32-byte Ed25519 public key. */
  raw: Buffer;
}

export interface PackageSigningKey extends PackagePublicKey {
  privateKey: KeyObject;
}

/**
 * A key the caller trusts. keys.ts's PublicKeyInfo and TrustedKey both fit; the key id is always
 * recomputed from the key itself, never taken from the caller.
 */
export interface TrustedKeyLike {
  publicKey: KeyObject | string;
  label?: string;
}

export function keyIdOf(raw: Uint8Array): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function publicKeyOf(publicKey: KeyObject, where: string): PackagePublicKey {
  if (publicKey.asymmetricKeyType !== 'ed25519') {
    throw new FormatError('package.key.not-ed25519', `${where} holds a ${publicKey.asymmetricKeyType ?? 'non-Ed25519'} key; packages are signed with Ed25519 keys.`);
  }
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  return { keyId: keyIdOf(raw), publicKey, raw };
}

/** Public key from SPKI PEM or from base64 of the raw 32 bytes. */
export function parsePackagePublicKey(text: string, where: string): PackagePublicKey {
  const trimmed = text.trim();
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(trimmed)) {
    throw new FormatError('package.key.private', `${where} is a private key; give the public key instead (KEYFILE.pub).`);
  }
  try {
    if (trimmed.startsWith('-----BEGIN')) return publicKeyOf(createPublicKey(trimmed), where);
    if (/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) {
      const raw = Buffer.from(trimmed, 'base64');
      return publicKeyOf(createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' }), where);
    }
  } catch (e) {
    if (e instanceof FormatError) throw e;
  }
  throw new FormatError('package.key.not-public-key', `${where} is not an Ed25519 public key (expected a PEM file such as KEYFILE.pub written by "offsite keygen").`);
}

export function trustedKeyOf(k: TrustedKeyLike, where = 'A trusted key'): PackagePublicKey {
  return typeof k.publicKey === 'string' ? parsePackagePublicKey(k.publicKey, k.label ?? where) : publicKeyOf(k.publicKey, k.label ?? where);
}

export async function readPackagePublicKey(path: string): Promise<PackagePublicKey> {
  return parsePackagePublicKey(await readFile(path, 'utf8'), path);
}

/** Reads the private key file written by `offsite keygen` (PKCS#8 PEM). */
export async function readPackageSigningKey(path: string): Promise<PackageSigningKey> {
  const text = await readFile(path, 'utf8');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(text);
  } catch {
    throw new FormatError('package.key.not-private-key', `${path} is not a private key (expected the KEYFILE written by "offsite keygen", not KEYFILE.pub).`, path);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new FormatError('package.key.not-ed25519', `${path} holds a ${privateKey.asymmetricKeyType} key; packages are signed with Ed25519 keys.`, path);
  }
  return { ...publicKeyOf(createPublicKey(privateKey), path), privateKey };
}

/** The manifest.sig text: base64 of the 64-byte signature and one newline. */
export function signManifestBytes(key: PackageSigningKey, manifestBytes: Uint8Array): string {
  return `${sign(null, manifestBytes, key.privateKey).toString('base64')}\n`;
}

/**
 * Decodes manifest.sig strictly: exactly canonical base64 of 64 bytes, optionally one trailing
 * newline. Node's base64 decoder skips junk characters and ignores padding bits, so without the
 * canonical re-encoding check a changed byte could decode to the same signature.
 */
export function decodeSignatureText(text: string): Buffer | undefined {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (!/^[A-Za-z0-9+/]{86}==$/.test(body)) return undefined;
  const sig = Buffer.from(body, 'base64');
  if (sig.length !== 64 || sig.toString('base64') !== body) return undefined;
  return sig;
}

export function verifyManifestSignature(key: PackagePublicKey, manifestBytes: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, manifestBytes, key.publicKey, signature);
  } catch {
    return false;
  }
}
