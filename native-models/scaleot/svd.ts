// Singular value decomposition in pure TypeScript, float64 throughout: Householder
// bidiagonalisation followed by implicit-shift QR on the bidiagonal (Golub–Kahan–Reinsch, in the
// LINPACK dsvdc / JAMA formulation, which is robust for rank-deficient and ill-conditioned
// matrices). Matrices are kept column-major so every inner loop runs over contiguous memory;
// a 1024×1024 matrix takes seconds. Used by Selective Rank Compression (src.ts).

export interface SvdOptions {
  /** Compute the left singular vectors (default true). */
  wantU?: boolean;
  /** Compute the right singular vectors (default true). */
  wantV?: boolean;
  /** QR sweeps allowed per singular value before giving up (default 75). */
  maxSweepsPerValue?: number;
}

export interface Svd {
  rows: number;
  cols: number;
  /** min(rows, cols) singular values, descending, non-negative. */
  s: Float64Array;
  /** Left singular vectors, row-major [rows, k] (k = min(rows, cols)); null when not asked for. */
  u: Float64Array | null;
  /** Right singular vectors, row-major [cols, k]; null when not asked for. */
  v: Float64Array | null;
}

type Matrix = Float32Array | Float64Array | ArrayLike<number>;

function checkShape(a: Matrix, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) throw new RangeError(`An SVD needs a matrix of at least 1×1, got ${rows}×${cols}.`);
  if (a.length !== rows * cols) throw new RangeError(`The matrix has ${a.length} values, but ${rows}×${cols} needs ${rows * cols}.`);
}

/**
 * Core: A is m×n with m ≥ n, column-major in `a` (overwritten). Returns s (n), U (m×n, column-major)
 * and V (n×n, column-major).
 */
