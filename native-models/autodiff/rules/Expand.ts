// z = expand(a, shape)  ⇒  da = dz summed over the broadcast axes (done by the central unbroadcast)
import type { GradRule } from '../rule';

export const Expand: GradRule = {
  op: 'Expand',
  grad: ({ GO }) => [GO(0), undefined],
};
