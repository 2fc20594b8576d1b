// Shared by the ReduceSum and ReduceMean rules: the upstream gradient re-expanded to the input shape.
import type { Value } from '../../onnx/graph';
import type { GradContext } from '../rule';
import { normAxes } from '../util';

export function reducedBack({ g, node, I, GO, int, constInts }: GradContext): { grad: Value; axes: number[] } {
  const x = I(0);
  const rank = x.shape.length;
  const given = node.inputs.length > 1 && node.inputs[1] ? constInts(1) : [];
  if (given === undefined) throw new Error(`autodiff: ${node.op} node "${node.name}" has run-time axes; only constant axes have a gradient rule`);
  if (given.length === 0 && int('noop_with_empty_axes', 0) === 1) throw new Error(`autodiff: ${node.op} node "${node.name}" is a no-op reduction; use Identity`);
  const axes = given.length === 0 ? [...Array(rank).keys()] : normAxes(given, rank).sort((a, b) => a - b);
  let dz = GO(0);
  if (int('keepdims', 1) === 0 && axes.length > 0) dz = g.unsqueeze(dz, axes);
  return { grad: g.expandLike(dz, x), axes };
}
