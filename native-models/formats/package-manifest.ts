// The manifest of an emulator or adapter package (manifest.json): what the package is, how it
// was made, and every other file in it with size and SHA-256. Parsed strictly: unknown fields,
// wrong types and inconsistent layer maps are refused with the field and the rule named, because
// a loader must never see a value the verifier did not check.
import { FormatError } from './errors';
import { parseStrictJsonObject } from './json';

export const PACKAGE_FORMAT = 'offsite-package';
export const PACKAGE_FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';

export type PackageKind = 'emulator' | 'adapter';
export const PACKAGE_KINDS: readonly PackageKind[] = ['emulator', 'adapter'];

/** What became of one original transformer block in the emulator. */
export type LayerRole = 'adapter' | 'kept' | 'kept-compressed' | 'harmonizer' | 'dropped';
export const LAYER_ROLES: readonly LayerRole[] = ['adapter', 'kept', 'kept-compressed', 'harmonizer', 'dropped'];

export interface LayerMapEntry {
  /** Index of the block in the original model. */
  layer: number;
  role: LayerRole;
  /** Position of its stand-in in the emulator's block stack; null when dropped. */
  index: number | null;
}

export interface ManifestFile {
  /** Relative path with forward slashes. */
  path: string;
  size: number;
  sha256: string;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface ReferenceNumber {
  task: string;
  metric: string;
  value: number;
}

interface ManifestBase {
  format: typeof PACKAGE_FORMAT;
  formatVersion: typeof PACKAGE_FORMAT_VERSION;
  kind: PackageKind;
  producer: { app: string; version: string };
  /** ISO 8601 UTC time the package was written. */
  created: string;
  /** The key that signed manifest.sig, or null for an unsigned package. */
  signer: { keyId: string; publicKey: string } | null;
  /** Every file except manifest.json and manifest.sig, sorted by path. */
  files: ManifestFile[];
  notes?: string;
}

export interface EmulatorManifest extends ManifestBase {
  kind: 'emulator';
  method: 'scaleot' | 'uniform';
  /** The full model the emulator was built from (the model owner keeps it). */
  sourceModel: { sha256: string; name: string | null; modelType: string | null; layers: number };
  /** ScaleOT's (N_a, α, β): adapter layers [bottom, top], replaced fraction, rank ratio. */
  triplet: { adapterLayers: [number, number]; alpha: number; beta: number };
  layerMap: LayerMapEntry[];
  /** Which listed files the loader opens. */
  model: { config: string | null; weights: string[]; tokenizer: string | null };
  /** Tuning settings the model owner recommends (free-form; shown and used as form defaults). */
  recommendedTuning: { [key: string]: JsonValue };
  /** Emu ZS (and optionally Full ZS) numbers the data owner can reproduce after import. */
  reference: { emuZS: ReferenceNumber[]; fullZS?: ReferenceNumber[] };
}

export interface AdapterManifest extends ManifestBase {
  kind: 'adapter';
  /** The emulator package the adapter was tuned on, by the SHA-256 of its manifest.json bytes. */
  emulator: { manifestSha256: string; signerKeyId: string | null };
  sourceModel: { sha256: string };
  adapter: {
    format: 'peft-lora' | 'full-layers';
    /**
     * Layer indices the adapter replaces or adapts, as its tensor names give them: emulator block
     * numbers for an adapter tuned on an emulator (plug-in maps them through the layer map).
     */
    layers: number[];
    /** Which listed files hold the adapter (e.g. adapter_config.json + adapter_model.safetensors). */
    files: string[];
  };
  /** Training summary (free-form: steps, final loss, sampler…); never the data itself. */
  training?: { [key: string]: JsonValue };
}

export type PackageManifest = EmulatorManifest | AdapterManifest;

// ── Strict field checks ──────────────────────────────────────────────────────────────────────

const SHA256 = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const RAW_KEY_B64 = /^[A-Za-z0-9+/]{43}=$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

class Checker {
  constructor(readonly file: string) {}

  fail(field: string, rule: string, why: string): never {
    throw new FormatError(`package.manifest.${rule}`, `${this.file}: "${field}" ${why} (rule: manifest.${rule}).`, this.file, field);
  }

  object(v: unknown, field: string): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(field, 'type', 'must be a JSON object');
    return v as Record<string, unknown>;
  }

  keys(o: Record<string, unknown>, field: string, required: string[], optional: string[] = []): void {
    for (const k of required) if (!(k in o)) this.fail(field ? `${field}.${k}` : k, 'missing-field', 'is missing');
    for (const k of Object.keys(o)) {
      if (!required.includes(k) && !optional.includes(k)) this.fail(field ? `${field}.${k}` : k, 'unknown-field', `is not a field of format version ${PACKAGE_FORMAT_VERSION}`);
    }
  }

