// Table-driven finite-difference gradient checker (jax's check_grads, ORT's GradientChecker).
//
// For a case f(x₁…xₙ) → out, the checked scalar is L = Σ out ⊙ W with a fixed random W, so every
// output element carries a distinct upstream gradient. The analytic gradients come from
// `gradients()` run by onnxruntime-node; the numeric ones from central differences
// differences: in float64 the fourth-order stencil (8(L(x+h) − L(x−h)) − (L(x+2h) − L(x−2h))) / 12h
// with h = 1e-4; in float32 (L(x+h) − L(x−h)) / (x⁺ − x⁻), dividing by the step actually stored.
//
// Error measure, per checked input tensor:
//   e = maxᵢ |aᵢ − nᵢ| / max(|aᵢ|, |nᵢ|, 1e-3 · s),   s = maxⱼ max(|aⱼ|, |nⱼ|)
// i.e. the elementwise relative error, except that entries more than 1000× below the tensor's
// largest gradient are measured against 1e-3 · s (there the finite difference is all noise).
//
// Ops whose float64 forward ORT cannot run (Erf: no CPU kernel) are checked by checkHostCase: the
// rule's float64 backward runs in ORT alone and the finite differences use a host double forward.
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { ModelProtoSchema } from 'onnx-buf';
import { gradients } from '../../../native-models/autodiff';
import { Graph, serialize, type DType, type Dim, type Value } from '../../../native-models/onnx';

export type Kind = 'normal' | 'positive' | 'awayFromZero' | { int: number } | 'bool';

export interface InputSpec {
  shape: number[];
  /** Declared (possibly symbolic) shape; defaults to `shape`. */
  decl?: Dim[];
  dtype?: DType;
  kind?: Kind;
  /** Fixed contents (e.g. indices with repeats); otherwise random of `kind`. */
  data?: number[];
  /** A float input that is not differentiated (e.g. a label mask). */
  constant?: boolean;
}

export interface GradCase {
  name: string;
  inputs: InputSpec[];
  build(g: Graph, xs: Value[]): Value;
  /** Step for the central differences (default 1e-4 for float64, 3e-3 for float32). */
  h?: number;
  /** Largest allowed error e (default 1e-6). */
  tol?: number;
}

export interface CaseResult {
  name: string;
  /** Ops in the forward graph (which rules the case exercises). */
  ops: Set<string>;
  maxError: number;
  /** Per checked input: error, or 'none' when it rightly had no gradient. */
  perInput: (number | 'none')[];
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Arr = Float64Array | Float32Array | BigInt64Array | Uint8Array;

function fill(spec: InputSpec, rand: () => number): Arr {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const dtype = spec.dtype ?? (typeof spec.kind === 'object' ? 'int64' : spec.kind === 'bool' ? 'bool' : 'float64');
  const kind = spec.kind ?? 'normal';
  const vals = spec.data ?? Array.from({ length: n }, () => {
    if (typeof kind === 'object') return Math.floor(rand() * kind.int);
    if (kind === 'bool') return rand() < 0.5 ? 1 : 0;
    if (kind === 'positive') return 0.5 + 1.5 * rand();
    if (kind === 'awayFromZero') return (rand() < 0.5 ? -1 : 1) * (0.2 + 0.8 * rand());
    return 2 * rand() - 1;
  });
  if (vals.length !== n) throw new Error(`input data has ${vals.length} values for shape [${spec.shape}]`);
  if (dtype === 'int64') return BigInt64Array.from(vals, (v) => BigInt(v));
  if (dtype === 'bool') return Uint8Array.from(vals);
  if (dtype === 'float32') return Float32Array.from(vals);
  return Float64Array.from(vals);
}

function dtypeOf(spec: InputSpec): DType {
  return spec.dtype ?? (typeof spec.kind === 'object' ? 'int64' : spec.kind === 'bool' ? 'bool' : 'float64');
}

const isFloatType = (d: DType) => d === 'float32' || d === 'float64';

function tensor(dtype: DType, data: Arr, shape: number[]): ort.Tensor {
  return new ort.Tensor(dtype as 'float64', data as Float64Array, shape);
}

// ORT's extended optimizations are not float64-exact (MatMulScaleFusion stores a scalar Mul as
// FusedMatMul's float32 alpha; QuickGeluFusion picks a float32-only kernel): check with basic ones.
const SESSION: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'basic' };

