// LLaMA-family forward pass (HF LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM):
// pre-norm blocks of RMSNorm → grouped-query attention with half-split RoPE → residual, RMSNorm →
// SwiGLU MLP → residual; final RMSNorm and a tied or untied LM head. Hooks (spec.ts) decide how
// weights enter the graph, wrap linear layers (LoRA) and replace or skip blocks (emulators).
// In fused (inference) graphs, linears that share an input and are plain weights run as one
// MatMul, and each residual add carries the following RMSNorm (nn/fused-residual.ts).
import type { Graph, Value } from '../../onnx/graph';
import { causalSelfAttention, positionIds, ropeAt, ropeConstants, ropeTables, rmsNorm, swiGLU } from '../../nn/index';
import { fusedKernels } from '../../nn/fused';
import { residualRmsNorm } from '../../nn/fused-residual';
import { lastPosition, tablePositions, weightAccess } from '../hooks';
import type { ForwardHooks, ForwardInputs, ForwardOutputs, LayerKV, LlamaSpec, WeightMap } from '../spec';

export function llamaForward(g: Graph, s: LlamaSpec, weights: WeightMap, inputs: ForwardInputs, hooks?: ForwardHooks): ForwardOutputs {
  const { param, linear, linears } = weightAccess(g, weights, hooks);
  const ids = inputs.inputIds;
  const table = ropeConstants(g, ropeTables(s.headDim, tablePositions(s.maxPositions, inputs.contextLength), s.ropeTheta));
  const rope = ropeAt(g, table, positionIds(g, ids, 1, inputs.positionOffset));
  const attn = { numHeads: s.heads, numKvHeads: s.kvHeads, headDim: s.headDim, rope, ...(inputs.attentionMask ? { attentionMask: inputs.attentionMask } : {}), causal: !inputs.singleTokenDecode };
  const present: (LayerKV | undefined)[] = [];
  const added: (LayerKV | undefined)[] = [];
  const last = hooks?.stopAfterLayer ?? s.layers - 1;
  const eps = s.rmsNormEps;
  // In fused graphs without a block hook every block runs as written, so a block's closing residual
  // add can also normalise for the next block (or the final norm): one kernel per seam. The final
  // norm joins only when every position keeps its logits (lastPositionOnly slices first). Other
  // graphs keep the plain order, in which hooks see each weight requested.
  const chain = fusedKernels(g) && !hooks?.block;
  const nextNorm = (i: number): string | undefined =>
    !chain ? undefined : i < last ? `model.layers.${i + 1}.input_layernorm.weight` : i === s.layers - 1 && !inputs.lastPositionOnly ? 'model.norm.weight' : undefined;
  // The next block's normalised input, when the previous block already computed it for this value.
  let carried: { input: Value; layer: number; normed: Value } | undefined;

  let h = g.gather(param('model.embed_tokens.weight'), ids, 0); // [B, T, d]
  for (let i = 0; i <= last; i++) {
    const p = `model.layers.${i}`;
    const run = (x: Value): Value => {
      const a = carried && carried.input === x && carried.layer === i ? carried.normed : rmsNorm(g, x, param(`${p}.input_layernorm.weight`), eps);
      const [q, k, v] = linears([`${p}.self_attn.q_proj`, `${p}.self_attn.k_proj`, `${p}.self_attn.v_proj`], a) as [Value, Value, Value];
      const past = inputs.past?.[i];
      const res = causalSelfAttention(g, q, k, v, past ? { ...attn, past } : attn);
      if (past) {
        present[i] = res.present;
        added[i] = res.added;
      }
      const mid = residualRmsNorm(g, x, linear(`${p}.self_attn.o_proj`, res.out, 'out_in'), param(`${p}.post_attention_layernorm.weight`), eps);
      const [gate, up] = linears([`${p}.mlp.gate_proj`, `${p}.mlp.up_proj`], mid.normed) as [Value, Value];
      const mlp = swiGLU(g, mid.normed, () => gate, () => up, (y) => linear(`${p}.mlp.down_proj`, y, 'out_in'));
      const next = nextNorm(i);
      if (!next) return g.add(mid.sum, mlp);
      const out = residualRmsNorm(g, mid.sum, mlp, param(next), eps);
      carried = { input: out.sum, layer: i + 1, normed: out.normed };
      return out.sum;
    };
    h = hooks?.block ? hooks.block(i, h, run, g) : run(h);
  }
  const out = { hidden: h, present, ...(added.some((a) => a) ? { added } : {}) };
  if (last < s.layers - 1) return out;
  const n =
    carried && carried.input === h && carried.layer === s.layers
      ? carried.normed
      : rmsNorm(g, inputs.lastPositionOnly ? lastPosition(g, h) : h, param('model.norm.weight'), eps);
  // A tied head reuses the embedding as is (never through `linear`, so it is not adapted twice).
  const logits = s.tiedEmbeddings ? g.matmul(n, g.transpose(param('model.embed_tokens.weight'), [1, 0])) : linear('lm_head', n, 'out_in');
  return { ...out, logits };
}
