// Learning-rate schedules computed inside the train-step graph from the step input, so a resumed
// run needs nothing but the step number. Scalar math is float64 whatever the parameters' type.
import type { Graph, Value } from '../onnx';

export type DecayKind = 'constant' | 'linear' | 'cosine';

export interface ScheduleSpec {
  /** Peak learning rate. */
  lr: number;
  /** Linear warmup length in updates (default 0). */
  warmupSteps?: number;
  /** Total number of updates of the run; required by linear and cosine decay. */
  totalSteps?: number;
  decay?: DecayKind;
  /** Floor the decay ends at (default 0). */
  minLr?: number;
}

export function checkSchedule(s: ScheduleSpec): Required<ScheduleSpec> {
  const decay = s.decay ?? 'constant';
  const warmup = s.warmupSteps ?? 0;
  const total = s.totalSteps ?? 0;
  const minLr = s.minLr ?? 0;
  if (!(Number.isFinite(s.lr) && s.lr >= 0)) throw new Error(`The learning rate must be a number ≥ 0 (got ${s.lr}).`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`Warmup steps must be a whole number ≥ 0 (got ${warmup}).`);
  if (decay !== 'constant' && (!Number.isInteger(total) || total <= 0)) throw new Error(`A ${decay} schedule needs the total number of steps (got ${s.totalSteps}).`);
  if (!(minLr >= 0 && minLr <= s.lr)) throw new Error(`The minimum learning rate must lie between 0 and the learning rate (got ${minLr}).`);
  return { lr: s.lr, warmupSteps: warmup, totalSteps: total, decay, minLr };
}

/**
 * The learning rate of update `t` (1-based, float64 scalar Value):
 * with s = t − 1, warmup gives lr·(s+1)/warmup for s < warmup (the first update already moves);
 * afterwards progress p = clamp((s − warmup) / max(1, total − warmup), 0, 1) and
 * constant: lr; linear: minLr + (lr − minLr)(1 − p); cosine: minLr + (lr − minLr)·½(1 + cos πp).
 */
export function learningRate(g: Graph, t: Value, spec: ScheduleSpec): Value {
  const s = checkSchedule(spec);
  const c = (x: number) => g.scalar(x, 'float64');
  const idx = g.sub(t, c(1));
  let decayed: Value;
  if (s.decay === 'constant') decayed = c(s.lr);
  else {
    const span = Math.max(1, s.totalSteps - s.warmupSteps);
    const raw = g.div(g.sub(idx, c(s.warmupSteps)), c(span));
    const p = g.binary('Min', g.binary('Max', raw, c(0)), c(1));
    const shape =
      s.decay === 'linear'
        ? g.sub(c(1), p)
        : g.mul(c(0.5), g.add(c(1), g.unary('Cos', g.mul(p, c(Math.PI)))));
    decayed = g.add(c(s.minLr), g.mul(c(s.lr - s.minLr), shape));
  }
  if (s.warmupSteps === 0) return decayed;
  const warm = g.mul(c(s.lr / s.warmupSteps), g.add(idx, c(1)));
  return g.where(g.binary('Less', idx, c(s.warmupSteps)), warm, decayed);
}
