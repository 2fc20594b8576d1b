// Normalisations over the last axis, composed from primitives (so autodiff needs no rule of its own);
// in graphs marked for fused kernels (fused.ts, inference only) one ONNX kernel each.
import type { Graph, Value } from '../onnx/graph';
import { fusedKernels } from './fused';
import { rmsNormTrainable } from './train-fusions';

/** RMSNorm (LLaMA): x / √(mean(x²) + eps) · weight. */
export function rmsNorm(g: Graph, x: Value, weight: Value, eps: number): Value {
  if (fusedKernels(g) && x.dtype === 'float32') return g.emit('RMSNormalization', [x, weight], { axis: -1, epsilon: { f: eps } }, [{ dtype: x.dtype, shape: x.shape }])[0]!;
  // Training form: one kernel forward, closed-form backward (train-fusions.ts).
  return rmsNormTrainable(g, x, weight, eps);
}

/** LayerNorm (GPT-2): (x − mean) / √(var + eps) · weight + bias, biased variance. */
export function layerNorm(g: Graph, x: Value, weight: Value, bias: Value, eps: number): Value {
  if (fusedKernels(g) && x.dtype === 'float32') return g.emit('LayerNormalization', [x, weight, bias], { axis: -1, epsilon: { f: eps } }, [{ dtype: x.dtype, shape: x.shape }])[0]!;
  const mean = g.reduceMean(x, [-1], true);
  const xc = g.sub(x, mean);
  const variance = g.reduceMean(g.mul(xc, xc), [-1], true);
  const inv = g.reciprocal(g.sqrt(g.add(variance, g.scalar(eps, x.dtype))));
  return g.add(g.mul(g.mul(xc, inv), weight), bias);
}
