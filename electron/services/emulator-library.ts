// The library of imported packages as the Emulators screen (and later the Plug-in screen) sees
// it: check a package folder where it is, import it through services/packages (staged copy,
// verified there, audited), list and describe what is in <home>/emulators and <home>/adapters,
// and remove an emulator. Each problem the verifier finds is also said plainly, with what to do.
// The package folders hold only the signed files; everything else (when and how a package got in)
// comes from its import event in the audit trail.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type {
  AdapterSummary,
  EmulatorDetails,
  EmulatorSummary,
  PackageCheck,
  PackageFinding,
  PackageImportInfo,
  PackageImportResult,
  PackageReportInfo,
  PackageSignerInfo,
  PackageStepName,
} from '../ipc/emulators-contract';
import { FormatError } from '../../native-models/formats/errors';
import { MANIFEST_FILE, SIGNATURE_FILE, readPackageManifest, verifyPackage, type PackageKind, type PackageManifest, type PackageVerifyReport } from '../../native-models/formats/package';
import type { AuditLog } from './audit';
import { importedPackagePath, importPackage, packagesDir, STAGING_DIR } from './packages';
import { ServiceError } from './service-error';

const ID = /^[0-9a-f]{64}$/;

/** Progress of a long check or import (copying, hashing), for the screen's progress line. */
export interface LibraryProgress {
  phase: 'copy' | 'verify';
  file: string;
  bytesDone: number;
  bytesTotal: number | null;
}

export interface LibraryOptions {
  audit: AuditLog;
  onProgress?: (p: LibraryProgress) => void;
  signal?: AbortSignal;
}

// ── Plain sentences for the verifier's problems ──────────────────────────────────────────────

const NO_OVERRIDE = 'A damaged package or a bad signature cannot be overridden.';

