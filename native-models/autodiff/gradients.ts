// Reverse-mode differentiation over the builder's graph. Walks back from `loss` through the nodes
// that lie on a path from some `wrt` value, asks each node's rule for its input gradients, sums
// multiple contributions with Add, and unbroadcasts broadcast inputs in one place.
import { isFloat } from '../onnx/dtype';
import type { Graph, OpNode, Value } from '../onnx/graph';
import { fmtShape, type Dim } from '../onnx/shape';
import { RULES } from './register';
import type { GradContext, GradRule, InputGrads } from './rule';
import { addAll } from './util';

/**
 * A hand-written gradient for `out` with respect to `inputs`, used instead of differentiating the
 * nodes between them (e.g. the fused softmax cross-entropy gradient). `GO(0)` is the gradient of
 * `out`; `I(i)` and `needs(i)` refer to `inputs`.
 */
export interface CustomGradient {
  readonly inputs: readonly Value[];
  grad(ctx: GradContext): InputGrads;
}

const CUSTOM = new WeakMap<Value, CustomGradient>();

/**
 * Declares that `out`'s gradient with respect to `inputs` is given by `grad` (see CustomGradient).
 * The node computing `out` may have further outputs (e.g. a normalisation's saved inverse
 * deviation, reused by the backward): gradient then flows through `out` alone, and a loss that
 * depends on another output of that node is an error.
 */
export function customGradient(out: Value, inputs: Value[], grad: (ctx: GradContext) => InputGrads): void {
  if (!out.producer) throw new Error(`customGradient: "${out.name}" is not computed by a node`);
  if (out.producer.outputs.filter((o) => CUSTOM.has(o)).length > 0) throw new Error(`customGradient: the node computing "${out.name}" already has a custom gradient`);
  CUSTOM.set(out, { inputs, grad });
}

/** The custom gradient declared for one of `node`'s outputs, if any. */
function customOf(node: OpNode): { out: Value; custom: CustomGradient } | undefined {
  for (const o of node.outputs) {
    const custom = CUSTOM.get(o);
    if (custom) return { out: o, custom };
  }
  return undefined;
}

export interface GradientOptions {
  /** Upstream gradient of `loss` (same dtype and shape); default: ones (so a scalar loss gets 1). */
  seed?: Value;
}

/**
 * Emits into `g` the nodes computing d`loss`/d`wrt[i]` and returns them aligned with `wrt`
 * (same dtype and shape as each wrt value), or undefined where a value does not influence `loss`.
 * The forward nodes walked are those of `loss.graph`; `g` is that graph or a subgraph inside it,
 * so a trainer can put one layer's backward inside an If branch (e.g. gradients(branch, layerOut,
 * [W], { seed: dLayerOut })) and skip it at run time. Gradients *through* an If node are not
 * supported (there is no If rule).
 */
export function gradients(g: Graph, loss: Value, wrt: Value[], opts: GradientOptions = {}): (Value | undefined)[] {
  if (!g.sees(loss)) throw new Error(`gradients: the loss "${loss.name}" is not visible in graph "${g.name}"`);
  if (!isFloat(loss.dtype)) throw new Error(`gradients: the loss "${loss.name}" has non-float type ${loss.dtype}`);
  const nodes = [...loss.graph.nodes]; // snapshot: backward nodes may be appended to it while we walk

  // Forward pass: which float values depend on some wrt value.
  const active = new Set<Value>();
  for (const w of wrt) if (isFloat(w.dtype)) active.add(w);
  for (const n of nodes) {
    if (!nodeReads(n).some((v) => active.has(v))) continue;
    for (const o of n.outputs) if (isFloat(o.dtype)) active.add(o);
  }
  if (!active.has(loss)) return wrt.map(() => undefined);

  const contributions = new Map<Value, Value[]>();
  const total = (v: Value): Value | undefined => {
    const list = contributions.get(v);
    if (!list || list.length === 0) return undefined;
    if (list.length > 1) contributions.set(v, [addAll(g, list)]);
    return contributions.get(v)![0];
  };
  const contribute = (v: Value, dv: Value) => {
    const list = contributions.get(v);
    if (list) list.push(dv);
    else contributions.set(v, [dv]);
  };

  contribute(loss, seedFor(g, loss, opts.seed));

  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k]!;
    if (!node.outputs.some((o) => contributions.has(o))) continue;
    const found = customOf(node);
    const custom = found?.custom;
    if (found) {
      const other = node.outputs.find((o) => o !== found.out && contributions.has(o));
      if (other) throw new Error(`autodiff: "${other.name}" of node "${node.name}" is on the loss's path, but that node's custom gradient covers "${found.out.name}" only`);
    }
    const inputs: readonly (Value | null)[] = custom ? custom.inputs : node.inputs;
    const needs = inputs.map((x) => x !== null && active.has(x));
    if (!needs.some(Boolean)) continue;
    const rule: Pick<GradRule, 'grad'> | undefined = custom ?? RULES.get(node.op);
    if (!rule) {
      throw new Error(`autodiff: no gradient rule for op ${node.op} (node "${node.name}", output "${node.outputs[0]?.name}"); add rules/${node.op}.ts and register it in autodiff/register.ts`);
    }
    const ctx = makeContext(g, node, inputs, needs, total, found?.out);
    const result = rule.grad(ctx);
    needs.forEach((need, i) => {
      if (!need) return;
      const x = inputs[i]!;
      const dx = result[i];
      if (!dx) throw new Error(`autodiff: the ${node.op} rule gave no gradient for input ${i} ("${x.name}") of node "${node.name}"`);
      if (dx.dtype !== x.dtype) throw new Error(`autodiff: the ${node.op} rule gave a ${dx.dtype} gradient for ${x.dtype} input ${i} of node "${node.name}"`);
      contribute(x, unbroadcast(g, dx, x, node));
    });
  }
  return wrt.map((w) => (active.has(w) ? total(w) : undefined));
}

