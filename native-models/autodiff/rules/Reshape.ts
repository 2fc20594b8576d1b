// z = reshape(a)  ⇒  da = dz reshaped to a's (run-time) shape
import type { GradRule } from '../rule';

export const Reshape: GradRule = {
  op: 'Reshape',
  grad: ({ g, I, GO }) => [g.reshapeLike(GO(0), I(0)), undefined],
};