  string(v: unknown, field: string, max = 4096): string {
    if (typeof v !== 'string') this.fail(field, 'type', 'must be text');
    if (v.length > max) this.fail(field, 'too-long', `is longer than ${max} characters`);
    return v;
  }

  nonEmpty(v: unknown, field: string, max = 4096): string {
    const s = this.string(v, field, max);
    if (s.trim().length === 0) this.fail(field, 'empty', 'must not be empty');
    return s;
  }

  nullableString(v: unknown, field: string): string | null {
    return v === null ? null : this.nonEmpty(v, field);
  }

  pattern(v: unknown, field: string, re: RegExp, what: string): string {
    const s = this.string(v, field);
    if (!re.test(s)) this.fail(field, 'format', `must be ${what}`);
    return s;
  }

  int(v: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(field, 'type', 'must be a whole number');
    if (v < min || v > max) this.fail(field, 'range', `must be between ${min} and ${max}`);
    return v;
  }

  fraction(v: unknown, field: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(field, 'type', 'must be a number');
    if (v < 0 || v > 1) this.fail(field, 'range', 'must be between 0 and 1');
    return v;
  }

  array(v: unknown, field: string, max: number): unknown[] {
    if (!Array.isArray(v)) this.fail(field, 'type', 'must be a JSON array');
    if (v.length > max) this.fail(field, 'too-long', `has more than ${max} entries`);
    return v;
  }

  json(v: unknown, field: string): JsonValue {
    // Already JSON (it came from JSON.parse); only numbers need a check (no NaN/Infinity there).
    return v as JsonValue;
  }

  reference(v: unknown, field: string): ReferenceNumber[] {
    return this.array(v, field, 1000).map((e, i) => {
      const f = `${field}[${i}]`;
      const o = this.object(e, f);
      this.keys(o, f, ['task', 'metric', 'value']);
      if (typeof o.value !== 'number' || !Number.isFinite(o.value)) this.fail(`${f}.value`, 'type', 'must be a number');
      return { task: this.nonEmpty(o.task, `${f}.task`, 200), metric: this.nonEmpty(o.metric, `${f}.metric`, 100), value: o.value as number };
    });
  }
}

function checkFiles(c: Checker, v: unknown, maxFiles: number): ManifestFile[] {
  const list = c.array(v, 'files', maxFiles);
  return list.map((e, i) => {
    const f = `files[${i}]`;
    const o = c.object(e, f);
    c.keys(o, f, ['path', 'size', 'sha256']);
    return { path: c.string(o.path, `${f}.path`, 1024), size: c.int(o.size, `${f}.size`, 0), sha256: c.pattern(o.sha256, `${f}.sha256`, SHA256, '64 lower-case hex digits') };
  });
}

/** Every path named in a role list (model.weights, adapter.files…) must be one of `files`. */
function checkListed(c: Checker, files: ManifestFile[], path: string, field: string): string {
  if (!files.some((f) => f.path === path)) c.fail(field, 'unlisted-file', `names ${JSON.stringify(path).slice(0, 120)}, which is not in "files"`);
  return path;
}

function checkLayerMap(c: Checker, v: unknown, layers: number, adapterLayers: [number, number]): LayerMapEntry[] {
  const list = c.array(v, 'layerMap', 100_000);
  if (list.length !== layers) c.fail('layerMap', 'layer-count', `has ${list.length} entries, but sourceModel.layers is ${layers} (one entry per original layer)`);
  const [bottom, top] = adapterLayers;
  if (bottom + top > layers) c.fail('triplet.adapterLayers', 'range', `asks for ${bottom} + ${top} adapter layers, more than the ${layers} the model has`);
  let next = 0;
  return list.map((e, i) => {
    const f = `layerMap[${i}]`;
    const o = c.object(e, f);
    c.keys(o, f, ['layer', 'role', 'index']);
    const layer = c.int(o.layer, `${f}.layer`, 0);
    if (layer !== i) c.fail(`${f}.layer`, 'layer-order', `is ${layer}; entries must list layers 0, 1, 2… in order`);
    if (typeof o.role !== 'string' || !LAYER_ROLES.includes(o.role as LayerRole)) c.fail(`${f}.role`, 'role', `must be one of ${LAYER_ROLES.join(', ')}`);
    const role = o.role as LayerRole;
    const isAdapter = i < bottom || i >= layers - top;
    if (isAdapter !== (role === 'adapter')) {
      c.fail(`${f}.role`, 'adapter-layers', isAdapter ? `is ${role}, but layer ${i} is one of the adapter layers [${bottom}, ${top}]` : `is adapter, but triplet.adapterLayers [${bottom}, ${top}] does not include layer ${i}`);
    }
    let index: number | null = null;
    if (role === 'dropped') {
      if (o.index !== null) c.fail(`${f}.index`, 'layer-index', 'must be null for a dropped layer');
    } else {
      index = c.int(o.index, `${f}.index`, 0);
      if (index !== next) c.fail(`${f}.index`, 'layer-index', `is ${index}, but the next emulator block is ${next} (indices of kept blocks run 0, 1, 2… in order)`);
      next++;
    }
    return { layer, role, index };
  });
}

