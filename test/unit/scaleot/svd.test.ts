// SVD and Selective Rank Compression, checked against PyTorch (torch.linalg.svd in float64 on
// the same float32 matrices), against matrices of known rank, and against Eckart–Young.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { svd, truncatedSvd } from '../../../native-models/scaleot/svd';
import { compressProjection, compressProjectionDense, remultiply, srcParameterCount, srcParameterTotals, srcRank } from '../../../native-models/scaleot/src';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}
const randomMatrix = (rows: number, cols: number, seed: number) => {
  const r = rng(seed);
  return Float32Array.from({ length: rows * cols }, () => r());
};
/** B [rows, k] · C [k, cols], rounded to float32: rank k up to float32 rounding. */
function lowRank(rows: number, cols: number, k: number, seed: number): Float32Array {
  const b = randomMatrix(rows, k, seed);
  const c = randomMatrix(k, cols, seed + 1);
  const a = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
    let x = 0;
    for (let t = 0; t < k; t++) x += b[i * k + t]! * c[t * cols + j]!;
    a[i * cols + j] = x;
  }
  return a;
}
/** Matrix with chosen singular values (orthogonal factors from Householder reflections). */
function withSingularValues(n: number, sv: number[], seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < sv.length; i++) a[i * n + i] = sv[i]!;
  for (let pass = 0; pass < 2; pass++) {
    for (let h = 0; h < 3; h++) {
      const v = Array.from({ length: n }, () => r());
      const norm = Math.hypot(...v);
      const u = v.map((x) => x / norm);
      // a ← (I − 2uuᵀ)·a (pass 0) or a·(I − 2uuᵀ) (pass 1)
      for (let j = 0; j < n; j++) {
        let d = 0;
        for (let i = 0; i < n; i++) d += u[i]! * (pass === 0 ? a[i * n + j]! : a[j * n + i]!);
        for (let i = 0; i < n; i++) {
          if (pass === 0) a[i * n + j]! -= 2 * u[i]! * d;
          else a[j * n + i]! -= 2 * u[i]! * d;
        }
      }
    }
  }
  return Float32Array.from(a);
}

interface Case { name: string; rows: number; cols: number; a: Float32Array }
const cases: Case[] = [
  { name: 'random 7×5', rows: 7, cols: 5, a: randomMatrix(7, 5, 1) },
  { name: 'random 5×7 (wide)', rows: 5, cols: 7, a: randomMatrix(5, 7, 2) },
  { name: 'random 64×48', rows: 64, cols: 48, a: randomMatrix(64, 48, 3) },
  { name: 'random 48×160 (wide)', rows: 48, cols: 160, a: randomMatrix(48, 160, 4) },
  { name: 'random 200×200', rows: 200, cols: 200, a: randomMatrix(200, 200, 5) },
  { name: 'row 1×9', rows: 1, cols: 9, a: randomMatrix(1, 9, 6) },
  { name: 'column 9×1', rows: 9, cols: 1, a: randomMatrix(9, 1, 7) },
  { name: 'rank 3 of 40×30', rows: 40, cols: 30, a: lowRank(40, 30, 3, 8) },
  { name: 'repeated and tiny singular values', rows: 12, cols: 12, a: withSingularValues(12, [5, 5, 5, 2, 1, 1, 1e-3, 1e-3, 1e-6, 0, 0, 0], 9) },
  { name: 'zero matrix', rows: 6, cols: 4, a: new Float32Array(24) },
  { name: 'projection 96×256 (GQA k_proj shape)', rows: 96, cols: 256, a: randomMatrix(96, 256, 10) },
];

