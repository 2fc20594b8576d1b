// z = −a  ⇒  da = −dz
import type { GradRule } from '../rule';

export const Neg: GradRule = {
  op: 'Neg',
  grad: ({ g, GO }) => [g.neg(GO(0))],
};
