// Symbolic shapes: a dimension is a number or a name (e.g. "batch", "seq"). Names that are equal
// denote the same runtime size; that is what makes build-time checks and unbroadcasting possible.
export type Dim = number | string;
export type Shape = readonly Dim[];

export function fmtShape(s: Shape): string {
  return `[${s.join(', ')}]`;
}

export function sameDim(a: Dim, b: Dim): boolean {
  return a === b;
}

export function numel(s: Shape): number | undefined {
  let n = 1;
  for (const d of s) {
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}

/** Numpy broadcasting of two shapes; throws a message naming `op` when they cannot broadcast. */
export function broadcastShapes(op: string, a: Shape, b: Shape): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da === db) out.push(da);
    else if (da === 1) out.push(db);
    else if (db === 1) out.push(da);
    else throw new Error(`${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (dimension ${i}: ${da} vs ${db})`);
  }
  return out;
}

export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}
