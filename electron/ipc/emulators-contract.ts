// The emulators part of the IPC contract: request schemas and response types of the emulators.*
// and adapters.* channels. contract.ts spreads these into its one channel map. Like contract.ts,
// this file imports nothing but zod and schemas.ts (the renderer imports it type-only, the e2e bridge bundles it).
// The shapes mirror native-models/formats/package (PackageVerifyReport, the manifests);
// services/emulator-library.ts assigns one to the other, so the compiler notices when they drift.
import { z } from 'zod';
import { noRequest, fullPath } from './schemas';

export const MAX_OVERRIDE_REASON = 1000;

const packageFolder = (kind: 'emulator' | 'adapter') => fullPath(`${kind} package folder`, kind === 'emulator' ? '/media/usb/tinyllama-emulator' : '/media/usb/adapter-package');

/** The user's reason for importing an unsigned or untrusted package; recorded in the audit log. */
const overrideSchema = z
  .object({
    reason: z
      .string({ error: 'The override reason must be text.' })
      .trim()
      .min(1, { error: 'Give a reason for the override; it is recorded in the audit log with the import.' })
      .max(MAX_OVERRIDE_REASON, { error: `The override reason must be at most ${MAX_OVERRIDE_REASON} characters.` })
      .refine((s) => !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(s), { error: 'The override reason must not contain control characters.' }),
  })
  .strict();

const packageId = (kind: 'emulator' | 'adapter') =>
  z
    .string({ error: `An ${kind} id must be text.` })
    .regex(/^[0-9a-f]{64}$/, { error: `An ${kind} id is the 64-character SHA-256 of its manifest, as shown in the list of imported ${kind}s.` });

export const emulatorRequests = {
  /** Checks a package folder where it is, step by step; nothing is copied or imported. */
  'emulators.verify': z.object({ path: packageFolder('emulator') }).strict(),
  /** Copies the package into the staging folder, verifies the copy, files it; always audited. */
  'emulators.import': z.object({ path: packageFolder('emulator'), override: overrideSchema.optional() }).strict(),
  /** The imported emulators, newest first. */
  'emulators.list': noRequest,
  /** One imported emulator with its manifest: layer map, recommended tuning, reference numbers, files. */
  'emulators.get': z.object({ id: packageId('emulator') }).strict(),
  /** Deletes an imported emulator (the audit trail keeps its import and records the removal). */
  'emulators.remove': z.object({ id: packageId('emulator') }).strict(),
  /** Checks an adapter package folder where it is; nothing is imported. */
  'adapters.verify': z.object({ path: packageFolder('adapter') }).strict(),
  /** Imports an adapter package returned by a data owner (staged, verified, audited). */
  'adapters.import': z.object({ path: packageFolder('adapter'), override: overrideSchema.optional() }).strict(),
  /** The imported adapter packages, newest first. */
  'adapters.list': noRequest,
} as const;

// ── Mirrors of the package format ────────────────────────────────────────────────────────────

export type PackageKindName = 'emulator' | 'adapter';
export type PackageStepName = 'staging' | 'folder' | 'manifest' | 'signature' | 'signer' | 'paths' | 'limits' | 'files' | 'hashes';
export type PackageStepStatus = 'passed' | 'failed' | 'overridden' | 'skipped';
export type LayerRoleName = 'adapter' | 'kept' | 'kept-compressed' | 'harmonizer' | 'dropped';
export type ManifestJsonValue = string | number | boolean | null | ManifestJsonValue[] | { [key: string]: ManifestJsonValue };

export interface PackageProblemInfo {
  /** Stable rule id, e.g. "package.hash-mismatch". */
  rule: string;
  /** Relative path in the package the problem is in, or null for the package as a whole. */
  file: string | null;
  message: string;
}

export interface PackageStepInfo {
  name: PackageStepName;
  title: string;
  status: PackageStepStatus;
  ok: boolean;
  /** One sentence for the checklist. */
  detail: string;
  problems: PackageProblemInfo[];
}

export interface PackageFileInfo {
  path: string;
  size: number;
  sha256: string;
}

export interface ReferenceNumberInfo {
  task: string;
  metric: string;
  value: number;
}

export interface LayerMapEntryInfo {
  /** Index of the block in the original model. */
  layer: number;
  role: LayerRoleName;
  /** Position of its stand-in in the emulator; null when dropped. */
  index: number | null;
}

interface ManifestBaseInfo {
  format: string;
  formatVersion: number;
  producer: { app: string; version: string };
  created: string;
  signer: { keyId: string; publicKey: string } | null;
  files: PackageFileInfo[];
  notes?: string;
}

export interface EmulatorManifestInfo extends ManifestBaseInfo {
  kind: 'emulator';
  method: 'scaleot' | 'uniform';
  sourceModel: { sha256: string; name: string | null; modelType: string | null; layers: number };
  /** ScaleOT's (N_a, α, β): adapter layers [bottom, top], replaced fraction, rank ratio. */
  triplet: { adapterLayers: [number, number]; alpha: number; beta: number };
  layerMap: LayerMapEntryInfo[];
  model: { config: string | null; weights: string[]; tokenizer: string | null };
  recommendedTuning: { [key: string]: ManifestJsonValue };
  reference: { emuZS: ReferenceNumberInfo[]; fullZS?: ReferenceNumberInfo[] };
}