function gkr(a: Float64Array, m: number, n: number, wantu: boolean, wantv: boolean, maxSweeps: number): { s: Float64Array; U: Float64Array | null; V: Float64Array | null } {
  const nu = n;
  const s = new Float64Array(n);
  const e = new Float64Array(n);
  const work = new Float64Array(m);
  const U = wantu ? new Float64Array(m * nu) : null;
  const V = wantv ? new Float64Array(n * n) : null;
  const nct = Math.min(m - 1, n);
  const nrt = Math.max(0, Math.min(n - 2, m));

  // Householder bidiagonalisation: diagonal in s, super-diagonal in e.
  for (let k = 0; k < Math.max(nct, nrt); k++) {
    const ck = k * m;
    if (k < nct) {
      let norm = 0;
      for (let i = k; i < m; i++) norm += a[ck + i]! * a[ck + i]!;
      norm = Math.sqrt(norm);
      if (!Number.isFinite(norm)) norm = scaledNorm(a, ck + k, ck + m);
      s[k] = norm;
      if (s[k] !== 0) {
        if (a[ck + k]! < 0) s[k] = -s[k]!;
        const inv = 1 / s[k]!;
        for (let i = k; i < m; i++) a[ck + i]! *= inv;
        a[ck + k]! += 1;
      }
      s[k] = -s[k]!;
    }
    for (let j = k + 1; j < n; j++) {
      const cj = j * m;
      if (k < nct && s[k] !== 0) {
        let t = 0;
        for (let i = k; i < m; i++) t += a[ck + i]! * a[cj + i]!;
        t = -t / a[ck + k]!;
        for (let i = k; i < m; i++) a[cj + i]! += t * a[ck + i]!;
      }
      e[j] = a[cj + k]!;
    }
    if (U && k < nct) for (let i = k; i < m; i++) U[k * m + i] = a[ck + i]!;
    if (k < nrt) {
      let norm = 0;
      for (let i = k + 1; i < n; i++) norm += e[i]! * e[i]!;
      norm = Math.sqrt(norm);
      if (!Number.isFinite(norm)) norm = scaledNorm(e, k + 1, n);
      e[k] = norm;
      if (e[k] !== 0) {
        if (e[k + 1]! < 0) e[k] = -e[k]!;
        const inv = 1 / e[k]!;
        for (let i = k + 1; i < n; i++) e[i]! *= inv;
        e[k + 1]! += 1;
      }
      e[k] = -e[k]!;
      if (k + 1 < m && e[k] !== 0) {
        for (let i = k + 1; i < m; i++) work[i] = 0;
        for (let j = k + 1; j < n; j++) {
          const ej = e[j]!;
          const cj = j * m;
          for (let i = k + 1; i < m; i++) work[i]! += ej * a[cj + i]!;
        }
        for (let j = k + 1; j < n; j++) {
          const t = -e[j]! / e[k + 1]!;
          const cj = j * m;
          for (let i = k + 1; i < m; i++) a[cj + i]! += t * work[i]!;
        }
      }
      if (V) for (let i = k + 1; i < n; i++) V[k * n + i] = e[i]!;
    }
  }

  // The final bidiagonal matrix of order p.
  let p = Math.min(n, m + 1);
  if (nct < n) s[nct] = a[nct * m + nct]!;
  if (m < p) s[p - 1] = 0;
  if (nrt + 1 < p) e[nrt] = a[(p - 1) * m + nrt]!;
  e[p - 1] = 0;

  if (U) {
    for (let j = nct; j < nu; j++) {
      U.fill(0, j * m, (j + 1) * m);
      U[j * m + j] = 1;
    }
    for (let k = nct - 1; k >= 0; k--) {
      const ck = k * m;
      if (s[k] !== 0) {
        for (let j = k + 1; j < nu; j++) {
          const cj = j * m;
          let t = 0;
          for (let i = k; i < m; i++) t += U[ck + i]! * U[cj + i]!;
          t = -t / U[ck + k]!;
          for (let i = k; i < m; i++) U[cj + i]! += t * U[ck + i]!;
        }
        for (let i = k; i < m; i++) U[ck + i] = -U[ck + i]!;
        U[ck + k] = 1 + U[ck + k]!;
        for (let i = 0; i < k; i++) U[ck + i] = 0;
      } else {
        U.fill(0, ck, ck + m);
        U[ck + k] = 1;
      }
    }
  }

  if (V) {
    for (let k = n - 1; k >= 0; k--) {
      const ck = k * n;
      if (k < nrt && e[k] !== 0) {
        for (let j = k + 1; j < nu; j++) {
          const cj = j * n;
          let t = 0;
          for (let i = k + 1; i < n; i++) t += V[ck + i]! * V[cj + i]!;
          t = -t / V[ck + k + 1]!;
          for (let i = k + 1; i < n; i++) V[cj + i]! += t * V[ck + i]!;
        }
      }
      V.fill(0, ck, ck + n);
      V[ck + k] = 1;
    }
  }

  // Implicit-shift QR on the bidiagonal.
  const rot = (M: Float64Array, rowsM: number, c1: number, c2: number, cs: number, sn: number) => {
    const o1 = c1 * rowsM;
    const o2 = c2 * rowsM;
    for (let i = 0; i < rowsM; i++) {
      const x = M[o1 + i]!;
      const y = M[o2 + i]!;
      M[o1 + i] = cs * x + sn * y;
      M[o2 + i] = -sn * x + cs * y;
    }
  };
  const pp = p - 1;
  const eps = 2 ** -52;
  const tiny = 2 ** -966;
  const maxIter = maxSweeps * Math.max(1, n);
  let totalIter = 0;
  while (p > 0) {
    if (totalIter > maxIter) throw new Error(`The SVD did not converge after ${totalIter} QR sweeps (matrix ${m}×${n}); the matrix may hold NaN or infinite values.`);
    let k: number;
    let kase: number;
    for (k = p - 2; k >= -1; k--) {
      if (k === -1) break;
      if (Math.abs(e[k]!) <= tiny + eps * (Math.abs(s[k]!) + Math.abs(s[k + 1]!))) {
        e[k] = 0;
        break;
      }
    }
    if (k === p - 2) kase = 4;
    else {
      let ks: number;
      for (ks = p - 1; ks >= k; ks--) {
        if (ks === k) break;
        const t = (ks !== p ? Math.abs(e[ks]!) : 0) + (ks !== k + 1 ? Math.abs(e[ks - 1]!) : 0);
        if (Math.abs(s[ks]!) <= tiny + eps * t) {
          s[ks] = 0;
          break;
        }
      }
      if (ks === k) kase = 3;
      else if (ks === p - 1) kase = 1;
      else {
        kase = 2;
        k = ks;
      }
    }
    k++;

    switch (kase) {
      case 1: {
        // Deflate a negligible s[p-1].
        let f = e[p - 2]!;
        e[p - 2] = 0;
        for (let j = p - 2; j >= k; j--) {
          const t = Math.hypot(s[j]!, f);
          const cs = s[j]! / t;
          const sn = f / t;
          s[j] = t;
          if (j !== k) {
            f = -sn * e[j - 1]!;
            e[j - 1] = cs * e[j - 1]!;
          }
          if (V) rot(V, n, j, p - 1, cs, sn);
        }
        break;
      }
      case 2: {
        // Split at a negligible s[k-1].
        let f = e[k - 1]!;
        e[k - 1] = 0;
        for (let j = k; j < p; j++) {
          const t = Math.hypot(s[j]!, f);
          const cs = s[j]! / t;
          const sn = f / t;
          s[j] = t;
          f = -sn * e[j]!;
          e[j] = cs * e[j]!;
          if (U) rot(U, m, j, k - 1, cs, sn);
        }
        break;
      }
      case 3: {
        // One QR step with the Wilkinson-like shift from the trailing 2×2.
        const scale = Math.max(Math.abs(s[p - 1]!), Math.abs(s[p - 2]!), Math.abs(e[p - 2]!), Math.abs(s[k]!), Math.abs(e[k]!));
        const sp = s[p - 1]! / scale;
        const spm1 = s[p - 2]! / scale;
        const epm1 = e[p - 2]! / scale;
        const sk = s[k]! / scale;
        const ek = e[k]! / scale;
        const b = ((spm1 + sp) * (spm1 - sp) + epm1 * epm1) / 2;
        const c = sp * epm1 * (sp * epm1);
        let shift = 0;
        if (b !== 0 || c !== 0) {
          shift = Math.sqrt(b * b + c);
          if (b < 0) shift = -shift;
          shift = c / (b + shift);
        }
        let f = (sk + sp) * (sk - sp) + shift;
        let g = sk * ek;
        for (let j = k; j < p - 1; j++) {
          let t = Math.hypot(f, g);
          let cs = f / t;
          let sn = g / t;
          if (j !== k) e[j - 1] = t;
          f = cs * s[j]! + sn * e[j]!;
          e[j] = cs * e[j]! - sn * s[j]!;
          g = sn * s[j + 1]!;
          s[j + 1] = cs * s[j + 1]!;
          if (V) rot(V, n, j, j + 1, cs, sn);
          t = Math.hypot(f, g);
          cs = f / t;
          sn = g / t;
          s[j] = t;
          f = cs * e[j]! + sn * s[j + 1]!;
          s[j + 1] = -sn * e[j]! + cs * s[j + 1]!;
          g = sn * e[j + 1]!;
          e[j + 1] = cs * e[j + 1]!;
          if (U && j < m - 1) rot(U, m, j, j + 1, cs, sn);
        }
        e[p - 2] = f;
        totalIter++;
        break;
      }
      default: {
        // Convergence: make s[k] non-negative, then move it into descending order.
        if (s[k]! <= 0) {
          s[k] = s[k]! < 0 ? -s[k]! : 0;
          if (V) for (let i = 0; i <= pp; i++) V[k * n + i] = -V[k * n + i]!;
        }
        while (k < pp) {
          if (s[k]! >= s[k + 1]!) break;
          const t = s[k]!;
          s[k] = s[k + 1]!;
          s[k + 1] = t;
          if (V && k < n - 1) swapColumns(V, n, k, k + 1);
          if (U && k < m - 1) swapColumns(U, m, k, k + 1);
          k++;
        }
        p--;
      }
    }
  }
  return { s, U, V };
}

