// z = a[starts:ends] (steps 1)  ⇒  da = dz zero-padded back to a's shape
import type { Value } from '../../onnx/graph';
import type { GradRule } from '../rule';

export const Slice: GradRule = {
  op: 'Slice',
  grad: ({ g, node, I, O, GO, constInts }) => {
    const x = I(0);
    const rank = x.shape.length;
    const fail = (why: string) => new Error(`autodiff: Slice node "${node.name}": ${why}`);
    const starts = constInts(1);
    const ends = constInts(2);
    if (!starts || !ends) throw fail('only constant starts and ends have a gradient rule');
    const axes = node.inputs[3] ? constInts(3) : [...starts.keys()];
    if (!axes) throw fail('only constant axes have a gradient rule');
    const steps = node.inputs[4] ? constInts(4) : undefined;
    if (steps && steps.some((s) => s !== 1)) throw fail('only step 1 has a gradient rule');

    const begins: (number | Value)[] = new Array(rank).fill(0);
    axes.forEach((a, i) => {
      const ax = a < 0 ? a + rank : a;
      const d = x.shape[ax]!;
      const s = starts[i]!;
      const e = ends[i]!;
      if (typeof d === 'number') begins[ax] = Math.min(Math.max(s < 0 ? s + d : s, 0), d);
      else if (s >= 0) begins[ax] = s;
      else if (e >= Number.MAX_SAFE_INTEGER) begins[ax] = g.sub(g.dim(x, ax), g.dim(O(0), ax)); // a tail slice
      else throw fail(`a negative start on symbolic dimension ${ax} with an explicit end has no gradient rule`);
    });
    const beginVec = begins.every((b) => typeof b === 'number')
      ? g.ints(begins as number[])
      : g.concat(begins.map((b) => (typeof b === 'number' ? g.ints([b]) : g.unsqueeze(b, [0]))), 0);
    const endVec = g.sub(g.sub(g.shapeOf(x), g.shapeOf(O(0))), beginVec);
    return [g.pad(GO(0), g.concat([beginVec, endVec], 0), x.shape), undefined, undefined, undefined, undefined];
  },
};