function declare(g: Graph, c: GradCase): Value[] {
  return c.inputs.map((s, i) => g.input(`x${i}`, dtypeOf(s), s.decl ?? s.shape));
}

/** The ops a case's forward graph uses (which rules it exercises), without running it. */
export function forwardOps(c: GradCase): Set<string> {
  const g = new Graph();
  c.build(g, declare(g, c));
  return new Set(g.nodes.map((n) => n.op));
}

export async function checkCase(c: GradCase, seed = 1): Promise<CaseResult> {
  const rand = rng(seed);
  const data = c.inputs.map((s) => fill(s, rand));
  const feeds: Record<string, ort.Tensor> = {};
  c.inputs.forEach((s, i) => (feeds[`x${i}`] = tensor(dtypeOf(s), data[i]!, s.shape)));

  // 1. Learn the output's concrete shape.
  const probe = new Graph();
  const out0 = c.build(probe, declare(probe, c));
  probe.output(out0, 'out');
  const probeSession = await ort.InferenceSession.create(serialize(probe).model, SESSION);
  const outShape = [...(await probeSession.run(feeds)).out!.dims];
  const outDType = out0.dtype;
  await probeSession.release();

  // 2. L = Σ out ⊙ W; forward-only session for the finite differences, gradient session for the rule.
  const g = new Graph();
  const xs = declare(g, c);
  const out = c.build(g, xs);
  const ops = new Set(g.nodes.map((n) => n.op));
  const w = g.input('w', outDType, out.shape);
  const loss = g.output(g.reduceSum(g.mul(out, w), [...out.shape.keys()], false), 'L');
  const wData = fill({ shape: outShape, dtype: outDType }, rand);
  feeds.w = tensor(outDType, wData, outShape);
  const fwd = await ort.InferenceSession.create(serialize(g).model, SESSION);

  const floatIdx = c.inputs.map((s, i) => (isFloatType(dtypeOf(s)) && !s.constant ? i : -1)).filter((i) => i >= 0);
  const grads = gradients(g, loss, floatIdx.map((i) => xs[i]!));
  const gradNames: string[] = [];
  grads.forEach((gv, k) => {
    if (gv) gradNames.push(g.output(gv, `grad${floatIdx[k]}`).name);
  });
  const bwd = await ort.InferenceSession.create(serialize(g).model, SESSION);
  const analytic = await bwd.run(feeds);

  const evalL = async () => Number((await fwd.run(feeds, ['L'])).L!.data[0]);
  const perInput: (number | 'none')[] = [];
  let maxError = 0;
  for (const i of floatIdx) {
    const x = data[i] as Float64Array | Float32Array;
    const numeric = new Float64Array(x.length);
    const f64 = x instanceof Float64Array;
    const h = c.h ?? (f64 ? 1e-4 : 3e-3);
    const at = async (j: number, v: number): Promise<[number, number]> => {
      x[j] = v;
      return [await evalL(), x[j]!]; // the value actually stored (float32 rounds the step)
    };
    for (let j = 0; j < x.length; j++) {
      const x0 = x[j]!;
      const [lp, xp] = await at(j, x0 + h);
      const [lm, xm] = await at(j, x0 - h);
      if (f64) {
        // Fourth-order stencil: (8(L₊₁ − L₋₁) − (L₊₂ − L₋₂)) / 12h, truncation O(h⁴).
        const [lp2] = await at(j, x0 + 2 * h);
        const [lm2] = await at(j, x0 - 2 * h);
        numeric[j] = (8 * (lp - lm) - (lp2 - lm2)) / (12 * h);
      } else numeric[j] = (lp - lm) / (xp - xm);
      x[j] = x0;
    }
    const gv = analytic[`grad${i}`];
    if (!gv) {
      // No gradient is only right when L does not depend on this input at all.
      const worst = numeric.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      if (worst > 1e-9) throw new Error(`${c.name}: input ${i} got no gradient but finite differences say ${worst}`);
      perInput.push('none');
      continue;
    }
    if (gv.dims.join() !== c.inputs[i]!.shape.join()) throw new Error(`${c.name}: gradient of input ${i} has shape [${gv.dims}] instead of [${c.inputs[i]!.shape}]`);
    const a = gv.data as Float64Array | Float32Array;
    const e = relativeError(a, numeric);
    perInput.push(e);
    maxError = Math.max(maxError, e);
  }
  await fwd.release();
  await bwd.release();
  return { name: c.name, ops, maxError, perInput };
}

