// Inference-only fused kernels. A graph that is never differentiated (generation, evaluation) can
// be marked with `useFusedKernels`; the nn blocks then emit one ONNX opset-23 kernel where they
// would otherwise compose primitives (RMSNorm, LayerNorm, rotary embedding, attention with its
// key/value cache). On small models onnxruntime's cost per node, not arithmetic, bounds each step,
// so fewer nodes is what makes a cached decode step cheap. Autodiff has no rules for these kernels
// and refuses such graphs, so a training graph can never pick them up by accident.
import type { Graph } from '../onnx/graph';

/** The ONNX opset that fused graphs must be serialised with (Attention, RotaryEmbedding, RMSNormalization). */
export const FUSED_OPSET = 23;

const marked = new WeakSet<Graph>();

function root(g: Graph): Graph {
  let r = g;
  while (r.parent) r = r.parent;
  return r;
}

/** Lets the nn blocks built into `g` (and its subgraphs) use fused inference kernels. */
export function useFusedKernels(g: Graph): void {
  marked.add(root(g));
}

/** Whether `g` (or the graph it is a branch of) was marked with `useFusedKernels`. */
export function fusedKernels(g: Graph): boolean {
  return marked.has(root(g));
}

/** The opset `g` needs when serialised: FUSED_OPSET for fused graphs, else undefined (the default). */
export function opsetFor(g: Graph): number | undefined {
  return fusedKernels(g) ? FUSED_OPSET : undefined;
}
