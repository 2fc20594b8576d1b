// `offsite inspect DIR` for full-layer adapter folders (what `offsite tune --peft full` exports,
// peft/full.ts): adapter_layers.json + adapter_model.safetensors holding whole transformer blocks
// under the model's own key names. Validated strictly: the config's fields and types, the
// safetensors header (safetensors.ts rules), and that every tensor is a weight of a listed layer
// and every listed layer has weights.
// (Imports nothing from describe.ts, which imports this file: keeps module start-up acyclic.)
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Detector } from './describe';
import { FormatError, nameInFolder } from './errors';
import { readStrictJsonFile } from './json';
import { quoteName, SafetensorsFile } from './safetensors';
import { FULL_LAYERS_CONFIG, FULL_LAYERS_WEIGHTS } from '../peft/full';

const BLOCK_NAME = /^(?:model\.layers|transformer\.h)\.(\d+)\./;
const CONFIG_FIELDS = ['format', 'model_type', 'base_model_name_or_path', 'layers'];

export interface FullAdapterDescription {
  kind: 'full-layer-adapter';
  path: string;
  modelType: string;
  baseModel: string | null;
  layers: number[];
  /** Tensors per listed layer. */
  tensorsPerLayer: Record<string, number>;
  tensorCount: number;
  parameterCount: number;
  dataBytes: number;
  dtypes: Record<string, number>;
  [field: string]: unknown;
}

/** Reads and checks a full-layer adapter folder (no tensor data is loaded). */
export async function describeFullAdapter(dir: string): Promise<FullAdapterDescription> {
  const names = await readdir(dir);
  const cfgPath = join(dir, FULL_LAYERS_CONFIG);
  const stPath = join(dir, FULL_LAYERS_WEIGHTS);
  if (!names.includes(FULL_LAYERS_WEIGHTS)) throw new FormatError('full-layers.incomplete', `${nameInFolder(cfgPath)} names a full-layer adapter, but ${FULL_LAYERS_WEIGHTS} is missing beside it.`, dir);
  const cfg = await readStrictJsonFile(cfgPath, { what: nameInFolder(cfgPath), rulePrefix: 'full-layers.config', maxBytes: 1024 * 1024 });
  const bad = (field: string, why: string): never => {
    throw new FormatError('full-layers.config', `${nameInFolder(cfgPath)}: "${field}" ${why}.`, cfgPath, field);
  };
  for (const k of CONFIG_FIELDS) if (!(k in cfg)) bad(k, 'is missing');
  for (const k of Object.keys(cfg)) if (!CONFIG_FIELDS.includes(k)) bad(k, `is not a field of a full-layer adapter config (expected ${CONFIG_FIELDS.join(', ')})`);
  if (cfg.format !== 'full-layers') bad('format', 'must be "full-layers"');
  if (typeof cfg.model_type !== 'string' || cfg.model_type === '') bad('model_type', 'must be the model type, e.g. "llama"');
  if (cfg.base_model_name_or_path !== null && typeof cfg.base_model_name_or_path !== 'string') bad('base_model_name_or_path', 'must be text or null');
  const layers = cfg.layers;
  if (!Array.isArray(layers) || layers.length === 0 || !layers.every((l) => Number.isSafeInteger(l) && (l as number) >= 0)) bad('layers', 'must be a non-empty list of layer indices');
  const list = layers as number[];
  if (new Set(list).size !== list.length) bad('layers', 'lists a layer twice');

  const f = await SafetensorsFile.open(stPath);
  try {
    const perLayer: Record<string, number> = Object.fromEntries(list.map((l) => [String(l), 0]));
    const dtypes: Record<string, number> = {};
    let parameterCount = 0;
    let dataBytes = 0;
    const tensors = f.names();
    for (const name of tensors) {
      const m = BLOCK_NAME.exec(name);
      if (!m || !list.includes(Number(m[1]))) {
        throw new FormatError('full-layers.unknown-tensor', `${nameInFolder(stPath)}: tensor ${quoteName(name)} is not a weight of the adapter's layers [${list.join(', ')}].`, stPath, name);
      }
      const t = f.info(name);
      perLayer[m[1]!]! += 1;
      dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + t.numel;
      parameterCount += t.numel;
      dataBytes += t.byteLength;
    }
    const empty = list.find((l) => perLayer[String(l)] === 0);
    if (empty !== undefined) throw new FormatError('full-layers.missing-layer', `${nameInFolder(stPath)} holds no weights of layer ${empty}, which ${FULL_LAYERS_CONFIG} lists.`, stPath);
    return {
      kind: 'full-layer-adapter',
      path: dir,
      modelType: cfg.model_type as string,
      baseModel: cfg.base_model_name_or_path as string | null,
      layers: [...list].sort((a, b) => a - b),
      tensorsPerLayer: perLayer,
      tensorCount: tensors.length,
      parameterCount,
      dataBytes,
      dtypes,
    };
  } finally {
    await f.close();
  }
}

const count = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n));

export const fullAdapterDetector: Detector = {
  kind: 'full-layer-adapter',
  matches: (_p, st, entries) => st.isDirectory() && !!entries?.includes(FULL_LAYERS_CONFIG),
  describe: (path) => describeFullAdapter(path),
  format: (d) => {
    const x = d as FullAdapterDescription;
    return [
      `full-layer adapter (model_type ${x.modelType}): layers ${x.layers.join(', ')}, ${x.tensorCount} tensors`,
      `parameters ${count(x.parameterCount)} (${x.parameterCount}), ${Object.entries(x.dtypes).map(([k, v]) => `${k} ${count(v)}`).join(', ')}; base model ${x.baseModel ?? 'not named'}`,
      'applied by replacing those blocks\' weights (offsite plugin; on an emulator, layers are its block indices)',
    ];
  },
};
