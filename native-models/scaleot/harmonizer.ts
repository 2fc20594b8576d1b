// The harmonizer (ALGORITHMS.md §3, our choice of "lightweight network"): a residual bottleneck
// that stands in for one dropped block, h + W_up · SiLU(W_down · RMSNorm(h)). W_up starts at zero,
// so a fresh harmonizer equals dropping the layer and training can only improve on that.
import { Rng } from '../data/prng';
import { rmsNorm } from '../nn/norm';
import { silu } from '../nn/activations';
import { linear } from '../nn/linear';
import type { Graph, Value } from '../onnx/graph';

/** RMSNorm epsilon inside harmonizers (fixed, family-independent). */
export const HARMONIZER_EPS = 1e-6;

export const HARMONIZER_PARTS = ['norm', 'down', 'up'] as const;
export type HarmonizerPart = (typeof HARMONIZER_PARTS)[number];

/** Default hidden width: max(8, d/16). */
export function harmonizerHidden(d: number, hidden?: number): number {
  const h = hidden ?? Math.max(8, Math.floor(d / 16));
  if (!Number.isInteger(h) || h < 1) throw new RangeError(`The harmonizer width must be a whole number ≥ 1, not ${h}.`);
  return h;
}

/** Weight name of a harmonizer part, under the block prefix (e.g. "model.layers.3."). */
export function harmonizerName(blockPrefix: string, part: HarmonizerPart): string {
  return `${blockPrefix}harmonizer.${part}.weight`;
}

export function harmonizerShapes(d: number, hidden: number): Record<HarmonizerPart, number[]> {
  return { norm: [d], down: [hidden, d], up: [d, hidden] };
}

/**
 * Fresh harmonizer weights: norm ones, W_down Kaiming-uniform like torch's nn.Linear default
 * (U(−1/√d, 1/√d)), W_up zero. Seeded.
 */
export function initHarmonizer(d: number, hidden: number, seed: number): Record<HarmonizerPart, Float32Array> {
  const rng = new Rng(seed);
  const bound = 1 / Math.sqrt(d);
  return {
    norm: new Float32Array(d).fill(1),
    down: Float32Array.from({ length: hidden * d }, () => (rng.next() * 2 - 1) * bound),
    up: new Float32Array(d * hidden),
  };
}

/** h + W_up · SiLU(W_down · RMSNorm(h)), weights [hidden, d] and [d, hidden] in nn.Linear layout. */
export function harmonizerForward(g: Graph, h: Value, w: { norm: Value; down: Value; up: Value }): Value {
  return g.add(h, linear(g, silu(g, linear(g, rmsNorm(g, h, w.norm, HARMONIZER_EPS), w.down)), w.up));
}

/** Parameters of one harmonizer. */
export function harmonizerParameterCount(d: number, hidden: number): number {
  return d + 2 * d * hidden;
}
