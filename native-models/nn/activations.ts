// Activations used by the model families.
import type { Graph, Value } from '../onnx/graph';
import { project, type Projection } from './linear';
import { siluGateTrainable } from './train-fusions';

/**
 * SiLU (swish): x · σ(x). In float64 it is written x / (1 + e^(−x)): ORT rewrites x · σ(x) into
 * com.microsoft QuickGelu, which has no float64 kernel (float64 graphs serve the gradient checks).
 */
export function silu(g: Graph, x: Value): Value {
  if (x.dtype === 'float64') return g.div(x, g.add(g.scalar(1, x.dtype), g.exp(g.neg(x))));
  return g.mul(x, g.sigmoid(x));
}

/** GELU, tanh approximation (Hugging Face "gelu_new", GPT-2): ½x(1 + tanh(√(2/π)(x + 0.044715x³))). */
export function geluTanh(g: Graph, x: Value): Value {
  const c = (v: number) => g.scalar(v, x.dtype);
  const x3 = g.mul(g.mul(x, x), x);
  const inner = g.mul(c(Math.sqrt(2 / Math.PI)), g.add(x, g.mul(c(0.044715), x3)));
  return g.mul(g.mul(c(0.5), x), g.add(c(1), g.tanh(inner)));
}

/** LLaMA MLP: down(silu(gate(x)) · up(x)); each projection a weight [out, in] or a function. */
export function swiGLU(g: Graph, x: Value, gate: Projection, up: Projection, down: Projection): Value {
  // σ computed once and reused by a closed-form backward (train-fusions.ts).
  return project(g, siluGateTrainable(g, project(g, x, gate), project(g, x, up)), down);
}
