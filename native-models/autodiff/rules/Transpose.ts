// z = transpose(a, perm)  ⇒  da = transpose(dz, perm⁻¹)
import type { GradRule } from '../rule';

export const Transpose: GradRule = {
  op: 'Transpose',
  grad: ({ g, I, GO, attr }) => {
    const rank = I(0).shape.length;
    const perm = (attr('perm') as number[] | undefined) ?? [...Array(rank).keys()].reverse();
    const inv: number[] = new Array(rank);
    perm.forEach((p, i) => (inv[p] = i));
    return [g.transpose(GO(0), inv)];
  },
};
