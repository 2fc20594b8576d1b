// z = ln a  ⇒  da = dz / a
import type { GradRule } from '../rule';

export const Log: GradRule = {
  op: 'Log',
  grad: ({ g, I, GO }) => [g.div(GO(0), I(0))],
};
