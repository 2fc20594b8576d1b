// Affine layers in the two weight layouts the model families use.
import type { Graph, Value } from '../onnx/graph';

/** y = x·Wᵀ + b with W [out, in] (Hugging Face / torch nn.Linear layout). */
export function linear(g: Graph, x: Value, weight: Value, bias?: Value): Value {
  if (weight.shape.length !== 2) throw new Error(`linear: the weight must be 2-D [out, in], not rank ${weight.shape.length}`);
  const y = g.matmul(x, g.transpose(weight, [1, 0]));
  return bias ? g.add(y, bias) : y;
}

/** y = x·W + b with W [in, out] (GPT-2's Conv1D layout). */
export function conv1d(g: Graph, x: Value, weight: Value, bias?: Value): Value {
  if (weight.shape.length !== 2) throw new Error(`conv1d: the weight must be 2-D [in, out], not rank ${weight.shape.length}`);
  const y = g.matmul(x, weight);
  return bias ? g.add(y, bias) : y;
}

/** A projection: a weight in nn.Linear layout, or any function of x (e.g. a LoRA-wrapped linear). */
export type Projection = Value | ((x: Value) => Value);

export function project(g: Graph, x: Value, p: Projection): Value {
  return typeof p === 'function' ? p(x) : linear(g, x, p);
}
