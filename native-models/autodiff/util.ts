// Small graph helpers the gradient rules share.
import type { Graph, Value } from '../onnx/graph';

/** Swaps the last two axes (matrix transpose of a batch of matrices). */
export function swapLast2(g: Graph, x: Value): Value {
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  perm[r - 1] = r - 2;
  perm[r - 2] = r - 1;
  return g.transpose(x, perm);
}

/** Normalises (possibly negative) axes against `rank`. */
export function normAxes(axes: number[], rank: number): number[] {
  return axes.map((a) => (a < 0 ? a + rank : a));
}

/**
 * Sum of a list of contributions. Three or more of one shape become one variadic Sum: one pass
 * over memory instead of a chain of Adds each writing a full-size intermediate.
 */
export function addAll(g: Graph, xs: Value[]): Value {
  const first = xs[0]!;
  if (xs.length > 2 && xs.every((x) => x.dtype === first.dtype && x.shape.length === first.shape.length && x.shape.every((d, i) => d === first.shape[i]))) {
    return g.emit('Sum', xs, {}, [{ dtype: first.dtype, shape: first.shape }])[0]!;
  }
  let acc = first;
  for (let i = 1; i < xs.length; i++) acc = g.add(acc, xs[i]!);
  return acc;
}
