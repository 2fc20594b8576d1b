// z = logsoftmax(a) along axis  ⇒  da = dz − exp(z) · Σ_axis dz
import type { GradRule } from '../rule';

export const LogSoftmax: GradRule = {
  op: 'LogSoftmax',
  grad: ({ g, O, GO, int }) => [g.sub(GO(0), g.mul(g.exp(O(0)), g.reduceSum(GO(0), [int('axis', -1)], true)))],
};
