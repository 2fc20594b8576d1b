// LLaMA-family forward pass (HF LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM):
// pre-norm blocks of RMSNorm → grouped-query attention with half-split RoPE → residual, RMSNorm →
// SwiGLU MLP → residual; final RMSNorm and a tied or untied LM head. Hooks (spec.ts) decide how
// weights enter the graph, wrap linear layers (LoRA) and replace or skip blocks (emulators).
import type { Graph, Value } from '../../onnx/graph';
import { causalSelfAttention, positionIds, ropeAt, ropeConstants, ropeTables, rmsNorm, swiGLU } from '../../nn/index';
import { lastPosition, tablePositions, weightAccess } from '../hooks';
import type { ForwardHooks, ForwardInputs, ForwardOutputs, LayerKV, LlamaSpec, WeightMap } from '../spec';

export function llamaForward(g: Graph, s: LlamaSpec, weights: WeightMap, inputs: ForwardInputs, hooks?: ForwardHooks): ForwardOutputs {
  const { param, linear } = weightAccess(g, weights, hooks);
  const ids = inputs.inputIds;
  const table = ropeConstants(g, ropeTables(s.headDim, tablePositions(s.maxPositions, inputs.contextLength), s.ropeTheta));
  const rope = ropeAt(g, table, positionIds(g, ids, 1, inputs.positionOffset));
  const attn = { numHeads: s.heads, numKvHeads: s.kvHeads, headDim: s.headDim, rope, ...(inputs.attentionMask ? { attentionMask: inputs.attentionMask } : {}), causal: !inputs.singleTokenDecode };
  const present: (LayerKV | undefined)[] = [];
  const last = hooks?.stopAfterLayer ?? s.layers - 1;

  let h = g.gather(param('model.embed_tokens.weight'), ids, 0); // [B, T, d]
  for (let i = 0; i <= last; i++) {
    const p = `model.layers.${i}`;
    const run = (x: Value): Value => {
      const a = rmsNorm(g, x, param(`${p}.input_layernorm.weight`), s.rmsNormEps);
      const q = linear(`${p}.self_attn.q_proj`, a, 'out_in');
      const k = linear(`${p}.self_attn.k_proj`, a, 'out_in');
      const v = linear(`${p}.self_attn.v_proj`, a, 'out_in');
      const past = inputs.past?.[i];
      const res = causalSelfAttention(g, q, k, v, past ? { ...attn, past } : attn);
      if (past) present[i] = res.present;
      const x1 = g.add(x, linear(`${p}.self_attn.o_proj`, res.out, 'out_in'));
      const m = rmsNorm(g, x1, param(`${p}.post_attention_layernorm.weight`), s.rmsNormEps);
      const proj = (name: string) => (y: Value) => linear(`${p}.mlp.${name}`, y, 'out_in');
      return g.add(x1, swiGLU(g, m, proj('gate_proj'), proj('up_proj'), proj('down_proj')));
    };
    h = hooks?.block ? hooks.block(i, h, run, g) : run(h);
  }
  if (last < s.layers - 1) return { hidden: h, present };
  const n = rmsNorm(g, inputs.lastPositionOnly ? lastPosition(g, h) : h, param('model.norm.weight'), s.rmsNormEps);
  // A tied head reuses the embedding as is (never through `linear`, so it is not adapted twice).
  const logits = s.tiedEmbeddings ? g.matmul(n, g.transpose(param('model.embed_tokens.weight'), [1, 0])) : linear('lm_head', n, 'out_in');
  return { logits, hidden: h, present };
}