/** One verifier problem said plainly: what is wrong (naming the file) and what to do. */
export function explainProblem(step: PackageStepName, p: { rule: string; file: string | null; message: string }, kind: PackageKind = 'emulator'): PackageFinding {
  const owner = kind === 'emulator' ? 'the model owner' : 'the data owner';
  const fresh = `Ask ${owner} for a fresh copy of the package.`;
  const f = p.file ?? 'The package folder';
  const say = (sentence: string, action: string): PackageFinding => ({ step, rule: p.rule, file: p.file, sentence, action });
  const rule = p.rule;
  switch (rule) {
    case 'package.hash-mismatch':
      return say(`${f} does not match its SHA-256 in the manifest: the package was changed after it was signed, or damaged on the way.`, `${fresh} ${NO_OVERRIDE}`);
    case 'package.size-mismatch':
      return say(`${f} is not the size the manifest lists: it was changed, cut short or damaged after the package was signed.`, `Copy the package again from the original media; if it still fails, ${fresh.charAt(0).toLowerCase()}${fresh.slice(1)}`);
    case 'package.missing-file':
      return say(`${f} is listed in the manifest but is missing from the package folder.`, 'Copy the whole package folder again: a file was left behind.');
    case 'package.extra-file':
      return say(`${f} is in the package folder but not in the manifest, so the signature does not cover it.`, 'Copy the package again from the original media; never add files to a signed package.');
    case 'package.symlink':
      return say(`${f} is a symbolic link; a package may hold only plain files (a link could point anywhere on this machine).`, `Give the package folder itself, not a link to it; if the link is inside the package, ${fresh.charAt(0).toLowerCase()}${fresh.slice(1)}`);
    case 'package.not-a-file':
    case 'package.special-file':
      return say(`${f} is not a plain file; a package may hold only plain files and folders.`, fresh);
    case 'package.outside':
      return say(`${f} leads outside the package folder.`, `Do not import this package. ${fresh}`);
    case 'package.unreadable':
      return say(`${f} could not be read: ${p.message}`, 'Check that the removable drive is still mounted and the file is readable, then check again.');
    case 'package.changed-while-copying':
      return say(`${f} changed while it was being copied into the staging folder.`, 'Copy the package from a folder nothing else writes to, then import it again.');
    case 'package.missing':
      return say(`There is no folder at ${p.file ?? 'that path'}.`, 'Check the path and that the removable drive is mounted.');
    case 'package.not-a-folder':
      return say('The path names a file, not a package folder.', `Give the package folder, the one that holds ${MANIFEST_FILE}.`);
    case 'package.manifest.missing':
      return say(`The folder holds no ${MANIFEST_FILE}, so it is not an Offsite Studio package.`, `Give the package folder itself (the one that holds ${MANIFEST_FILE}), not a folder above or inside it.`);
    case 'package.manifest.too-large':
      return say(`${MANIFEST_FILE} is far larger than a package manifest can be.`, `Do not import this package. ${fresh}`);
    case 'package.manifest.version':
      return say(`${MANIFEST_FILE} is written in a package format this version of Offsite Studio does not read.`, `Update Offsite Studio, or ask ${owner} for a package made for this version.`);
    case 'package.kind-mismatch':
      return kind === 'emulator'
        ? say('This is an adapter package, not an emulator package.', 'Choose an emulator package here; returned adapters are imported on the Plug-in screen.')
        : say('This is an emulator package, not an adapter package.', 'Choose an adapter package here; emulators are imported on the Emulators screen.');
    case 'package.unsigned':
      return say('The package is not signed, so nobody vouches for where it came from.', `Ask ${owner} for a signed package. If you know where this one came from, you may import it on an override: tick it and give your reason, which is recorded in the audit log.`);
    case 'package.signer.untrusted':
      return say(
        `The package is signed, but by a key that is not one of your trusted keys.`,
        `Compare the key id with ${owner} (by phone or in person), add their public key in Settings → trusted keys and check again; or import it on an override with your reason, which is recorded in the audit log.`,
      );
    case 'package.signature.invalid':
      return say(`${SIGNATURE_FILE} is not a valid signature of ${MANIFEST_FILE}: the manifest or the signature was changed after signing.`, `${fresh} ${NO_OVERRIDE}`);
    case 'package.signature.missing':
      return say(`${MANIFEST_FILE} names a signer, but ${SIGNATURE_FILE} is missing.`, `Copy the whole package folder again; if ${SIGNATURE_FILE} is still missing, ${fresh.charAt(0).toLowerCase()}${fresh.slice(1)}`);
    case 'package.signature.malformed':
    case 'package.signature.key-mismatch':
    case 'package.signature.unexpected':
      return say(`The signature does not fit the manifest: ${p.message}`, `${fresh} ${NO_OVERRIDE}`);
    case 'package.too-many-files':
    case 'package.too-large':
    case 'package.too-deep':
      return say(`The package is larger than Offsite Studio accepts: ${p.message}`, `Ask ${owner} whether this is the right package; the limits keep a hostile package from filling the disk.`);
    default:
      if (rule.startsWith('package.path.')) {
        return say(`${MANIFEST_FILE} lists an unsafe file name${p.file ? ` (${JSON.stringify(p.file)})` : ''}: ${p.message}`, `Do not import this package. ${fresh}`);
      }
      if (rule.startsWith('package.manifest')) {
        return say(`${MANIFEST_FILE} is not a valid package manifest: ${p.message}`, `${fresh} It must be written by Offsite Studio.`);
      }
      return say(p.message, fresh);
  }
}

const OVERRIDABLE_RULES: Record<string, 'unsigned' | 'untrusted'> = { 'package.unsigned': 'unsigned', 'package.signer.untrusted': 'untrusted' };

/**
 * 'unsigned' or 'untrusted' when the package is intact and fails only for want of a trusted
 * signature: the one case an override may cover. Never for damaged files or a bad signature.
 */
export function overridableOf(report: PackageVerifyReport): 'unsigned' | 'untrusted' | null {
  if (report.ok) return null;
  const failed = report.steps.filter((s) => s.status === 'failed');
  if (failed.length !== 1) return null;
  const problems = failed[0]!.problems;
  const because = problems.length === 1 ? OVERRIDABLE_RULES[problems[0]!.rule] : undefined;
  if (!because) return null;
  // Every other step passed; for an unsigned package the signer step has nothing to check.
  const rest = report.steps.filter((s) => s !== failed[0]);
  const restOk = rest.every((s) => s.status === 'passed' || (because === 'unsigned' && s.name === 'signer' && s.status === 'skipped'));
  return restOk ? because : null;
}

function findingsOf(report: PackageVerifyReport, kind: PackageKind): PackageFinding[] {
  return report.steps.filter((s) => s.status === 'failed').flatMap((s) => s.problems.map((p) => explainProblem(s.name, p, kind)));
}

function checkOf(report: PackageVerifyReport, kind: PackageKind): PackageCheck {
  const info: PackageReportInfo = report; // the contract mirrors the verifier's report
  return { report: info, findings: findingsOf(report, kind), overridable: overridableOf(report) };
}

// ── Check and import ─────────────────────────────────────────────────────────────────────────

