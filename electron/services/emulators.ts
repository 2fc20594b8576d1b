/**
 * The model owner's emulator jobs: building an emulator package (ScaleOT or uniform LayerDrop) and
 * plugging a returned adapter into the full model. Plain Node (no Electron import), shared by the
 * IPC gateway and the CLI. The work runs in a worker thread (native-models/scaleot/worker.ts via
 * runtime/jobs startJob); the main thread relays progress and writes the audit events:
 *   emulator.built      inputs: source model and distillation text hashes; outputs: the package's
 *                       manifest SHA-256 (and folder digest); details: method, triplet, layer map,
 *                       importance scores, reference perplexities, SRC figures
 *   plugin.finished     inputs: model, adapter (package manifest or folder digest), emulator
 *                       manifest; outputs: the tuned model folder digest
 *   emulator.build_failed / emulator.build_cancelled / plugin.failed: how a job ended otherwise.
 *
 *   const r = await buildEmulatorPackage(home, request, { onProgress, signal });
 *   const p = await plugInAdapter(home, { model, adapter, out, emulator, merge, trustedKeys, override });
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { readPackageManifest, verifyPackage, type EmulatorManifest, type PackageVerifyReport, type TrustedKeyLike } from '../../native-models/formats/package';
import { startJob, type JobOutcome } from '../../native-models/runtime/jobs';
import { chooseProvider } from '../../native-models/runtime/providers';
import { BUILD_DEFAULTS, checkBuildOptions, type BuildOptions, type BuildProgress, type BuildResult } from '../../native-models/scaleot/build';
import type { PlugInResult } from '../../native-models/scaleot/plugin';
import type { ScaleotJobInput, ScaleotJobResult } from '../../native-models/scaleot/worker';
import { openAudit, type AuditLog, type JsonValue } from './audit';
import { hashPath, type Digest } from './hashing';
import { EMULATORS_DIR } from './packages';
import { ServiceError } from './service-error';
import { appVersion } from './version';
import { jobWorker } from './job-workers';


export type EmulatorBuildRequest = Partial<Omit<BuildOptions, 'model' | 'out' | 'distillData' | 'signingKey' | 'producer' | 'sourceSha256'>> & {
  model: string;
  out: string;
  distillData: string;
  /** Private key file (offsite keygen); null or absent: an unsigned package. */
  signKey?: string | null;
};

export interface JobCallOptions {
  onProgress?: (p: BuildProgress) => void;
  signal?: AbortSignal;
  audit?: AuditLog;
  workerModule?: URL;
}

/** Cancelled by the user: the CLI exits 130. */
export class JobCancelledError extends ServiceError {
  override name = 'JobCancelledError';
}

/** The adapter package failed verification: the CLI exits 3. */
export class PackageVerificationError extends ServiceError {
  override name = 'PackageVerificationError';
  constructor(message: string, readonly report: PackageVerifyReport) {
    super(message);
  }
}