export interface AdapterManifestInfo extends ManifestBaseInfo {
  kind: 'adapter';
  emulator: { manifestSha256: string; signerKeyId: string | null };
  sourceModel: { sha256: string };
  adapter: { format: 'peft-lora' | 'full-layers'; layers: number[]; files: string[] };
  training?: { [key: string]: ManifestJsonValue };
}

export type PackageManifestInfo = EmulatorManifestInfo | AdapterManifestInfo;

/** The verifier's report, step by step (native-models/formats/package verifyPackage). */
export interface PackageReportInfo {
  ok: boolean;
  path: string;
  kind: PackageKindName | null;
  manifestSha256: string | null;
  manifestSize: number | null;
  manifest: PackageManifestInfo | null;
  signer: { keyId: string; signatureValid: boolean; trusted: boolean; label: string | null } | null;
  override: { reason: string; because: 'unsigned' | 'untrusted' } | null;
  steps: PackageStepInfo[];
  failure: (PackageProblemInfo & { step: PackageStepName }) | null;
  fileCount: number;
  totalBytes: number;
  verdict: string;
}

/** One problem of a failed step, said plainly: what is wrong and what to do about it. */
export interface PackageFinding {
  step: PackageStepName;
  rule: string;
  file: string | null;
  /** What is wrong, naming the file, e.g. "model.safetensors does not match its SHA-256 in the manifest: …". */
  sentence: string;
  /** What the user can do. */
  action: string;
}

/** What the Check button shows. */
export interface PackageCheck {
  report: PackageReportInfo;
  /** Plain sentences for every problem of a failed step, in step order. */
  findings: PackageFinding[];
  /**
   * Set when the package is intact and fails only because it is unsigned or its signer is not
   * trusted: then (and only then) an import with an override and a reason is possible.
   */
  overridable: 'unsigned' | 'untrusted' | null;
}

export interface PackageImportResult extends PackageCheck {
  ok: boolean;
  /** The manifest SHA-256 of the imported package (its id), or null when rejected. */
  id: string | null;
  /** The audit event written: emulator.imported / adapter.imported, or *.import_rejected. */
  event: { action: string; seq: number; hash: string };
}

export interface PackageSignerInfo {
  keyId: string;
  /** Whether the key is one of the trusted keys now (Settings → trusted keys). */
  trusted: boolean;
  /** The trusted key's label, when trusted. */
  label: string | null;
}

/** How an imported package got in, from its import event in the audit trail. */
export interface PackageImportInfo {
  /** Wall-clock time of the import event. */
  at: string;
  seq: number;
  source: string | null;
  /** Set when the package was imported on an override (unsigned or untrusted). */
  override: { because: 'unsigned' | 'untrusted'; reason: string } | null;
}

/** One line of the imported emulators list. */
export interface EmulatorSummary {
  /** The SHA-256 of manifest.json: the emulator's identity and folder name. */
  id: string;
  /** The source model's name, or "Unnamed model". */
  name: string;
  sourceModel: { sha256: string; name: string | null; modelType: string | null; layers: number };
  method: 'scaleot' | 'uniform';
  triplet: { adapterLayers: [number, number]; alpha: number; beta: number };
  /** Blocks the emulator holds (original layers not dropped). */
  emulatorLayers: number;
  /** When the model owner wrote the package. */
  created: string;
  signer: PackageSignerInfo | null;
  imported: PackageImportInfo | null;
  /** Bytes of the listed files. */
  bytes: number;
  fileCount: number;
  /** The imported folder: what tuning and evaluation load. */
  path: string;
}

export interface EmulatorDetails extends EmulatorSummary {
  manifest: EmulatorManifestInfo;
}

export interface AdapterSummary {
  id: string;
  /** The emulator the adapter was tuned on (manifest SHA-256) and whether that emulator is imported here. */
  emulator: { manifestSha256: string; signerKeyId: string | null; importedHere: boolean };
  sourceModelSha256: string;
  format: 'peft-lora' | 'full-layers';
  layers: number[];
  created: string;
  signer: PackageSignerInfo | null;
  imported: PackageImportInfo | null;
  bytes: number;
  fileCount: number;
  path: string;
  manifest: AdapterManifestInfo;
}

export interface EmulatorResponses {
  'emulators.verify': PackageCheck;
  'emulators.import': PackageImportResult;
  'emulators.list': EmulatorSummary[];
  'emulators.get': EmulatorDetails;
  'emulators.remove': { removed: string; auditSeq: number };
  'adapters.verify': PackageCheck;
  'adapters.import': PackageImportResult;
  'adapters.list': AdapterSummary[];
}

export const emulatorChannelFlags = {
  // Reads the folder where it is; nothing in the data folder changes.
  'emulators.verify': { mutates: false },
  // Copies into the data folder and appends emulator.imported (or emulator.import_rejected).
  'emulators.import': { mutates: true },
  'emulators.list': { mutates: false },
  'emulators.get': { mutates: false },
  'emulators.remove': { mutates: true },
  'adapters.verify': { mutates: false },
  'adapters.import': { mutates: true },
  'adapters.list': { mutates: false },
} as const;
