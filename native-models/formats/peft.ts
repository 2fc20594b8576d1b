// PEFT LoRA adapter folders (ALGORITHMS.md §5): adapter_config.json + adapter_model.safetensors,
// keys like base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight. Read strictly (every
// tensor pairs up, shapes agree with r, modules are listed targets in listed layers) and written
// atomically as a whole folder, so an adapter on disk is always complete.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDirAtomic, writeFileAtomic } from './atomic';
import { numel, type Dtype, type Tensor } from './dtypes';
import { FormatError, nameInFolder } from './errors';
import { readStrictJsonFile } from './json';
import { SafetensorsFile, quoteName, writeSafetensors, type TensorMap } from './safetensors';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
const KEY = /^base_model\.model\.(.+)\.(lora_A|lora_B)\.weight$/;
const LAYER = /(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\./;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FLOAT_DTYPES: Dtype[] = ['F32', 'F16', 'BF16'];

export interface LoraAdapterConfig {
  peft_type: 'LORA';
  task_type: 'CAUSAL_LM';
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  /** Module names (last path component), e.g. q_proj, v_proj, c_attn. */
  target_modules: string[];
  base_model_name_or_path: string | null;
  /** Layer indices the adapter covers (offsite adapters: the bottom and top blocks); null = all. */
  layers_to_transform: number[] | null;
  bias: 'none';
  /** True for GPT-2's Conv1D weights (stored [in, out]). */
  fan_in_fan_out: boolean;
}

export type LoraAdapterConfigInput = Omit<LoraAdapterConfig, 'peft_type' | 'task_type' | 'bias' | 'fan_in_fan_out' | 'base_model_name_or_path' | 'layers_to_transform' | 'lora_dropout'> &
  Partial<Pick<LoraAdapterConfig, 'fan_in_fan_out' | 'base_model_name_or_path' | 'layers_to_transform' | 'lora_dropout'>>;

export interface LoraModule {
  /** Module path inside the model, e.g. model.layers.0.self_attn.q_proj. */
  module: string;
  target: string;
  layer: number | null;
  inFeatures: number;
  outFeatures: number;
  /** Key of lora_A ([r, in]) and lora_B ([out, r]) in the tensor map. */
  keyA: string;
  keyB: string;
}

export interface PeftAdapter {
  dir: string;
  config: LoraAdapterConfig;
  /** adapter_config.json as found (fields we do not interpret are kept here). */
  rawConfig: Record<string, unknown>;
  tensors: Map<string, Tensor>;
  modules: LoraModule[];
  parameterCount: number;
}

/** The safetensors key of a LoRA factor for a module path (PEFT's naming). */
export function loraKey(modulePath: string, factor: 'A' | 'B'): string {
  return `base_model.model.${modulePath}.lora_${factor}.weight`;
}

function fail(rule: string, file: string, message: string, field?: string): never {
  throw new FormatError(`peft.${rule}`, `${nameInFolder(file)}: ${message}`, file, field);
}

/** Validates adapter_config.json content; unsupported PEFT features are refused by name. */
export function parseLoraConfig(obj: Record<string, unknown>, file = ADAPTER_CONFIG): LoraAdapterConfig {
  const bad = (field: string, rule: string): never => fail('bad-config', file, `"${field}" ${rule}.`, field);
  if (obj.peft_type !== 'LORA') fail('unsupported', file, `peft_type is ${JSON.stringify(obj.peft_type ?? null)}; only LORA adapters are supported.`, 'peft_type');
  if (obj.task_type !== undefined && obj.task_type !== null && obj.task_type !== 'CAUSAL_LM') fail('unsupported', file, `task_type is ${JSON.stringify(obj.task_type)}; only CAUSAL_LM adapters are supported.`, 'task_type');
  const r = obj.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1 || r > 65536) bad('r', 'must be a whole number from 1 to 65536');
  const alpha = obj.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) bad('lora_alpha', 'must be a positive number');
  const dropout = obj.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) bad('lora_dropout', 'must be a number in [0, 1)');
  const tm = obj.target_modules;
  if (typeof tm === 'string') fail('unsupported', file, 'target_modules is a regular expression; list the module names instead (e.g. ["q_proj", "v_proj"]).', 'target_modules');
  if (!Array.isArray(tm) || tm.length === 0 || !tm.every((t) => typeof t === 'string' && IDENT.test(t))) bad('target_modules', 'must be a non-empty list of module names such as "q_proj"');
  if (new Set(tm as string[]).size !== (tm as string[]).length) bad('target_modules', 'lists a module twice');
  let layers: number[] | null = null;
  const ltt = obj.layers_to_transform;
  if (ltt !== undefined && ltt !== null) {
    const list = typeof ltt === 'number' ? [ltt] : ltt;
    if (!Array.isArray(list) || list.length === 0 || !list.every((x) => Number.isInteger(x) && x >= 0 && x < 100000)) bad('layers_to_transform', 'must be a layer index or a non-empty list of layer indices');
    if (new Set(list as number[]).size !== (list as number[]).length) bad('layers_to_transform', 'lists a layer twice');
    layers = [...(list as number[])].sort((a, b) => a - b);
  }
  const bias = obj.bias ?? 'none';
  if (bias !== 'none') fail('unsupported', file, `bias is ${JSON.stringify(bias)}; only "none" is supported (LoRA adapters without trained biases).`, 'bias');
  for (const flag of ['use_dora', 'use_rslora'] as const) if (obj[flag] === true) fail('unsupported', file, `${flag} is true; plain LoRA is supported, not ${flag === 'use_dora' ? 'DoRA' : 'rsLoRA scaling'}.`, flag);
  for (const pat of ['rank_pattern', 'alpha_pattern'] as const) {
    const v = obj[pat];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Object.keys(v as object).length > 0)) fail('unsupported', file, `${pat} is set; per-module ranks and alphas are not supported.`, pat);
  }
  const mts = obj.modules_to_save;
  if (mts !== undefined && mts !== null && (!Array.isArray(mts) || mts.length > 0)) fail('unsupported', file, 'modules_to_save is set; adapters that carry full modules are not supported.', 'modules_to_save');
  const fifo = obj.fan_in_fan_out ?? false;
  if (typeof fifo !== 'boolean') bad('fan_in_fan_out', 'must be true or false');
  const base = obj.base_model_name_or_path ?? null;
  if (base !== null && typeof base !== 'string') bad('base_model_name_or_path', 'must be a string or null');
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: r as number,
    lora_alpha: alpha as number,
    lora_dropout: dropout as number,
    target_modules: [...(tm as string[])],
    base_model_name_or_path: base as string | null,
    layers_to_transform: layers,
    bias: 'none',
    fan_in_fan_out: fifo as boolean,
  };
}

