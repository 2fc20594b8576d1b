// How weights and linear layers enter a forward graph, with the caller's hooks (spec.ts) applied.
import type { Graph, Value } from '../onnx/graph';
import { fusedKernels } from '../nn/fused';
import { conv1d, linear } from '../nn/linear';
import type { ForwardHooks, WeightMap } from './spec';

export interface WeightAccess {
  param(name: string): Value;
  /** The linear layer `name` (y = x·Wᵀ + b for torch Linear [out, in], x·W + b for HF Conv1D [in, out]). */
  linear(name: string, x: Value, layout: 'out_in' | 'in_out'): Value;
  /**
   * Several torch-layout linear layers applied to the same input, one output each. In graphs marked
   * for fused kernels, when no hook decides how weights or linears are built (so each layer is its
   * plain loaded weight), they run as ONE MatMul over the weights stacked along the output axis,
   * then a Split: one kernel instead of one per layer (not in one-position decode graphs, where the
   * Split costs more than it saves). Otherwise each goes through `linear`.
   */
  linears(names: readonly string[], x: Value): Value[];
}

/** Largest stacked weight (floats) worth building: beyond it arithmetic, not per-node cost, bounds a step, and the stack would be a transient copy of that many weights. */
const MAX_PACKED = 4 << 20;

export function weightAccess(g: Graph, weights: WeightMap, hooks: ForwardHooks | undefined): WeightAccess {
  const cache = new Map<string, Value>();
  // Weights live in the root graph even when the forward pass is built into a subgraph (a Loop
  // body): subgraph initializers are serialised inline, never as external data.
  let home = g;
  while (home.parent) home = home.parent;
  const param = (name: string): Value => {
    let v = cache.get(name);
    if (v) return v;
    const w = weights.get(name);
    if (!w) throw new Error(`The model has no weight "${name}".`);
    v = hooks?.param?.(name, w.shape, g) ?? home.initializer(name, w.data, w.shape);
    cache.set(name, v);
    return v;
  };
  const apply = (name: string, x: Value, layout: 'out_in' | 'in_out'): Value => {
    const base = (h: Value): Value => {
      const w = param(`${name}.weight`);
      const b = weights.has(`${name}.bias`) ? param(`${name}.bias`) : undefined;
      return layout === 'out_in' ? linear(g, h, w, b) : conv1d(g, h, w, b);
    };
    return hooks?.linear ? hooks.linear(name, x, base, g) : base(x);
  };
  const linears = (names: readonly string[], x: Value): Value[] => {
    const ws = names.map((n) => weights.get(`${n}.weight`));
    const inDim = ws[0]?.shape[1];
    // With one position per sequence (a decode step) the Split costs more than the MatMuls it saves
    // (onnxruntime CPU, 1 thread, a 64-wide model: Split ≈ 1.6 µs, a MatMul ≈ 0.8 µs), so
    // decode graphs keep one MatMul per layer.
    const onePosition = x.shape.length === 3 && x.shape[1] === 1;
    const plain = fusedKernels(g) && !onePosition && !hooks?.linear && !hooks?.param && names.length > 1 && x.dtype === 'float32';
    const total = ws.reduce((a, w) => a + (w?.data.length ?? 0), 0);
    if (!plain || total > MAX_PACKED || ws.some((w) => !w || w.shape.length !== 2 || w.shape[1] !== inDim)) return names.map((n) => apply(n, x, 'out_in'));
    const outs = ws.map((w) => w!.shape[0]!);
    // [out, in] row-major: stacking along the output axis is appending the rows.
    const stacked = new Float32Array(total);
    let at = 0;
    for (const w of ws) {
      stacked.set(w!.data, at);
      at += w!.data.length;
    }
    const key = names.join('+');
    const w = home.initializer(`${key}.weight`, stacked, [at / inDim!, inDim!]);
    let b: Value | undefined;
    if (names.some((n) => weights.has(`${n}.bias`))) {
      // A layer without a bias contributes zeros.
      const bias = new Float32Array(at / inDim!);
      let off = 0;
      names.forEach((n, i) => {
        const bw = weights.get(`${n}.bias`);
        if (bw) bias.set(bw.data, off);
        off += outs[i]!;
      });
      b = home.initializer(`${key}.bias`, bias, [bias.length]);
    }
    return g.split(linear(g, x, w, b), -1, outs);
  };
  return { param, linear: apply, linears };
}

/** The last position of [B, T, d] as [B, 1, d] (generation needs only the next token's logits). */
export function lastPosition(g: Graph, h: Value): Value {
  return g.slice(h, [1], [-1], [undefined], [h.shape[0]!, 1, h.shape[2]!]);
}

/** Positions the rotary/position tables must cover: the caller's context, at most the model's. */
export function tablePositions(maxPositions: number, contextLength: number | undefined): number {
  if (contextLength === undefined) return maxPositions;
  if (!Number.isInteger(contextLength) || contextLength < 1 || contextLength > maxPositions) {
    throw new Error(`The context length must be a whole number in 1..${maxPositions} (the model's positions), not ${contextLength}.`);
  }
  return contextLength;
}
