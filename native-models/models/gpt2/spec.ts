// GPT-2 spec from a validated Hugging Face config.
import type { Gpt2Config } from '../../formats/hf';
import type { Gpt2Spec } from '../spec';
import { UnsupportedModelError } from '../errors';

export function gpt2SpecFromConfig(c: Gpt2Config): Gpt2Spec {
  if (c.scale_attn_by_inverse_layer_idx || c.reorder_and_upcast_attn || !c.scale_attn_weights) {
    throw new UnsupportedModelError('config.json changes GPT-2 attention scaling (scale_attn_weights false, scale_attn_by_inverse_layer_idx or reorder_and_upcast_attn); the engine builds standard GPT-2 attention only.');
  }
  if (!c.tie_word_embeddings) throw new UnsupportedModelError('config.json unties the GPT-2 LM head from the token embedding; the engine builds GPT-2 with a tied head only.');
  const act = c.activation_function;
  const gelu = act === 'gelu_new' || act === 'gelu_pytorch_tanh' || act === 'gelu_fast' ? 'tanh' : act === 'gelu' ? 'erf' : undefined;
  if (!gelu) throw new UnsupportedModelError(`config.json sets activation_function "${act}"; GPT-2 models are built with gelu_new, gelu_pytorch_tanh, gelu_fast or gelu.`);
  const eos = c.eos_token_id;
  return {
    family: 'gpt2',
    modelType: 'gpt2',
    hiddenSize: c.n_embd,
    intermediateSize: c.n_inner,
    layers: c.n_layer,
    heads: c.n_head,
    kvHeads: c.n_head,
    headDim: c.n_embd / c.n_head,
    vocabSize: c.vocab_size,
    maxPositions: c.n_positions,
    layerNormEps: c.layer_norm_epsilon,
    gelu,
    bosId: c.bos_token_id,
    eosIds: eos === null ? [] : Array.isArray(eos) ? eos : [eos],
  };
}

/** The weights a GPT-2 forward pass reads (HF GPT2LMHeadModel names; Conv1D weights are [in, out]). */
export function gpt2WeightShapes(s: Gpt2Spec): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const d = s.hiddenSize;
  m.set('transformer.wte.weight', [s.vocabSize, d]);
  m.set('transformer.wpe.weight', [s.maxPositions, d]);
  for (let i = 0; i < s.layers; i++) {
    const p = `transformer.h.${i}`;
    m.set(`${p}.ln_1.weight`, [d]);
    m.set(`${p}.ln_1.bias`, [d]);
    m.set(`${p}.attn.c_attn.weight`, [d, 3 * d]);
    m.set(`${p}.attn.c_attn.bias`, [3 * d]);
    m.set(`${p}.attn.c_proj.weight`, [d, d]);
    m.set(`${p}.attn.c_proj.bias`, [d]);
    m.set(`${p}.ln_2.weight`, [d]);
    m.set(`${p}.ln_2.bias`, [d]);
    m.set(`${p}.mlp.c_fc.weight`, [d, s.intermediateSize]);
    m.set(`${p}.mlp.c_fc.bias`, [s.intermediateSize]);
    m.set(`${p}.mlp.c_proj.weight`, [s.intermediateSize, d]);
    m.set(`${p}.mlp.c_proj.bias`, [d]);
  }
  m.set('transformer.ln_f.weight', [d]);
  m.set('transformer.ln_f.bias', [d]);
  return m;
}
