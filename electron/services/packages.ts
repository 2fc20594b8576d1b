// Importing emulator and adapter packages (design/SECURITY.md, "Imported files are hostile until
// verified"): the package is copied from wherever it is (removable media) into
// <home>/staging/<random>/ without following links, verified THERE, and only then renamed into
// <home>/emulators/<manifest-sha256>/ (or adapters/). The app loads packages only from those
// folders, so nothing can change between the check and the use. Every outcome is an audit event.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { FormatError } from '../../native-models/formats/errors';
import { describeFullAdapter } from '../../native-models/formats/full-adapter';
import { ADAPTER_CONFIG, readPeftAdapter } from '../../native-models/formats/peft';
import { readSafetensorsHeader } from '../../native-models/formats/safetensors';
import { FULL_LAYERS_CONFIG } from '../../native-models/peft/full';
import {
  copyTreeNoFollow,
  readPackageManifest,
  writePackage,
  type JsonValue as ManifestJson,
  type PackageSigningKey,
  type WrittenPackage,
  STEP_TITLES,
  verifyPackage,
  type PackageKind,
  type PackageLimits,
  type PackageVerifyReport,
  type TrustedKeyLike,
  type VerifyStep,
} from '../../native-models/formats/package';
import { openAudit, type AuditLog, type DigestValue, type JsonValue } from './audit';
import { hashFolder } from './hashing';
import { ServiceError } from './service-error';
import { appVersion } from './version';

export const STAGING_DIR = 'staging';
export const EMULATORS_DIR = 'emulators';
export const ADAPTERS_DIR = 'adapters';

export interface ImportPackageOptions {
  /** Keys to trust; default: the data folder's trusted keys (Settings → trusted keys). */
  trustedKeys?: TrustedKeyLike[];
  /** Import an unsigned or untrusted (but intact) package anyway; recorded with the reason. */
  override?: { reason: string };
  /** Refuse a package of the other kind. */
  kind?: PackageKind;
  limits?: Partial<PackageLimits>;
  onProgress?: (p: { phase: 'copy' | 'verify'; file: string; bytesDone: number; bytesTotal?: number }) => void;
  signal?: AbortSignal;
  /** An audit handle to write to (default: opens <home>'s own and closes it after). */
  audit?: AuditLog;
}

export interface ImportResult {
  ok: boolean;
  kind: PackageKind | null;
  /** Where the package now lives (only when ok). */
  path: string | null;
  manifestSha256: string | null;
  /** The staging step followed by verifyPackage's steps. */
  report: PackageVerifyReport;
  /** The audit event written: *.imported or *.import_rejected. */
  event: { action: string; seq: number; hash: string };
}

export function packagesDir(home: string, kind: PackageKind): string {
  return join(home, kind === 'emulator' ? EMULATORS_DIR : ADAPTERS_DIR);
}

/** The folder of an imported package, by its manifest hash (its identity). */
export function importedPackagePath(home: string, kind: PackageKind, manifestSha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(manifestSha256)) throw new RangeError('A package is named by the 64 hex digits of its manifest SHA-256.');
  return join(packagesDir(home, kind), manifestSha256);
}

function stagingReport(src: string, problem: { rule: string; file: string | null; message: string }): PackageVerifyReport {
  const skipped = (['folder', 'manifest', 'signature', 'signer', 'paths', 'limits', 'files', 'hashes'] as const).map(
    (name): VerifyStep => ({ name, title: STEP_TITLES[name], status: 'skipped', ok: false, detail: 'Not checked: the package could not be copied into the staging folder.', problems: [] }),
  );
  return {
    ok: false,
    path: src,
    kind: null,
    manifestSha256: null,
    manifestSize: null,
    manifest: null,
    signer: null,
    override: null,
    steps: [{ name: 'staging', title: STEP_TITLES.staging, status: 'failed', ok: false, detail: problem.message, problems: [problem] }, ...skipped],
    failure: { step: 'staging', ...problem },
    fileCount: 0,
    totalBytes: 0,
    verdict: `Package import failed at step "staging": ${problem.message}`,
  };
}

/**
 * Copies, verifies and files a package. Returns a result (ok or not) rather than throwing for a
 * bad package, so the UI can show the report; a rejected package leaves nothing behind but its
 * `*.import_rejected` audit event.
 */
