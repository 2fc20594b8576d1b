// The shape every gradient rule has: `{ op, grad(ctx) }`. A rule returns, aligned with the node's
// inputs, the gradient of the loss with respect to each input that `ctx.needs(i)`, in the shape of
// the node's output when it broadcasts (the engine unbroadcasts once, centrally), or undefined for
// inputs that need none.
import type { Attr, Graph, OpNode, Value } from '../onnx/graph';

export interface GradContext {
  readonly g: Graph;
  readonly node: OpNode;
  /** Input i of the node. */
  I(i: number): Value;
  /** Output i of the node. */
  O(i: number): Value;
  /** Upstream gradient of output i (zeros of its shape when nothing downstream used it). */
  GO(i: number): Value;
  /** True when output i received an upstream gradient. */
  hasGO(i: number): boolean;
  /** True when input i is a float value on a path from some wrt: only those need a gradient. */
  needs(i: number): boolean;
  /** Integer attribute (or its default). */
  int(name: string, dflt: number): number;
  /** Raw attribute. */
  attr(name: string): Attr | undefined;
  /** A scalar constant in the dtype of the node's gradient. */
  c(v: number): Value;
  /** Constant int64 contents of input i (axes, starts, shapes); undefined when absent or not constant. */
  constInts(i: number): number[] | undefined;
}

export type InputGrads = (Value | undefined)[];

export interface GradRule {
  readonly op: string;
  grad(ctx: GradContext): InputGrads;
}
