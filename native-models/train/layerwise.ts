// Layer-gated backward for sparse layer tuning (IST, LISA-style uniform sampling).
//
// Design note. IST trains a few layers per step; the others must cost no parameter-gradient
// work, keep parameters, moments and weight decay untouched, and backward must not run below the
// lowest selected layer (ARCHITECTURE.md, "Where tensors live"). ORT runs inference graphs only,
// so skipping is done with ONNX `If` nodes whose branches hold the backward of one block:
//
//   If(active_{L−1}): dh_L = ∂loss/∂h_L                 (head backward; skipped when nothing is selected)
//   for block i from the top down to the lowest block that has trainable parameters:
//     If(active_i = lowestSelected ≤ i):
//       [dh_i, df…] = VJP of block i at dh_{i+1}        (activation gradient through the block)
//       If(selected_i): parameter gradients from df      (else: zeros)
//     else: zeros                                        (nothing below is needed either)
//
// `f…` is the block's *parameter frontier*: the outputs of the nodes where a value derived only
// from the layer's parameters (W, Transpose(A), a norm weight) meets a value derived from the
// activations (the block input). The activation gradient needs df anyway (it is dy of the
// projection), so the outer branch computes it for free; the products that turn df into a
// parameter gradient (xᵀ·dy, the expensive part) sit in the inner branch and run only for selected
// layers. Every path from a parameter to the loss crosses a frontier node, so summing the
// frontier contributions gives the exact gradient. Assumption (true for LoRA and full-layer
// tuning): a parameter-derived value enters each frontier node once, not also through the
// node's activation input.
//
// Gradients of unselected layers come out as zeros, so the global gradient norm for clipping
// sums over the selected layers only, and the optimizer update of each layer sits in its own
// If(selected_i) (train-step.ts): unselected layers keep parameters and moments bit for bit.
// A not-taken If branch costs ~0.09 ms on CPU (ENGINE-NOTES.md).
import { gradients } from '../autodiff';
import { isFloat } from '../onnx/dtype';
import type { Graph, OpNode, Value } from '../onnx';

/** The hidden state entering and leaving transformer block i (from the `block` forward hook). */
export interface BlockBoundary {
  input: Value;
  output: Value;
}

/** Run-time layer selection: bool [L] inputs (see train-step.ts, IST_SELECTED / IST_ACTIVE). */
export interface LayerGates {
  /** selected[i]: layer i's parameters get gradients and an update this step. */
  selected: Value;
  /** active[i]: lowestSelected ≤ i, so backward must pass through block i. */
  active: Value;
}

/** One element of a bool [L] vector as a scalar condition. */
export function gateAt(g: Graph, gates: Value, i: number): Value {
  return g.gather(gates, g.constant(BigInt64Array.of(BigInt(i)), [], 'int64'), 0);
}

export function zerosOf(g: Graph, v: Value): Value {
  const shape = v.shape;
  if (shape.every((d): d is number => typeof d === 'number')) return g.constantOfShape(g.ints([...shape]), 0, v.dtype, shape);
  return g.zerosLike(v);
}

function nodeInputs(n: OpNode): Value[] {
  return n.inputs.filter((x): x is Value => x !== null);
}

/** Float values of `nodes` that depend on any of `seeds` (as autodiff's activity analysis). */
function dependents(nodes: readonly OpNode[], seeds: Iterable<Value>): Set<Value> {
  const dep = new Set<Value>(seeds);
  for (const n of nodes) {
    if (!nodeInputs(n).some((v) => dep.has(v))) continue;
    for (const o of n.outputs) if (isFloat(o.dtype)) dep.add(o);
  }
  return dep;
}

/** Values on some path into `out` (walking back from it, not below `stop`). */
function ancestors(nodes: readonly OpNode[], out: Value, stop: Value): Set<Value> {
  const up = new Set<Value>([out]);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (!n.outputs.some((o) => up.has(o))) continue;
    for (const x of nodeInputs(n)) if (x !== stop) up.add(x);
  }
  return up;
}

interface FrontierEntry {
  /** The frontier node's output. */
  out: Value;
  /** Its inputs derived from parameters only. */
  paramSide: Value[];
}

/**
 * The parameter frontier of one block (see the design note): nodes reading a value that depends
 * on the block's parameters but not on its input, together with one that depends on the input.
 */
