// z = a^b  ⇒  da = dz · b · a^(b−1), db = dz · z · ln a (only when the exponent is not constant)
import type { GradRule } from '../rule';

export const Pow: GradRule = {
  op: 'Pow',
  grad: ({ g, I, O, GO, needs, c }) => [
    needs(0) ? g.mul(GO(0), g.mul(I(1), g.pow(I(0), g.sub(I(1), c(1))))) : undefined,
    needs(1) ? g.mul(GO(0), g.mul(O(0), g.log(I(0)))) : undefined,
  ],
};
