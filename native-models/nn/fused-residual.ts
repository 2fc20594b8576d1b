// Residual add followed by RMSNorm, the seam between every two sublayers of a pre-norm block. In a
// graph marked for fused kernels (fused.ts, inference only) it is one com.microsoft
// SkipSimplifiedLayerNormalization, which returns both the normalised sum and the sum itself;
// otherwise an Add and rmsNorm. On small models each node saved is a fixed cost saved per step.
import type { Graph, Value } from '../onnx/graph';
import { fusedKernels } from './fused';
import { rmsNorm } from './norm';

export interface ResidualNorm {
  /** x + y: the residual stream. */
  sum: Value;
  /** RMSNorm(x + y) · weight: the next sublayer's input. */
  normed: Value;
}

/** x + y (same shape) and its RMSNorm with `weight` [d] over the last axis. */
export function residualRmsNorm(g: Graph, x: Value, y: Value, weight: Value, eps: number): ResidualNorm {
  const sameShape = x.shape.length === y.shape.length && x.shape.every((d, i) => d === y.shape[i]);
  if (fusedKernels(g) && x.dtype === 'float32' && y.dtype === 'float32' && sameShape) {
    const stat = { dtype: x.dtype, shape: [...x.shape.slice(0, -1), 1] };
    // Outputs: normed, mean and inverse std (optional, never read: left out), input + skip.
    const [normed, , , sum] = g.emit('SkipSimplifiedLayerNormalization', [x, y, weight], { epsilon: { f: eps } }, [{ dtype: x.dtype, shape: x.shape }, stat, stat, { dtype: x.dtype, shape: x.shape }], 'com.microsoft', undefined, [1, 2, 3]);
    return { sum: sum!, normed: normed! };
  }
  const sum = g.add(x, y);
  return { sum, normed: rmsNorm(g, sum, weight, eps) };
}
