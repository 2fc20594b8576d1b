// z = cond ? a : b  ⇒  da = cond ? dz : 0, db = cond ? 0 : dz (cond gets none)
import type { GradRule } from '../rule';

export const Where: GradRule = {
  op: 'Where',
  grad: ({ g, I, GO, needs, c }) => [
    undefined,
    needs(1) ? g.where(I(0), GO(0), c(0)) : undefined,
    needs(2) ? g.where(I(0), c(0), GO(0)) : undefined,
  ],
};