export async function importPackage(home: string, srcDir: string, opts: ImportPackageOptions = {}): Promise<ImportResult> {
  const src = resolve(srcDir);
  const audit = opts.audit ?? openAudit(home);
  const staging = join(home, STAGING_DIR, randomBytes(12).toString('hex'));
  try {
    await mkdir(staging, { recursive: true });
    let report: PackageVerifyReport;
    try {
      const copied = await copyTreeNoFollow(src, staging, {
        limits: opts.limits,
        signal: opts.signal,
        onProgress: (p) => opts.onProgress?.({ phase: 'copy', file: p.file, bytesDone: p.bytesDone }),
      });
      const verified = await verifyPackage(staging, {
        trustedKeys: opts.trustedKeys ?? audit.trustedKeys(),
        allowUnsigned: opts.override,
        expectKind: opts.kind,
        limits: opts.limits,
        signal: opts.signal,
        onProgress: (p) => opts.onProgress?.({ phase: 'verify', ...p }),
      });
      const stagingStep: VerifyStep = {
        name: 'staging',
        title: STEP_TITLES.staging,
        status: 'passed',
        ok: true,
        detail: `Copied ${copied.files} files (${copied.bytes} bytes) into the app's staging folder; the checks below ran on that copy.`,
        problems: [],
      };
      report = { ...verified, path: src, steps: [stagingStep, ...verified.steps] };
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      report = stagingReport(src, { rule: e.rule, file: e.file ?? null, message: e.message });
    }

    const kind = report.kind ?? opts.kind ?? null;
    if (!report.ok || !report.manifest || !report.manifestSha256) {
      const f = report.failure;
      const r = audit.append(`${kind ?? 'package'}.import_rejected`, {
        inputs: report.manifestSha256 ? { manifest: { sha256: report.manifestSha256, size: report.manifestSize ?? 0 } } : {},
        details: {
          source: src,
          kind,
          step: f?.step ?? null,
          rule: f?.rule ?? null,
          file: f?.file ?? null,
          message: f?.message ?? report.verdict,
          signer_key_id: report.signer?.keyId ?? null,
          override_requested: opts.override ? true : undefined,
        },
        reason: opts.override?.reason,
      });
      await rm(staging, { recursive: true, force: true });
      return { ok: false, kind, path: null, manifestSha256: report.manifestSha256, report, event: { action: `${kind ?? 'package'}.import_rejected`, seq: r.seq, hash: r.hash } };
    }

    const manifest = report.manifest;
    const target = importedPackagePath(home, manifest.kind, report.manifestSha256);
    await mkdir(packagesDir(home, manifest.kind), { recursive: true });
    // Same manifest hash = same signed content; a copy already there is replaced by the one just verified.
    if (existsSync(target)) {
      const old = join(home, STAGING_DIR, `${randomBytes(12).toString('hex')}-replaced`);
      await rename(target, old);
      await rename(staging, target);
      await rm(old, { recursive: true, force: true });
    } else await rename(staging, target);

    const inputs: Record<string, DigestValue> = { manifest: { sha256: report.manifestSha256, size: report.manifestSize ?? 0 } };
    for (const f of manifest.files) inputs[`file:${f.path}`] = { sha256: f.sha256, size: f.size };
    const details: Record<string, JsonValue> = {
      kind: manifest.kind,
      source: src,
      manifest_sha256: report.manifestSha256,
      producer: manifest.producer,
      created: manifest.created,
      signer_key_id: report.signer?.keyId ?? null,
      signer_trusted: report.signer?.trusted ?? false,
      override: report.override ? { because: report.override.because } : null,
      files: manifest.files.length,
      bytes: report.totalBytes,
      source_model_sha256: manifest.sourceModel.sha256,
    };
    let r;
    if (manifest.kind === 'emulator') {
      details.method = manifest.method;
      details.triplet = { adapterLayers: [...manifest.triplet.adapterLayers], alpha: manifest.triplet.alpha, beta: manifest.triplet.beta };
      r = audit.recordEmulator({
        id: report.manifestSha256,
        name: manifest.sourceModel.name ? `${manifest.sourceModel.name} emulator` : basename(src),
        path: target,
        sha256: report.manifestSha256,
        signerKeyId: report.signer?.keyId ?? null,
        inputs,
        reason: report.override?.reason,
        details,
      });
    } else {
      details.emulator_manifest_sha256 = manifest.emulator.manifestSha256;
      details.adapter_format = manifest.adapter.format;
      details.adapter_layers = manifest.adapter.layers;
      details.path = target;
      r = audit.append('adapter.imported', { inputs, outputs: { adapter: report.manifestSha256 }, reason: report.override?.reason, details });
    }
    return { ok: true, kind: manifest.kind, path: target, manifestSha256: report.manifestSha256, report, event: { action: `${manifest.kind}.imported`, seq: r.seq, hash: r.hash } };
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  } finally {
    if (!opts.audit) audit.close();
  }
}

