// Token-level losses over logits [B, T, V].
import { customGradient } from '../autodiff/gradients';
import type { Graph, Value } from '../onnx/graph';

function checkLogits(op: string, logits: Value, targets: Value): void {
  if (logits.shape.length !== 3) throw new Error(`${op}: logits must be [batch, positions, vocab], not rank ${logits.shape.length}`);
  if (targets.shape.length !== 2) throw new Error(`${op}: targets must be [batch, positions], not rank ${targets.shape.length}`);
  if (targets.dtype !== 'int64' && targets.dtype !== 'int32') throw new Error(`${op}: targets must be int64 or int32, not ${targets.dtype}`);
}

/**
 * Mean token cross-entropy over positions where mask ≠ 0 (0 when there are none). Stable through
 * LogSoftmax. Targets at masked positions are ignored (they may be −100). Its gradient is the
 * fused (softmax − onehot)·mask/count, one [B, T, V] scatter-add onto the softmax; the mask gets
 * no gradient.
 */
export function crossEntropy(g: Graph, logits: Value, targets: Value, mask: Value): Value {
  checkLogits('crossEntropy', logits, targets);
  if (mask.dtype !== logits.dtype) throw new Error(`crossEntropy: the mask must be ${logits.dtype} like the logits, not ${mask.dtype}`);
  const zero = g.scalar(0, logits.dtype);
  const safe = g.where(g.binary('Greater', mask, zero), g.cast(targets, 'int64'), g.scalar(0, 'int64'));
  const where = g.unsqueeze(safe, [2]); // [B, T, 1]
  const lsm = g.logSoftmax(logits, -1);
  const picked = g.squeeze(g.gatherElements(lsm, where, 2), [2]); // [B, T]
  const count = g.max(g.reduceSum(mask, [0, 1], false), g.scalar(1, logits.dtype));
  const loss = g.div(g.neg(g.reduceSum(g.mul(picked, mask), [0, 1], false)), count);
  customGradient(loss, [logits, mask], ({ g, GO, needs }) => {
    if (needs(1)) throw new Error('crossEntropy: the label mask is not differentiable');
    const w = g.unsqueeze(g.mul(mask, g.div(GO(0), count)), [2]); // [B, T, 1]
    return [g.scatterElements(g.mul(g.exp(lsm), w), where, g.neg(w), 2, 'add'), undefined];
  });
  return loss;
}

/** log p(target) at every position, [B, T] (for evaluation: perplexity, choice log-likelihoods). */
export function tokenLogProbs(g: Graph, logits: Value, targets: Value): Value {
  checkLogits('tokenLogProbs', logits, targets);
  const where = g.unsqueeze(g.cast(targets, 'int64'), [2]);
  return g.squeeze(g.gatherElements(g.logSoftmax(logits, -1), where, 2), [2]);
}
