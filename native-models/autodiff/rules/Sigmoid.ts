// z = σ(a)  ⇒  da = dz · z · (1 − z)
import type { GradRule } from '../rule';

export const Sigmoid: GradRule = {
  op: 'Sigmoid',
  grad: ({ g, O, GO, c }) => [g.mul(GO(0), g.mul(O(0), g.sub(c(1), O(0))))],
};