let torchS: number[][];
let work: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'offsite-svd-'));
  cases.forEach((c, i) => writeFileSync(join(work, `m${i}.f32`), Buffer.from(c.a.buffer, c.a.byteOffset, c.a.byteLength)));
  writeFileSync(join(work, 'shapes.json'), JSON.stringify(cases.map((c) => [c.rows, c.cols])));
  const script = [
    'import json, sys, numpy as np, torch',
    'd = sys.argv[1]',
    'shapes = json.load(open(d + "/shapes.json"))',
    'out = []',
    'for i, (r, c) in enumerate(shapes):',
    '    a = np.fromfile(f"{d}/m{i}.f32", dtype=np.float32).reshape(r, c)',
    '    out.append(torch.linalg.svdvals(torch.from_numpy(a).double()).tolist())',
    'json.dump(out, open(d + "/s.json", "w"))',
  ].join('\n');
  execFileSync('/usr/bin/python3', ['-c', script, work], { stdio: 'pipe' });
  torchS = JSON.parse(readFileSync(join(work, 's.json'), 'utf8'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function reconstructionError(a: ArrayLike<number>, rows: number, cols: number, u: Float64Array, s: ArrayLike<number>, vAt: (j: number, t: number) => number, k: number): number {
  let max = 0;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
    let x = 0;
    for (let t = 0; t < k; t++) x += u[i * k + t]! * s[t]! * vAt(j, t);
    max = Math.max(max, Math.abs(x - a[i * cols + j]!));
  }
  return max;
}

describe('svd', () => {
  it.each(cases.map((c, i) => [c.name, i] as const))('%s: singular values match PyTorch to 1e-4 relative; factors are orthonormal and reconstruct A', (_name, i) => {
    const c = cases[i]!;
    const d = svd(c.a, c.rows, c.cols);
    const k = Math.min(c.rows, c.cols);
    const ref = torchS[i]!;
    expect(d.s.length).toBe(k);
    const top = Math.max(ref[0]!, 1e-30);
    for (let t = 0; t < k; t++) {
      expect(d.s[t]!).toBeGreaterThanOrEqual(0);
      if (t > 0) expect(d.s[t]!).toBeLessThanOrEqual(d.s[t - 1]!);
      // relative to the value itself, or to σ_max for values at rounding level
      expect(Math.abs(d.s[t]! - ref[t]!), `σ${t}: ${d.s[t]} vs ${ref[t]}`).toBeLessThanOrEqual(1e-4 * Math.max(ref[t]!, 1e-8 * top));
    }
    const maxAbs = c.a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    expect(reconstructionError(c.a, c.rows, c.cols, d.u!, d.s, (j, t) => d.v![j * k + t]!, k)).toBeLessThanOrEqual(1e-10 * Math.max(1, maxAbs));
    for (const [m, len] of [[d.u!, c.rows], [d.v!, c.cols]] as const) {
      for (let p = 0; p < k; p++) for (let q = p; q < k; q++) {
        let dot = 0;
        for (let r = 0; r < len; r++) dot += m[r * k + p]! * m[r * k + q]!;
        expect(Math.abs(dot - (p === q ? 1 : 0))).toBeLessThan(1e-9);
      }
    }
  });

  it('refuses non-finite values and mismatched shapes', () => {
    expect(() => svd(new Float32Array([1, NaN, 0, 1]), 2, 2)).toThrow(/non-finite value \(NaN\) at row 0, column 1/);
    expect(() => svd(new Float32Array(5), 2, 3)).toThrow(/needs 6/);
    expect(() => truncatedSvd(new Float32Array(6), 2, 3, 3)).toThrow(/from 1 to 2/);
  });
});

describe('truncated SVD', () => {
  it('reconstructs random low-rank matrices exactly (1e-5) at their rank', () => {
    for (const [rows, cols, k, seed] of [[96, 64, 8, 11], [50, 120, 5, 12], [33, 33, 1, 13]] as const) {
      const a = lowRank(rows, cols, k, seed);
      const t = truncatedSvd(a, rows, cols, k);
      expect(reconstructionError(a, rows, cols, t.u, t.s, (j, r) => t.vt[r * cols + j]!, k), `${rows}×${cols} rank ${k}`).toBeLessThanOrEqual(1e-5);
      // SRC at the matching β gives the same matrix, as factors and re-multiplied.
      const beta = k / Math.min(rows, cols);
      const f = compressProjection(a, rows, cols, beta);
      expect(f.rank).toBe(k);
      const dense = remultiply(f);
      for (let i = 0; i < a.length; i++) expect(Math.abs(dense[i]! - a[i]!)).toBeLessThanOrEqual(1e-5);
      expect(compressProjectionDense(a, rows, cols, beta).weight).toEqual(dense);
    }
  });

  it('is optimal (Eckart–Young): ‖A − A_r‖_F equals the root of the dropped σ² from PyTorch', () => {
    for (const i of [2, 3, 4, 10]) {
      const c = cases[i]!;
      const k = Math.min(c.rows, c.cols);
      for (const r of [1, Math.ceil(k / 4), Math.ceil(k / 2), k - 1]) {
        const t = truncatedSvd(c.a, c.rows, c.cols, r);
        let err2 = 0;
        let total2 = 0;
        for (let p = 0; p < c.rows; p++) for (let q = 0; q < c.cols; q++) {
          let x = 0;
          for (let s = 0; s < r; s++) x += t.u[p * r + s]! * t.s[s]! * t.vt[s * c.cols + q]!;
          err2 += (c.a[p * c.cols + q]! - x) ** 2;
          total2 += c.a[p * c.cols + q]! ** 2;
        }
        const dropped = torchS[i]!.slice(r).reduce((s, x) => s + x * x, 0);
        expect(Math.abs(Math.sqrt(err2) - Math.sqrt(dropped)), `${c.name} rank ${r}`).toBeLessThanOrEqual(1e-6 * Math.sqrt(total2));
        // SRC reports the same relative error from the singular values it dropped.
        if (r === srcRank(c.rows, c.cols, 0.5)) expect(compressProjection(c.a, c.rows, c.cols, 0.5).relativeError).toBeCloseTo(Math.sqrt(dropped / total2), 6);
      }
    }
  });
});

describe('Selective Rank Compression', () => {
  it('r = ceil(β · min(out, in))', () => {
    expect(srcRank(1024, 1024, 0.5)).toBe(512);
    expect(srcRank(256, 1024, 0.5)).toBe(128);
    expect(srcRank(10, 7, 0.3)).toBe(3);
    expect(srcRank(10, 7, 0.35)).toBe(3);
    expect(srcRank(10, 7, 0.36)).toBe(3);
    expect(srcRank(10, 7, 0.45)).toBe(4);
    expect(srcRank(9, 9, 0.01)).toBe(1);
    expect(srcRank(9, 9, 1)).toBe(9);
    expect(() => srcRank(9, 9, 0)).toThrow(/above 0/);
  });

  it('factors W into U_r·Σ_r [out, r] and V_rᵀ [r, in] with orthonormal rows in V_rᵀ', () => {
    const c = cases[10]!; // 96×256
    const f = compressProjection(c.a, c.rows, c.cols, 0.5);
    expect(f.rank).toBe(48);
    expect(f.left.length).toBe(96 * 48);
    expect(f.right.length).toBe(48 * 256);
    for (let p = 0; p < f.rank; p++) {
      let nl = 0;
      let nr = 0;
      for (let i = 0; i < c.rows; i++) nl += f.left[i * f.rank + p]! ** 2;
      for (let j = 0; j < c.cols; j++) nr += f.right[p * c.cols + j]! ** 2;
      expect(Math.sqrt(nl)).toBeCloseTo(torchS[10]![p]!, 4); // column norms of U_rΣ_r are the σ
      expect(nr).toBeCloseTo(1, 5);
    }
  });

  it('reduces the parameter count at β = 0.5 for a model’s attention projections', () => {
    // A LLaMA-style block, hidden 1024, 4 of 16 heads for k/v (GQA): q, o [1024, 1024]; k, v [256, 1024].
    const shapes = [{ out: 1024, in: 1024 }, { out: 256, in: 1024 }, { out: 256, in: 1024 }, { out: 1024, in: 1024 }];
    const kv = srcParameterCount(256, 1024, 0.5);
    expect(kv).toMatchObject({ rank: 128, before: 262144, factored: 128 * 1280, factoredIsSmaller: true });
    const totals = srcParameterTotals(shapes, 0.5);
    expect(totals.before).toBe(2 * 1024 * 1024 + 2 * 256 * 1024);
    expect(totals.factored).toBe(2 * 512 * 2048 + 2 * 128 * 1280);
    expect(totals.factored).toBeLessThan(totals.before);
    // A square projection at β = 0.5 stores exactly as many numbers as factors; β = 0.25 halves it.
    expect(srcParameterCount(1024, 1024, 0.5)).toMatchObject({ factored: 1024 * 1024, factoredIsSmaller: false });
    expect(srcParameterCount(1024, 1024, 0.25).ratio).toBe(0.5);
  });
});
