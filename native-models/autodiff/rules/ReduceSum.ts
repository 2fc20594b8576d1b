// z = Σ_axes a  ⇒  da = dz broadcast back over the reduced axes
import type { GradRule } from '../rule';
import { reducedBack } from './reduce';

export const ReduceSum: GradRule = {
  op: 'ReduceSum',
  grad: (ctx) => [reducedBack(ctx).grad, undefined],
};
