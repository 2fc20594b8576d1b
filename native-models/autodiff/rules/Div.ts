// z = a / b  ⇒  da = dz / b, db = −dz · z / b
import type { GradRule } from '../rule';

export const Div: GradRule = {
  op: 'Div',
  grad: ({ g, I, O, GO, needs }) => [
    needs(0) ? g.div(GO(0), I(1)) : undefined,
    needs(1) ? g.neg(g.div(g.mul(GO(0), O(0)), I(1))) : undefined,
  ],
};
