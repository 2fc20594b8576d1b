// Plug-in (ALGORITHMS.md §1): the full model with a returned adapter → the tuned model, exported as
// a Hugging Face folder (config.json + model.safetensors + tokenizer) written atomically.
//
// Layer indices: an adapter tuned on an emulator names EMULATOR blocks (model.layers.{j}); when
// the middle shrank (uniform LayerDrop), the top adapter blocks sit at lower indices than in the
// full model. Every index is mapped through the emulator manifest's layer map (block j → original
// layer); without an emulator (an adapter tuned on the full model itself) indices are used as is.
// Only blocks that are exact copies of original blocks (roles adapter and kept) can carry an
// adapter back; a delta on a harmonizer or a rank-compressed block has no counterpart.
//
//  - full-layer adapters replace the mapped blocks' weights;
//  - LoRA adapters are merged, W' = W + (alpha/r)·B·A (GPT-2 Conv1D weights [in, out]: + (B·A)ᵀ),
//    or, without merge, written beside the unchanged model as a PEFT folder `adapter/` with the
//    full model's layer indices (run it with `--adapter OUT/adapter`).
import { copyFile, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { writeDirAtomic, writeFileAtomic } from '../formats/atomic';
import { toFloat32 } from '../formats/dtypes';
import { FormatError } from '../formats/errors';
import { readStrictJsonFile } from '../formats/json';
import type { LayerMapEntry } from '../formats/package';
import { ADAPTER_CONFIG, readPeftAdapter, writePeftAdapter } from '../formats/peft';
import { readSafetensors, writeSafetensors } from '../formats/safetensors';
import { loadModel, type LoadedModel } from '../models/load';
import type { WeightMap } from '../models/spec';
import { FULL_LAYERS_CONFIG, FULL_LAYERS_WEIGHTS } from '../peft/full';
import { blockPrefix, splitBlockName } from './emulator';

export interface PlugInOptions {
  /** The full model (Hugging Face folder or llama2.c .bin). */
  model: string;
  /** The adapter folder: PEFT LoRA (adapter_config.json) or full layers (adapter_layers.json); an adapter package folder holds them at its top level. */
  adapter: string;
  out: string;
  /** The emulator's layer map (from its manifest) when the adapter was tuned on an emulator. */
  layerMap: readonly LayerMapEntry[] | null;
  /** Merge LoRA into the weights (full-layer adapters are always merged). */
  merge: boolean;
  overwrite?: boolean;
}

export interface PlugInResult {
  out: string;
  format: 'peft-lora' | 'full-layers';
  merged: boolean;
  /** Adapter (emulator) block → full-model layer, as applied. */
  layerMapping: Array<{ adapterLayer: number; modelLayer: number }>;
  /** Full-model weights changed by the plug-in. */
  changedWeights: string[];
  files: string[];
}

/** Maps an adapter's block index to the full model's layer; throws a sentence when it cannot. */
export function mapAdapterLayer(layer: number, layerMap: readonly LayerMapEntry[] | null, modelLayers: number): number {
  if (!layerMap) {
    if (layer >= modelLayers) throw new RangeError(`The adapter touches layer ${layer}, but the model has layers 0..${modelLayers - 1}.`);
    return layer;
  }
  if (layerMap.length !== modelLayers) throw new RangeError(`The emulator's layer map covers ${layerMap.length} layers, but the model has ${modelLayers}; it was built from a different model.`);
  const e = layerMap.find((x) => x.index === layer);
  if (!e) throw new RangeError(`The adapter touches emulator block ${layer}, which the emulator does not have.`);
  if (e.role !== 'adapter' && e.role !== 'kept') throw new RangeError(`The adapter touches emulator block ${layer}, which is a ${e.role} standing in for original layer ${e.layer}; only adapter and kept blocks can be plugged back into the full model.`);
  return e.layer;
}

const renameLayer = (name: string, spec: LoadedModel['spec'], to: number): string => {
  const s = splitBlockName(name);
  if (!s) throw new RangeError(`${name} is not a transformer block weight.`);
  return `${blockPrefix(spec, to)}${s.rest}`;
};

/** B [out, r] · A [r, in] in float64, as a row-major [out, in] array. */
function loraProduct(b: Float32Array, a: Float32Array, out: number, r: number, inF: number): Float64Array {
  const prod = new Float64Array(out * inF);
  for (let o = 0; o < out; o++) {
    for (let k = 0; k < r; k++) {
      const bv = b[o * r + k]!;
      if (bv === 0) continue;
      const off = k * inF;
      for (let i = 0; i < inF; i++) prod[o * inF + i]! += bv * a[off + i]!;
    }
  }
  return prod;
}

async function adapterKind(dir: string): Promise<'peft-lora' | 'full-layers'> {
  const names = await readdir(dir);
  if (names.includes(ADAPTER_CONFIG)) return 'peft-lora';
  if (names.includes(FULL_LAYERS_CONFIG)) return 'full-layers';
  throw new FormatError('plugin.adapter', `${dir} holds neither ${ADAPTER_CONFIG} (a PEFT LoRA adapter) nor ${FULL_LAYERS_CONFIG} (full adapter layers).`, dir);
}

/** The plug-in on loaded weights (no files written): the tuned weight map and what changed. */
export async function plugInWeights(model: LoadedModel, adapterDir: string, layerMap: readonly LayerMapEntry[] | null, merge: boolean) {
  const spec = model.spec;
  const weights: WeightMap = new Map(model.weights);
  const mapping = new Map<number, number>();
  const mapLayer = (l: number) => {
    const m = mapAdapterLayer(l, layerMap, spec.layers);
    mapping.set(l, m);
    return m;
  };
  const changed: string[] = [];
  const format = await adapterKind(adapterDir);
  let unmerged: { config: Parameters<typeof writePeftAdapter>[1]; tensors: Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> } | null = null;
  if (format === 'full-layers') {
    const cfg = await readStrictJsonFile(join(adapterDir, FULL_LAYERS_CONFIG), { what: FULL_LAYERS_CONFIG, rulePrefix: 'full-layers.config', maxBytes: 1024 * 1024 });
    const listed = Array.isArray(cfg.layers) ? (cfg.layers as unknown[]) : null;
    if (cfg.format !== 'full-layers' || !listed || !listed.every((l) => Number.isInteger(l) && (l as number) >= 0)) {
      throw new FormatError('full-layers.config', `${FULL_LAYERS_CONFIG}: "format" must be "full-layers" and "layers" a list of layer indices.`, adapterDir);
    }
    const st = await readSafetensors(join(adapterDir, FULL_LAYERS_WEIGHTS));
    for (const [name, t] of st.tensors) {
      const s = splitBlockName(name);
      if (!s || !listed.includes(s.layer)) throw new FormatError('plugin.adapter', `${FULL_LAYERS_WEIGHTS}: tensor ${name} is not a weight of the adapter's layers [${listed.join(', ')}].`, adapterDir);
      const target = renameLayer(name, spec, mapLayer(s.layer));
      const w = model.weights.get(target);
      if (!w) throw new FormatError('plugin.adapter', `${FULL_LAYERS_WEIGHTS}: tensor ${name} maps to ${target}, which the model does not have.`, adapterDir);
      if (w.shape.join(',') !== t.shape.join(',')) throw new FormatError('plugin.adapter', `${FULL_LAYERS_WEIGHTS}: tensor ${name} has shape [${t.shape.join(', ')}], the model's ${target} is [${w.shape.join(', ')}].`, adapterDir);
      weights.set(target, { shape: [...w.shape], data: toFloat32(t) });
      changed.push(target);
    }
  } else {
    const a = await readPeftAdapter(adapterDir);
    const scale = a.config.lora_alpha / a.config.r;
    const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
    const layers = new Set<number>();
    for (const m of a.modules) {
      if (m.layer === null) throw new FormatError('plugin.adapter', `LoRA module ${m.module} sits in no numbered layer; offsite adapters adapt transformer blocks only.`, adapterDir);
      const to = mapLayer(m.layer);
      layers.add(to);
      const module = renameLayer(`${m.module}.`, spec, to).slice(0, -1);
      const w = model.weights.get(`${module}.weight`);
      if (!w) throw new FormatError('plugin.adapter', `LoRA module ${m.module} maps to ${module}, which the model does not have.`, adapterDir);
      const A = toFloat32(a.tensors.get(m.keyA)!);
      const B = toFloat32(a.tensors.get(m.keyB)!);
      if (!merge) {
        tensors.set(`base_model.model.${module}.lora_A.weight`, { dtype: 'F32', shape: [a.config.r, m.inFeatures], data: A });
        tensors.set(`base_model.model.${module}.lora_B.weight`, { dtype: 'F32', shape: [m.outFeatures, a.config.r], data: B });
        continue;
      }
      const prod = loraProduct(B, A, m.outFeatures, a.config.r, m.inFeatures);
      const data = new Float32Array(w.data.length);
      const conv = a.config.fan_in_fan_out; // W stored [in, out]
      const [rows, cols] = w.shape as [number, number];
      if (conv ? rows !== m.inFeatures || cols !== m.outFeatures : rows !== m.outFeatures || cols !== m.inFeatures) {
        throw new FormatError('plugin.adapter', `LoRA module ${m.module} is [${m.outFeatures} × ${m.inFeatures}], the model's ${module}.weight is [${w.shape.join(', ')}].`, adapterDir);
      }
      for (let o = 0; o < m.outFeatures; o++) {
        for (let i = 0; i < m.inFeatures; i++) {
          const at = conv ? i * cols + o : o * cols + i;
          data[at] = w.data[at]! + scale * prod[o * m.inFeatures + i]!;
        }
      }
      weights.set(`${module}.weight`, { shape: [...w.shape], data });
      changed.push(`${module}.weight`);
    }
    if (!merge) {
      unmerged = {
        config: {
          r: a.config.r,
          lora_alpha: a.config.lora_alpha,
          lora_dropout: a.config.lora_dropout,
          target_modules: a.config.target_modules,
          base_model_name_or_path: basename(model.source.path),
          layers_to_transform: a.config.layers_to_transform ? [...layers].sort((x, y) => x - y) : null,
          fan_in_fan_out: a.config.fan_in_fan_out,
        },
        tensors,
      };
    }
  }
  const layerMapping = [...mapping].sort((x, y) => x[0] - y[0]).map(([adapterLayer, modelLayer]) => ({ adapterLayer, modelLayer }));
  return { weights, format, changed, layerMapping, unmerged };
}

/** The full model plus the adapter, written as a Hugging Face folder at `out` (atomically). */
export async function plugIn(o: PlugInOptions): Promise<PlugInResult> {
  const model = await loadModel(o.model);
  const r = await plugInWeights(model, o.adapter, o.layerMap, o.merge);
  const tokenizer = model.source.kind === 'hf' && model.tokenizer ? join(model.source.path, 'tokenizer.json') : null;
  const tokConfig = model.source.kind === 'hf' ? join(model.source.path, 'tokenizer_config.json') : null;
  const hasTokConfig = tokConfig ? await stat(tokConfig).then((s) => s.isFile(), () => false) : false;
  const files: string[] = [];
  await writeDirAtomic(
    o.out,
    async (tmp) => {
      await writeFileAtomic(join(tmp, 'config.json'), new TextEncoder().encode(`${JSON.stringify(model.config, null, 2)}\n`));
      const tensors = new Map([...r.weights].map(([n, w]) => [n, { dtype: 'F32' as const, shape: [...w.shape], data: w.data }]));
      await writeSafetensors(join(tmp, 'model.safetensors'), tensors, { format: 'pt' });
      files.push('config.json', 'model.safetensors');
      if (tokenizer) {
        await copyFile(tokenizer, join(tmp, 'tokenizer.json'));
        files.push('tokenizer.json');
      }
      if (hasTokConfig) {
        await copyFile(tokConfig!, join(tmp, 'tokenizer_config.json'));
        files.push('tokenizer_config.json');
      }
      if (r.unmerged) {
        await writePeftAdapter(join(tmp, 'adapter'), r.unmerged.config, r.unmerged.tensors);
        files.push('adapter/adapter_config.json', 'adapter/adapter_model.safetensors');
      }
    },
    o.overwrite ?? false,
  );
  return { out: o.out, format: r.format, merged: r.format === 'full-layers' || o.merge, layerMapping: r.layerMapping, changedWeights: r.changed, files };
}
