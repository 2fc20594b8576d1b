// What every model family shares: the spec a family derives from its config, the host-side
// weights it builds graphs from, and the hooks through which trainers, PEFT and emulator building
// change a forward pass without copying it.
import type { Graph, Value } from '../onnx/graph';

export type FamilyName = 'llama' | 'gpt2';

/** LLaMA-architecture models: LLaMA 1–3, TinyLlama, Mistral, Qwen2, llama2.c checkpoints. */
export interface LlamaSpec {
  family: 'llama';
  /** The config's model_type ('llama' also for llama2.c checkpoints). */
  modelType: 'llama' | 'mistral' | 'qwen2';
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  rmsNormEps: number;
  ropeTheta: number;
  tiedEmbeddings: boolean;
  /** Biases on q, k and v (Qwen2; LLaMA with attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (LLaMA with attention_bias). */
  oBias: boolean;
  mlpBias: boolean;
  /** Mistral's sliding attention window: contexts longer than this are refused (null: none). */
  slidingWindow: number | null;
  bosId: number | null;
  eosIds: number[];
}

/** GPT-2: LayerNorm with bias, learned positions, GELU (tanh), fused c_attn, Conv1D weights [in, out]. */
export interface Gpt2Spec {
  family: 'gpt2';
  modelType: 'gpt2';
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  layerNormEps: number;
  /** 'tanh' for gelu_new / gelu_pytorch_tanh / gelu_fast, 'erf' for the exact gelu. */
  gelu: 'tanh' | 'erf';
  bosId: number | null;
  eosIds: number[];
}

export type ModelSpec = LlamaSpec | Gpt2Spec;

/** One weight held in host memory (float32, row-major), under its Hugging Face name. */
export interface HostWeight {
  shape: number[];
  data: Float32Array;
}

export type WeightMap = Map<string, HostWeight>;

/**
 * Hooks that let callers reshape a forward pass. Every weight and every linear layer is addressed
 * by its Hugging Face name (e.g. "model.layers.3.self_attn.q_proj", "transformer.h.0.attn.c_attn"),
 * the same names PEFT adapters use.
 *  - param(name): how a weight enters the graph. Default: a frozen initializer with the loaded
 *    values. A trainer returns a graph input for the weights it trains.
 *  - linear(name, x, base): applies a linear layer. `base(x)` is the layer as loaded (through
 *    `param`); LoRA returns base(x) + (alpha/r)·B(A(x)).
 *  - block(layer, h, run): one transformer block. `run(h)` is the original block; an emulator
 *    returns a harmonizer's output instead, or `h` to drop the layer. A block that runs no
 *    attention keeps no keys or values: its rows of a key/value cache hold zeros (graphs.ts).
 *  - stopAfterLayer: end after that block and return its hidden state (no final norm or head), for
 *    distillation targets and layer-importance probes.
 */
export interface ForwardHooks {
  param?: (name: string, shape: readonly number[], g: Graph) => Value | undefined;
  linear?: (name: string, x: Value, base: (x: Value) => Value, g: Graph) => Value;
  block?: (layer: number, h: Value, run: (h: Value) => Value, g: Graph) => Value;
  stopAfterLayer?: number;
}

/** Per-layer key/value tensors [batch, kvHeads, length, headDim]. */
export interface LayerKV {
  k: Value;
  v: Value;
}

export interface ForwardInputs {
  /** int64 [batch, seq]. */
  inputIds: Value;
  /** Cached keys and values of earlier positions, one entry per layer (length `past`). */
  past?: LayerKV[];
  /** int64 scalar: position of the first input token (the cache length); 0 when absent. */
  positionOffset?: Value;
  /** Compute logits for the last position only ([batch, 1, vocab]): generation needs no more. */
  lastPositionOnly?: boolean;
  /** Positions the graph must support (past + new); sizes the rotary tables. Default: the model's. */
  contextLength?: number;
  /** A single new token may attend to every cached key, so its decode graph skips the causal mask. */
  singleTokenDecode?: boolean;
  /** [batch, past + seq]: 1 for tokens, 0 for padding (left-padded batches); causal masking is always on. */
  attentionMask?: Value;
}

export interface ForwardOutputs {
  /** float32 [batch, seq, vocab] (absent when stopAfterLayer ends early). */
  logits?: Value;
  /** Hidden state after the last block that ran (before the final norm). */
  hidden: Value;
  /** Keys and values including the new positions, one per layer that ran (when `past` was given). */
  present?: (LayerKV | undefined)[];
  /**
   * The new positions' keys (rotated) and values alone, [batch, seq, kvHeads·headDim], per layer,
   * when the attention kernels expose them (fused graphs): what a cache step returns.
   */
  added?: (LayerKV | undefined)[];
}

/** A family: its name, spec derivation, weight names and forward builder. */
export interface ModelFamily<S extends ModelSpec = ModelSpec> {
  name: FamilyName;
  /** Weight names (and shapes) the forward pass reads, in a stable order. */
  weightShapes(spec: S): Map<string, number[]>;
  /** Builds the forward pass into `g`. */
  forward(g: Graph, spec: S, weights: WeightMap, inputs: ForwardInputs, hooks?: ForwardHooks): ForwardOutputs;
}

/** The longest context the model may attend over: its positions, capped by a sliding window (Mistral). */
export function contextOf(s: ModelSpec): number {
  return s.family === 'llama' && s.slidingWindow !== null ? Math.min(s.maxPositions, s.slidingWindow) : s.maxPositions;
}