export interface AdapterPackageOptions {
  /** A PEFT LoRA folder (adapter_config.json + adapter_model.safetensors) or a folder of full-layer safetensors. */
  adapterDir: string;
  /** The emulator package the adapter was tuned on (its manifest hash is referenced). */
  emulatorDir: string;
  out: string;
  /** The data owner's private key file, or a loaded key; null for an unsigned package. */
  signingKey: string | PackageSigningKey | null;
  /** Training summary for the manifest (steps, final loss…); never the data itself. */
  training?: { [key: string]: ManifestJson };
  runId?: string;
  audit?: AuditLog;
  overwrite?: boolean;
}

// LLaMA-style `model.layers.N.` and GPT-2 `transformer.h.N.` block names.
const LAYER_IN_NAME = /(?:^|\.)(?:layers|h)\.(\d+)\./;

/**
 * The layer indices an adapter folder touches, as its tensor names give them (for an adapter tuned
 * on an emulator: emulator block numbers, which plug-in maps through the manifest's layer map),
 * and its format.
 */
async function describeAdapterDir(dir: string): Promise<{ format: 'peft-lora' | 'full-layers'; layers: number[]; files: string[] }> {
  const names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name).sort();
  if (names.includes(ADAPTER_CONFIG)) {
    const a = await readPeftAdapter(dir);
    const layers = [...new Set(a.modules.map((m) => m.layer).filter((l): l is number => l !== null))].sort((x, y) => x - y);
    return { format: 'peft-lora', layers, files: names };
  }
  if (names.includes(FULL_LAYERS_CONFIG)) {
    const d = await describeFullAdapter(dir);
    return { format: 'full-layers', layers: d.layers, files: names };
  }
  const weights = names.filter((n) => n.endsWith('.safetensors'));
  if (weights.length === 0) {
    throw new ServiceError(`${dir} holds neither ${ADAPTER_CONFIG} (a PEFT adapter) nor .safetensors files (full adapter layers); nothing to package.`);
  }
  const layers = new Set<number>();
  for (const w of weights) {
    const h = await readSafetensorsHeader(join(dir, w));
    for (const t of h.tensors) {
      const m = LAYER_IN_NAME.exec(t.name);
      if (m) layers.add(Number(m[1]));
    }
  }
  return { format: 'full-layers', layers: [...layers].sort((x, y) => x - y), files: names };
}

/**
 * The data owner's export: an adapter package (kind "adapter") holding the adapter folder's files,
 * referencing the emulator's manifest hash, signed with the data owner's key, written atomically;
 * recorded as `adapter.exported`.
 */
export async function buildAdapterPackage(home: string, opts: AdapterPackageOptions): Promise<WrittenPackage & { event: { seq: number; hash: string } }> {
  const adapterDir = resolve(opts.adapterDir);
  const emulator = await readPackageManifest(resolve(opts.emulatorDir));
  if (emulator.manifest.kind !== 'emulator') throw new ServiceError(`${opts.emulatorDir} is an ${emulator.manifest.kind} package, not an emulator package.`);
  const desc = await describeAdapterDir(adapterDir);
  const written = await writePackage(resolve(opts.out), {
    producer: { app: 'Offsite Studio', version: appVersion() },
    signingKey: opts.signingKey,
    from: adapterDir,
    overwrite: opts.overwrite,
    manifest: {
      kind: 'adapter',
      emulator: { manifestSha256: emulator.manifestSha256, signerKeyId: emulator.manifest.signer?.keyId ?? null },
      sourceModel: { sha256: emulator.manifest.sourceModel.sha256 },
      adapter: { format: desc.format, layers: desc.layers, files: desc.files },
      ...(opts.training ? { training: opts.training } : {}),
    },
  });
  const audit = opts.audit ?? openAudit(home);
  try {
    const { entries: _e, ...adapterDigest } = await hashFolder(adapterDir);
    const r = audit.append('adapter.exported', {
      runId: opts.runId,
      inputs: { emulator: emulator.manifestSha256, adapter: adapterDigest },
      outputs: { package: written.manifestSha256 },
      details: { out: written.dir, format: desc.format, layers: desc.layers, signer_key_id: written.signerKeyId },
    });
    return { ...written, event: { seq: r.seq, hash: r.hash } };
  } finally {
    if (!opts.audit) audit.close();
  }
}
