// z = concat(a₀, a₁, …; axis)  ⇒  daᵢ = the slice of dz that aᵢ occupies (one Split)
import type { Value } from '../../onnx/graph';
import type { GradRule } from '../rule';

export const Concat: GradRule = {
  op: 'Concat',
  grad: ({ g, node, I, GO, needs, int }) => {
    const n = node.inputs.length;
    const xs = [...Array(n).keys()].map((i) => I(i));
    const axis = int('axis', 0);
    const ax = axis < 0 ? axis + xs[0]!.shape.length : axis;
    const sizes = xs.map((x) => x.shape[ax]!);
    // Sizes are read at run time when symbolic (e.g. a KV cache's past length).
    const split: Value = sizes.every((d) => typeof d === 'number')
      ? g.ints(sizes as number[])
      : g.concat(xs.map((x) => g.unsqueeze(g.dim(x, ax), [0])), 0);
    const parts = g.emit('Split', [GO(0), split], { axis: ax }, xs.map((x) => ({ dtype: x.dtype, shape: x.shape })));
    return parts.map((p, i) => (needs(i) ? p : undefined));
  },
};
