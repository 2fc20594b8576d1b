// LoRA (ALGORITHMS.md §5) as PEFT defines it: y = W x + (alpha / r) · B(A(dropout(x))), A [r, in]
// Kaiming-uniform(a = √5) initialised from a seed, B [out, r] zero. Parameters are named by their
// PEFT safetensors keys (base_model.model.<module>.lora_A.weight), so the trainer's state exports
// as a PEFT adapter without renaming.
import { Rng } from '../data/prng';
import { loraKey, type LoraModule } from '../formats/peft';
import type { Graph, Value } from '../onnx';
import type { ForwardHooks, ModelSpec } from '../models/spec';

/** Modules LoRA may adapt, by family (the last component of the module path). */
export const LORA_TARGETS: Record<ModelSpec['family'], readonly string[]> = {
  llama: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  gpt2: ['c_attn', 'c_proj', 'c_fc'],
};

/** PEFT's defaults when no targets are given (LLaMA: q and v; GPT-2: the fused qkv). */
export const LORA_DEFAULT_TARGETS: Record<ModelSpec['family'], readonly string[]> = {
  llama: ['q_proj', 'v_proj'],
  gpt2: ['c_attn'],
};

export interface LoraSettings {
  rank: number;
  alpha: number;
  dropout: number;
  targets: string[];
  /** Model layers to adapt; null = all. */
  layers: number[] | null;
}

export interface LoraPlanModule extends LoraModule {
  layer: number;
  /** 'out_in' for torch Linear weights, 'in_out' for GPT-2 Conv1D weights. */
  layout: 'out_in' | 'in_out';
}

export interface LoraPlan {
  settings: LoraSettings;
  modules: LoraPlanModule[];
  /** Module path → module. */
  byModule: Map<string, LoraPlanModule>;
  /** alpha / r. */
  scaling: number;
}

const LAYER_OF = /^(?:model\.layers|transformer\.h)\.(\d+)\./;

