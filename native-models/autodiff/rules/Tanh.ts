// z = tanh a  ⇒  da = dz · (1 − z²)
import type { GradRule } from '../rule';

export const Tanh: GradRule = {
  op: 'Tanh',
  grad: ({ g, O, GO, c }) => [g.mul(GO(0), g.sub(c(1), g.mul(O(0), O(0))))],
};
