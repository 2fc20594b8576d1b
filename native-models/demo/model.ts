// The demo base model: a small LLaMA-architecture model over the byte-level tokenizer, its Hugging
// Face config.json, and a seeded initialisation (so pretraining is reproducible from the seed).
import { Rng } from '../data/prng';
import { BYTE_LEVEL_IDS } from '../formats/tokenizer';
import { parseHfConfig, type LlamaFamilyConfig } from '../formats/hf';
import { llamaSpecFromConfig, llamaWeightShapes } from '../models/llama/spec';
import type { HostWeight, LlamaSpec, WeightMap } from '../models/spec';

export interface DemoModelShape {
  hiddenSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediateSize: number;
  /** Context length in tokens (max_position_embeddings). */
  contextLength: number;
}

/**
 * The shipped shape (see MODEL_CARD.md for why): 8 blocks so an emulator keeps 2 + 2 adapter
 * blocks around a 4-block middle worth compressing; d 128 with 4 heads of 32 and 2 KV heads
 * (grouped-query attention is exercised); SwiGLU width 344 ≈ 8/3·d rounded to a multiple of 8;
 * 256 byte positions. About 1.5 M parameters, 6 MB as float32.
 */
export const DEMO_MODEL: DemoModelShape = { hiddenSize: 128, layers: 8, heads: 4, kvHeads: 2, intermediateSize: 344, contextLength: 256 };

/** config.json for a byte-level LLaMA of this shape (ids: bytes 0..255, <s> 256, </s> 257, <pad> 258). */
export function demoHfConfig(shape: DemoModelShape): Record<string, unknown> {
  if (shape.hiddenSize % shape.heads !== 0) throw new RangeError(`The hidden size ${shape.hiddenSize} must be a multiple of the ${shape.heads} heads.`);
  if (shape.heads % shape.kvHeads !== 0) throw new RangeError(`The ${shape.heads} attention heads must be a multiple of the ${shape.kvHeads} key/value heads.`);
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_hidden_layers: shape.layers,
    num_attention_heads: shape.heads,
    num_key_value_heads: shape.kvHeads,
    head_dim: shape.hiddenSize / shape.heads,
    vocab_size: BYTE_LEVEL_IDS.vocabSize,
    max_position_embeddings: shape.contextLength,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: BYTE_LEVEL_IDS.bos,
    eos_token_id: BYTE_LEVEL_IDS.eos,
    pad_token_id: BYTE_LEVEL_IDS.pad,
    torch_dtype: 'float32',
  };
}

export function demoSpec(shape: DemoModelShape): LlamaSpec {
  return llamaSpecFromConfig(parseHfConfig(demoHfConfig(shape)) as LlamaFamilyConfig);
}

/** Standard normal samples from a seeded stream (Box–Muller), so the initial weights depend on the seed only. */
function normals(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - rng.next(); // (0, 1]: log stays finite
    const u2 = rng.next();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/**
 * GPT-2-style initialisation: every matrix N(0, 0.02²), the two projections that write into the
 * residual stream (o_proj, down_proj) scaled by 1/√(2·layers) so the stream's variance does not
 * grow with depth; RMSNorm weights 1. Weights are drawn in llamaWeightShapes order from one stream.
 */
export function initDemoWeights(spec: LlamaSpec, seed: number): WeightMap {
  const rng = new Rng(seed);
  const residualStd = 0.02 / Math.sqrt(2 * spec.layers);
  const weights: WeightMap = new Map();
  for (const [name, shape] of llamaWeightShapes(spec)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let w: HostWeight;
    if (name.endsWith('norm.weight')) w = { shape, data: new Float32Array(n).fill(1) };
    else w = { shape, data: normals(rng, n, /(o_proj|down_proj)\.weight$/.test(name) ? residualStd : 0.02) };
    weights.set(name, w);
  }
  return weights;
}

export function parameterCount(weights: WeightMap): number {
  let n = 0;
  for (const w of weights.values()) n += w.data.length;
  return n;
}
