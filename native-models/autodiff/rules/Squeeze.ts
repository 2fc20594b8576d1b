// z = squeeze(a)  ⇒  da = dz reshaped to a's (run-time) shape
import type { GradRule } from '../rule';

export const Squeeze: GradRule = {
  op: 'Squeeze',
  grad: ({ g, I, GO }) => [g.reshapeLike(GO(0), I(0)), undefined],
};
