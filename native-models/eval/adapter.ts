// Adapters for evaluation (`--adapter DIR`). A PEFT LoRA folder is applied by MERGING each delta
// into the frozen weight at load time, W' = W + (lora_alpha / r) · B·A (GPT-2's Conv1D weights,
// stored [in, out], take the transpose), which for inference is the same function as the unmerged
// LoRA branch and costs nothing per token. A full-layer adapter folder (adapter_layers.json) replaces
// its layers' weights. The model's own weights are never modified: changed tensors are copies.
// Module names are matched as they are, so an adapter tuned on an emulator is applied to that
// emulator's block numbering.
import { readdir, stat } from 'node:fs/promises';
import { toFloat32 } from '../formats/dtypes';
import { FormatError, shortName } from '../formats/errors';
import { ADAPTER_CONFIG, readPeftAdapter, type PeftAdapter } from '../formats/peft';
import { quoteName } from '../formats/safetensors';
import type { LoadedModel } from '../models/load';
import type { WeightMap } from '../models/spec';
import { FULL_LAYERS_CONFIG, readFullLayersAdapter } from '../peft/full';
import { layerOfName } from '../peft/lora';

export interface AppliedAdapter {
  kind: 'lora' | 'full-layers';
  /** Weights changed by the adapter. */
  weights: string[];
  /** LoRA: alpha / r. */
  scaling: number | null;
  rank: number | null;
  layers: number[];
}

function adapterError(dir: string, message: string): never {
  throw new FormatError('eval.adapter', `${shortName(dir)}: ${message}`, dir);
}

/** W + scaling · B·A for one module, as a new float32 array (accumulated in float64). */
export function mergedLoraWeight(
  w: Float32Array,
  a: Float32Array,
  b: Float32Array,
  dims: { out: number; in: number; rank: number; layout: 'out_in' | 'in_out' },
  scaling: number,
): Float32Array {
  const { out, rank } = dims;
  const inF = dims.in;
  const merged = new Float32Array(w.length);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inF; i++) {
      let d = 0;
      for (let k = 0; k < rank; k++) d += b[o * rank + k]! * a[k * inF + i]!;
      const at = dims.layout === 'out_in' ? o * inF + i : i * out + o;
      merged[at] = w[at]! + scaling * d;
    }
  }
  return merged;
}

/** A copy of `model` with the LoRA deltas of `peft` merged into its weights. */
export function mergeLoraAdapter(model: LoadedModel, peft: PeftAdapter): { model: LoadedModel; applied: AppliedAdapter } {
  const scaling = peft.config.lora_alpha / peft.config.r;
  const layout = model.spec.family === 'gpt2' ? 'in_out' : 'out_in';
  const weights: WeightMap = new Map(model.weights);
  const changed: string[] = [];
  for (const m of peft.modules) {
    const name = `${m.module}.weight`;
    const w = model.weights.get(name);
    if (!w) adapterError(peft.dir, `the adapter adapts ${quoteName(m.module)}, which this model does not have (its layers are 0 to ${model.spec.layers - 1}); was it tuned on another model?`);
    const [out, inF] = layout === 'out_in' ? [w.shape[0]!, w.shape[1]!] : [w.shape[1]!, w.shape[0]!];
    if (m.inFeatures !== inF || m.outFeatures !== out) {
      adapterError(peft.dir, `${quoteName(m.module)} is ${out}×${inF} in this model, but the adapter's factors are for ${m.outFeatures}×${m.inFeatures}; was it tuned on another model?`);
    }
    const a = toFloat32(peft.tensors.get(m.keyA)!);
    const b = toFloat32(peft.tensors.get(m.keyB)!);
    weights.set(name, { shape: w.shape, data: mergedLoraWeight(w.data, a, b, { out, in: inF, rank: peft.config.r, layout }, scaling) });
    changed.push(name);
  }
  const layers = [...new Set(peft.modules.map((m) => m.layer).filter((l): l is number => l !== null))].sort((x, y) => x - y);
  return { model: { ...model, weights }, applied: { kind: 'lora', weights: changed, scaling, rank: peft.config.r, layers } };
}

/**
 * Reads the adapter folder `dir` and returns `model` with it applied: a PEFT LoRA folder
 * (adapter_config.json + adapter_model.safetensors) or a full-layer folder (adapter_layers.json).
 */
export async function applyAdapter(model: LoadedModel, dir: string): Promise<{ model: LoadedModel; applied: AppliedAdapter }> {
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) adapterError(dir, 'is not a folder; an adapter is a folder with adapter_config.json and adapter_model.safetensors (LoRA) or adapter_layers.json (full layers).');
  const names = await readdir(dir);
  if (names.includes(ADAPTER_CONFIG)) return mergeLoraAdapter(model, await readPeftAdapter(dir));
  if (names.includes(FULL_LAYERS_CONFIG)) {
    const expected = new Map<string, number[]>();
    for (const [name, w] of model.weights) if (layerOfName(name) !== undefined) expected.set(name, w.shape);
    const { config, tensors } = await readFullLayersAdapter(dir, expected);
    const weights: WeightMap = new Map(model.weights);
    for (const [name, data] of tensors) weights.set(name, { shape: model.weights.get(name)!.shape, data });
    return { model: { ...model, weights }, applied: { kind: 'full-layers', weights: [...tensors.keys()], scaling: null, rank: null, layers: config.layers } };
  }
  return adapterError(dir, `has neither ${ADAPTER_CONFIG} (a PEFT LoRA adapter) nor ${FULL_LAYERS_CONFIG} (a full-layer adapter).`);
}
