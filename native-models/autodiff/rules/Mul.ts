// z = a · b  ⇒  da = dz · b, db = dz · a
import type { GradRule } from '../rule';

export const Mul: GradRule = {
  op: 'Mul',
  grad: ({ g, I, GO, needs }) => [
    needs(0) ? g.mul(GO(0), I(1)) : undefined,
    needs(1) ? g.mul(GO(0), I(0)) : undefined,
  ],
};
