// z = gather(a, idx; axis)  ⇒  da = zeros(a) with dz scatter-added at idx (repeated indices add up),
// via ScatterND(reduction=add), which ORT's CPU provider runs for float32 and float64.
import type { GradRule } from '../rule';

export const Gather: GradRule = {
  op: 'Gather',
  grad: ({ g, I, GO, int }) => {
    const data = I(0);
    const idx = g.cast(I(1), 'int64');
    const r = data.shape.length;
    const ri = idx.shape.length;
    const ax = ((int('axis', 0) % r) + r) % r;
    const where = g.unsqueeze(idx, [ri]);
    if (ax === 0) return [g.scatterND(g.zerosLike(data), where, GO(0), 'add'), undefined];
    // Move the gathered axis to the front, scatter there, and move it back.
    const permD = [ax, ...[...Array(r).keys()].filter((i) => i !== ax)];
    const permG = [...Array(ri).keys()].map((i) => ax + i);
    for (let i = 0; i < r + ri - 1; i++) if (i < ax || i >= ax + ri) permG.push(i);
    const shapeT = permD.map((p) => data.shape[p]!);
    const zeros = g.constantOfShape(g.gather(g.shapeOf(data), g.ints(permD)), 0, data.dtype, shapeT);
    const scattered = g.scatterND(zeros, where, g.transpose(GO(0), permG), 'add');
    const inv: number[] = new Array(r);
    permD.forEach((p, i) => (inv[p] = i));
    return [g.transpose(scattered, inv), undefined];
  },
};
