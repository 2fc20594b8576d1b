// z = max(a, 0)  ⇒  da = dz where a > 0, else 0
import type { GradRule } from '../rule';

export const Relu: GradRule = {
  op: 'Relu',
  grad: ({ g, I, GO, c }) => [g.where(g.binary('Greater', I(0), c(0)), GO(0), c(0))],
};