/** The layer of a weight or module name (model.layers.N. / transformer.h.N.), if any. */
export function layerOfName(name: string): number | undefined {
  const m = LAYER_OF.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Checks LoRA settings against a model and lists the modules they adapt, in weight order. */
export function planLora(spec: ModelSpec, weightShapes: Map<string, number[]>, settings: LoraSettings): LoraPlan {
  const { rank, alpha, dropout, targets, layers } = settings;
  if (!Number.isInteger(rank) || rank < 1) throw new RangeError(`The LoRA rank must be a whole number ≥ 1, not ${rank}.`);
  if (!(Number.isFinite(alpha) && alpha > 0)) throw new RangeError(`The LoRA alpha must be a number > 0, not ${alpha}.`);
  if (!(dropout >= 0 && dropout < 1)) throw new RangeError(`The LoRA dropout must be at least 0 and below 1, not ${dropout}.`);
  const allowed = LORA_TARGETS[spec.family];
  if (targets.length === 0) throw new RangeError('Name at least one LoRA target module.');
  for (const t of targets) {
    if (!allowed.includes(t)) throw new RangeError(`"${t}" is not a LoRA target of a ${spec.modelType} model; choose from ${allowed.join(', ')}.`);
  }
  if (new Set(targets).size !== targets.length) throw new RangeError('A LoRA target module is listed twice.');
  if (layers) checkLayers(layers, spec.layers);
  const modules: LoraPlanModule[] = [];
  for (const [name, shape] of weightShapes) {
    if (!name.endsWith('.weight') || shape.length !== 2) continue;
    const module = name.slice(0, -'.weight'.length);
    const target = module.slice(module.lastIndexOf('.') + 1);
    const layer = layerOfName(module);
    if (layer === undefined || !targets.includes(target)) continue;
    if (layers && !layers.includes(layer)) continue;
    const layout = spec.family === 'gpt2' ? 'in_out' : 'out_in';
    const [inFeatures, outFeatures] = layout === 'in_out' ? [shape[0]!, shape[1]!] : [shape[1]!, shape[0]!];
    modules.push({ module, target, layer, inFeatures, outFeatures, keyA: loraKey(module, 'A'), keyB: loraKey(module, 'B'), layout });
  }
  if (modules.length === 0) throw new RangeError(`No module of this model matches the LoRA targets ${targets.join(', ')}${layers ? ` in layers ${layers.join(', ')}` : ''}.`);
  return { settings: { ...settings, targets: [...targets], layers: layers ? [...layers].sort((a, b) => a - b) : null }, modules, byModule: new Map(modules.map((m) => [m.module, m])), scaling: alpha / rank };
}

export function checkLayers(layers: readonly number[], count: number): void {
  if (layers.length === 0) throw new RangeError('Name at least one layer to tune.');
  for (const l of layers) if (!Number.isInteger(l) || l < 0 || l >= count) throw new RangeError(`Layer ${l} does not exist; this model has layers 0 to ${count - 1}.`);
  if (new Set(layers).size !== layers.length) throw new RangeError('A layer is listed twice.');
}

/**
 * Fresh LoRA parameters: A ~ U(−1/√in, 1/√in) (torch's kaiming_uniform_ with a = √5, which is
 * what nn.Linear and PEFT use), drawn module by module, row-major, from one seeded stream; B = 0.
 */
export function initLora(plan: LoraPlan, seed: number): Map<string, { data: Float32Array; shape: number[] }> {
  const rng = new Rng(seed);
  const out = new Map<string, { data: Float32Array; shape: number[] }>();
  const r = plan.settings.rank;
  for (const m of plan.modules) {
    const bound = 1 / Math.sqrt(m.inFeatures);
    const a = new Float32Array(r * m.inFeatures);
    for (let i = 0; i < a.length; i++) a[i] = (rng.next() * 2 - 1) * bound;
    out.set(m.keyA, { data: a, shape: [r, m.inFeatures] });
    out.set(m.keyB, { data: new Float32Array(m.outFeatures * r), shape: [m.outFeatures, r] });
  }
  return out;
}

/** Name of the dropout-mask input of a module (float32 [batch, seq, in], already scaled by 1/(1−p)). */
export const dropoutInput = (module: string): string => `lora/dropout/${module}`;

export interface LoraHookOptions {
  /** LoRA parameter values by key (graph inputs of the train step). */
  params: Record<string, Value>;
  /** Feed dropout masks (train graph with dropout > 0). */
  dropout?: boolean;
  /** float32 [layers]: multiplies each layer's LoRA output (IST suppression passes). */
  layerScale?: Value;
}

/** The `linear` forward hook that adds the LoRA branch to the planned modules. */
export function loraLinearHook(plan: LoraPlan, o: LoraHookOptions): NonNullable<ForwardHooks['linear']> {
  return (name: string, x: Value, base: (x: Value) => Value, g: Graph): Value => {
    const m = plan.byModule.get(name);
    const y = base(x);
    if (!m) return y;
    const A = o.params[m.keyA];
    const B = o.params[m.keyB];
    if (!A || !B) throw new Error(`The LoRA parameters of ${name} are missing from the train step.`);
    const xin = o.dropout ? g.mul(x, g.input(dropoutInput(name), 'float32', x.shape)) : x;
    // PEFT's order: lora_B(lora_A(dropout(x))) * scaling, then added to the base output.
    let z = g.mul(g.matmul(g.matmul(xin, g.transpose(A, [1, 0])), g.transpose(B, [1, 0])), g.scalar(plan.scaling, x.dtype));
    if (o.layerScale) z = g.mul(z, g.gather(o.layerScale, g.constant(BigInt64Array.of(BigInt(m.layer)), [], 'int64'), 0));
    return g.add(y, z);
  };
}

/**
 * Dropout masks for one step: per module [B, T, in] values 0 (probability p) or 1/(1−p), drawn
 * module by module in plan order from `rng` (whose state the checkpoint keeps).
 */
export function dropoutMasks(plan: LoraPlan, rng: Rng, dims: [number, number]): Record<string, { data: Float32Array; dims: number[] }> {
  const p = plan.settings.dropout;
  const keep = 1 / (1 - p);
  const out: Record<string, { data: Float32Array; dims: number[] }> = {};
  for (const m of plan.modules) {
    const data = new Float32Array(dims[0] * dims[1] * m.inFeatures);
    for (let i = 0; i < data.length; i++) data[i] = rng.next() < p ? 0 : keep;
    out[dropoutInput(m.module)] = { data, dims: [dims[0], dims[1], m.inFeatures] };
  }
  return out;
}
