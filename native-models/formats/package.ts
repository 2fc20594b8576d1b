// Emulator and adapter packages: a folder with manifest.json (every other file with size and
// SHA-256, see package-manifest.ts), the files, and manifest.sig (Ed25519 over the exact manifest
// bytes, base64). `writePackage` builds one atomically and signs it; `verifyPackage` checks one
// step by step and returns a report the UI shows as is. Imported packages are hostile until this
// verifier passes on the app's own staged copy (design/SECURITY.md).
import { createHash } from 'node:crypto';
import { lstat, realpath, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { writeDirAtomic, writeFileAtomic } from './atomic';
import { FormatError } from './errors';
import { decodeUtf8Strict } from './json';
import {
  checkManifest,
  MANIFEST_FILE,
  PACKAGE_FORMAT,
  PACKAGE_FORMAT_VERSION,
  parseManifest,
  serializeManifest,
  SIGNATURE_FILE,
  type AdapterManifest,
  type EmulatorManifest,
  type ManifestFile,
  type PackageKind,
  type PackageManifest,
} from './package-manifest';
import {
  decodeSignatureText,
  parsePackagePublicKey,
  readPackageSigningKey,
  signManifestBytes,
  trustedKeyOf,
  verifyManifestSignature,
  type PackagePublicKey,
  type PackageSigningKey,
  type TrustedKeyLike,
} from './package-keys';
import { copyTreeNoFollow, DEFAULT_PACKAGE_LIMITS, hashHandle, openNoFollow, walkNoFollow, type PackageLimits } from './package-fs';

export * from './package-manifest';
export { DEFAULT_PACKAGE_LIMITS, type PackageLimits } from './package-fs';
export { readPackagePublicKey, readPackageSigningKey, parsePackagePublicKey, keyIdOf, signManifestBytes, type PackagePublicKey, type PackageSigningKey, type TrustedKeyLike } from './package-keys';

// ── Path rules ──────────────────────────────────────────────────────────────────────────────

/** Why `path` may not name a file in a package, or undefined when it may. Pure string rules. */
export function packagePathProblem(path: string): { rule: string; why: string } | undefined {
  if (path.length === 0) return { rule: 'package.path.empty', why: 'is empty' };
  if (path.includes('\\')) return { rule: 'package.path.backslash', why: 'contains a backslash' };
  if (/[\u0000-\u001f\u007f]/.test(path)) return { rule: 'package.path.control-character', why: 'contains a control character' };
  if (path.startsWith('/') || isAbsolute(path) || /^[A-Za-z]:/.test(path)) return { rule: 'package.path.absolute', why: 'is an absolute path' };
  // A colon names an alternate data stream on Windows; refusing it everywhere keeps packages portable.
  if (path.includes(':')) return { rule: 'package.path.colon', why: 'contains a colon' };
  const parts = path.split('/');
  if (parts.includes('..')) return { rule: 'package.path.dotdot', why: 'contains ".."' };
  if (parts.some((p) => p === '' || p === '.')) return { rule: 'package.path.empty-segment', why: 'has an empty or "." path segment' };
  if (path === MANIFEST_FILE || path === SIGNATURE_FILE) return { rule: 'package.path.reserved', why: `is reserved for the package's own ${path}` };
  return undefined;
}

// ── The verification report ─────────────────────────────────────────────────────────────────

export type StepName = 'staging' | 'folder' | 'manifest' | 'signature' | 'signer' | 'paths' | 'limits' | 'files' | 'hashes';
export type StepStatus = 'passed' | 'failed' | 'overridden' | 'skipped';

export const STEP_TITLES: Record<StepName, string> = {
  staging: 'Copied into the staging folder',
  folder: 'Package folder',
  manifest: 'Manifest parses and is complete',
  signature: 'Signature over the manifest',
  signer: 'Signer is trusted',
  paths: 'File names are safe',
  limits: 'File count and size within limits',
  files: 'Files match the manifest (no links, none extra, none missing)',
  hashes: 'File sizes and SHA-256 match',
};

export interface VerifyProblem {
  /** Stable rule id, e.g. "package.hash-mismatch". */
  rule: string;
  /** Relative path in the package (or the package folder) the problem is in. */
  file: string | null;
  message: string;
}

export interface VerifyStep {
  name: StepName;
  title: string;
  status: StepStatus;
  /** passed or overridden. */
  ok: boolean;
  /** One sentence for the UI. */
  detail: string;
  problems: VerifyProblem[];
}

export interface PackageVerifyReport {
  ok: boolean;
  path: string;
  kind: PackageKind | null;
  /** SHA-256 of the exact manifest.json bytes: the package's identity. */
  manifestSha256: string | null;
  manifestSize: number | null;
  manifest: PackageManifest | null;
  signer: { keyId: string; signatureValid: boolean; trusted: boolean; label: string | null } | null;
  /** Set when an unsigned or untrusted package passed only because of the caller's override. */
  override: { reason: string; because: 'unsigned' | 'untrusted' } | null;
  steps: VerifyStep[];
  /** The first problem of the first failed step. */
  failure: (VerifyProblem & { step: StepName }) | null;
  fileCount: number;
  totalBytes: number;
  /** One sentence: the outcome. */
  verdict: string;
}

export interface VerifyPackageOptions {
  /** Keys the user trusts (Settings → trusted keys, --trust files). */
  trustedKeys?: TrustedKeyLike[];
  /** Lets an unsigned or untrusted (but intact) package pass; the reason must not be empty. */
  allowUnsigned?: { reason: string };
  /** Refuse a package of the other kind. */
  expectKind?: PackageKind;
  limits?: Partial<PackageLimits>;
  /** Hashing progress, for the UI. */
  onProgress?: (p: { file: string; bytesDone: number; bytesTotal: number }) => void;
  signal?: AbortSignal;
}

class StepRecorder {
  readonly steps: VerifyStep[] = [];

  add(name: StepName, problems: VerifyProblem[], okDetail: string, status?: StepStatus): VerifyStep {
    const s: StepStatus = status ?? (problems.length ? 'failed' : 'passed');
    const detail =
      s === 'failed'
        ? problems.length > 1
          ? `${problems[0]!.message} (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})`
          : problems[0]!.message
        : okDetail;
    const step: VerifyStep = { name, title: STEP_TITLES[name], status: s, ok: s === 'passed' || s === 'overridden', detail, problems };
    this.steps.push(step);
    return step;
  }

  skip(name: StepName, why: string): void {
    this.steps.push({ name, title: STEP_TITLES[name], status: 'skipped', ok: false, detail: why, problems: [] });
  }
}

const hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const quote = (p: string) => JSON.stringify(p.length > 120 ? `${p.slice(0, 117)}...` : p);

/** Builds the final report from recorded steps. */
function finish(
  dir: string,
  rec: StepRecorder,
  fields: Omit<PackageVerifyReport, 'ok' | 'path' | 'steps' | 'failure' | 'verdict'>,
): PackageVerifyReport {
  const failed = rec.steps.find((s) => s.status === 'failed');
  const ok = !failed && rec.steps.every((s) => s.ok);
  const failure = failed ? { step: failed.name, ...failed.problems[0]! } : null;
  let verdict: string;
  if (failure) verdict = `Package verification failed at step "${failure.step}": ${failure.message}`;
  else if (!ok) verdict = 'Package verification did not complete.';
  else {
    const what = `${fields.kind} package, ${fields.fileCount} file${fields.fileCount === 1 ? '' : 's'}, ${fields.totalBytes} bytes, manifest ${fields.manifestSha256?.slice(0, 16)}`;
    verdict = fields.override
      ? `Package intact (${what}) but ${fields.override.because === 'unsigned' ? 'unsigned' : `signed by the untrusted key ${fields.signer?.keyId}`}; accepted on override: ${fields.override.reason}`
      : `Package verified: ${what}, signed by trusted key ${fields.signer?.keyId}${fields.signer?.label ? ` (${fields.signer.label})` : ''}.`;
  }
  return { ok, path: dir, steps: rec.steps, failure, verdict, ...fields };
}

/**
 * Verifies a package folder strictly, step by step. Never throws for a bad package (the report
 * says what is wrong); throws only for an I/O failure it cannot explain, or when aborted.
 */
export async function verifyPackage(dir: string, opts: VerifyPackageOptions = {}): Promise<PackageVerifyReport> {
  const limits = { ...DEFAULT_PACKAGE_LIMITS, ...opts.limits };
  const rec = new StepRecorder();
  const fields: Omit<PackageVerifyReport, 'ok' | 'path' | 'steps' | 'failure' | 'verdict'> = {
    kind: null,
    manifestSha256: null,
    manifestSize: null,
    manifest: null,
    signer: null,
    override: null,
    fileCount: 0,
    totalBytes: 0,
  };
  const skipRest = (from: StepName[], why: string) => from.forEach((n) => rec.skip(n, why));
  const AFTER_MANIFEST: StepName[] = ['signature', 'signer', 'paths', 'limits', 'files', 'hashes'];

  // 1. folder
  const top = await lstat(dir).catch(() => undefined);
  let realRoot: string | undefined;
  if (!top) rec.add('folder', [{ rule: 'package.missing', file: null, message: `There is no package folder at ${dir}.` }], '');
  else if (top.isSymbolicLink()) rec.add('folder', [{ rule: 'package.symlink', file: null, message: `${dir} is a symbolic link; give the package folder itself (rule: no symbolic links).` }], '');
  else if (!top.isDirectory()) rec.add('folder', [{ rule: 'package.not-a-folder', file: null, message: `${dir} is not a folder; a package is a folder holding ${MANIFEST_FILE} (rule: package layout).` }], '');
  else {
    realRoot = await realpath(dir);
    rec.add('folder', [], `${dir} is a folder.`);
  }
  if (!realRoot) {
    skipRest(['manifest', ...AFTER_MANIFEST], 'Not checked: there is no package folder.');
    return finish(dir, rec, fields);
  }

  // 2. manifest: read once; the same bytes are hashed, parsed and checked against the signature.
  let manifestBytes: Uint8Array | undefined;
  let manifest: PackageManifest | undefined;
  {
    const problems: VerifyProblem[] = [];
    const mp = join(dir, MANIFEST_FILE);
    const st = await lstat(mp).catch(() => undefined);
    if (!st) problems.push({ rule: 'package.manifest.missing', file: MANIFEST_FILE, message: `${MANIFEST_FILE} is missing (rule: every package has a manifest).` });
    else if (st.isSymbolicLink()) problems.push({ rule: 'package.symlink', file: MANIFEST_FILE, message: `${MANIFEST_FILE} is a symbolic link (rule: no symbolic links in a package).` });
    else if (!st.isFile()) problems.push({ rule: 'package.not-a-file', file: MANIFEST_FILE, message: `${MANIFEST_FILE} is not a regular file (rule: only plain files in a package).` });
    else if (st.size > limits.maxManifestBytes) {
      problems.push({ rule: 'package.manifest.too-large', file: MANIFEST_FILE, message: `${MANIFEST_FILE} is ${st.size} bytes, more than the ${limits.maxManifestBytes} allowed (rule: manifest size is capped).` });
    } else {
      const { fh } = await openNoFollow(mp);
      try {
        manifestBytes = await readAll(fh, limits.maxManifestBytes);
      } finally {
        await fh.close();
      }
      fields.manifestSha256 = hex(manifestBytes);
      fields.manifestSize = manifestBytes.byteLength;
      try {
        manifest = parseManifest(decodeUtf8Strict(manifestBytes, MANIFEST_FILE, 'package.manifest'), MANIFEST_FILE);
        fields.kind = manifest.kind;
        fields.manifest = manifest;
        if (opts.expectKind && manifest.kind !== opts.expectKind) {
          problems.push({ rule: 'package.kind-mismatch', file: MANIFEST_FILE, message: `${MANIFEST_FILE} says this is an ${manifest.kind} package, but an ${opts.expectKind} package was expected (rule: package kind).` });
        }
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
        problems.push({ rule: e.rule, file: MANIFEST_FILE, message: e.message });
      }
    }
    rec.add('manifest', problems, manifest ? `${MANIFEST_FILE} is valid: format ${PACKAGE_FORMAT} version ${PACKAGE_FORMAT_VERSION}, ${manifest.kind} package listing ${manifest.files.length} files.` : '');
  }
  if (!manifest || !manifestBytes) {
    skipRest(AFTER_MANIFEST, `Not checked: ${MANIFEST_FILE} could not be read.`);
    return finish(dir, rec, fields);
  }

  // 3. signature and 4. signer
  await checkSignature(dir, manifest, manifestBytes, opts, rec, fields);

  // 5. paths
  const safe: ManifestFile[] = [];
  {
    const problems: VerifyProblem[] = [];
    const seen = new Map<string, string>();
    for (const f of manifest.files) {
      const bad = packagePathProblem(f.path);
      if (bad) {
        problems.push({ rule: bad.rule, file: f.path, message: `${MANIFEST_FILE} lists ${quote(f.path)}, which ${bad.why} (rule: manifest paths are plain relative paths inside the package).` });
        continue;
      }
      // Case-folded too: on a case-insensitive disk two such names are one file.
      const folded = f.path.normalize('NFC').toLowerCase();
      const other = seen.get(folded);
      if (other !== undefined) {
        problems.push({ rule: 'package.path.duplicate', file: f.path, message: `${MANIFEST_FILE} lists ${quote(f.path)} and ${quote(other)}, which name the same file on some disks (rule: each file listed once).` });
        continue;
      }
      seen.set(folded, f.path);
      safe.push(f);
    }
    rec.add('paths', problems, `All ${manifest.files.length} file names are plain relative paths.`);
  }

  // 6. limits
  const totalListed = manifest.files.reduce((s, f) => s + f.size, 0);
  fields.fileCount = manifest.files.length;
  fields.totalBytes = totalListed;
  {
    const problems: VerifyProblem[] = [];
    if (manifest.files.length > limits.maxFiles) {
      problems.push({ rule: 'package.too-many-files', file: MANIFEST_FILE, message: `${MANIFEST_FILE} lists ${manifest.files.length} files, more than the ${limits.maxFiles} allowed (rule: entry count is capped).` });
    }
    if (totalListed > limits.maxTotalBytes) {
      problems.push({ rule: 'package.too-large', file: MANIFEST_FILE, message: `${MANIFEST_FILE} lists ${totalListed} bytes of files, more than the ${limits.maxTotalBytes} allowed (rule: total size is capped).` });
    }
    rec.add('limits', problems, `${manifest.files.length} files, ${totalListed} bytes: within the limits (${limits.maxFiles} files, ${limits.maxTotalBytes} bytes).`);
  }

  // 7. files: what is on disk, seen without following links, against what is listed.
  const present = new Set<string>();
  {
    const problems: VerifyProblem[] = [];
    const walked = await walkNoFollow(dir, limits.maxFiles + 3, limits.maxDepth);
    if (walked.truncated) problems.push({ rule: 'package.too-many-files', file: null, message: `The package folder holds more than ${limits.maxFiles} files (rule: entry count is capped).` });
    if (walked.tooDeep) problems.push({ rule: 'package.too-deep', file: walked.tooDeep, message: `${quote(walked.tooDeep)} is nested more than ${limits.maxDepth} folders deep (rule: nesting is capped).` });
    const listed = new Map(manifest.files.map((f) => [f.path, f]));
    for (const e of walked.entries) {
      if (e.kind === 'symlink') {
        problems.push({ rule: 'package.symlink', file: e.path, message: `${quote(e.path)} is a symbolic link (rule: no symbolic links in a package).` });
      } else if (e.kind === 'other') {
        problems.push({ rule: 'package.special-file', file: e.path, message: `${quote(e.path)} is not a regular file or folder (rule: only plain files in a package).` });
      } else if (e.path === MANIFEST_FILE || e.path === SIGNATURE_FILE) {
        // the package's own files, checked above
      } else if (!listed.has(e.path)) {
        problems.push({ rule: 'package.extra-file', file: e.path, message: `${quote(e.path)} is in the package folder but not listed in ${MANIFEST_FILE} (rule: no extra files).` });
      } else present.add(e.path);
    }
    for (const f of manifest.files) {
      if (!present.has(f.path) && !walked.entries.some((e) => e.path === f.path)) {
        problems.push({ rule: 'package.missing-file', file: f.path, message: `${quote(f.path)} is listed in ${MANIFEST_FILE} but missing from the package folder (rule: no missing files).` });
      }
    }
    // No links were found, so realpaths stay inside; checked anyway, since that is the rule.
    for (const p of present) {
      const real = await realpath(join(dir, ...p.split('/'))).catch(() => undefined);
      const rel = real === undefined ? '..' : relative(realRoot, real);
      if (rel.startsWith('..') || isAbsolute(rel) || rel.split(sep)[0] === '..') {
        problems.push({ rule: 'package.outside', file: p, message: `${quote(p)} resolves outside the package folder (rule: files stay inside the package).` });
        present.delete(p);
      }
    }
    rec.add('files', problems, `The folder holds exactly the ${manifest.files.length} listed files, with no links.`);
  }

  // 8. hashes: only of files that are safe, listed and present.
  {
    const problems: VerifyProblem[] = [];
    const toHash = safe.filter((f) => present.has(f.path));
    const bytesTotal = toHash.reduce((s, f) => s + f.size, 0);
    let bytesDone = 0;
    for (const f of toHash) {
      opts.signal?.throwIfAborted();
      const path = join(dir, ...f.path.split('/'));
      let opened;
      try {
        opened = await openNoFollow(path);
      } catch (e) {
        problems.push({ rule: 'package.unreadable', file: f.path, message: `${quote(f.path)} could not be opened: ${(e as Error).message}` });
        continue;
      }
      const { fh, st } = opened;
      try {
        if (st.size !== f.size) {
          problems.push({ rule: 'package.size-mismatch', file: f.path, message: `${quote(f.path)} is ${st.size} bytes, but ${MANIFEST_FILE} says ${f.size} (rule: sizes match the manifest).` });
          bytesDone += f.size;
          continue;
        }
        const got = await hashHandle(fh, (n) => {
          bytesDone += n;
          opts.onProgress?.({ file: f.path, bytesDone, bytesTotal });
        }, opts.signal);
        if (got.size !== f.size) {
          problems.push({ rule: 'package.size-mismatch', file: f.path, message: `${quote(f.path)} changed size while it was read (rule: sizes match the manifest).` });
        } else if (got.sha256 !== f.sha256) {
          problems.push({ rule: 'package.hash-mismatch', file: f.path, message: `${quote(f.path)} has SHA-256 ${got.sha256.slice(0, 16)}…, but ${MANIFEST_FILE} says ${f.sha256.slice(0, 16)}… (rule: file hashes match the manifest; the file was changed or damaged).` });
        }
      } finally {
        await fh.close();
      }
    }
    const unchecked = manifest.files.length - toHash.length;
    if (problems.length === 0 && unchecked > 0) {
      rec.add('hashes', [], '', 'skipped');
      rec.steps[rec.steps.length - 1]!.detail = `${toHash.length} files match; ${unchecked} could not be checked (see the steps above).`;
    } else rec.add('hashes', problems, `All ${toHash.length} files match their size and SHA-256 (${bytesTotal} bytes).`);
  }
  return finish(dir, rec, fields);
}

async function readAll(fh: FileHandle, max: number): Promise<Uint8Array> {
  const st = await fh.stat();
  const size = Math.min(st.size, max);
  const buf = new Uint8Array(size);
  let got = 0;
  while (got < size) {
    const { bytesRead } = await fh.read(buf, got, size - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

async function checkSignature(
  dir: string,
  manifest: PackageManifest,
  manifestBytes: Uint8Array,
  opts: VerifyPackageOptions,
  rec: StepRecorder,
  fields: Omit<PackageVerifyReport, 'ok' | 'path' | 'steps' | 'failure' | 'verdict'>,
): Promise<void> {
  const reason = opts.allowUnsigned?.reason?.trim() ?? '';
  const overrideAsked = opts.allowUnsigned !== undefined;
  const noReason = `An override needs a reason; none was given.`;
  const sp = join(dir, SIGNATURE_FILE);
  const st = await lstat(sp).catch(() => undefined);

  if (manifest.signer === null) {
    if (st) {
      rec.add('signature', [{ rule: 'package.signature.unexpected', file: SIGNATURE_FILE, message: `${SIGNATURE_FILE} is present, but ${MANIFEST_FILE} names no signer (rule: a signature belongs to a named signer).` }], '');
      rec.skip('signer', 'Not checked: the signature is inconsistent.');
      return;
    }
    const problem = { rule: 'package.unsigned', file: MANIFEST_FILE, message: `The package is not signed (${MANIFEST_FILE} names no signer and there is no ${SIGNATURE_FILE}) (rule: packages are signed unless the user overrides with a reason).` };
    if (reason) {
      fields.override = { reason, because: 'unsigned' };
      rec.add('signature', [problem], `Not signed; accepted on the user's override: ${reason}`, 'overridden');
      rec.add('signer', [], `No signer; accepted on the user's override: ${reason}`, 'overridden');
    } else {
      rec.add('signature', [overrideAsked ? { ...problem, message: `${problem.message} ${noReason}` } : problem], '');
      rec.skip('signer', 'Not checked: the package has no signer.');
    }
    return;
  }

  const signer = manifest.signer;
  let embedded: PackagePublicKey | undefined;
  try {
    embedded = parsePackagePublicKey(signer.publicKey, `${MANIFEST_FILE} signer.publicKey`);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
  }
  const sigProblems: VerifyProblem[] = [];
  let signatureValid = false;
  if (!embedded || embedded.keyId !== signer.keyId) {
    sigProblems.push({ rule: 'package.signature.key-mismatch', file: MANIFEST_FILE, message: `${MANIFEST_FILE} names signer key ${signer.keyId}, but its signer.publicKey is ${embedded ? `key ${embedded.keyId}` : 'not an Ed25519 key'} (rule: the signer's key id is the hash of its key).` });
  } else if (!st) {
    sigProblems.push({ rule: 'package.signature.missing', file: SIGNATURE_FILE, message: `${MANIFEST_FILE} names signer ${signer.keyId}, but ${SIGNATURE_FILE} is missing (rule: a signed package carries its signature).` });
  } else if (st.isSymbolicLink() || !st.isFile()) {
    sigProblems.push({ rule: st.isSymbolicLink() ? 'package.symlink' : 'package.not-a-file', file: SIGNATURE_FILE, message: `${SIGNATURE_FILE} is not a regular file (rule: no symbolic links in a package).` });
  } else if (st.size > 1024) {
    sigProblems.push({ rule: 'package.signature.malformed', file: SIGNATURE_FILE, message: `${SIGNATURE_FILE} is ${st.size} bytes, far more than a signature (rule: base64 of a 64-byte Ed25519 signature).` });
  } else {
    const { fh } = await openNoFollow(sp);
    let text: string;
    try {
      text = Buffer.from(await readAll(fh, 1024)).toString('latin1');
    } finally {
      await fh.close();
    }
    const sig = decodeSignatureText(text);
    if (!sig) {
      sigProblems.push({ rule: 'package.signature.malformed', file: SIGNATURE_FILE, message: `${SIGNATURE_FILE} is not the base64 of a 64-byte Ed25519 signature (rule: canonical base64, one optional final newline).` });
    } else if (!verifyManifestSignature(embedded, manifestBytes, sig)) {
      sigProblems.push({ rule: 'package.signature.invalid', file: SIGNATURE_FILE, message: `${SIGNATURE_FILE} is not a valid signature of ${MANIFEST_FILE} by key ${signer.keyId} (rule: Ed25519 over the exact manifest bytes; the manifest or the signature was changed).` });
    } else signatureValid = true;
  }

  // Trust: the signer's key must be one of the user's keys — compared as keys, not as ids.
  let trustedMatch: { key: PackagePublicKey; label: string | null } | undefined;
  for (const t of opts.trustedKeys ?? []) {
    let k: PackagePublicKey;
    try {
      k = trustedKeyOf(t);
    } catch {
      continue; // a malformed trusted key grants no trust
    }
    if (embedded && k.raw.equals(embedded.raw)) trustedMatch = { key: k, label: t.label ?? null };
  }
  fields.signer = { keyId: signer.keyId, signatureValid, trusted: trustedMatch !== undefined, label: trustedMatch?.label ?? null };
  rec.add('signature', sigProblems, `${SIGNATURE_FILE} is a valid Ed25519 signature of ${MANIFEST_FILE} by key ${signer.keyId}.`);
  if (!signatureValid) {
    rec.skip('signer', 'Not checked: the signature is not valid (a bad signature cannot be overridden).');
    return;
  }
  if (trustedMatch) {
    rec.add('signer', [], `Key ${signer.keyId}${trustedMatch.label ? ` (${trustedMatch.label})` : ''} is one of your trusted keys.`);
    return;
  }
  const problem = { rule: 'package.signer.untrusted', file: MANIFEST_FILE, message: `The package is signed by key ${signer.keyId}, which is not one of your trusted keys (rule: publisher keys are trusted only when you add them; add it in Settings → trusted keys or pass --trust KEYFILE.pub).` };
  if (reason) {
    fields.override = { reason, because: 'untrusted' };
    rec.add('signer', [problem], `Key ${signer.keyId} is not trusted; accepted on the user's override: ${reason}`, 'overridden');
  } else rec.add('signer', [overrideAsked ? { ...problem, message: `${problem.message} ${noReason}` } : problem], '');
}

// ── Reading an already verified package ─────────────────────────────────────────────────────

/**
 * Reads and validates manifest.json of a package (no file hashes, no signature: use
 * verifyPackage for that; this is for packages the app already imported and verified).
 */
export async function readPackageManifest(dir: string): Promise<{ manifest: PackageManifest; manifestSha256: string; bytes: Uint8Array }> {
  const mp = join(dir, MANIFEST_FILE);
  const { fh } = await openNoFollow(mp).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new FormatError('package.manifest.missing', `${dir} holds no ${MANIFEST_FILE}; it is not an Offsite Studio package.`, dir);
    if (e.code === 'ELOOP') throw new FormatError('package.symlink', `${MANIFEST_FILE} in ${dir} is a symbolic link (rule: no symbolic links in a package).`, mp);
    throw e;
  });
  let bytes: Uint8Array;
  try {
    bytes = await readAll(fh, DEFAULT_PACKAGE_LIMITS.maxManifestBytes);
  } finally {
    await fh.close();
  }
  const manifest = parseManifest(decodeUtf8Strict(bytes, MANIFEST_FILE, 'package.manifest'), MANIFEST_FILE);
  return { manifest, manifestSha256: hex(bytes), bytes };
}

// ── Writing ─────────────────────────────────────────────────────────────────────────────────

type Computed = 'format' | 'formatVersion' | 'producer' | 'created' | 'signer' | 'files';
export type EmulatorManifestInput = Omit<EmulatorManifest, Computed>;
export type AdapterManifestInput = Omit<AdapterManifest, Computed>;

export interface WritePackageOptions {
  /** Everything the manifest says besides what the writer computes (files, signer, time). */
  manifest: EmulatorManifestInput | AdapterManifestInput;
  producer: { app: string; version: string };
  /** A staged folder whose files (and subfolders) become the package's files; links refused. */
  from?: string;
  /** Or: writes the files straight into the package's temporary folder. */
  fill?: (dir: string) => Promise<void>;
  /** Private key file (from `offsite keygen`) or a loaded key; null writes an unsigned package. */
  signingKey: string | PackageSigningKey | null;
  created?: Date;
  /** Replace an existing non-empty folder at the target. */
  overwrite?: boolean;
}

export interface WrittenPackage {
  dir: string;
  manifest: PackageManifest;
  manifestSha256: string;
  signerKeyId: string | null;
}

/**
 * Writes a package atomically: files go into a temporary folder beside `dir`, each is hashed and
 * fsynced, the manifest is built from what is actually on disk, signed, and the folder is renamed
 * into place. A manifest that would not pass the strict parser is never written.
 */
export async function writePackage(dir: string, opts: WritePackageOptions): Promise<WrittenPackage> {
  if (!opts.from === !opts.fill) throw new TypeError('writePackage needs exactly one of "from" (a staged folder) or "fill" (a function writing the files).');
  const key = typeof opts.signingKey === 'string' ? await readPackageSigningKey(opts.signingKey) : opts.signingKey;
  let result: WrittenPackage | undefined;
  await writeDirAtomic(
    dir,
    async (tmp) => {
      if (opts.from) await copyTreeNoFollow(opts.from, tmp);
      else await opts.fill!(tmp);
      const walked = await walkNoFollow(tmp, DEFAULT_PACKAGE_LIMITS.maxFiles + 1, DEFAULT_PACKAGE_LIMITS.maxDepth);
      if (walked.truncated) throw new FormatError('package.too-many-files', `The package would hold more than ${DEFAULT_PACKAGE_LIMITS.maxFiles} files.`, dir);
      const files: ManifestFile[] = [];
      for (const e of walked.entries) {
        if (e.kind !== 'file') throw new FormatError(e.kind === 'symlink' ? 'package.symlink' : 'package.special-file', `${e.path} is not a regular file; a package holds plain files only.`, dir);
        if (e.path === MANIFEST_FILE || e.path === SIGNATURE_FILE) {
          throw new FormatError('package.path.reserved', `The staged files include ${e.path}, which the writer makes itself; remove it from the staged folder.`, dir);
        }
        const bad = packagePathProblem(e.path);
        if (bad) throw new FormatError(bad.rule, `The staged file ${quote(e.path)} ${bad.why}; rename it.`, dir);
        const { fh } = await openNoFollow(join(tmp, ...e.path.split('/')));
        try {
          const h = await hashHandle(fh);
          await fh.sync();
          files.push({ path: e.path, size: h.size, sha256: h.sha256 });
        } finally {
          await fh.close();
        }
      }
      files.sort((a, b) => Buffer.compare(Buffer.from(a.path, 'utf8'), Buffer.from(b.path, 'utf8')));
      const created = (opts.created ?? new Date()).toISOString();
      const draft = {
        format: PACKAGE_FORMAT,
        formatVersion: PACKAGE_FORMAT_VERSION,
        producer: opts.producer,
        created,
        signer: key ? { keyId: key.keyId, publicKey: key.raw.toString('base64') } : null,
        ...opts.manifest,
        files,
      };
      // Round-trip through the strict checker: what is written is exactly what a verifier accepts.
      const manifest = checkManifest(JSON.parse(JSON.stringify(draft)) as Record<string, unknown>, MANIFEST_FILE);
      const bytes = serializeManifest(manifest);
      await writeFileAtomic(join(tmp, MANIFEST_FILE), bytes);
      if (key) await writeFileAtomic(join(tmp, SIGNATURE_FILE), new TextEncoder().encode(signManifestBytes(key, bytes)));
      result = { dir, manifest, manifestSha256: hex(bytes), signerKeyId: key?.keyId ?? null };
    },
    opts.overwrite ?? false,
  );
  return result!;
}

// Re-exported for services that stage packages (copy without following links, then verify).
export { copyTreeNoFollow } from './package-fs';
