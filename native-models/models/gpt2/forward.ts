// GPT-2 forward pass (HF GPT2LMHeadModel): token + learned position embeddings; pre-norm blocks of
// LayerNorm → fused c_attn (Conv1D, [in, out]) split into q, k, v → causal attention → c_proj →
// residual, LayerNorm → c_fc → GELU → c_proj → residual; ln_f; LM head tied to wte.
import type { Graph, Value } from '../../onnx/graph';
import { causalSelfAttention, geluTanh, layerNorm, positionIds } from '../../nn/index';
import { lastPosition, weightAccess } from '../hooks';
import type { ForwardHooks, ForwardInputs, ForwardOutputs, Gpt2Spec, LayerKV, WeightMap } from '../spec';

/** Exact GELU, 0.5·x·(1 + erf(x/√2)) (HF "gelu"; GPT-2 checkpoints normally use the tanh form). */
function geluErf(g: Graph, x: Value): Value {
  const c = (v: number) => g.scalar(v, x.dtype);
  return g.mul(g.mul(c(0.5), x), g.add(c(1), g.erf(g.mul(x, c(Math.SQRT1_2)))));
}

export function gpt2Forward(g: Graph, s: Gpt2Spec, weights: WeightMap, inputs: ForwardInputs, hooks?: ForwardHooks): ForwardOutputs {
  const { param, linear } = weightAccess(g, weights, hooks);
  const ids = inputs.inputIds;
  const d = s.hiddenSize;
  const attn = { numHeads: s.heads, numKvHeads: s.heads, headDim: s.headDim, ...(inputs.attentionMask ? { attentionMask: inputs.attentionMask } : {}), causal: !inputs.singleTokenDecode };
  const present: (LayerKV | undefined)[] = [];
  const added: (LayerKV | undefined)[] = [];
  const last = hooks?.stopAfterLayer ?? s.layers - 1;
  const gelu = s.gelu === 'tanh' ? geluTanh : geluErf;

  const pos = positionIds(g, ids, 1, inputs.positionOffset);
  let h = g.add(g.gather(param('transformer.wte.weight'), ids, 0), g.gather(param('transformer.wpe.weight'), pos, 0));
  for (let i = 0; i <= last; i++) {
    const p = `transformer.h.${i}`;
    const run = (x: Value): Value => {
      const a = layerNorm(g, x, param(`${p}.ln_1.weight`), param(`${p}.ln_1.bias`), s.layerNormEps);
      const [q, k, v] = g.split(linear(`${p}.attn.c_attn`, a, 'in_out'), -1, [d, d, d]) as [Value, Value, Value];
      const past = inputs.past?.[i];
      const res = causalSelfAttention(g, q, k, v, past ? { ...attn, past } : attn);
      if (past) {
        present[i] = res.present;
        added[i] = res.added;
      }
      const x1 = g.add(x, linear(`${p}.attn.c_proj`, res.out, 'in_out'));
      const m = layerNorm(g, x1, param(`${p}.ln_2.weight`), param(`${p}.ln_2.bias`), s.layerNormEps);
      return g.add(x1, linear(`${p}.mlp.c_proj`, gelu(g, linear(`${p}.mlp.c_fc`, m, 'in_out')), 'in_out'));
    };
    h = hooks?.block ? hooks.block(i, h, run, g) : run(h);
  }
  if (last < s.layers - 1) return { hidden: h, present, added };
  const n = layerNorm(g, inputs.lastPositionOnly ? lastPosition(g, h) : h, param('transformer.ln_f.weight'), param('transformer.ln_f.bias'), s.layerNormEps);
  return { logits: g.matmul(n, g.transpose(param('transformer.wte.weight'), [1, 0])), hidden: h, present, added };
}
