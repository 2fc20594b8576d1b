// z = 1/a  ⇒  da = −dz · z²
import type { GradRule } from '../rule';

export const Reciprocal: GradRule = {
  op: 'Reciprocal',
  grad: ({ g, O, GO }) => [g.neg(g.mul(GO(0), g.mul(O(0), O(0))))],
};