/**
 * A unary elementwise op whose forward onnxruntime-node cannot run in float64 (no kernel), checked
 * in float64 anyway: its rule's backward is run by ORT and compared with finite differences of a
 * double-precision host implementation of the forward.
 */
export interface HostCase {
  name: string;
  shape: number[];
  /** Inputs are uniform in [−range, range]. */
  range: number;
  /** Emits the op on a float64 graph. */
  build(g: Graph, x: Value): Value;
  /** The same op in double precision on the host. */
  host(x: number): number;
  tol?: number;
}

export interface HostCaseResult extends CaseResult {
  /** Ops of the model that ORT actually ran (the backward alone). */
  ranOps: string[];
}

/**
 * Drops the nodes no graph output depends on, so a backward whose rule reads only the op's inputs
 * (not its output) runs without the forward node. Nodes with subgraphs are refused: their
 * outer-scope reads are not tracked here.
 */
export function pruneDeadNodes(model: Uint8Array): { model: Uint8Array; ops: string[] } {
  const m = fromBinary(ModelProtoSchema, model);
  const graph = m.graph!;
  const needed = new Set(graph.output.map((o) => o.name));
  const live: typeof graph.node = [];
  for (let k = graph.node.length - 1; k >= 0; k--) {
    const n = graph.node[k]!;
    if (n.attribute.some((a) => a.g || a.graphs.length > 0)) throw new Error(`pruneDeadNodes: node "${n.name}" has a subgraph`);
    if (!n.output.some((o) => needed.has(o))) continue;
    live.push(n);
    for (const i of n.input) if (i) needed.add(i);
  }
  graph.node = live.reverse();
  return { model: toBinary(ModelProtoSchema, m), ops: graph.node.map((n) => n.opType) };
}

/** The ops a host case's forward uses, without running it. */
export function hostCaseOps(c: HostCase): Set<string> {
  const g = new Graph();
  c.build(g, g.input('x', 'float64', c.shape));
  return new Set(g.nodes.map((n) => n.op));
}

export async function checkHostCase(c: HostCase, seed = 1): Promise<HostCaseResult> {
  const rand = rng(seed);
  const n = c.shape.reduce((a, b) => a * b, 1);
  const x = Float64Array.from({ length: n }, () => c.range * (2 * rand() - 1));
  const w = Float64Array.from({ length: n }, () => 2 * rand() - 1);

  // dL/dx for L = Σ w ⊙ op(x): the rule's backward seeded with w, emitted by the real engine.
  const g = new Graph();
  const xv = g.input('x', 'float64', c.shape);
  const wv = g.input('w', 'float64', c.shape);
  const out = c.build(g, xv);
  const ops = new Set(g.nodes.map((nd) => nd.op)); // before the backward is emitted
  const [dx] = gradients(g, out, [xv], { seed: wv });
  if (!dx) throw new Error(`${c.name}: the op's output does not depend on its input`);
  g.output(dx, 'dx');
  const pruned = pruneDeadNodes(serialize(g).model);
  const session = await ort.InferenceSession.create(pruned.model, SESSION);
  const res = await session.run({ x: new ort.Tensor('float64', x, c.shape), w: new ort.Tensor('float64', w, c.shape) });
  await session.release();
  const analytic = res.dx!;
  if (analytic.dims.join() !== c.shape.join()) throw new Error(`${c.name}: gradient has shape [${analytic.dims}] instead of [${c.shape}]`);

  // Same stencil and step as checkCase's float64 path, on the host forward.
  const L = () => x.reduce((s, xi, i) => s + w[i]! * c.host(xi), 0);
  const h = 1e-4;
  const numeric = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const x0 = x[j]!;
    const at = (v: number) => ((x[j] = v), L());
    numeric[j] = (8 * (at(x0 + h) - at(x0 - h)) - (at(x0 + 2 * h) - at(x0 - 2 * h))) / (12 * h);
    x[j] = x0;
  }
  const e = relativeError(analytic.data as Float64Array, numeric);
  return { name: c.name, ops, maxError: e, perInput: [e], ranOps: pruned.ops };
}

export function relativeError(a: ArrayLike<number>, n: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s = Math.max(s, Math.abs(a[i]!), Math.abs(n[i]!));
  if (s === 0) return 0;
  let e = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - n[i]!) / Math.max(Math.abs(a[i]!), Math.abs(n[i]!), 1e-3 * s);
    e = Math.max(e, d);
  }
  return e;
}