function swapColumns(M: Float64Array, rowsM: number, c1: number, c2: number): void {
  const o1 = c1 * rowsM;
  const o2 = c2 * rowsM;
  for (let i = 0; i < rowsM; i++) {
    const t = M[o1 + i]!;
    M[o1 + i] = M[o2 + i]!;
    M[o2 + i] = t;
  }
}

/** 2-norm without overflow, for the rare column whose plain sum of squares is not finite. */
function scaledNorm(x: Float64Array, from: number, to: number): number {
  let scale = 0;
  for (let i = from; i < to; i++) scale = Math.max(scale, Math.abs(x[i]!));
  if (scale === 0 || !Number.isFinite(scale)) return scale;
  let sum = 0;
  for (let i = from; i < to; i++) {
    const r = x[i]! / scale;
    sum += r * r;
  }
  return scale * Math.sqrt(sum);
}

/** Column-major [cols, k] (k columns of length `len`) → row-major [len, k]. */
function toRowMajor(colMajor: Float64Array, len: number, k: number): Float64Array {
  const out = new Float64Array(len * k);
  for (let j = 0; j < k; j++) {
    const o = j * len;
    for (let i = 0; i < len; i++) out[i * k + j] = colMajor[o + i]!;
  }
  return out;
}

/**
 * Thin SVD of the row-major rows×cols matrix `a`: A = U·diag(s)·Vᵀ with k = min(rows, cols)
 * singular values, descending. A wide matrix is decomposed through its transpose.
 */
