// (z₀, z₁, …) = split(a; axis)  ⇒  da = concat(dz₀, dz₁, …) with zeros for unused outputs
import type { GradRule } from '../rule';

export const Split: GradRule = {
  op: 'Split',
  grad: ({ g, node, I, GO, int }) => {
    const x = I(0);
    const axis = int('axis', 0);
    const ax = axis < 0 ? axis + x.shape.length : axis;
    const parts = node.outputs.map((_, i) => GO(i));
    return [g.emit('Concat', parts, { axis: ax }, [{ dtype: x.dtype, shape: x.shape }])[0], undefined];
  },
};
