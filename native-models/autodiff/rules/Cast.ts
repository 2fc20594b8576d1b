// z = cast(a)  ⇒  da = cast(dz) back to a's float type (only float inputs ever need one)
import type { GradRule } from '../rule';

export const Cast: GradRule = {
  op: 'Cast',
  grad: ({ g, I, GO }) => [g.cast(GO(0), I(0).dtype)],
};