/** Values a node reads: its inputs, plus outer values its subgraphs (If branches) capture. */
function nodeReads(n: OpNode): Value[] {
  const out = n.inputs.filter((x): x is Value => x !== null);
  for (const a of Object.values(n.attrs)) {
    if (typeof a === 'object' && a !== null && 'g' in a) out.push(...outerReads(a.g));
  }
  return out;
}

function outerReads(sub: Graph): Value[] {
  const out: Value[] = [];
  const inside = (v: Value) => {
    for (let h: Graph | undefined = v.graph; h; h = h.parent) if (h === sub) return true;
    return false;
  };
  for (const n of sub.nodes) for (const v of nodeReads(n)) if (!inside(v)) out.push(v);
  return out;
}

function seedFor(g: Graph, loss: Value, seed: Value | undefined): Value {
  if (seed) {
    if (seed.dtype !== loss.dtype || seed.shape.length !== loss.shape.length || seed.shape.some((d, i) => d !== loss.shape[i]))
      throw new Error(`gradients: the seed ${seed.dtype}${fmtShape(seed.shape)} must have the loss's type and shape ${loss.dtype}${fmtShape(loss.shape)}`);
    return seed;
  }
  if (loss.shape.every((d) => typeof d === 'number')) {
    const shape = loss.shape as number[];
    return g.constant(new Array(shape.reduce((a, b) => a * b, 1)).fill(1), shape, loss.dtype);
  }
  return g.constantOfShape(g.shapeOf(loss), 1, loss.dtype, loss.shape);
}

function makeContext(g: Graph, node: OpNode, inputs: readonly (Value | null)[], needs: boolean[], total: (v: Value) => Value | undefined, customOut?: Value): GradContext {
  const gradDType = (node.outputs.find((o) => isFloat(o.dtype)) ?? node.outputs[0]!).dtype;
  const input = (i: number): Value => {
    const x = inputs[i];
    if (!x) throw new Error(`autodiff: ${node.op} node "${node.name}" has no input ${i}`);
    return x;
  };
  // A custom gradient sees the one output it was declared for as output 0.
  const outputs = customOut ? [customOut] : node.outputs;
  return {
    g,
    node,
    I: input,
    O: (i) => {
      const o = outputs[i];
      if (!o) throw new Error(`autodiff: ${node.op} node "${node.name}" has no output ${i}`);
      return o;
    },
    GO: (i) => {
      const o = outputs[i]!;
      return total(o) ?? g.zerosLike(o);
    },
    hasGO: (i) => total(outputs[i]!) !== undefined,
    needs: (i) => needs[i] === true,
    int: (name, dflt) => {
      const a = node.attrs[name];
      if (a === undefined) return dflt;
      if (typeof a !== 'number') throw new Error(`autodiff: attribute ${name} of ${node.op} node "${node.name}" is not an integer`);
      return a;
    },
    attr: (name) => node.attrs[name],
    c: (v) => g.scalar(v, gradDType),
    constInts: (i) => {
      const x = inputs[i];
      const cv = x?.constValue;
      if (!cv) return undefined;
      return Array.from(cv.data as ArrayLike<number | bigint>, (v) => clampInt(v));
    },
  };
}

function clampInt(v: number | bigint): number {
  if (typeof v === 'number') return v;
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
  if (v < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER;
  return Number(v);
}

/**
 * Sums `dx` (shaped like the broadcast output) down to the shape of input `x`. Broadcast axes are
 * found statically: leading extra axes, and axes where x has 1 and dx has anything else. Equal
 * symbolic names are equal sizes; any other mismatch is an error.
 */
export function unbroadcast(g: Graph, dx: Value, x: Value, node: OpNode): Value {
  const gs = dx.shape;
  const xs = x.shape;
  if (gs.length === xs.length && gs.every((d, i) => d === xs[i])) return dx;
  const fail = (why: string) => new Error(`autodiff: cannot reduce the ${node.op} gradient ${fmtShape(gs)} to the shape ${fmtShape(xs)} of input "${x.name}" (node "${node.name}"): ${why}`);
  if (xs.length > gs.length) throw fail('the input has higher rank');
  const lead = gs.length - xs.length;
  const axes: number[] = [];
  for (let i = 0; i < lead; i++) axes.push(i);
  const ones: number[] = [];
  xs.forEach((xd: Dim, j) => {
    const gd = gs[lead + j]!;
    if (gd === xd) return;
    if (xd === 1) {
      axes.push(lead + j);
      ones.push(j);
    } else throw fail(`dimension ${j} is ${xd} in the input and ${gd} in the gradient`);
  });
  const r = g.reduceSum(dx, axes, false);
  return ones.length ? g.unsqueeze(r, ones) : r;
}