/** Checks the tensors against the config: pairs, shapes, dtypes, targets and layers. */
export function checkLoraTensors(config: LoraAdapterConfig, tensors: Map<string, Tensor>, file = ADAPTER_WEIGHTS): LoraModule[] {
  const byModule = new Map<string, { A?: string; B?: string }>();
  for (const [key, t] of tensors) {
    const m = KEY.exec(key);
    if (!m) fail('bad-key', file, `tensor ${quoteName(key)} is not named base_model.model.<module>.lora_A.weight or .lora_B.weight (rule: PEFT LoRA key names).`, key);
    if (!FLOAT_DTYPES.includes(t.dtype)) fail('bad-dtype', file, `tensor ${quoteName(key)} is ${t.dtype}; LoRA factors are F32, F16 or BF16.`, key);
    if (t.shape.length !== 2) fail('bad-shape', file, `tensor ${quoteName(key)} has shape [${t.shape.join(', ')}]; LoRA factors are matrices.`, key);
    const entry = byModule.get(m[1]!) ?? {};
    entry[m[2] === 'lora_A' ? 'A' : 'B'] = key;
    byModule.set(m[1]!, entry);
  }
  const modules: LoraModule[] = [];
  for (const [module, { A, B }] of [...byModule.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (!A || !B) fail('unpaired', file, `module ${quoteName(module)} has lora_${A ? 'A' : 'B'} but no lora_${A ? 'B' : 'A'} (rule: every LoRA module has both factors).`, A ?? B);
    const target = module.slice(module.lastIndexOf('.') + 1);
    if (!config.target_modules.includes(target)) fail('not-a-target', file, `module ${quoteName(module)} is not among target_modules ${config.target_modules.join(', ')} (rule: tensors match the config).`, A);
    const lm = LAYER.exec(`${module}.`);
    const layer = lm ? Number(lm[1]) : null;
    if (config.layers_to_transform && (layer === null || !config.layers_to_transform.includes(layer))) {
      fail('not-a-layer', file, `module ${quoteName(module)} is ${layer === null ? 'in no numbered layer' : `in layer ${layer}`}, not in layers_to_transform [${config.layers_to_transform.join(', ')}] (rule: tensors match the config).`, A);
    }
    const a = tensors.get(A)!;
    const b = tensors.get(B)!;
    if (a.shape[0] !== config.r || b.shape[1] !== config.r) {
      fail('bad-shape', file, `module ${quoteName(module)} has lora_A [${a.shape.join(', ')}] and lora_B [${b.shape.join(', ')}], but r is ${config.r} (rule: lora_A is [r, in], lora_B is [out, r]).`, A);
    }
    modules.push({ module, target, layer, inFeatures: a.shape[1]!, outFeatures: b.shape[0]!, keyA: A, keyB: B });
  }
  if (modules.length === 0) fail('empty', file, 'holds no LoRA tensors (rule: an adapter adapts at least one module).');
  return modules;
}

/** Reads and validates a PEFT LoRA adapter folder. */
export async function readPeftAdapter(dir: string): Promise<PeftAdapter> {
  const st = await stat(dir);
  if (!st.isDirectory()) fail('not-folder', dir, 'is not a folder; a PEFT adapter is a folder with adapter_config.json and adapter_model.safetensors.');
  const names = await readdir(dir);
  if (!names.includes(ADAPTER_CONFIG)) fail('no-config', dir, `has no ${ADAPTER_CONFIG}.`);
  if (!names.includes(ADAPTER_WEIGHTS)) {
    if (names.includes('adapter_model.bin')) {
      fail('pickle-refused', dir, `holds adapter_model.bin, a pickle file that can run arbitrary code when loaded; it is refused. Convert it on a machine with PyTorch: python -c "import torch; from safetensors.torch import save_file; save_file(torch.load('adapter_model.bin', map_location='cpu', weights_only=True), '${ADAPTER_WEIGHTS}')"`);
    }
    fail('no-weights', dir, `has no ${ADAPTER_WEIGHTS}.`);
  }
  const raw = await readStrictJsonFile(join(dir, ADAPTER_CONFIG), { what: nameInFolder(join(dir, ADAPTER_CONFIG)), rulePrefix: 'peft.config', maxBytes: 1024 * 1024 });
  const config = parseLoraConfig(raw, join(dir, ADAPTER_CONFIG));
  const f = await SafetensorsFile.open(join(dir, ADAPTER_WEIGHTS), { whole: true });
  let tensors: Map<string, Tensor>;
  try {
    tensors = await f.readAll();
  } finally {
    await f.close();
  }
  const modules = checkLoraTensors(config, tensors, join(dir, ADAPTER_WEIGHTS));
  const parameterCount = [...tensors.values()].reduce((s, t) => s + numel(t.shape), 0);
  return { dir, config, rawConfig: raw, tensors, modules, parameterCount };
}

/** adapter_config.json content PEFT itself loads (fixed key order, so output is byte-stable). */
export function adapterConfigJson(c: LoraAdapterConfig): Record<string, unknown> {
  return {
    peft_type: c.peft_type,
    task_type: c.task_type,
    r: c.r,
    lora_alpha: c.lora_alpha,
    lora_dropout: c.lora_dropout,
    target_modules: c.target_modules,
    base_model_name_or_path: c.base_model_name_or_path,
    layers_to_transform: c.layers_to_transform,
    layers_pattern: null,
    bias: c.bias,
    fan_in_fan_out: c.fan_in_fan_out,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    use_rslora: false,
    use_dora: false,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  };
}

/**
 * Writes a PEFT LoRA adapter folder atomically (both files built in a temporary folder that then
 * replaces `dir`). The adapter is validated first with the same rules the reader applies.
 */
export async function writePeftAdapter(dir: string, input: LoraAdapterConfigInput, tensors: TensorMap, opts: { overwrite?: boolean } = {}): Promise<LoraAdapterConfig> {
  const config = parseLoraConfig({ ...input, peft_type: 'LORA', task_type: 'CAUSAL_LM' }, ADAPTER_CONFIG);
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  checkLoraTensors(config, map, ADAPTER_WEIGHTS);
  await writeDirAtomic(
    dir,
    async (tmp) => {
      await writeFileAtomic(join(tmp, ADAPTER_CONFIG), new TextEncoder().encode(`${JSON.stringify(adapterConfigJson(config), null, 2)}\n`));
      await writeSafetensors(join(tmp, ADAPTER_WEIGHTS), map, { format: 'pt' });
    },
    opts.overwrite ?? false,
  );
  return config;
}