function frontierOf(nodes: readonly OpNode[], block: BlockBoundary, params: Value[], layer: number): FrontierEntry[] {
  const hdep = dependents(nodes, [block.input]);
  const pdep = dependents(nodes, params);
  const pure = (v: Value) => pdep.has(v) && !hdep.has(v);
  const inside = ancestors(nodes, block.output, block.input);
  const out: FrontierEntry[] = [];
  for (const n of nodes) {
    const ins = nodeInputs(n);
    const paramSide = [...new Set(ins.filter(pure))];
    if (paramSide.length === 0 || !ins.some((v) => hdep.has(v))) continue;
    if (n.outputs.length !== 1) throw new Error(`Layer ${layer}: parameter-derived values enter the ${n.op} node "${n.name}", which has several outputs; sparse layer tuning cannot split its gradient.`);
    if (!inside.has(n.outputs[0]!)) throw new Error(`Layer ${layer}: a trainable parameter is used outside its transformer block (node "${n.name}"); sparse layer tuning needs each layer's parameters inside that layer.`);
    out.push({ out: n.outputs[0]!, paramSide });
  }
  return out;
}

/**
 * Emits the layer-gated backward into `g` and returns, per parameter value, its gradient (zeros
 * when its layer is not selected). `layerParams[i]` are the trainable parameter values of block
 * i (empty for frozen blocks); every trainable parameter must belong to some block.
 */
export function layerwiseGradients(g: Graph, loss: Value, blocks: BlockBoundary[], layerParams: Value[][], gates: LayerGates): Map<Value, Value> {
  const L = blocks.length;
  if (layerParams.length !== L) throw new Error(`Sparse layer tuning: ${layerParams.length} parameter groups for ${L} blocks.`);
  const lo = layerParams.findIndex((ps) => ps.length > 0);
  if (lo < 0) throw new Error('Sparse layer tuning needs trainable parameters in at least one transformer block.');
  const nodes = [...g.nodes]; // the forward pass (If nodes added below are not part of it)
  // The head backward sits in If(active[L−1]) too: a run with no layer selected (a loss-only pass
  // through the train step, see TrainStep.forwardLoss) then skips every backward node.
  const last = blocks[L - 1]!.output;
  let missing = false;
  const [top] = g.if(
    gateAt(g, gates.active, L - 1),
    (b) => {
      const [d] = gradients(b, loss, [last]);
      missing = !d;
      return [d ?? zerosOf(b, last)];
    },
    (b) => [zerosOf(b, last)],
  ) as [Value];
  if (missing) throw new Error('The loss does not depend on the last transformer block; check the model function.');
  const grads = new Map<Value, Value>();
  let dOut = top;
  for (let i = L - 1; i >= lo; i--) {
    const block = blocks[i]!;
    const params = layerParams[i]!;
    const needInput = i > lo;
    const frontier = params.length ? frontierOf(nodes, block, params, i) : [];
    const seed = dOut;
    const outs = g.if(
      gateAt(g, gates.active, i),
      (b) => {
        const wrt = [...(needInput ? [block.input] : []), ...frontier.map((f) => f.out)];
        const gr = gradients(b, block.output, wrt, { seed });
        const res: Value[] = [];
        if (needInput) res.push(gr[0] ?? zerosOf(b, block.input));
        const dFront = gr.slice(needInput ? 1 : 0);
        if (params.length) {
          res.push(
            ...b.if(
              gateAt(b, gates.selected, i),
              (c) => {
                // ∂loss/∂v for each parameter-side value v, summed over the frontier nodes it enters.
                const dv = new Map<Value, Value>();
                frontier.forEach((f, k) => {
                  const df = dFront[k];
                  if (!df) return; // this frontier value does not reach the block output
                  for (const v of f.paramSide) {
                    const [d] = gradients(c, f.out, [v], { seed: df });
                    if (d) dv.set(v, dv.has(v) ? c.add(dv.get(v)!, d) : d);
                  }
                });
                return params.map((p) => {
                  let sum: Value | undefined;
                  for (const [v, d] of dv) {
                    const dp = v === p ? d : gradients(c, v, [p], { seed: d })[0];
                    if (dp) sum = sum ? c.add(sum, dp) : dp;
                  }
                  return sum ?? zerosOf(c, p);
                });
              },
              (c) => params.map((p) => zerosOf(c, p)),
            ),
          );
        }
        return res;
      },
      (b) => [...(needInput ? [zerosOf(b, block.input)] : []), ...params.map((p) => zerosOf(b, p))],
    );
    if (needInput) dOut = outs[0]!;
    params.forEach((p, k) => grads.set(p, outs[(needInput ? 1 : 0) + k]!));
  }
  return grads;
}
