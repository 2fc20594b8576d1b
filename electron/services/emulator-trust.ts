/**
 * Verifying an emulator package before a job uses it (`offsite eval --emulator`, `offsite tune
 * --emulator`): one rule set for every consumer, so evaluation and tuning accept exactly the same
 * packages. Plain Node (no Electron import).
 *
 *   const keys = trustedKeysFor(home, ['owner.pub']);          // --trust files + the data folder's keys
 *   const report = await verifyEmulatorPackage(path, { trustedKeys: keys, allowUnsigned, home });
 *
 * An emulator imported into the data folder (<home>/emulators/<sha>) passed verification there, and
 * any override is in its emulator.imported event: it is verified again (hashes), but its signer need
 * not be re-trusted.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { verifyPackage, type PackageVerifyReport, type TrustedKeyLike } from '../../native-models/formats/package';
import { auditPath } from '../audit/store';
import { openAudit } from './audit';
import { readPublicKey } from './keys';
import { packagesDir } from './packages';
import { ServiceError } from './service-error';

function inside(child: string, parent: string): boolean {
  const r = relative(parent, child);
  return r !== '' && !r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r);
}

/** True when `path` lies in the data folder's imported emulators. */
export function isImportedEmulator(home: string, path: string): boolean {
  return inside(resolve(path), resolve(packagesDir(home, 'emulator')));
}

/** Public key files given by the user (--trust) plus the data folder's trusted keys (none without an audit log). */
export function trustedKeysFor(home: string, trustFiles: readonly string[]): TrustedKeyLike[] {
  const keys: TrustedKeyLike[] = [];
  for (const p of trustFiles) {
    if (!existsSync(resolve(p))) throw new ServiceError(`The public key file ${p} does not exist; give the KEYFILE.pub written by "offsite keygen".`);
    keys.push({ publicKey: readPublicKey(resolve(p)).publicKey, label: `--trust ${p}` });
  }
  if (existsSync(auditPath(home))) {
    const audit = openAudit(home);
    try {
      for (const k of audit.trustedKeys()) keys.push({ publicKey: k.publicKey, label: k.label });
    } finally {
      audit.close();
    }
  }
  return keys;
}

export interface VerifyEmulatorOptions {
  trustedKeys?: TrustedKeyLike[];
  /** Accept an intact but unsigned or untrusted package; the reason goes into the caller's audit event. */
  allowUnsigned?: { reason: string };
  /** The data folder: emulators imported into it need no re-trust. */
  home?: string;
  signal?: AbortSignal;
}

/** Verifies an emulator package strictly (never throws for a bad package: read `ok` and `verdict`). */
export async function verifyEmulatorPackage(path: string, o: VerifyEmulatorOptions = {}): Promise<PackageVerifyReport> {
  const imported = o.home !== undefined && isImportedEmulator(o.home, path);
  const allowUnsigned = o.allowUnsigned ?? (imported ? { reason: 'imported into this data folder earlier (see its emulator.imported event)' } : undefined);
  return verifyPackage(resolve(path), { trustedKeys: o.trustedKeys ?? [], expectKind: 'emulator', ...(allowUnsigned ? { allowUnsigned } : {}), ...(o.signal ? { signal: o.signal } : {}) });
}
