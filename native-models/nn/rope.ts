// Rotary position embedding, Hugging Face convention: the head dimension is split in halves
// (rotate_half), and the cos/sin tables repeat the frequencies over both halves.
import { allocate, type DType } from '../onnx/dtype';
import type { Graph, Value } from '../onnx/graph';
import { ropeTrainable } from './train-fusions';

export interface RopeTables {
  /** [maxPositions, headDim] */
  cos: Float64Array;
  sin: Float64Array;
  maxPositions: number;
  headDim: number;
}

/** cos/sin of position·θ^(−2i/d), i < d/2, each repeated over both halves of the head dim. */
export function ropeTables(headDim: number, maxPositions: number, theta = 10000, invFreq?: readonly number[]): RopeTables {
  if (headDim % 2 !== 0) throw new Error(`rope: the head dimension must be even, not ${headDim}`);
  const half = headDim / 2;
  const freqs = invFreq ? [...invFreq] : Array.from({ length: half }, (_, i) => 1 / Math.pow(theta, (2 * i) / headDim));
  if (freqs.length !== half) throw new Error(`rope: ${freqs.length} inverse frequencies given for head dimension ${headDim} (${half} expected)`);
  const cos = new Float64Array(maxPositions * headDim);
  const sin = new Float64Array(maxPositions * headDim);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * freqs[i]!;
      for (const j of [i, i + half]) {
        cos[p * headDim + j] = Math.cos(a);
        sin[p * headDim + j] = Math.sin(a);
      }
    }
  }
  return { cos, sin, maxPositions, headDim };
}

/** The tables as graph constants in `dtype`. */
export function ropeConstants(g: Graph, t: RopeTables, dtype: DType = 'float32'): { cos: Value; sin: Value } {
  const conv = (src: Float64Array) => {
    const out = allocate(dtype, src.length) as Float32Array | Float64Array;
    out.set(src);
    return out;
  };
  const shape = [t.maxPositions, t.headDim];
  return { cos: g.constant(conv(t.cos), shape, dtype), sin: g.constant(conv(t.sin), shape, dtype) };
}

/**
 * Where ropeAt's rows came from, so a fused rotary kernel (which indexes the full table itself)
 * can be given the table and positions instead of the gathered rows.
 */
const ropeSources = new WeakMap<Value, { table: { cos: Value; sin: Value }; positions: Value }>();
/** The first position of a `positionIds` range (when positions = start + arange(T)). */
const rangeStarts = new WeakMap<Value, Value>();

/**
 * The table rows for `positions` (int64 [T] or [B, T]): [T, headDim] or [B, T, headDim].
 * For KV-cache decoding pass positions = past length + arange(T) (see `positionIds`).
 */
export function ropeAt(g: Graph, table: { cos: Value; sin: Value }, positions: Value): { cos: Value; sin: Value } {
  const rows = { cos: g.gather(table.cos, positions, 0), sin: g.gather(table.sin, positions, 0) };
  ropeSources.set(rows.cos, { table, positions });
  return rows;
}

/** The table and the first position behind rows from `ropeAt` over `positionIds`, if that is how they were made. */
export function ropeSource(rows: { cos: Value; sin: Value }): { table: { cos: Value; sin: Value }; start: Value } | undefined {
  const src = ropeSources.get(rows.cos);
  const start = src && rangeStarts.get(src.positions);
  return src && start ? { table: src.table, start } : undefined;
}

/** int64 [T] positions offset, offset+1, …, offset+T−1 where T is `x`'s dimension `axis`. */
export function positionIds(g: Graph, x: Value, axis: number, offset?: Value): Value {
  const len = g.dim(x, axis);
  const start = offset ?? g.scalar(0, 'int64');
  if (start.dtype !== 'int64' || start.shape.length !== 0) throw new Error('positionIds: the offset must be an int64 scalar');
  const d = x.shape[axis < 0 ? axis + x.shape.length : axis]!;
  const positions = g.range(start, g.add(start, len), g.scalar(1, 'int64'), d);
  rangeStarts.set(positions, start);
  return positions;
}

/**
 * x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁]. `x` is [..., T, headDim]; `cos`/`sin`
 * broadcast against it ([T, headDim], or [B, 1, …, T, headDim] for per-row positions).
 */
export function rope(g: Graph, x: Value, cos: Value, sin: Value): Value {
  const d = x.shape[x.shape.length - 1];
  if (typeof d !== 'number' || d % 2 !== 0) throw new Error(`rope: the last dimension of ${x.name} must be a known even size, not ${d}`);
  // Fewer nodes forward, and the rotation by −θ as its gradient (train-fusions.ts).
  return ropeTrainable(g, x, cos, sin);
}
