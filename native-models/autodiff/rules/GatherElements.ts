// z = gatherElements(a, idx; axis)  ⇒  da = zeros(a) with dz scatter-added at idx along axis
import type { GradRule } from '../rule';

export const GatherElements: GradRule = {
  op: 'GatherElements',
  grad: ({ g, I, GO, int }) => [g.scatterElements(g.zerosLike(I(0)), I(1), GO(0), int('axis', 0), 'add'), undefined],
};
