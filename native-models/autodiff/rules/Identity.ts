// z = a  ⇒  da = dz
import type { GradRule } from '../rule';

export const Identity: GradRule = {
  op: 'Identity',
  grad: ({ GO }) => [GO(0)],
};