export interface ParseManifestOptions {
  /** Cap on "files" entries (checked before the list is walked). */
  maxFiles?: number;
}

/** Validates a parsed manifest object; `file` names it in messages. */
export function checkManifest(obj: Record<string, unknown>, file = MANIFEST_FILE, opts: ParseManifestOptions = {}): PackageManifest {
  const c = new Checker(file);
  if (obj.format !== PACKAGE_FORMAT) c.fail('format', 'format', `must be "${PACKAGE_FORMAT}" (this is not an Offsite Studio package manifest)`);
  if (obj.formatVersion !== PACKAGE_FORMAT_VERSION) {
    c.fail('formatVersion', 'version', `is ${JSON.stringify(obj.formatVersion)}; this version of Offsite Studio reads format version ${PACKAGE_FORMAT_VERSION} (a newer package needs a newer app)`);
  }
  if (typeof obj.kind !== 'string' || !PACKAGE_KINDS.includes(obj.kind as PackageKind)) c.fail('kind', 'kind', 'must be "emulator" or "adapter"');
  const common = ['format', 'formatVersion', 'kind', 'producer', 'created', 'signer', 'files'];
  if (obj.kind === 'emulator') c.keys(obj, '', [...common, 'method', 'sourceModel', 'triplet', 'layerMap', 'model', 'recommendedTuning', 'reference'], ['notes']);
  else c.keys(obj, '', [...common, 'emulator', 'sourceModel', 'adapter'], ['notes', 'training']);

  const producer = c.object(obj.producer, 'producer');
  c.keys(producer, 'producer', ['app', 'version']);
  const created = c.pattern(obj.created, 'created', ISO_UTC, 'an ISO 8601 UTC time such as 2025-01-31T12:00:00Z');
  let signer: ManifestBase['signer'] = null;
  if (obj.signer !== null) {
    const s = c.object(obj.signer, 'signer');
    c.keys(s, 'signer', ['keyId', 'publicKey']);
    signer = { keyId: c.pattern(s.keyId, 'signer.keyId', KEY_ID, '16 lower-case hex digits'), publicKey: c.pattern(s.publicKey, 'signer.publicKey', RAW_KEY_B64, 'base64 of a 32-byte Ed25519 public key') };
  }
  const files = checkFiles(c, obj.files, opts.maxFiles ?? Number.MAX_SAFE_INTEGER);
  const base = {
    format: PACKAGE_FORMAT,
    formatVersion: PACKAGE_FORMAT_VERSION,
    producer: { app: c.nonEmpty(producer.app, 'producer.app', 200), version: c.nonEmpty(producer.version, 'producer.version', 100) },
    created,
    signer,
    files,
    ...(obj.notes !== undefined ? { notes: c.string(obj.notes, 'notes', 20_000) } : {}),
  } as const;

  if (obj.kind === 'emulator') {
    if (obj.method !== 'scaleot' && obj.method !== 'uniform') c.fail('method', 'method', 'must be "scaleot" or "uniform"');
    const sm = c.object(obj.sourceModel, 'sourceModel');
    c.keys(sm, 'sourceModel', ['sha256', 'name', 'modelType', 'layers']);
    const sourceModel = {
      sha256: c.pattern(sm.sha256, 'sourceModel.sha256', SHA256, '64 lower-case hex digits'),
      name: c.nullableString(sm.name, 'sourceModel.name'),
      modelType: c.nullableString(sm.modelType, 'sourceModel.modelType'),
      layers: c.int(sm.layers, 'sourceModel.layers', 1, 10_000),
    };
    const t = c.object(obj.triplet, 'triplet');
    c.keys(t, 'triplet', ['adapterLayers', 'alpha', 'beta']);
    const al = c.array(t.adapterLayers, 'triplet.adapterLayers', 2);
    if (al.length !== 2) c.fail('triplet.adapterLayers', 'type', 'must be [bottom, top]');
    const adapterLayers: [number, number] = [c.int(al[0], 'triplet.adapterLayers[0]', 0), c.int(al[1], 'triplet.adapterLayers[1]', 0)];
    const beta = c.fraction(t.beta, 'triplet.beta');
    if (beta === 0) c.fail('triplet.beta', 'range', 'must be above 0 (β = 1 keeps full rank)');
    const triplet = { adapterLayers, alpha: c.fraction(t.alpha, 'triplet.alpha'), beta };
    const layerMap = checkLayerMap(c, obj.layerMap, sourceModel.layers, adapterLayers);
    const m = c.object(obj.model, 'model');
    c.keys(m, 'model', ['config', 'weights', 'tokenizer']);
    const weights = c.array(m.weights, 'model.weights', 10_000).map((w, i) => checkListed(c, files, c.nonEmpty(w, `model.weights[${i}]`, 1024), `model.weights[${i}]`));
    if (weights.length === 0) c.fail('model.weights', 'empty', 'must name at least one weights file');
    const config = m.config === null ? null : checkListed(c, files, c.nonEmpty(m.config, 'model.config', 1024), 'model.config');
    const tokenizer = m.tokenizer === null ? null : checkListed(c, files, c.nonEmpty(m.tokenizer, 'model.tokenizer', 1024), 'model.tokenizer');
    const rt = c.object(obj.recommendedTuning, 'recommendedTuning');
    const ref = c.object(obj.reference, 'reference');
    c.keys(ref, 'reference', ['emuZS'], ['fullZS']);
    return {
      ...base,
      kind: 'emulator',
      method: obj.method as EmulatorManifest['method'],
      sourceModel,
      triplet,
      layerMap,
      model: { config, weights, tokenizer },
      recommendedTuning: c.json(rt, 'recommendedTuning') as { [key: string]: JsonValue },
      reference: { emuZS: c.reference(ref.emuZS, 'reference.emuZS'), ...(ref.fullZS !== undefined ? { fullZS: c.reference(ref.fullZS, 'reference.fullZS') } : {}) },
    };
  }

  const em = c.object(obj.emulator, 'emulator');
  c.keys(em, 'emulator', ['manifestSha256', 'signerKeyId']);
  const sm = c.object(obj.sourceModel, 'sourceModel');
  c.keys(sm, 'sourceModel', ['sha256']);
  const ad = c.object(obj.adapter, 'adapter');
  c.keys(ad, 'adapter', ['format', 'layers', 'files']);
  if (ad.format !== 'peft-lora' && ad.format !== 'full-layers') c.fail('adapter.format', 'adapter-format', 'must be "peft-lora" or "full-layers"');
  const layers = c.array(ad.layers, 'adapter.layers', 10_000).map((l, i) => c.int(l, `adapter.layers[${i}]`, 0, 10_000));
  const adapterFiles = c.array(ad.files, 'adapter.files', 10_000).map((p, i) => checkListed(c, files, c.nonEmpty(p, `adapter.files[${i}]`, 1024), `adapter.files[${i}]`));
  if (adapterFiles.length === 0) c.fail('adapter.files', 'empty', 'must name at least one file');
  return {
    ...base,
    kind: 'adapter',
    emulator: {
      manifestSha256: c.pattern(em.manifestSha256, 'emulator.manifestSha256', SHA256, '64 lower-case hex digits'),
      signerKeyId: em.signerKeyId === null ? null : c.pattern(em.signerKeyId, 'emulator.signerKeyId', KEY_ID, '16 lower-case hex digits'),
    },
    sourceModel: { sha256: c.pattern(sm.sha256, 'sourceModel.sha256', SHA256, '64 lower-case hex digits') },
    adapter: { format: ad.format as AdapterManifest['adapter']['format'], layers, files: adapterFiles },
    ...(obj.training !== undefined ? { training: c.json(c.object(obj.training, 'training'), 'training') as { [key: string]: JsonValue } } : {}),
  };
}

/** Parses manifest.json bytes strictly (UTF-8, JSON object, no duplicate keys) and validates them. */
export function parseManifest(text: string, file = MANIFEST_FILE, opts: ParseManifestOptions = {}): PackageManifest {
  return checkManifest(parseStrictJsonObject(text, { what: file, rulePrefix: 'package.manifest', maxDepth: 32 }), file, opts);
}

/** The exact bytes written as manifest.json (and signed): 2-space JSON, one final newline. */
export function serializeManifest(m: PackageManifest): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(m, null, 2)}\n`);
}