/** Verifies a package folder where it is (removable media): the report, nothing copied or recorded. */
export async function checkPackage(path: string, kind: PackageKind, opts: LibraryOptions): Promise<PackageCheck> {
  const report = await verifyPackage(resolve(path), {
    trustedKeys: opts.audit.trustedKeys(),
    expectKind: kind,
    signal: opts.signal,
    onProgress: (p) => opts.onProgress?.({ phase: 'verify', file: p.file, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
  });
  return checkOf(report, kind);
}

/**
 * Imports a package (copied into staging, verified there, filed under its manifest hash). A
 * rejected package is a result with the report, not an error; both outcomes are audited.
 */
export async function importToLibrary(home: string, path: string, kind: PackageKind, opts: LibraryOptions & { override?: { reason: string } }): Promise<PackageImportResult> {
  const src = resolve(path);
  if (!existsSync(src)) throw new ServiceError(`There is no folder at ${src}; check the path and that the removable drive is mounted.`);
  const reason = opts.override?.reason.trim();
  if (opts.override && !reason) throw new ServiceError('Give a reason for the override; it is recorded in the audit log with the import.');
  const r = await importPackage(home, src, {
    kind,
    audit: opts.audit,
    override: reason ? { reason } : undefined,
    signal: opts.signal,
    onProgress: (p) => opts.onProgress?.({ phase: p.phase, file: p.file, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal ?? null }),
  });
  return { ...checkOf(r.report, kind), ok: r.ok, id: r.ok ? r.manifestSha256 : null, event: r.event };
}

// ── The library ──────────────────────────────────────────────────────────────────────────────

function signerOf(manifest: PackageManifest, audit: AuditLog): PackageSignerInfo | null {
  if (!manifest.signer) return null;
  const keyId = manifest.signer.keyId;
  // The key id is the hash of the key and the package's signature was checked against the
  // embedded key at import, so matching by id says whether that key is trusted now.
  const key = audit.trustedKeys().find((k) => k.keyId === keyId);
  return { keyId, trusted: key !== undefined, label: key?.label ?? null };
}

/** The newest import event of each package, by manifest hash. */
function importEvents(audit: AuditLog, kind: PackageKind): Map<string, PackageImportInfo> {
  const out = new Map<string, PackageImportInfo>();
  for (const e of audit.log({ action: `${kind}.imported` })) {
    const d = e.payload.details;
    const id = d.manifest_sha256;
    if (typeof id !== 'string') continue;
    const o = d.override;
    const because = o && typeof o === 'object' && !Array.isArray(o) ? o.because : undefined;
    const info: PackageImportInfo = {
      at: e.ts,
      seq: e.seq,
      source: typeof d.source === 'string' ? d.source : null,
      override: because === 'unsigned' || because === 'untrusted' ? { because, reason: e.reason ?? '' } : null,
    };
    const had = out.get(id);
    if (!had || had.seq < info.seq) out.set(id, info);
  }
  return out;
}

/** The imported packages of one kind whose folder name is the hash of their manifest. */
async function readLibrary(home: string, kind: PackageKind): Promise<Array<{ id: string; path: string; manifest: PackageManifest }>> {
  const root = packagesDir(home, kind);
  if (!existsSync(root)) return [];
  const out: Array<{ id: string; path: string; manifest: PackageManifest }> = [];
  for (const name of (await readdir(root)).sort()) {
    if (!ID.test(name)) continue;
    const path = join(root, name);
    try {
      const { manifest, manifestSha256 } = await readPackageManifest(path);
      // A manifest that no longer hashes to its folder name was edited after the import: not listed.
      if (manifestSha256 === name && manifest.kind === kind) out.push({ id: name, path, manifest });
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
    }
  }
  return out;
}

const newestFirst = (a: { imported: PackageImportInfo | null; created: string }, b: { imported: PackageImportInfo | null; created: string }): number => {
  const ta = a.imported?.at ?? a.created;
  const tb = b.imported?.at ?? b.created;
  return ta < tb ? 1 : ta > tb ? -1 : 0;
};

function summaryOf(id: string, path: string, manifest: PackageManifest & { kind: 'emulator' }, audit: AuditLog, imported: PackageImportInfo | null): EmulatorSummary {
  return {
    id,
    name: manifest.sourceModel.name ?? 'Unnamed model',
    sourceModel: { ...manifest.sourceModel },
    method: manifest.method,
    triplet: { adapterLayers: [...manifest.triplet.adapterLayers], alpha: manifest.triplet.alpha, beta: manifest.triplet.beta },
    emulatorLayers: manifest.layerMap.filter((l) => l.role !== 'dropped').length,
    created: manifest.created,
    signer: signerOf(manifest, audit),
    imported,
    bytes: manifest.files.reduce((s, f) => s + f.size, 0),
    fileCount: manifest.files.length,
    path,
  };
}

/** The imported emulators, newest import first. */
export async function listEmulators(home: string, audit: AuditLog): Promise<EmulatorSummary[]> {
  const events = importEvents(audit, 'emulator');
  const list = await readLibrary(home, 'emulator');
  return list
    .map(({ id, path, manifest }) => summaryOf(id, path, manifest as PackageManifest & { kind: 'emulator' }, audit, events.get(id) ?? null))
    .sort(newestFirst);
}

async function readEmulator(home: string, id: string): Promise<{ path: string; manifest: PackageManifest & { kind: 'emulator' } }> {
  if (!ID.test(id)) throw new ServiceError('An emulator id is the 64-character SHA-256 of its manifest, as shown in the list of imported emulators.');
  const path = importedPackagePath(home, 'emulator', id);
  const missing = (): never => {
    throw new ServiceError(`No imported emulator has the id ${id}; it may have been removed. See the list of imported emulators.`);
  };
  if (!existsSync(path)) missing();
  let read;
  try {
    read = await readPackageManifest(path);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    throw new ServiceError(`The imported emulator ${id} can no longer be read (${e.message}); remove it and import the package again.`);
  }
  if (read.manifestSha256 !== id || read.manifest.kind !== 'emulator') {
    throw new ServiceError(`The manifest of the imported emulator ${id} was changed after the import; remove it and import the package again.`);
  }
  return { path, manifest: read.manifest };
}

/** One imported emulator with its whole manifest. */
export async function getEmulator(home: string, id: string, audit: AuditLog): Promise<EmulatorDetails> {
  const { path, manifest } = await readEmulator(home, id);
  return { ...summaryOf(id, path, manifest, audit, importEvents(audit, 'emulator').get(id) ?? null), manifest };
}

/** Deletes an imported emulator; the audit trail keeps its import and records the removal. */
export async function removeEmulator(home: string, id: string, audit: AuditLog): Promise<{ removed: string; auditSeq: number }> {
  if (!ID.test(id)) throw new ServiceError('An emulator id is the 64-character SHA-256 of its manifest, as shown in the list of imported emulators.');
  const path = importedPackagePath(home, 'emulator', id);
  if (!existsSync(path)) throw new ServiceError(`No imported emulator has the id ${id}; it may have been removed already.`);
  let name: string | null = null;
  try {
    const { manifest } = await readPackageManifest(path);
    if (manifest.kind === 'emulator') name = manifest.sourceModel.name;
  } catch (e) {
    if (!(e instanceof FormatError)) throw e; // a damaged copy can still be removed
  }
  // Moved out of the library first, so a half-deleted folder never looks like an emulator.
  await mkdir(join(home, STAGING_DIR), { recursive: true });
  const trash = join(home, STAGING_DIR, `${randomBytes(12).toString('hex')}-removed`);
  await rename(path, trash);
  await rm(trash, { recursive: true, force: true });
  const event = audit.append('emulator.removed', { inputs: { emulator: id }, details: { emulator_id: id, manifest_sha256: id, name, path } });
  return { removed: id, auditSeq: event.seq };
}

/** The imported adapter packages (returned by data owners), newest import first. */
export async function listAdapters(home: string, audit: AuditLog): Promise<AdapterSummary[]> {
  const events = importEvents(audit, 'adapter');
  const emulators = new Set((await readLibrary(home, 'emulator')).map((e) => e.id));
  const list = await readLibrary(home, 'adapter');
  return list
    .map(({ id, path, manifest }): AdapterSummary => {
      const m = manifest as PackageManifest & { kind: 'adapter' };
      return {
        id,
        emulator: { manifestSha256: m.emulator.manifestSha256, signerKeyId: m.emulator.signerKeyId, importedHere: emulators.has(m.emulator.manifestSha256) },
        sourceModelSha256: m.sourceModel.sha256,
        format: m.adapter.format,
        layers: [...m.adapter.layers],
        created: m.created,
        signer: signerOf(m, audit),
        imported: events.get(id) ?? null,
        bytes: m.files.reduce((s, f) => s + f.size, 0),
        fileCount: m.files.length,
        path,
        manifest: m,
      };
    })
    .sort(newestFirst);
}