async function runScaleotJob(input: ScaleotJobInput, o: JobCallOptions): Promise<JobOutcome<ScaleotJobResult>> {
  const job = startJob<ScaleotJobInput, BuildProgress, ScaleotJobResult>(o.workerModule ?? jobWorker('scaleot'), input, { name: `scaleot ${input.kind}`, onProgress: o.onProgress });
  const onAbort = () => job.cancel();
  o.signal?.addEventListener('abort', onAbort);
  try {
    return await job.result;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}

async function need(label: string, path: string): Promise<Digest> {
  if (!existsSync(path)) throw new ServiceError(`The ${label} ${path} does not exist.`);
  return hashPath(path);
}

export interface BuiltEmulator {
  result: BuildResult;
  event: { seq: number; hash: string };
}

/** Builds, writes and signs an emulator package in a worker; records emulator.built. */
export async function buildEmulatorPackage(home: string, req: EmulatorBuildRequest, o: JobCallOptions = {}): Promise<BuiltEmulator> {
  const model = resolve(req.model);
  const out = resolve(req.out);
  const distillData = resolve(req.distillData);
  const signKey = req.signKey ? resolve(req.signKey) : null;
  const { signKey: _s, ...rest } = req;
  const options: BuildOptions & { signingKey: string | null } = {
    ...BUILD_DEFAULTS,
    ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
    model,
    out,
    distillData,
    signingKey: signKey,
    producer: { app: 'Offsite Studio', version: appVersion() },
  } as BuildOptions & { signingKey: string | null };
  try {
    checkBuildOptions(options);
  } catch (e) {
    throw new ServiceError((e as Error).message);
  }
  if (existsSync(out)) throw new ServiceError(`${out} already exists; choose a new folder for the emulator package.`);
  if (signKey && !existsSync(signKey)) throw new ServiceError(`The signing key ${signKey} does not exist; create one with offsite keygen --out KEYFILE.`);
  const modelDigest = await need('model', model);
  const dataDigest = await need('distillation data file', distillData);
  if (!(await stat(distillData)).isFile()) throw new ServiceError(`The distillation data ${distillData} is not a file.`);
  options.sourceSha256 = modelDigest.sha256;
  const provider = chooseProvider(options.provider ?? 'auto').chosen;
  const outcome = await runScaleotJob({ kind: 'build', options }, o);
  const audit = o.audit ?? openAudit(home, { executionProvider: provider });
  try {
    const inputs = { model: modelDigest, distill_data: dataDigest };
    const config = { method: options.method, adapter_layers: options.adapterLayers, alpha: options.alpha, beta: options.beta, group_size: options.groupSize, steps: options.steps, seed: options.seed, kd: options.kd } as Record<string, JsonValue>;
    if (outcome.status === 'done' && outcome.value.kind === 'build') {
      const r = outcome.value.result;
      const pkg = await hashPath(r.out);
      const ev = audit.recordEmulator({
        action: 'emulator.built',
        name: `${basename(model)} emulator (${r.method})`,
        path: r.out,
        sha256: r.manifestSha256,
        signerKeyId: r.signerKeyId,
        inputs,
        executionProvider: provider,
        details: {
          config,
          package: pkg as unknown as JsonValue,
          layer_map: r.layerMap as unknown as JsonValue,
          scores: Object.fromEntries(Object.entries(r.scores).map(([k, v]) => [k, v])),
          replaced: r.replaced,
          dropped: r.dropped,
          emu_zs_ppl: r.emuZsPpl,
          full_zs_ppl: r.fullZsPpl,
          src: r.src ? { beta: r.src.beta, projections: r.src.projections, kept_attention_before: r.src.keptAttentionBefore, kept_attention_after: r.src.keptAttentionAfter } : null,
          parameters: r.parameterCount,
          source_parameters: r.sourceParameterCount,
        },
      });
      return { result: r, event: { seq: ev.seq, hash: ev.hash } };
    }
    if (outcome.status === 'cancelled' || (outcome.status === 'failed' && outcome.error.name === 'BuildCancelled')) {
      audit.append('emulator.build_cancelled', { inputs, details: { config, out }, reason: 'cancelled by the user', executionProvider: provider });
      throw new JobCancelledError('Emulator building was cancelled; no package was written.');
    }
    const message = outcome.status === 'failed' ? outcome.error.message : 'The build ended in an unexpected state.';
    audit.append('emulator.build_failed', { inputs, details: { config, out, error: message }, executionProvider: provider });
    // Errors from the engine are sentences about the input (bad data, impossible settings).
    throw new ServiceError(`Building the emulator failed: ${message}`);
  } finally {
    if (!o.audit) audit.close();
  }
}

export interface PlugInRequest {
  model: string;
  /** An adapter package (verified here) or a plain adapter folder (PEFT LoRA / full layers). */
  adapter: string;
  out: string;
  /** The emulator package the adapter was tuned on (its layer map maps the indices). */
  emulator?: string | null;
  merge?: boolean;
  trustedKeys?: TrustedKeyLike[];
  /** Accept an unsigned or untrusted adapter package; recorded with the reason. */
  override?: { reason: string };
}

export interface PluggedIn {
  result: PlugInResult;
  event: { seq: number; hash: string };
  verification: PackageVerifyReport | null;
}

/** Plugs a returned adapter into the full model in a worker; records plugin.finished. */
export async function plugInAdapter(home: string, req: PlugInRequest, o: Omit<JobCallOptions, 'onProgress'> = {}): Promise<PluggedIn> {
  const model = resolve(req.model);
  const adapter = resolve(req.adapter);
  const out = resolve(req.out);
  if (existsSync(out)) throw new ServiceError(`${out} already exists; choose a new folder for the tuned model.`);
  const modelDigest = await need('model', model);
  if (!existsSync(adapter)) throw new ServiceError(`The adapter ${adapter} does not exist.`);
  const inputs: Record<string, Digest | string> = { model: modelDigest };
  let verification: PackageVerifyReport | null = null;
  let referencedEmulator: string | null = null;
  if (existsSync(join(adapter, 'manifest.json'))) {
    verification = await verifyPackage(adapter, { trustedKeys: req.trustedKeys ?? [], ...(req.override ? { allowUnsigned: req.override } : {}), expectKind: 'adapter', signal: o.signal });
    if (!verification.ok) {
      const f = verification.failure;
      throw new PackageVerificationError(f ? `The adapter package failed verification at step "${f.step}"${f.file ? ` (${f.file})` : ''}: ${f.message}` : verification.verdict, verification);
    }
    const m = verification.manifest!;
    if (m.kind !== 'adapter') throw new ServiceError(`${adapter} is not an adapter package.`);
    if (m.sourceModel.sha256 !== modelDigest.sha256) throw new ServiceError(`The adapter was tuned on an emulator of a different model (source SHA-256 ${m.sourceModel.sha256.slice(0, 16)}…, this model ${modelDigest.sha256.slice(0, 16)}…).`);
    referencedEmulator = m.emulator.manifestSha256;
    inputs.adapter = verification.manifestSha256!;
  } else inputs.adapter = await hashPath(adapter);
  let emulatorDir = req.emulator ? resolve(req.emulator) : null;
  if (!emulatorDir && referencedEmulator) {
    const filed = join(home, EMULATORS_DIR, referencedEmulator);
    if (existsSync(join(filed, 'manifest.json'))) emulatorDir = filed;
    else throw new ServiceError(`The adapter was tuned on emulator ${referencedEmulator.slice(0, 16)}…; give that emulator package with --emulator PKG so its layer map can place the adapter layers.`);
  }
  let layerMap: EmulatorManifest['layerMap'] | null = null;
  if (emulatorDir) {
    const em = await readPackageManifest(emulatorDir).catch((e: Error) => {
      throw new ServiceError(`${emulatorDir} is not a readable emulator package: ${e.message}`);
    });
    if (em.manifest.kind !== 'emulator') throw new ServiceError(`${emulatorDir} is an ${em.manifest.kind} package, not an emulator package.`);
    if (referencedEmulator && em.manifestSha256 !== referencedEmulator) throw new ServiceError(`The adapter was tuned on emulator ${referencedEmulator.slice(0, 16)}…, but ${emulatorDir} is emulator ${em.manifestSha256.slice(0, 16)}….`);
    if (em.manifest.sourceModel.sha256 !== modelDigest.sha256) throw new ServiceError(`The emulator ${basename(emulatorDir)} was built from a different model (source SHA-256 ${em.manifest.sourceModel.sha256.slice(0, 16)}…, this model ${modelDigest.sha256.slice(0, 16)}…).`);
    layerMap = em.manifest.layerMap;
    inputs.emulator = em.manifestSha256;
  }
  const outcome = await runScaleotJob({ kind: 'plugin', options: { model, adapter, out, layerMap, merge: req.merge ?? false } }, o);
  const audit = o.audit ?? openAudit(home);
  try {
    if (outcome.status === 'done' && outcome.value.kind === 'plugin') {
      const r = outcome.value.result;
      const ev = audit.append('plugin.finished', {
        inputs,
        outputs: { model: await hashPath(out) },
        ...(verification?.override ? { reason: verification.override.reason } : {}),
        details: {
          out,
          format: r.format,
          merged: r.merged,
          layer_mapping: r.layerMapping as unknown as JsonValue,
          changed_weights: r.changedWeights.length,
          adapter_signer_key_id: verification?.signer?.keyId ?? null,
        },
      });
      return { result: r, event: { seq: ev.seq, hash: ev.hash }, verification };
    }
    const message = outcome.status === 'failed' ? outcome.error.message : 'The plug-in was cancelled.';
    audit.append('plugin.failed', { inputs, details: { out, error: message } });
    if (outcome.status === 'cancelled') throw new JobCancelledError('The plug-in was cancelled; no model was written.');
    throw new ServiceError(`Plugging the adapter in failed: ${message}`);
  } finally {
    if (!o.audit) audit.close();
  }
}
