// z = softmax(a) along axis  ⇒  da = z · (dz − Σ_axis dz·z)
import type { GradRule } from '../rule';

export const Softmax: GradRule = {
  op: 'Softmax',
  grad: ({ g, O, GO, int }) => {
    const z = O(0);
    const dot = g.reduceSum(g.mul(GO(0), z), [int('axis', -1)], true);
    return [g.mul(z, g.sub(GO(0), dot))];
  },
};
