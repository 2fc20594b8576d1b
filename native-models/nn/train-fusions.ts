// Training-graph forms of RMSNorm, rotary embedding and the SwiGLU gate with hand-written
// (closed-form) gradients. Differentiating their primitive compositions op by op emits about twice
// the memory-bound elementwise nodes these do (the profile of a LoRA train step was ~25%
// elementwise/layout work); every formula here is checked against float64 finite differences
// (test/unit/nn/train-fusions.test.ts).
//
// Kernels used beyond standard ONNX: SimplifiedLayerNormalization (ORT's RMSNorm, onnx domain,
// which also returns the inverse RMS the backward reuses) and com.microsoft RotaryEmbedding. Both
// have CPU and CUDA kernels, so these graphs stay execution-provider agnostic; float64 graphs
// (gradient checks) use primitive forwards with the same gradients.
import { customGradient } from '../autodiff/gradients';
import type { Graph, Value } from '../onnx/graph';
import { broadcastShapes } from '../onnx/shape';

/**
 * RMSNorm y = x̂·w, x̂ = x·r, r = 1/√(mean(x²)+eps), with dx = r·(gw − x̂·mean(gw·x̂)) where
 * gw = dy·w, and dw = Σ dy·x̂. The weight enters through its own Mul (not the normalisation
 * kernel) so that a trainable norm weight meets the activations in a one-output node, as sparse
 * layer tuning's parameter frontier needs (train/layerwise.ts).
 */
export function rmsNormTrainable(g: Graph, x: Value, weight: Value, eps: number): Value {
  const dt = x.dtype;
  const d = x.shape[x.shape.length - 1];
  let xhat: Value;
  let r: Value;
  if (dt === 'float32' && typeof d === 'number') {
    // One kernel for x̂, whose second output is r (stash type float = the input's type).
    [xhat, r] = g.emit('SimplifiedLayerNormalization', [x, g.constant(new Float32Array(d).fill(1), [d], dt)], { axis: -1, epsilon: { f: eps }, stash_type: 1 }, [
      { dtype: dt, shape: x.shape },
      { dtype: dt, shape: [...x.shape.slice(0, -1), 1] },
    ]) as [Value, Value];
  } else {
    r = g.reciprocal(g.sqrt(g.add(g.reduceMean(g.mul(x, x), [-1], true), g.scalar(eps, dt))));
    xhat = g.mul(x, r);
  }
  const y = g.mul(xhat, weight);
  customGradient(y, [x, weight], ({ g: b, GO, needs }) => {
    const dy = GO(0);
    let dx: Value | undefined;
    if (needs(0)) {
      const gw = b.mul(dy, weight);
      const dot = b.reduceMean(b.mul(gw, xhat), [-1], true); // [..., 1]
      dx = b.mul(b.sub(gw, b.mul(xhat, dot)), r);
    }
    // Shaped like y; the central unbroadcast sums it down to the weight's [D].
    const dw = needs(1) ? b.mul(dy, xhat) : undefined;
    return [dx, dw];
  });
  return y;
}

/** Signs [−1 (first half), +1 (second half)] so that rotate_half(x)·sin = swap_halves(x)·(sin·signs). */
function halfSigns(g: Graph, d: number, dt: Value['dtype']): Value {
  return g.constant(Array.from({ length: d }, (_, i) => (i < d / 2 ? -1 : 1)), [d], dt);
}

function swapHalves(g: Graph, x: Value, d: number): Value {
  const [x1, x2] = g.split(x, -1, [d / 2, d / 2]) as [Value, Value];
  return g.concat([x2, x1], -1);
}

/**
 * Rotary embedding x·cos + rotate_half(x)·sin over primitives, with the rotation's transpose as
 * its gradient: dx = dy·cos − swap_halves(dy)·(sin·signs), i.e. the rotation by −θ. `cos`/`sin`
 * are position tables (never trained): they get no gradient.
 */
export function ropeTrainable(g: Graph, x: Value, cos: Value, sin: Value): Value {
  const d = x.shape[x.shape.length - 1] as number;
  const signedSin = g.mul(sin, halfSigns(g, d, x.dtype)); // table-sized, not activation-sized
  const y = g.add(g.mul(x, cos), g.mul(swapHalves(g, x, d), signedSin));
  customGradient(y, [x], ({ g: b, GO }) => {
    const dy = GO(0);
    return [b.sub(b.mul(dy, cos), b.mul(swapHalves(b, dy, d), signedSin))];
  });
  return y;
}

/**
 * Rotary embedding of q or k in [B, T, heads·Dh] layout as one com.microsoft RotaryEmbedding
 * (float32), positions start, start+1, …; the gradient is the same kernel with −sin (rotation by
 * −θ). `table` holds each frequency over both halves ([positions, Dh], see ropeTables).
 */
export function rotaryTrainable(g: Graph, x: Value, table: { cos: Value; sin: Value }, start: Value, heads: number, headDim: number): Value {
  const cos = g.slice(table.cos, [1], [0], [headDim / 2]);
  const sin = g.slice(table.sin, [1], [0], [headDim / 2]);
  const pos = g.reshape(start, [1]);
  const rotate = (b: Graph, v: Value, s: Value) => b.emit('RotaryEmbedding', [v, pos, cos, s], { num_heads: heads, interleaved: 0 }, [{ dtype: v.dtype, shape: v.shape }], 'com.microsoft')[0]!;
  const y = rotate(g, x, sin);
  customGradient(y, [x], ({ g: b, GO }) => [rotate(b, GO(0), b.neg(sin))]);
  return y;
}

