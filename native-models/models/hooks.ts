// How weights and linear layers enter a forward graph, with the caller's hooks (spec.ts) applied.
import type { Graph, Value } from '../onnx/graph';
import { conv1d, linear } from '../nn/linear';
import type { ForwardHooks, WeightMap } from './spec';

export interface WeightAccess {
  param(name: string): Value;
  /** The linear layer `name` (y = x·Wᵀ + b for torch Linear [out, in], x·W + b for HF Conv1D [in, out]). */
  linear(name: string, x: Value, layout: 'out_in' | 'in_out'): Value;
}

export function weightAccess(g: Graph, weights: WeightMap, hooks: ForwardHooks | undefined): WeightAccess {
  const cache = new Map<string, Value>();
  const param = (name: string): Value => {
    let v = cache.get(name);
    if (v) return v;
    const w = weights.get(name);
    if (!w) throw new Error(`The model has no weight "${name}".`);
    v = hooks?.param?.(name, w.shape, g) ?? g.initializer(name, w.data, w.shape);
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
  return { param, linear: apply };
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