export function svd(a: Matrix, rows: number, cols: number, opts: SvdOptions = {}): Svd {
  checkShape(a, rows, cols);
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) throw new RangeError(`The matrix holds a non-finite value (${a[i]}) at row ${Math.floor(i / cols)}, column ${i % cols}; an SVD needs finite numbers.`);
  const wantU = opts.wantU ?? true;
  const wantV = opts.wantV ?? true;
  const maxSweeps = opts.maxSweepsPerValue ?? 75;
  const k = Math.min(rows, cols);
  if (rows >= cols) {
    // Row-major A (rows×cols) read column by column is the column-major copy gkr wants.
    const cm = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) cm[j * rows + i] = a[i * cols + j]!;
    const r = gkr(cm, rows, cols, wantU, wantV, maxSweeps);
    return { rows, cols, s: r.s, u: r.U ? toRowMajor(r.U, rows, k) : null, v: r.V ? toRowMajor(r.V, cols, k) : null };
  }
  // Aᵀ (cols×rows, tall) column-major is A row-major as it is: Aᵀ = U'ΣV'ᵀ, so A = V'ΣU'ᵀ.
  const cm = Float64Array.from(a as ArrayLike<number>);
  const r = gkr(cm, cols, rows, wantV, wantU, maxSweeps);
  return { rows, cols, s: r.s, u: r.V ? toRowMajor(r.V, rows, k) : null, v: r.U ? toRowMajor(r.U, cols, k) : null };
}

export interface TruncatedSvd {
  rank: number;
  /** The `rank` largest singular values, descending. */
  s: Float64Array;
  /** Row-major [rows, rank]. */
  u: Float64Array;
  /** Row-major [rank, cols]: the first `rank` rows of Vᵀ. */
  vt: Float64Array;
}

/** The rank-r truncation U_r Σ_r V_rᵀ, the best rank-r approximation in Frobenius and spectral norm. */
export function truncatedSvd(a: Matrix, rows: number, cols: number, rank: number): TruncatedSvd {
  const k = Math.min(rows, cols);
  if (!Number.isInteger(rank) || rank < 1 || rank > k) throw new RangeError(`The rank must be a whole number from 1 to ${k} for a ${rows}×${cols} matrix, got ${rank}.`);
  const full = svd(a, rows, cols);
  const u = new Float64Array(rows * rank);
  for (let i = 0; i < rows; i++) for (let j = 0; j < rank; j++) u[i * rank + j] = full.u![i * k + j]!;
  const vt = new Float64Array(rank * cols);
  for (let j = 0; j < rank; j++) for (let i = 0; i < cols; i++) vt[j * cols + i] = full.v![i * k + j]!;
  return { rank, s: full.s.slice(0, rank), u, vt };
}
