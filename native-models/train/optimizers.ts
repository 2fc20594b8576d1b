// In-graph optimizers (ALGORITHMS.md §6). Each parameter's update is a handful of elementwise ops
// in the parameter's own type; the per-step scalars (learning rate, bias corrections, clip factor)
// are float64 and cast once per type. Formulas follow PyTorch's AdamW and SGD exactly, so the
// PyTorch oracle can check them.
import type { DType, Graph, Value } from '../onnx';

export interface AdamWSpec {
  type: 'adamw';
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export interface SGDSpec {
  type: 'sgd';
  /** 0 = plain SGD (no momentum buffer). */
  momentum?: number;
  /** L2 penalty added to the gradient, as torch.optim.SGD does. */
  weightDecay?: number;
}

export type OptimizerSpec = AdamWSpec | SGDSpec;

/** The per-parameter state an optimizer keeps between steps, by slot name. */
export function optimizerSlots(spec: OptimizerSpec): string[] {
  if (spec.type === 'adamw') return ['m', 'v'];
  return (spec.momentum ?? 0) > 0 ? ['momentum'] : [];
}

export function checkOptimizer(spec: OptimizerSpec): void {
  const inUnit = (label: string, x: number) => {
    if (!(x >= 0 && x < 1)) throw new Error(`${label} must lie in [0, 1) (got ${x}).`);
  };
  if (spec.type === 'adamw') {
    inUnit('AdamW beta1', spec.beta1 ?? 0.9);
    inUnit('AdamW beta2', spec.beta2 ?? 0.999);
    if (!((spec.eps ?? 1e-8) > 0)) throw new Error(`AdamW epsilon must be > 0 (got ${spec.eps}).`);
  } else if (spec.type === 'sgd') {
    inUnit('SGD momentum', spec.momentum ?? 0);
  } else {
    throw new Error(`Unknown optimizer "${(spec as { type: string }).type}"; use "adamw" or "sgd".`);
  }
  if (!((spec.weightDecay ?? 0) >= 0)) throw new Error(`Weight decay must be ≥ 0 (got ${spec.weightDecay}).`);
}

/** Per-step scalars shared by all parameters, float64. */
export interface StepScalars {
  /** Update number t, 1-based. */
  t: Value;
  lr: Value;
}

/** Casts float64 scalars to other types once per graph and type. */
export class ScalarCache {
  private cache = new Map<string, Value>();
  constructor(private readonly g: Graph) {}
  as(v: Value, dtype: DType): Value {
    if (v.dtype === dtype) return v;
    const key = `${v.name}→${dtype}`;
    let out = this.cache.get(key);
    if (!out) {
      out = this.g.cast(v, dtype);
      this.cache.set(key, out);
    }
    return out;
  }
}

export interface ParamUpdate {
  param: Value;
  /** The (already clipped and averaged) gradient. */
  grad: Value;
  slots: Record<string, Value>;
  /** False for parameters excluded from weight decay. */
  decay: boolean;
}

/** Float64 scalars the optimizer derives from t and lr once per step. */
export function optimizerScalars(g: Graph, spec: OptimizerSpec, s: StepScalars): Record<string, Value> {
  const c = (x: number) => g.scalar(x, 'float64');
  const wd = spec.weightDecay ?? 0;
  if (spec.type === 'adamw') {
    const b1 = spec.beta1 ?? 0.9;
    const b2 = spec.beta2 ?? 0.999;
    const bc1 = g.sub(c(1), g.pow(c(b1), s.t));
    const bc2 = g.sub(c(1), g.pow(c(b2), s.t));
    return {
      stepSize: g.div(s.lr, bc1),
      invSqrtBc2: g.reciprocal(g.sqrt(bc2)),
      decayFactor: g.sub(c(1), g.mul(s.lr, c(wd))),
      lr: s.lr,
    };
  }
  return { lr: s.lr };
}

/** Emits one parameter's update; returns the new parameter and slot values. */
export function applyOptimizer(
  g: Graph,
  spec: OptimizerSpec,
  scalars: Record<string, Value>,
  cast: ScalarCache,
  u: ParamUpdate,
): { param: Value; slots: Record<string, Value> } {
  const dt = u.param.dtype;
  const k = (x: number) => g.scalar(x, dt);
  const sc = (name: string) => cast.as(scalars[name]!, dt);
  const wd = spec.weightDecay ?? 0;
  if (spec.type === 'adamw') {
    const b1 = spec.beta1 ?? 0.9;
    const b2 = spec.beta2 ?? 0.999;
    const eps = spec.eps ?? 1e-8;
    const m = g.add(g.mul(k(b1), u.slots.m!), g.mul(k(1 - b1), u.grad));
    const v = g.add(g.mul(k(b2), u.slots.v!), g.mul(k(1 - b2), g.mul(u.grad, u.grad)));
    // PyTorch's order: p·(1 − lr·wd) − (lr/bc1)·m / (sqrt(v)/sqrt(bc2) + ε); ε stays outside the sqrt.
    const denom = g.add(g.mul(g.sqrt(v), sc('invSqrtBc2')), k(eps));
    const decayed = u.decay && wd > 0 ? g.mul(u.param, sc('decayFactor')) : u.param;
    const param = g.sub(decayed, g.mul(sc('stepSize'), g.div(m, denom)));
    return { param, slots: { m, v } };
  }
  const mu = spec.momentum ?? 0;
  const grad = u.decay && wd > 0 ? g.add(u.grad, g.mul(k(wd), u.param)) : u.grad;
  // A zero-initialised buffer makes torch's "buf = g on the first step" the same formula.
  const dir = mu > 0 ? g.add(g.mul(k(mu), u.slots.momentum!), grad) : grad;
  const param = g.sub(u.param, g.mul(sc('lr'), dir));
  return { param, slots: mu > 0 ? { momentum: dir } : {} };
}

/**
 * Global L2 norm of all gradients (float64 scalar) and, when `maxNorm` > 0, the factor
 * min(1, maxNorm / (norm + 1e-6)) that torch.nn.utils.clip_grad_norm_ multiplies them by.
 */
export function globalGradNorm(g: Graph, grads: Value[], maxNorm: number): { norm: Value; factor: Value | undefined } {
  let total: Value | undefined;
  for (const gr of grads) {
    const sq = gr.shape.length === 0 ? g.mul(gr, gr) : g.reduce('ReduceSumSquare', gr, gr.shape.map((_, i) => i), false);
    const sq64 = g.cast(sq, 'float64');
    total = total ? g.add(total, sq64) : sq64;
  }
  const norm = g.sqrt(total ?? g.scalar(0, 'float64'));
  if (!(maxNorm > 0)) return { norm, factor: undefined };
  const factor = g.binary('Min', g.div(g.scalar(maxNorm, 'float64'), g.add(norm, g.scalar(1e-6, 'float64'))), g.scalar(1, 'float64'));
  return { norm, factor };
}
