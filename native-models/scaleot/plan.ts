// Which layers an emulator keeps (ALGORITHMS.md §1–3): the adapter/middle split, uniform LayerDrop's
// kept indices, ScaleOT's groups, the per-group sampling of replacement sets and the final choice.
// Pure functions over layer indices, so the rules are unit-tested without a model.
import { sampleWithoutReplacement, type Rng } from '../data/prng';

export interface LayerSplit {
  layers: number;
  bottom: number;
  top: number;
  /** Original indices of the middle layers, ascending. */
  middle: number[];
}

/** Splits L blocks into bottom adapter, middle and top adapter layers. */
export function splitLayers(layers: number, bottom: number, top: number): LayerSplit {
  for (const [label, v] of [['bottom', bottom], ['top', top]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`The ${label} adapter layer count must be a whole number ≥ 0, not ${v}.`);
  }
  if (bottom + top >= layers) throw new RangeError(`${bottom} + ${top} adapter layers leave no middle layer in a model of ${layers} layers; use fewer adapter layers.`);
  return { layers, bottom, top, middle: Array.from({ length: layers - bottom - top }, (_, k) => bottom + k) };
}

/**
 * Uniform LayerDrop (Offsite-Tuning): positions round(i·(m−1)/(n_keep−1)), i = 0..n_keep−1, of the
 * m middle layers; the first and last are always kept. n_keep = 1 keeps the first (our choice:
 * the formula is undefined there).
 */
export function uniformKeptPositions(m: number, nKeep: number): number[] {
  if (!Number.isInteger(m) || m < 1) throw new RangeError(`There must be at least one middle layer, not ${m}.`);
  if (!Number.isInteger(nKeep) || nKeep < 1 || nKeep > m) throw new RangeError(`The number of kept middle layers must be a whole number from 1 to ${m}, not ${nKeep}.`);
  if (nKeep === 1) return [0];
  return Array.from({ length: nKeep }, (_, i) => Math.round((i * (m - 1)) / (nKeep - 1)));
}

/** Consecutive groups of size g over the middle layers (the last group may be smaller). */
export function groupsOf(middle: readonly number[], g: number): number[][] {
  if (!Number.isInteger(g) || g < 1) throw new RangeError(`The group size must be a whole number ≥ 1, not ${g}.`);
  const out: number[][] = [];
  for (let i = 0; i < middle.length; i += g) out.push(middle.slice(i, i + g));
  return out;
}

/** Layers replaced per group: round(α·|group|) (JavaScript rounding, .5 up). */
export function replacedPerGroup(groupSize: number, alpha: number): number {
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`The replace ratio α must be between 0 and 1, not ${alpha}.`);
  return Math.round(alpha * groupSize);
}

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * One replacement set: in every group, round(α·g) layers drawn without replacement with weights
 * sigmoid(r_i) (r indexed by original layer). Returned ascending.
 */
export function sampleReplacement(groups: readonly number[][], alpha: number, scores: ReadonlyMap<number, number>, rng: Rng): number[] {
  const out: number[] = [];
  for (const grp of groups) {
    const k = replacedPerGroup(grp.length, alpha);
    const w = grp.map((l) => sigmoid(scores.get(l) ?? 0));
    for (const j of sampleWithoutReplacement(rng, w, k)) out.push(grp[j]!);
  }
  return out.sort((a, b) => a - b);
}

/**
 * The final choice: in every group, the round(α·g) layers with the HIGHEST replaceability are
 * replaced (ties: the later layer, so equal scores replace from the top of the group down — our
 * choice; deeper middle layers tend to matter less).
 */
export function finalReplacement(groups: readonly number[][], alpha: number, scores: ReadonlyMap<number, number>): number[] {
  const out: number[] = [];
  for (const grp of groups) {
    const k = replacedPerGroup(grp.length, alpha);
    const ranked = [...grp].sort((a, b) => (scores.get(b) ?? 0) - (scores.get(a) ?? 0) || b - a);
    out.push(...ranked.slice(0, k));
  }
  return out.sort((a, b) => a - b);
}

/** How many distinct replacement sets the groups allow (capped; for the RL's distinct candidates). */
export function distinctSetCount(groups: readonly number[][], alpha: number, cap = 1e6): number {
  let n = 1;
  for (const grp of groups) {
    const k = replacedPerGroup(grp.length, alpha);
    let c = 1;
    for (let i = 0; i < k; i++) c = (c * (grp.length - i)) / (i + 1);
    n = Math.min(cap, n * Math.round(c));
  }
  return n;
}
