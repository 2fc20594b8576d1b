// LLaMA-family spec from a validated Hugging Face config (llama, mistral, qwen2; llama2.c
// checkpoints arrive here through formats/llama2c's HF config).
import type { LlamaFamilyConfig } from '../../formats/hf';
import type { LlamaSpec } from '../spec';
import { UnsupportedModelError } from '../errors';

export function llamaSpecFromConfig(c: LlamaFamilyConfig): LlamaSpec {
  if (c.rope_scaling && (c.rope_scaling.rope_type ?? c.rope_scaling.type) !== 'default') {
    const kind = String(c.rope_scaling.rope_type ?? c.rope_scaling.type ?? 'unknown');
    throw new UnsupportedModelError(`config.json asks for RoPE scaling of type "${kind}", which the engine does not implement; only plain rotary embeddings (rope_scaling null) are supported.`);
  }
  if (c.hidden_act !== 'silu' && c.hidden_act !== 'swish') {
    throw new UnsupportedModelError(`config.json sets hidden_act "${c.hidden_act}" for a ${c.model_type} model; the engine builds the SwiGLU MLP with silu only.`);
  }
  const eos = c.eos_token_id;
  return {
    family: 'llama',
    modelType: c.model_type,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    layers: c.num_hidden_layers,
    heads: c.num_attention_heads,
    kvHeads: c.num_key_value_heads,
    headDim: c.head_dim,
    vocabSize: c.vocab_size,
    maxPositions: c.max_position_embeddings,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta: c.rope_theta,
    tiedEmbeddings: c.tie_word_embeddings,
    qkvBias: c.attention_bias,
    oBias: c.attention_out_bias,
    mlpBias: c.mlp_bias,
    slidingWindow: c.sliding_window,
    bosId: c.bos_token_id,
    eosIds: eos === null ? [] : Array.isArray(eos) ? eos : [eos],
  };
}

/** The weights a LLaMA-family forward pass reads, with their shapes ([out, in] for linears). */
export function llamaWeightShapes(s: LlamaSpec): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const d = s.hiddenSize;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  m.set('model.embed_tokens.weight', [s.vocabSize, d]);
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.input_layernorm.weight`, [d]);
    m.set(`${p}.self_attn.q_proj.weight`, [q, d]);
    m.set(`${p}.self_attn.k_proj.weight`, [kv, d]);
    m.set(`${p}.self_attn.v_proj.weight`, [kv, d]);
    if (s.qkvBias) {
      m.set(`${p}.self_attn.q_proj.bias`, [q]);
      m.set(`${p}.self_attn.k_proj.bias`, [kv]);
      m.set(`${p}.self_attn.v_proj.bias`, [kv]);
    }
    m.set(`${p}.self_attn.o_proj.weight`, [d, q]);
    if (s.oBias) m.set(`${p}.self_attn.o_proj.bias`, [d]);
    m.set(`${p}.post_attention_layernorm.weight`, [d]);
    m.set(`${p}.mlp.gate_proj.weight`, [s.intermediateSize, d]);
    m.set(`${p}.mlp.up_proj.weight`, [s.intermediateSize, d]);
    m.set(`${p}.mlp.down_proj.weight`, [d, s.intermediateSize]);
    if (s.mlpBias) {
      m.set(`${p}.mlp.gate_proj.bias`, [s.intermediateSize]);
      m.set(`${p}.mlp.up_proj.bias`, [s.intermediateSize]);
      m.set(`${p}.mlp.down_proj.bias`, [d]);
    }
  }
  m.set('model.norm.weight', [d]);
  if (!s.tiedEmbeddings) m.set('lm_head.weight', [s.vocabSize, d]);
  return m;
}
