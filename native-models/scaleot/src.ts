// Selective Rank Compression (ScaleOT, ALGORITHMS.md §3): on the kept middle blocks only, each
// chosen attention projection W [out, in] becomes its rank-r truncated SVD with
// r = ceil(β · min(out, in)), stored as two factors (U_r·Σ_r [out, r] and V_rᵀ [r, in]: smaller
// and cheaper whenever r·(out + in) < out·in) or re-multiplied into one [out, in] matrix. Which
// blocks and projections are compressed is the caller's choice (SRC never touches adapter
// layers, embeddings or the LM head); this file does the compression of one matrix.
import { svd } from './svd';

/** The attention projections SRC may compress; all four by default. */
export const SRC_PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const;
export type SrcProjection = (typeof SRC_PROJECTIONS)[number];
export const DEFAULT_RANK_RATIO = 0.5;

/** r = ceil(β · min(out, in)), at least 1. */
export function srcRank(out: number, inF: number, beta: number): number {
  if (!(beta > 0 && beta <= 1)) throw new RangeError(`The rank ratio β must be above 0 and at most 1, got ${beta}.`);
  // The small epsilon keeps β·min from rounding up past an exact integer (0.5·1024 = 512, not 513).
  return Math.max(1, Math.min(Math.min(out, inF), Math.ceil(beta * Math.min(out, inF) - 1e-9)));
}

export interface SrcFactors {
  rank: number;
  out: number;
  in: number;
  /** U_r·Σ_r, row-major [out, rank]. */
  left: Float32Array;
  /** V_rᵀ, row-major [rank, in]. */
  right: Float32Array;
  /** The kept singular values (descending). */
  singularValues: Float64Array;
  /** ‖W − left·right‖_F / ‖W‖_F, from the dropped singular values (Eckart–Young). */
  relativeError: number;
}

/**
 * Factors W [out, in] (row-major) into U_r·Σ_r and V_rᵀ. Only the right singular vectors are
 * accumulated: U_r·Σ_r equals W·V_r, which is computed directly (cheaper, and exact in Σ's scale).
 */
export function compressProjection(w: Float32Array | Float64Array, out: number, inF: number, beta: number = DEFAULT_RANK_RATIO): SrcFactors {
  if (w.length !== out * inF) throw new RangeError(`The projection has ${w.length} values, but [${out}, ${inF}] needs ${out * inF}.`);
  const rank = srcRank(out, inF, beta);
  const d = svd(w, out, inF, { wantU: false, wantV: true });
  const k = Math.min(out, inF);
  const v = d.v!; // row-major [in, k]
  const right = new Float32Array(rank * inF);
  for (let j = 0; j < rank; j++) for (let i = 0; i < inF; i++) right[j * inF + i] = v[i * k + j]!;
  // left = W · V_r, accumulated in float64.
  const left = new Float32Array(out * rank);
  const vr = new Float64Array(inF * rank);
  for (let i = 0; i < inF; i++) for (let j = 0; j < rank; j++) vr[i * rank + j] = v[i * k + j]!;
  const acc = new Float64Array(rank);
  for (let o = 0; o < out; o++) {
    acc.fill(0);
    const row = o * inF;
    for (let i = 0; i < inF; i++) {
      const x = w[row + i]!;
      if (x === 0) continue;
      const off = i * rank;
      for (let j = 0; j < rank; j++) acc[j]! += x * vr[off + j]!;
    }
    for (let j = 0; j < rank; j++) left[o * rank + j] = acc[j]!;
  }
  let kept = 0;
  let dropped = 0;
  for (let i = 0; i < k; i++) (i < rank ? (kept += d.s[i]! ** 2) : (dropped += d.s[i]! ** 2));
  const total = kept + dropped;
  return { rank, out, in: inF, left, right, singularValues: d.s.slice(0, rank), relativeError: total > 0 ? Math.sqrt(dropped / total) : 0 };
}

/** left·right as one row-major [out, in] matrix (the "re-multiplied" storage). */
export function remultiply(f: Pick<SrcFactors, 'left' | 'right' | 'rank' | 'out' | 'in'>): Float32Array {
  const { left, right, rank, out } = f;
  const inF = f.in;
  const result = new Float32Array(out * inF);
  const acc = new Float64Array(inF);
  for (let o = 0; o < out; o++) {
    acc.fill(0);
    for (let j = 0; j < rank; j++) {
      const l = left[o * rank + j]!;
      const off = j * inF;
      for (let i = 0; i < inF; i++) acc[i]! += l * right[off + i]!;
    }
    result.set(acc, o * inF);
  }
  return result;
}

/** The rank-r approximation of W, same shape (SRC's re-multiplied storage). */
export function compressProjectionDense(w: Float32Array | Float64Array, out: number, inF: number, beta: number = DEFAULT_RANK_RATIO): { weight: Float32Array; rank: number; relativeError: number } {
  const f = compressProjection(w, out, inF, beta);
  return { weight: remultiply(f), rank: f.rank, relativeError: f.relativeError };
}

export interface SrcParameterCount {
  rank: number;
  before: number;
  /** Parameters stored as factors: rank·(out + in). */
  factored: number;
  /** Parameters stored re-multiplied: out·in (no saving; the rank limit is the privacy effect). */
  remultiplied: number;
  /** factored / before. */
  ratio: number;
  /** Whether factors are actually smaller than the dense matrix. */
  factoredIsSmaller: boolean;
}

/** Parameter counts of one projection before and after SRC. */
export function srcParameterCount(out: number, inF: number, beta: number = DEFAULT_RANK_RATIO): SrcParameterCount {
  const rank = srcRank(out, inF, beta);
  const before = out * inF;
  const factored = rank * (out + inF);
  return { rank, before, factored, remultiplied: before, ratio: factored / before, factoredIsSmaller: factored < before };
}

/** Totals over many projections (e.g. all kept middle blocks of a model). */
export function srcParameterTotals(shapes: Array<{ out: number; in: number }>, beta: number = DEFAULT_RANK_RATIO): { before: number; factored: number; ratio: number } {
  let before = 0;
  let factored = 0;
  for (const s of shapes) {
    const c = srcParameterCount(s.out, s.in, beta);
    before += c.before;
    factored += c.factored;
  }
  return { before, factored, ratio: before > 0 ? factored / before : 1 };
}
