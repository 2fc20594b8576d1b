// z = √a  ⇒  da = dz · 0.5 / z
import type { GradRule } from '../rule';

export const Sqrt: GradRule = {
  op: 'Sqrt',
  grad: ({ g, O, GO, c }) => [g.div(g.mul(GO(0), c(0.5)), O(0))],
};
