// Full-parameter tuning of chosen transformer blocks (`--peft full --layers …`): every weight of
// those blocks is trainable, everything else stays frozen. Exported as a folder holding
// adapter_model.safetensors with the model's own key names for those layers (ALGORITHMS.md §5)
// and adapter_layers.json describing it.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDirAtomic, writeFileAtomic } from '../formats/atomic';
import { toFloat32 } from '../formats/dtypes';
import { FormatError, nameInFolder } from '../formats/errors';
import { readStrictJsonFile } from '../formats/json';
import { SafetensorsFile, quoteName, writeSafetensors } from '../formats/safetensors';
import { checkLayers, layerOfName } from './lora';

export const FULL_LAYERS_CONFIG = 'adapter_layers.json';
export const FULL_LAYERS_WEIGHTS = 'adapter_model.safetensors';

export interface FullLayersPlan {
  layers: number[];
  /** Trainable weight names (the model's own), in weight order. */
  names: string[];
}

export function planFullLayers(weightShapes: Map<string, number[]>, layerCount: number, layers: number[]): FullLayersPlan {
  checkLayers(layers, layerCount);
  const sorted = [...layers].sort((a, b) => a - b);
  const names = [...weightShapes.keys()].filter((n) => {
    const l = layerOfName(n);
    return l !== undefined && sorted.includes(l);
  });
  return { layers: sorted, names };
}

export interface FullLayersConfig {
  format: 'full-layers';
  model_type: string;
  base_model_name_or_path: string | null;
  layers: number[];
}

/** Writes a full-layer adapter folder atomically (config first in key order, so bytes are stable). */
export async function writeFullLayersAdapter(dir: string, config: FullLayersConfig, tensors: Map<string, { data: Float32Array; shape: number[] }>, overwrite = false): Promise<void> {
  const map = new Map([...tensors].map(([k, t]) => [k, { dtype: 'F32' as const, shape: [...t.shape], data: t.data }]));
  const json = { format: config.format, model_type: config.model_type, base_model_name_or_path: config.base_model_name_or_path, layers: config.layers };
  await writeDirAtomic(
    dir,
    async (tmp) => {
      await writeFileAtomic(join(tmp, FULL_LAYERS_CONFIG), new TextEncoder().encode(`${JSON.stringify(json, null, 2)}\n`));
      await writeSafetensors(join(tmp, FULL_LAYERS_WEIGHTS), map, { format: 'pt' });
    },
    overwrite,
  );
}

export function isFullLayersFolder(entries: string[]): boolean {
  return entries.includes(FULL_LAYERS_CONFIG);
}

/** Reads a full-layer adapter folder: its config and float32 tensors, checked against `expected` shapes. */
export async function readFullLayersAdapter(dir: string, expected: Map<string, number[]>): Promise<{ config: FullLayersConfig; tensors: Map<string, Float32Array> }> {
  const names = await readdir(dir);
  const cfgPath = join(dir, FULL_LAYERS_CONFIG);
  if (!names.includes(FULL_LAYERS_CONFIG) || !names.includes(FULL_LAYERS_WEIGHTS)) {
    throw new FormatError('full-layers.incomplete', `${nameInFolder(dir)} needs ${FULL_LAYERS_CONFIG} and ${FULL_LAYERS_WEIGHTS}.`, dir);
  }
  const raw = await readStrictJsonFile(cfgPath, { what: nameInFolder(cfgPath), rulePrefix: 'full-layers.config', maxBytes: 1024 * 1024 });
  const layers = raw.layers;
  if (raw.format !== 'full-layers' || !Array.isArray(layers) || !layers.every((l) => Number.isInteger(l) && l >= 0)) {
    throw new FormatError('full-layers.config', `${nameInFolder(cfgPath)}: "format" must be "full-layers" and "layers" a list of layer indices.`, cfgPath);
  }
  const config: FullLayersConfig = { format: 'full-layers', model_type: String(raw.model_type ?? ''), base_model_name_or_path: typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : null, layers: layers as number[] };
  const f = await SafetensorsFile.open(join(dir, FULL_LAYERS_WEIGHTS), { whole: true });
  const tensors = new Map<string, Float32Array>();
  try {
    for (const [name, t] of await f.readAll()) {
      const shape = expected.get(name);
      if (!shape) throw new FormatError('full-layers.unknown-tensor', `${nameInFolder(join(dir, FULL_LAYERS_WEIGHTS))}: tensor ${quoteName(name)} is not a weight of the layers being tuned.`, dir, name);
      if (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i])) {
        throw new FormatError('full-layers.bad-shape', `${nameInFolder(join(dir, FULL_LAYERS_WEIGHTS))}: tensor ${quoteName(name)} has shape [${t.shape.join(', ')}], the model needs [${shape.join(', ')}].`, dir, name);
      }
      tensors.set(name, toFloat32(t));
    }
  } finally {
    await f.close();
  }
  return { config, tensors };
}
