// z = eᵃ  ⇒  da = dz · z
import type { GradRule } from '../rule';

export const Exp: GradRule = {
  op: 'Exp',
  grad: ({ g, O, GO }) => [g.mul(GO(0), O(0))],
};
