// Hugging Face model folders: config.json (validated for the families the engine builds) and
// weights from model.safetensors or a sharded index. Pickle checkpoints are refused: loading one
// can run arbitrary code, so the user is told how to convert it to safetensors instead.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, nameInFolder, shortName } from './errors';
import { readStrictJsonFile } from './json';
import { SafetensorsFile, type TensorSource } from './safetensors';
import { INDEX_FILE, ShardedSafetensors } from './sharded';

export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'gpt2'] as const;
export type SupportedModelType = (typeof SUPPORTED_MODEL_TYPES)[number];
export const KNOWN_ACTIVATIONS = ['silu', 'swish', 'gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'relu'] as const;

/** LLaMA-architecture families (LLaMA 1–3, TinyLlama, Mistral, Qwen2, llama2.c), HF field names, HF defaults filled in. */
export interface LlamaFamilyConfig {
  model_type: 'llama' | 'mistral' | 'qwen2';
  architectures: string[];
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  vocab_size: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  /** Passed through as given (null when absent); the model builder decides what it supports. */
  rope_scaling: Record<string, unknown> | null;
  hidden_act: string;
  tie_word_embeddings: boolean;
  /** Bias on q, k and v projections (always true for Qwen2). */
  attention_bias: boolean;
  /** Bias on the o projection (LLaMA's attention_bias covers it too; never for Qwen2). */
  attention_out_bias: boolean;
  mlp_bias: boolean;
  sliding_window: number | null;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  pad_token_id: number | null;
  torch_dtype: string | null;
}

/** GPT-2 (LayerNorm, learned positions, GELU, Conv1D weights), HF field names, defaults filled in. */
export interface Gpt2Config {
  model_type: 'gpt2';
  architectures: string[];
  n_embd: number;
  n_layer: number;
  n_head: number;
  /** Feed-forward width (HF's null means 4 × n_embd). */
  n_inner: number;
  n_positions: number;
  vocab_size: number;
  activation_function: string;
  layer_norm_epsilon: number;
  tie_word_embeddings: boolean;
  scale_attn_weights: boolean;
  scale_attn_by_inverse_layer_idx: boolean;
  reorder_and_upcast_attn: boolean;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  torch_dtype: string | null;
}

export type HfConfig = LlamaFamilyConfig | Gpt2Config;

/** Shape figures every family shares, for descriptions and sanity checks. */
export interface ModelDims {
  layers: number;
  hiddenSize: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositions: number;
  tiedEmbeddings: boolean;
}

export function modelDims(c: HfConfig): ModelDims {
  if (c.model_type === 'gpt2') {
    return { layers: c.n_layer, hiddenSize: c.n_embd, heads: c.n_head, kvHeads: c.n_head, headDim: c.n_embd / c.n_head, intermediateSize: c.n_inner, vocabSize: c.vocab_size, maxPositions: c.n_positions, tiedEmbeddings: c.tie_word_embeddings };
  }
  return { layers: c.num_hidden_layers, hiddenSize: c.hidden_size, heads: c.num_attention_heads, kvHeads: c.num_key_value_heads, headDim: c.head_dim, intermediateSize: c.intermediate_size, vocabSize: c.vocab_size, maxPositions: c.max_position_embeddings, tiedEmbeddings: c.tie_word_embeddings };
}

class Fields {
  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly file: string,
  ) {}
  private fail(field: string, rule: string): never {
    throw new FormatError('hf.config.bad-field', `${nameInFolder(this.file)}: "${field}" ${rule}.`, this.file, field);
  }
  private get(field: string): unknown {
    const v = this.obj[field];
    return v === null ? undefined : v;
  }
  int(field: string, opts: { def?: number; min?: number; max?: number } = {}): number {
    const v = this.get(field) ?? opts.def;
    const min = opts.min ?? 1;
    const max = opts.max ?? 2 ** 31 - 1;
    if (v === undefined) this.fail(field, 'is missing (rule: it is required for this model type)');
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(field, `must be a whole number, not ${JSON.stringify(v).slice(0, 40)}`);
    if (v < min || v > max) this.fail(field, `is ${v}, outside the sane range ${min}..${max}`);
    return v;
  }
  optInt(field: string, min = 0): number | null {
    return this.get(field) === undefined ? null : this.int(field, { min });
  }
  positive(field: string, def: number): number {
    const v = this.get(field) ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(field, `must be a positive number, not ${JSON.stringify(v).slice(0, 40)}`);
    return v;
  }
  bool(field: string, def: boolean): boolean {
    const v = this.get(field) ?? def;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, not ${JSON.stringify(v).slice(0, 40)}`);
    return v;
  }
  activation(field: string, def: string): string {
    const v = this.get(field) ?? def;
    if (typeof v !== 'string' || !(KNOWN_ACTIVATIONS as readonly string[]).includes(v)) {
      this.fail(field, `is ${JSON.stringify(v).slice(0, 40)}, not a supported activation (${KNOWN_ACTIVATIONS.join(', ')})`);
    }
    return v;
  }
  tokenIds(field: string): number | number[] | null {
    const v = this.get(field);
    if (v === undefined) return null;
    const ok = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 0;
    if (ok(v)) return v as number;
    if (Array.isArray(v) && v.length > 0 && v.every(ok)) return v as number[];
    this.fail(field, 'must be a token id or a list of token ids');
  }
  strOrNull(field: string): string | null {
    const v = this.get(field);
    if (v === undefined) return null;
    if (typeof v !== 'string') this.fail(field, 'must be a string');
    return v;
  }
  objOrNull(field: string): Record<string, unknown> | null {
    const v = this.get(field);
    if (v === undefined) return null;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(field, 'must be an object or null');
    return v as Record<string, unknown>;
  }
  architectures(): string[] {
    const v = this.get('architectures');
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) this.fail('architectures', 'must be a list of class names');
    return v as string[];
  }
}

/** Validates a parsed config.json and fills in Hugging Face's defaults for absent optional fields. */
export function parseHfConfig(obj: Record<string, unknown>, file = 'config.json'): HfConfig {
  const mt = obj.model_type;
  if (typeof mt !== 'string' || !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(mt)) {
    throw new FormatError(
      'hf.config.unsupported-model-type',
      `${nameInFolder(file)}: model_type ${mt === undefined ? 'is missing' : JSON.stringify(mt).slice(0, 60) + ' is not supported'}; supported model types are ${SUPPORTED_MODEL_TYPES.join(', ')}.`,
      file,
      'model_type',
    );
  }
  const f = new Fields(obj, file);
  if (mt === 'gpt2') {
    const n_embd = f.int('n_embd', { max: 1 << 17 });
    const n_head = f.int('n_head', { max: 1024 });
    if (n_embd % n_head !== 0) throw new FormatError('hf.config.bad-field', `${nameInFolder(file)}: n_embd ${n_embd} is not divisible by n_head ${n_head} (rule: heads split the hidden size evenly).`, file, 'n_head');
    return {
      model_type: 'gpt2',
      architectures: f.architectures(),
      n_embd,
      n_layer: f.int('n_layer', { max: 1024 }),
      n_head,
      n_inner: f.int('n_inner', { def: 4 * n_embd, max: 1 << 20 }),
      n_positions: f.int('n_positions', { def: 1024, max: 1 << 24 }),
      vocab_size: f.int('vocab_size', { max: 10_000_000 }),
      activation_function: f.activation('activation_function', 'gelu_new'),
      layer_norm_epsilon: f.positive('layer_norm_epsilon', 1e-5),
      tie_word_embeddings: f.bool('tie_word_embeddings', true),
      scale_attn_weights: f.bool('scale_attn_weights', true),
      scale_attn_by_inverse_layer_idx: f.bool('scale_attn_by_inverse_layer_idx', false),
      reorder_and_upcast_attn: f.bool('reorder_and_upcast_attn', false),
      bos_token_id: f.optInt('bos_token_id'),
      eos_token_id: f.tokenIds('eos_token_id'),
      torch_dtype: f.strOrNull('torch_dtype'),
    };
  }
  const hidden_size = f.int('hidden_size', { max: 1 << 17 });
  const num_attention_heads = f.int('num_attention_heads', { max: 1024 });
  const num_key_value_heads = f.int('num_key_value_heads', { def: num_attention_heads, max: 1024 });
  if (num_attention_heads % num_key_value_heads !== 0) {
    throw new FormatError('hf.config.bad-field', `${nameInFolder(file)}: num_attention_heads ${num_attention_heads} is not a multiple of num_key_value_heads ${num_key_value_heads} (rule: query heads share key/value heads in equal groups).`, file, 'num_key_value_heads');
  }
  if (obj.head_dim == null && hidden_size % num_attention_heads !== 0) {
    throw new FormatError('hf.config.bad-field', `${nameInFolder(file)}: hidden_size ${hidden_size} is not divisible by num_attention_heads ${num_attention_heads} (rule: heads split the hidden size evenly).`, file, 'num_attention_heads');
  }
  const head_dim = f.int('head_dim', { def: hidden_size / num_attention_heads, max: 1 << 14 });
  if (head_dim % 2 !== 0) throw new FormatError('hf.config.bad-field', `${nameInFolder(file)}: head_dim ${head_dim} is odd (rule: rotary embeddings rotate pairs, so head_dim is even).`, file, 'head_dim');
  const isQwen = mt === 'qwen2';
  const attention_bias = isQwen ? true : f.bool('attention_bias', false);
  const slidingDefault = mt === 'mistral' ? 4096 : null;
  const useSliding = mt === 'qwen2' ? f.bool('use_sliding_window', false) : true;
  const sliding = obj.sliding_window === undefined ? slidingDefault : f.optInt('sliding_window', 1);
  return {
    model_type: mt as LlamaFamilyConfig['model_type'],
    architectures: f.architectures(),
    hidden_size,
    intermediate_size: f.int('intermediate_size', { max: 1 << 20 }),
    num_hidden_layers: f.int('num_hidden_layers', { max: 1024 }),
    num_attention_heads,
    num_key_value_heads,
    head_dim,
    vocab_size: f.int('vocab_size', { max: 10_000_000 }),
    max_position_embeddings: f.int('max_position_embeddings', { def: mt === 'llama' ? 2048 : mt === 'mistral' ? 131072 : 32768, max: 1 << 24 }),
    rms_norm_eps: f.positive('rms_norm_eps', 1e-6),
    rope_theta: f.positive('rope_theta', 10000),
    rope_scaling: f.objOrNull('rope_scaling'),
    hidden_act: f.activation('hidden_act', 'silu'),
    tie_word_embeddings: f.bool('tie_word_embeddings', false),
    attention_bias,
    attention_out_bias: isQwen ? false : attention_bias,
    mlp_bias: mt === 'llama' ? f.bool('mlp_bias', false) : false,
    sliding_window: useSliding ? sliding : null,
    bos_token_id: f.optInt('bos_token_id'),
    eos_token_id: f.tokenIds('eos_token_id'),
    pad_token_id: f.optInt('pad_token_id'),
    torch_dtype: f.strOrNull('torch_dtype'),
  };
}

/** Reads and validates `config.json` (a folder or the file itself). */
export async function readHfConfig(pathOrDir: string): Promise<{ config: HfConfig; raw: Record<string, unknown> }> {
  const st = await stat(pathOrDir);
  const file = st.isDirectory() ? join(pathOrDir, 'config.json') : pathOrDir;
  const raw = await readStrictJsonFile(file, { what: nameInFolder(file), rulePrefix: 'hf.config', maxBytes: 4 * 1024 * 1024 });
  return { config: parseHfConfig(raw, file), raw };
}

const PICKLE = /^(pytorch_model.*\.bin|.*\.(pt|pth|ckpt|pkl|pickle))$/i;

/** The one-line conversion the refusal message suggests (run by the user with PyTorch and safetensors installed). */
export function pickleConversionSnippet(pickleName: string): string {
  const out = pickleName.replace(/^pytorch_model/, 'model').replace(/\.(bin|pt|pth|ckpt|pkl|pickle)$/i, '.safetensors');
  return `python -c "import torch; from safetensors.torch import save_file; sd = torch.load('${pickleName}', map_location='cpu', weights_only=True); save_file({k: v.clone().contiguous() for k, v in sd.items()}, '${out}', metadata={'format': 'pt'})"`;
}

export interface WeightsLocation {
  kind: 'single' | 'sharded';
  /** model.safetensors or model.safetensors.index.json */
  path: string;
}

/** Finds the safetensors weights of a model folder, refusing pickle-only folders with advice. */
export async function findHfWeights(dir: string): Promise<WeightsLocation> {
  const names = await readdir(dir);
  if (names.includes('model.safetensors')) return { kind: 'single', path: join(dir, 'model.safetensors') };
  if (names.includes(INDEX_FILE)) return { kind: 'sharded', path: join(dir, INDEX_FILE) };
  const pickles = names.filter((n) => PICKLE.test(n)).sort();
  if (pickles.length > 0) {
    throw new FormatError(
      'hf.pickle-refused',
      `${shortName(dir)} holds only pickle weights (${pickles.slice(0, 3).join(', ')}${pickles.length > 3 ? ', …' : ''}), which can run arbitrary code when loaded and are refused; convert them to safetensors on a machine with PyTorch, e.g.: ${pickleConversionSnippet(pickles[0]!)}`,
      dir,
    );
  }
  const others = names.filter((n) => n.endsWith('.safetensors'));
  throw new FormatError(
    'hf.no-weights',
    `${shortName(dir)} has no model.safetensors or ${INDEX_FILE}${others.length ? ` (found ${others.slice(0, 3).join(', ')}; rename a single-file checkpoint to model.safetensors)` : ''}.`,
    dir,
  );
}

export async function openWeights(loc: WeightsLocation): Promise<TensorSource> {
  return loc.kind === 'single' ? SafetensorsFile.open(loc.path) : ShardedSafetensors.open(loc.path);
}

export interface HfModel {
  dir: string;
  config: HfConfig;
  rawConfig: Record<string, unknown>;
  weightsLocation: WeightsLocation;
  /** Validated headers; tensors are read on demand. Close when done. */
  weights: TensorSource;
  /** tokenizer.json path when the folder has one. */
  tokenizerPath: string | null;
}

/** Opens a Hugging Face model folder: config validated, weights headers validated, tokenizer located. */
export async function openHfModel(dir: string): Promise<HfModel> {
  const st = await stat(dir);
  if (!st.isDirectory()) throw new FormatError('hf.not-folder', `${shortName(dir)} is not a folder; a Hugging Face model is a folder with config.json and model.safetensors.`, dir);
  const names = await readdir(dir);
  if (!names.includes('config.json')) throw new FormatError('hf.no-config', `${shortName(dir)} has no config.json, so it is not a Hugging Face model folder.`, dir);
  const { config, raw } = await readHfConfig(join(dir, 'config.json'));
  const weightsLocation = await findHfWeights(dir);
  const weights = await openWeights(weightsLocation);
  return { dir, config, rawConfig: raw, weightsLocation, weights, tokenizerPath: names.includes('tokenizer.json') ? join(dir, 'tokenizer.json') : null };
}
