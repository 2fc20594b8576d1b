// z = erf a  ⇒  da = dz · 2/√π · exp(−a²)
import type { GradRule } from '../rule';

export const Erf: GradRule = {
  op: 'Erf',
  grad: ({ g, I, GO, c }) => [g.mul(GO(0), g.mul(c(2 / Math.sqrt(Math.PI)), g.exp(g.neg(g.mul(I(0), I(0))))))],
};
