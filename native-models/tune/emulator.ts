// Tuning on an emulator package (ALGORITHMS.md §1): only the adapter blocks (the bottom and top
// blocks of the triplet, exact copies of the original blocks) are trainable; the middle (kept,
// rank-compressed and harmonizer blocks) stays frozen and runs through the ScaleOT loader
// (scaleot/emulator.ts loadEmulator), the only coupling to that module.
//
// Layer numbering: the adapter is written in the EMULATOR's block numbering (model.layers.{j},
// layers_to_transform [j…]), the numbering the emulator itself runs in (`offsite eval --emulator
// PKG --adapter DIR`) and the one `offsite plugin` maps through the emulator's layer map
// (block j → original layer) when it plugs the adapter into the full model. `layerMapping` below
// is that map for the tuned blocks; the run records it.
import type { EmulatorManifest, JsonValue } from '../formats/package';
import type { LoadedModel } from '../models/load';
import { loadEmulator } from '../scaleot/emulator';
import type { TuneConfig } from './config';

/** Emulator block indices of the adapter layers (bottom, then top), from the layer map. */
export function emulatorAdapterBlocks(m: Pick<EmulatorManifest, 'layerMap'>): number[] {
  return m.layerMap.filter((e) => e.role === 'adapter' && e.index !== null).map((e) => e.index!).sort((a, b) => a - b);
}

/** Emulator block → original layer, for the given blocks. */
export function layerMappingOf(m: Pick<EmulatorManifest, 'layerMap'>, blocks: readonly number[]): Array<{ adapterLayer: number; modelLayer: number }> {
  return [...blocks].sort((a, b) => a - b).map((j) => {
    const e = m.layerMap.find((x) => x.index === j);
    if (!e) throw new RangeError(`The emulator has no block ${j}.`);
    return { adapterLayer: j, modelLayer: e.layer };
  });
}

/** Checks that `layers` (emulator block indices) are adapter blocks; a sentence otherwise. */
export function checkEmulatorLayers(m: Pick<EmulatorManifest, 'layerMap'>, layers: readonly number[]): void {
  const adapter = emulatorAdapterBlocks(m);
  for (const l of layers) {
    if (adapter.includes(l)) continue;
    const e = m.layerMap.find((x) => x.index === l);
    throw new RangeError(
      e
        ? `Emulator block ${l} is a ${e.role} block standing in for original layer ${e.layer}; only the adapter blocks ${adapter.join(', ')} are tuned on an emulator.`
        : `The emulator has no block ${l}; its adapter blocks are ${adapter.join(', ')}.`,
    );
  }
}

/** Settings of TuneConfig that an emulator's recommendedTuning may set (flags override them). */
export type RecommendedSettings = Partial<Pick<TuneConfig, 'peft' | 'layers' | 'rank' | 'alpha' | 'dropout' | 'targets' | 'sampler' | 'optimizer' | 'lr' | 'weightDecay' | 'warmup' | 'schedule' | 'clip' | 'steps' | 'epochs' | 'batchSize' | 'gradAccum' | 'seqLen'>> & { istRatio?: number };

type Kind = 'int' | 'number' | 'string' | 'strings' | 'ints';
const RECOMMENDED: Record<string, { key: keyof RecommendedSettings; kind: Kind; one?: readonly string[] }> = {
  peft: { key: 'peft', kind: 'string', one: ['lora', 'full'] },
  layers: { key: 'layers', kind: 'ints' },
  rank: { key: 'rank', kind: 'int' },
  r: { key: 'rank', kind: 'int' },
  alpha: { key: 'alpha', kind: 'number' },
  dropout: { key: 'dropout', kind: 'number' },
  targets: { key: 'targets', kind: 'strings' },
  sampler: { key: 'sampler', kind: 'string', one: ['all', 'ist', 'uniform'] },
  optimizer: { key: 'optimizer', kind: 'string', one: ['adamw', 'sgd'] },
  lr: { key: 'lr', kind: 'number' },
  weightDecay: { key: 'weightDecay', kind: 'number' },
  warmup: { key: 'warmup', kind: 'int' },
  schedule: { key: 'schedule', kind: 'string', one: ['constant', 'linear', 'cosine'] },
  clip: { key: 'clip', kind: 'number' },
  steps: { key: 'steps', kind: 'int' },
  epochs: { key: 'epochs', kind: 'number' },
  batchSize: { key: 'batchSize', kind: 'int' },
  gradAccum: { key: 'gradAccum', kind: 'int' },
  seqLen: { key: 'seqLen', kind: 'int' },
  istRatio: { key: 'istRatio', kind: 'number' },
};

function typed(v: JsonValue, kind: Kind, one?: readonly string[]): unknown {
  switch (kind) {
    case 'int':
      return Number.isSafeInteger(v) ? v : undefined;
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
    case 'string':
      return typeof v === 'string' && (!one || one.includes(v)) ? v : undefined;
    case 'strings':
      return Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string' && s !== '') ? v : undefined;
    case 'ints':
      return Array.isArray(v) && v.length > 0 && v.every((s) => Number.isSafeInteger(s) && (s as number) >= 0) ? v : undefined;
  }
}

/**
 * The tuning settings an emulator's manifest recommends (`recommendedTuning`, free-form): known
 * keys with a value of the right type are taken; `ignored` names the others so the caller can
 * say so. Layers are emulator block indices and must be adapter blocks.
 */
export function recommendedSettings(m: Pick<EmulatorManifest, 'recommendedTuning' | 'layerMap'>): { settings: RecommendedSettings; ignored: string[] } {
  const settings: RecommendedSettings = {};
  const ignored: string[] = [];
  for (const [name, value] of Object.entries(m.recommendedTuning)) {
    const spec = RECOMMENDED[name];
    const v = spec ? typed(value, spec.kind, spec.one) : undefined;
    if (!spec || v === undefined) {
      ignored.push(name);
      continue;
    }
    (settings as Record<string, unknown>)[spec.key] = v;
  }
  if (settings.layers) {
    try {
      checkEmulatorLayers(m, settings.layers);
    } catch {
      delete settings.layers;
      ignored.push('layers');
    }
  }
  return { settings, ignored };
}

export interface TuningEmulator {
  model: LoadedModel;
  manifest: EmulatorManifest;
  manifestSha256: string;
  adapterBlocks: number[];
}

/**
 * Loads the emulator of an emulator run (`config.model` is the verified package folder) and checks
 * it is the package that was verified (same manifest hash) and that the run tunes adapter blocks only.
 */
export async function loadTuningEmulator(c: Pick<TuneConfig, 'model' | 'layers' | 'emulator'>): Promise<TuningEmulator> {
  const em = await loadEmulator(c.model);
  const { manifest, manifestSha256 } = em.emulator;
  if (c.emulator && manifestSha256 !== c.emulator.manifestSha256) {
    throw new RangeError(`The emulator package ${c.model} changed since it was verified (manifest SHA-256 ${manifestSha256.slice(0, 16)}…, verified ${c.emulator.manifestSha256.slice(0, 16)}…); verify and import it again.`);
  }
  if (!c.layers || c.layers.length === 0) throw new RangeError('An emulator run needs the adapter blocks to tune.');
  checkEmulatorLayers(manifest, c.layers);
  return { model: em, manifest, manifestSha256, adapterBlocks: emulatorAdapterBlocks(manifest) };
}
