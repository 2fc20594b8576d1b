// z = a − b  ⇒  da = dz, db = −dz
import type { GradRule } from '../rule';

export const Sub: GradRule = {
  op: 'Sub',
  grad: ({ g, GO, needs }) => [GO(0), needs(1) ? g.neg(GO(0)) : undefined],
};
