// z = unsqueeze(a)  ⇒  da = dz reshaped to a's (run-time) shape
import type { GradRule } from '../rule';

export const Unsqueeze: GradRule = {
  op: 'Unsqueeze',
  grad: ({ g, I, GO }) => [g.reshapeLike(GO(0), I(0)), undefined],
};