/**
 * silu(a)·u with σ(a) computed once and reused: du = dy·silu(a),
 * da = dy·u·silu'(a), silu'(a) = σ + silu·(1 − σ) = σ·(1 − silu) + silu.
 */
export function siluGateTrainable(g: Graph, a: Value, u: Value): Value {
  const dt = a.dtype;
  // float64: no Sigmoid-into-QuickGelu rewrite risk (no float64 kernel), see activations.ts.
  const s = dt === 'float64' ? g.reciprocal(g.add(g.scalar(1, dt), g.exp(g.neg(a)))) : g.sigmoid(a);
  const silu = g.mul(a, s);
  const y = g.mul(silu, u);
  customGradient(y, [a, u], ({ g: b, GO, needs }) => {
    const dy = GO(0);
    const da = needs(0) ? b.mul(b.mul(dy, u), b.add(b.mul(s, b.sub(b.scalar(1, dt), silu)), silu)) : undefined;
    const du = needs(1) ? b.mul(dy, silu) : undefined;
    return [da, du];
  });
  return y;
}

/** a·b with optional transposes of the last two axes and a scale: one FusedMatMul in float32 (ORT has no float64 kernel for it). */
function mm(g: Graph, a: Value, b: Value, o: { transA?: boolean; transB?: boolean; alpha?: number } = {}): Value {
  const swap = (x: Value) => {
    const r = x.shape.length;
    return g.transpose(x, [...Array(r - 2).keys(), r - 1, r - 2]);
  };
  if (a.dtype === 'float32') {
    const rows = a.shape[a.shape.length - (o.transA ? 1 : 2)]!;
    const cols = b.shape[b.shape.length - (o.transB ? 2 : 1)]!;
    const inner = [a.shape[a.shape.length - (o.transA ? 2 : 1)]!, b.shape[b.shape.length - (o.transB ? 1 : 2)]!];
    if (inner[0] !== inner[1]) throw new Error(`FusedMatMul: inner dimensions differ (${inner[0]} vs ${inner[1]})`);
    const batch = broadcastShapes('FusedMatMul', a.shape.slice(0, -2), b.shape.slice(0, -2));
    return g.emit('FusedMatMul', [a, b], { alpha: { f: o.alpha ?? 1 }, transA: o.transA ? 1 : 0, transB: o.transB ? 1 : 0 }, [{ dtype: a.dtype, shape: [...batch, rows, cols] }], 'com.microsoft')[0]!;
  }
  const p = g.matmul(o.transA ? swap(a) : a, o.transB ? swap(b) : b);
  return o.alpha === undefined || o.alpha === 1 ? p : g.mul(p, g.scalar(o.alpha, a.dtype));
}

/**
 * The core of grouped-query attention, softmax(scale·q·kᵀ + bias)·v, with q [B, Hkv, rep, T, Dh]
 * and k, v [B, Hkv, S, Dh] (each kv head serving its rep query heads by broadcasting), and its
 * backward written out: with P the probabilities and dO the upstream gradient,
 *   dP = dO·vᵀ,  dS = P ⊙ (dP − Σ_S dP ⊙ P),  dq = scale·dS·k,  dk = scale·Σ_rep dSᵀ·q,  dv = Σ_rep Pᵀ·dO,
 * every product a (Fused)MatMul with transposed operands, so neither pass materialises kᵀ, vᵀ,
 * Pᵀ or a scaled copy of q. `biases` (causal, padding) are constants of the batch: no gradient.
 */
export function attentionCoreTrainable(g: Graph, q: Value, k: Value, v: Value, biases: Value[], scale: number): Value {
  const k5 = g.unsqueeze(k, [2]);
  const v5 = g.unsqueeze(v, [2]);
  let scores = mm(g, q, k5, { transB: true, alpha: scale }); // [B, Hkv, rep, T, S]
  for (const b of biases) scores = g.add(scores, b);
  const probs = g.softmax(scores, -1);
  const ctx = mm(g, probs, v5); // [B, Hkv, rep, T, Dh]
  const rep = q.shape[2];
  // Sum over the query heads sharing a kv head ([B, Hkv, rep, S, Dh] → [B, Hkv, S, Dh]).
  const perKv = (b: Graph, x: Value) => (rep === 1 ? b.squeeze(x, [2]) : b.reduceSum(x, [2], false));
  customGradient(ctx, [q, k, v], ({ g: b, GO, needs }) => {
    const dO = GO(0);
    const dv = needs(2) ? perKv(b, mm(b, probs, dO, { transA: true })) : undefined;
    if (!needs(0) && !needs(1)) return [undefined, undefined, dv];
    const dP = mm(b, dO, v5, { transB: true });
    const dS = b.mul(probs, b.sub(dP, b.reduceSum(b.mul(dP, probs), [-1], true)));
    const dq = needs(0) ? mm(b, dS, k5, { alpha: scale }) : undefined;
    const dk = needs(1) ? perKv(b, mm(b, dS, q, { transA: true, alpha: scale })) : undefined;
    return [dq, dk, dv];
  });
  return ctx;
}

