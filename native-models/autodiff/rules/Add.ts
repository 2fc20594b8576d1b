// z = a + b  ⇒  da = dz, db = dz (unbroadcast centrally)
import type { GradRule } from '../rule';

export const Add: GradRule = {
  op: 'Add',
  grad: ({ GO }) => [GO(0), GO(0)],
};
