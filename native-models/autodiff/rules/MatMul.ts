// z = a · b (batched, broadcasting batch axes)  ⇒  da = dz · bᵀ, db = aᵀ · dz
// (batch axes that were broadcast are summed by the central unbroadcast)
import type { Graph, Value } from '../../onnx/graph';
import type { GradRule } from '../rule';
import { swapLast2 } from '../util';

export const MatMul: GradRule = {
  op: 'MatMul',
  grad: ({ g, node, I, GO, needs }) => {
    const a = I(0);
    const b = I(1);
    if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`autodiff: MatMul node "${node.name}" has a rank-1 operand; only rank ≥ 2 has a gradient rule`);
    const da = needs(0) ? g.matmul(GO(0), swapLast2(g, b)) : undefined;
    const db = needs(1) ? (flatWeightGrad(g, a, b, GO(0)) ?? g.matmul(swapLast2(g, a), GO(0))) : undefined;
    return [da, db];
  },
};

/**
 * x[..., K] · W[K, N]: rather than a batch of [K, N] products summed afterwards, fold the batch
 * axes into the rows and do one [K, rows]·[rows, N] product (no batch-sized intermediate).
 */
function flatWeightGrad(g: Graph, a: Value, b: Value, dz: Value): Value | undefined {
  if (b.shape.length !== 2 || a.shape.length <= 2) return undefined;
  const k = a.shape[a.shape.length - 1]!;
  const n = b.shape[1]!;
  if (typeof k !== 'number' || typeof n !== 'number') return undefined;
  const lead = a.shape.slice(0, -1);
  const rows = lead.every((d) => typeof d === 'number') ? (lead as number[]).reduce((p, q) => p * q, 1) : lead.join('*');
  const a2 = g.reshape(a, [rows, k]);
  const dz2 = g.reshape(dz, [rows, n]);
  return g.gemm(a2, dz2, null, { transA: true });
}
