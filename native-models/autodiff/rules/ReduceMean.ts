// z = mean_axes a  ⇒  da = dz broadcast back over the reduced axes / (number of reduced elements)
import type { GradRule } from '../rule';
import { reducedBack } from './reduce';

export const ReduceMean: GradRule = {
  op: 'ReduceMean',
  grad: (ctx) => {
    const { g, I, O } = ctx;
    const { grad, axes } = reducedBack(ctx);
    const dims = axes.map((a) => I(0).shape[a]!);
    const count = dims.every((d) => typeof d === 'number')
      ? ctx.c((dims as number[]).reduce((p, q) => p * q, 1))
      : g.cast(g.div(size(g, I(0)), size(g, O(0))), I(0).dtype);
    return [g.div(grad, count), undefined];
  },
};

function size(g: import('../../onnx/graph').Graph, x: import('../../onnx/graph').Value) {
  return g.emit('Size', [x], {}, [{ dtype: 'int64', shape: [] }])[0]!;
}
