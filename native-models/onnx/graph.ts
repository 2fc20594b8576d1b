// A typed ONNX graph builder. Every op method infers its output dtype and symbolic shape and fails
// at build time with a message naming the op; the recorded nodes are what autodiff differentiates
// and what serialize.ts writes as a ModelProto.
import { allocate, fromNumbers, isFloat, type DType, type TensorData } from './dtype';
import { broadcastShapes, fmtShape, normAxis, type Dim, type Shape } from './shape';

/** Attribute values: plain numbers and number arrays are INT(S); wrap floats as {f} / {fs}. */
export type Attr = number | number[] | string | string[] | { f: number } | { fs: number[] } | { t: TensorConst } | { g: Graph };

export interface TensorConst {
  dtype: DType;
  shape: number[];
  data: TensorData;
}

export interface Value {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly Dim[];
  readonly graph: Graph;
  /** The node that computes it; undefined for graph inputs, initializers and outer-scope values. */
  readonly producer?: OpNode;
  /** Known contents (constants and initializers): lets shape inference read Reshape/Slice arguments. */
  readonly constValue?: TensorConst;
}

export interface OpNode {
  readonly op: string;
  readonly domain: string;
  readonly name: string;
  readonly inputs: readonly (Value | null)[];
  readonly outputs: readonly Value[];
  readonly attrs: Readonly<Record<string, Attr>>;
  /**
   * Outputs the operator lets a model leave out: serialised as '' when nothing reads them, so the
   * kernel does not allocate or fill them (e.g. a fused norm's statistics in inference graphs).
   */
  readonly optionalOutputs?: readonly number[];
}

export interface Initializer {
  readonly value: Value;
  readonly data: TensorData;
  readonly shape: number[];
}

export interface OutSpec {
  dtype: DType;
  shape: readonly Dim[];
}

class Names {
  private counts = new Map<string, number>();
  private used = new Set<string>();
  fresh(base: string): string {
    for (;;) {
      const n = this.counts.get(base) ?? 0;
      this.counts.set(base, n + 1);
      const name = n === 0 && !this.used.has(base) ? base : `${base}_${n}`;
      if (!this.used.has(name)) {
        this.used.add(name);
        return name;
      }
    }
  }
  claim(name: string): void {
    if (this.used.has(name)) throw new Error(`the name "${name}" is already used in this graph`);
    this.used.add(name);
  }
}

const INT64_MAX = 9223372036854775807n;

export class Graph {
  readonly nodes: OpNode[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly initializers: Initializer[] = [];
  readonly parent: Graph | undefined;
  readonly name: string;
  private readonly names: Names;

  constructor(name = 'main', parent?: Graph) {
    this.name = name;
    this.parent = parent;
    this.names = parent ? parent.names : new Names();
  }

  // ── values ──────────────────────────────────────────────────────────────────

  private makeValue(name: string, dtype: DType, shape: readonly Dim[], extra: Partial<Pick<Value, 'producer' | 'constValue'>> = {}): Value {
    return Object.freeze({ name, dtype, shape: Object.freeze([...shape]), graph: this, ...extra });
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    this.names.claim(name);
    const v = this.makeValue(name, dtype, shape);
    this.inputs.push(v);
    return v;
  }

  /** A named weight stored in the model (frozen, loaded once with the session). */
  initializer(name: string, data: TensorData, shape: number[], dtype: DType = 'float32'): Value {
    this.names.claim(name);
    return this.addInitializer(name, data, shape, dtype);
  }

  private addInitializer(name: string, data: TensorData, shape: number[], dtype: DType): Value {
    checkDataLength(name, data, shape);
    const v = this.makeValue(name, dtype, shape, { constValue: { dtype, shape, data } });
    this.initializers.push({ value: v, data, shape });
    return v;
  }

  /** An anonymous constant (an initializer ORT can fold). Numbers are converted to `dtype`. */
  constant(values: TensorData | ArrayLike<number>, shape: number[], dtype: DType = 'float32'): Value {
    const data = ArrayBuffer.isView(values) ? (values as TensorData) : fromNumbers(dtype, values as ArrayLike<number>);
    return this.addInitializer(this.names.fresh('const'), data, shape, dtype);
  }

  scalar(v: number, dtype: DType = 'float32'): Value {
    return this.constant([v], [], dtype);
  }

  ints(values: number[]): Value {
    return this.constant(values, [values.length], 'int64');
  }

  /** Marks `v` as a graph output named `name` (an Identity is inserted when the name differs). */
  output(v: Value, name?: string): Value {
    let out = v;
    if (name !== undefined && name !== v.name) {
      this.names.claim(name);
      out = this.emit('Identity', [v], {}, [{ dtype: v.dtype, shape: v.shape }], '', [name])[0]!;
    }
    this.outputs.push(out);
    return out;
  }

  /** True when `v` is visible here (defined in this graph or an enclosing one). */
  sees(v: Value): boolean {
    for (let g: Graph | undefined = this; g; g = g.parent) if (v.graph === g) return true;
    return false;
  }

  // ── nodes ───────────────────────────────────────────────────────────────────

  /** Adds a node with explicitly given output types; op methods below infer them instead. */
  emit(op: string, inputs: (Value | null)[], attrs: Record<string, Attr>, outs: OutSpec[], domain = '', outNames?: string[], optionalOutputs?: number[]): Value[] {
    for (const x of inputs) {
      if (x && !this.sees(x)) throw new Error(`${op}: input "${x.name}" belongs to another graph`);
    }
    const nodeName = this.names.fresh(op.toLowerCase());
    const outputs: Value[] = [];
    const node: OpNode = { op, domain, name: nodeName, inputs: [...inputs], outputs, attrs: { ...attrs }, ...(optionalOutputs ? { optionalOutputs: [...optionalOutputs] } : {}) };
    outs.forEach((o, i) => {
      const name = outNames?.[i] ?? this.names.fresh(`${nodeName}_out${outs.length > 1 ? i : ''}`);
      outputs.push(this.makeValue(name, o.dtype, o.shape, { producer: node }));
    });
    Object.freeze(outputs);
    this.nodes.push(node);
    return outputs;
  }

  private one(op: string, inputs: (Value | null)[], attrs: Record<string, Attr>, out: OutSpec): Value {
    return this.emit(op, inputs, attrs, [out])[0]!;
  }

  // ── elementwise ─────────────────────────────────────────────────────────────

  unary(op: UnaryOp, x: Value): Value {
    if (op === 'Not' ? x.dtype !== 'bool' : !isFloat(x.dtype) && !['Neg', 'Abs', 'Identity', 'Sign'].includes(op))
      throw new Error(`${op}: unsupported element type ${x.dtype}`);
    return this.one(op, [x], {}, { dtype: x.dtype, shape: x.shape });
  }

  binary(op: BinaryOp, a: Value, b: Value): Value {
    if (a.dtype !== b.dtype) throw new Error(`${op}: element types differ (${a.dtype} vs ${b.dtype}); insert a Cast`);
    const shape = broadcastShapes(op, a.shape, b.shape);
    const dtype: DType = COMPARISONS.has(op) ? 'bool' : a.dtype;
    return this.one(op, [a, b], {}, { dtype, shape });
  }

  add(a: Value, b: Value): Value { return this.binary('Add', a, b); }
  sub(a: Value, b: Value): Value { return this.binary('Sub', a, b); }
  mul(a: Value, b: Value): Value { return this.binary('Mul', a, b); }
  div(a: Value, b: Value): Value { return this.binary('Div', a, b); }
  pow(a: Value, b: Value): Value { return this.binary('Pow', a, b); }
  neg(x: Value): Value { return this.unary('Neg', x); }
  exp(x: Value): Value { return this.unary('Exp', x); }
  log(x: Value): Value { return this.unary('Log', x); }
  sqrt(x: Value): Value { return this.unary('Sqrt', x); }
  reciprocal(x: Value): Value { return this.unary('Reciprocal', x); }
  tanh(x: Value): Value { return this.unary('Tanh', x); }
  sigmoid(x: Value): Value { return this.unary('Sigmoid', x); }
  erf(x: Value): Value { return this.unary('Erf', x); }
  identity(x: Value): Value { return this.unary('Identity', x); }

  where(cond: Value, a: Value, b: Value): Value {
    if (cond.dtype !== 'bool') throw new Error(`Where: condition must be bool, not ${cond.dtype}`);
    if (a.dtype !== b.dtype) throw new Error(`Where: branch element types differ (${a.dtype} vs ${b.dtype})`);
    const shape = broadcastShapes('Where', broadcastShapes('Where', cond.shape, a.shape), b.shape);
    return this.one('Where', [cond, a, b], {}, { dtype: a.dtype, shape });
  }

  cast(x: Value, to: DType): Value {
    if (x.dtype === to) return x;
    return this.one('Cast', [x], { to: onnxDTypeNumber(to) }, { dtype: to, shape: x.shape });
  }

  // ── linear algebra ──────────────────────────────────────────────────────────

  matmul(a: Value, b: Value): Value {
    if (a.dtype !== b.dtype) throw new Error(`MatMul: element types differ (${a.dtype} vs ${b.dtype})`);
    if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`MatMul: operands must have rank ≥ 2 (got ${fmtShape(a.shape)} · ${fmtShape(b.shape)})`);
    const k1 = a.shape[a.shape.length - 1]!;
    const k2 = b.shape[b.shape.length - 2]!;
    if (k1 !== k2) throw new Error(`MatMul: inner dimensions differ: ${fmtShape(a.shape)} · ${fmtShape(b.shape)}`);
    const batch = broadcastShapes('MatMul', a.shape.slice(0, -2), b.shape.slice(0, -2));
    return this.one('MatMul', [a, b], {}, { dtype: a.dtype, shape: [...batch, a.shape[a.shape.length - 2]!, b.shape[b.shape.length - 1]!] });
  }

  /** Gemm: alpha·op(A)·op(B) + beta·C with 2-D A and B. */
  gemm(a: Value, b: Value, c: Value | null, opts: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number } = {}): Value {
    if (a.shape.length !== 2 || b.shape.length !== 2) throw new Error(`Gemm: A and B must be 2-D (got ${fmtShape(a.shape)}, ${fmtShape(b.shape)})`);
    const [m, ka] = opts.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
    const [kb, n] = opts.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
    if (ka !== kb) throw new Error(`Gemm: inner dimensions differ (${ka} vs ${kb})`);
    if (c) broadcastShapes('Gemm', c.shape, [m, n]);
    const attrs: Record<string, Attr> = { transA: opts.transA ? 1 : 0, transB: opts.transB ? 1 : 0, alpha: { f: opts.alpha ?? 1 }, beta: { f: opts.beta ?? 1 } };
    return this.one('Gemm', c ? [a, b, c] : [a, b], attrs, { dtype: a.dtype, shape: [m, n] });
  }

  // ── normalisation and reductions ───────────────────────────────────────────

  softmax(x: Value, axis = -1): Value {
    normAxis('Softmax', axis, x.shape.length);
    return this.one('Softmax', [x], { axis }, { dtype: x.dtype, shape: x.shape });
  }

  logSoftmax(x: Value, axis = -1): Value {
    normAxis('LogSoftmax', axis, x.shape.length);
    return this.one('LogSoftmax', [x], { axis }, { dtype: x.dtype, shape: x.shape });
  }

  reduce(op: ReduceOp, x: Value, axes: number[], keepdims = true): Value {
    const r = x.shape.length;
    const norm = axes.map((a) => normAxis(op, a, r));
    if (new Set(norm).size !== norm.length) throw new Error(`${op}: repeated axis in ${JSON.stringify(axes)}`);
    const shape = keepdims ? x.shape.map((d, i) => (norm.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !norm.includes(i));
    return this.one(op, [x, this.ints(norm)], { keepdims: keepdims ? 1 : 0 }, { dtype: x.dtype, shape });
  }

  reduceSum(x: Value, axes: number[], keepdims = true): Value { return this.reduce('ReduceSum', x, axes, keepdims); }
  reduceMean(x: Value, axes: number[], keepdims = true): Value { return this.reduce('ReduceMean', x, axes, keepdims); }
  reduceMax(x: Value, axes: number[], keepdims = true): Value { return this.reduce('ReduceMax', x, axes, keepdims); }

  // ── shape manipulation ─────────────────────────────────────────────────────

  /**
   * Reshape to `shape`. Symbolic target dims are expressed through the input: a name equal to the
   * input's dim at the same position copies it (ONNX 0), and at most one other name becomes -1.
   */
  reshape(x: Value, shape: readonly Dim[]): Value {
    const spec: number[] = [];
    let inferred = -1;
    shape.forEach((d, i) => {
      if (typeof d === 'number') {
        if (d < 0 || !Number.isInteger(d)) throw new Error(`Reshape: dimension ${d} is not a size`);
        if (d === 0) throw new Error('Reshape: zero-sized dimensions are not supported');
        spec.push(d);
      } else if (x.shape[i] === d) spec.push(0);
      else {
        if (inferred >= 0) throw new Error(`Reshape: more than one new symbolic dimension in ${fmtShape(shape)} from ${fmtShape(x.shape)}`);
        inferred = i;
        spec.push(-1);
      }
    });
    const inN = staticNumel(x.shape);
    const outN = staticNumel(shape);
    if (inN !== undefined && outN !== undefined && inN !== outN) throw new Error(`Reshape: ${fmtShape(x.shape)} has ${inN} elements, ${fmtShape(shape)} has ${outN}`);
    return this.one('Reshape', [x, this.ints(spec)], {}, { dtype: x.dtype, shape });
  }

  transpose(x: Value, perm: number[]): Value {
    if (perm.length !== x.shape.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i))
      throw new Error(`Transpose: ${JSON.stringify(perm)} is not a permutation of rank ${x.shape.length}`);
    return this.one('Transpose', [x], { perm }, { dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) });
  }

  unsqueeze(x: Value, axes: number[]): Value {
    const r = x.shape.length + axes.length;
    const norm = axes.map((a) => normAxis('Unsqueeze', a, r)).sort((a, b) => a - b);
    const shape: Dim[] = [];
    let j = 0;
    for (let i = 0; i < r; i++) shape.push(norm.includes(i) ? 1 : x.shape[j++]!);
    return this.one('Unsqueeze', [x, this.ints(norm)], {}, { dtype: x.dtype, shape });
  }

  squeeze(x: Value, axes: number[]): Value {
    const norm = axes.map((a) => normAxis('Squeeze', a, x.shape.length));
    for (const a of norm) if (x.shape[a] !== 1) throw new Error(`Squeeze: dimension ${a} of ${fmtShape(x.shape)} is not 1`);
    return this.one('Squeeze', [x, this.ints(norm)], {}, { dtype: x.dtype, shape: x.shape.filter((_, i) => !norm.includes(i)) });
  }

  concat(xs: Value[], axis: number): Value {
    if (xs.length === 0) throw new Error('Concat: no inputs');
    const r = xs[0]!.shape.length;
    const ax = normAxis('Concat', axis, r);
    let total: Dim = 0;
    for (const x of xs) {
      if (x.dtype !== xs[0]!.dtype || x.shape.length !== r) throw new Error(`Concat: inputs differ in type or rank (${xs.map((v) => `${v.dtype}${fmtShape(v.shape)}`).join(', ')})`);
      x.shape.forEach((d, i) => {
        if (i !== ax && d !== xs[0]!.shape[i]) throw new Error(`Concat: dimension ${i} differs (${xs.map((v) => fmtShape(v.shape)).join(', ')})`);
      });
      const d = x.shape[ax]!;
      total = typeof total === 'number' && typeof d === 'number' ? total + d : `${total === 0 ? '' : `${total}+`}${d}`;
    }
    const shape = xs[0]!.shape.map((d, i) => (i === ax ? total : d));
    return this.one('Concat', xs, { axis: ax }, { dtype: xs[0]!.dtype, shape });
  }

  split(x: Value, axis: number, sizes: number[]): Value[] {
    const ax = normAxis('Split', axis, x.shape.length);
    const d = x.shape[ax]!;
    const sum = sizes.reduce((a, b) => a + b, 0);
    if (typeof d === 'number' && d !== sum) throw new Error(`Split: sizes ${JSON.stringify(sizes)} do not add up to dimension ${ax} (${d}) of ${fmtShape(x.shape)}`);
    if (typeof d !== 'number') throw new Error(`Split: dimension ${ax} of ${fmtShape(x.shape)} must be a known size`);
    const outs = sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((dd, i) => (i === ax ? s : dd)) }));
    return this.emit('Split', [x, this.ints(sizes)], { axis: ax }, outs);
  }

  /** Slice with constant starts/ends (steps 1). `end` may be omitted (to the end). */
  slice(x: Value, axes: number[], starts: number[], ends: (number | undefined)[], outShape?: readonly Dim[]): Value {
    const shape = [...x.shape];
    const endVals: bigint[] = [];
    axes.forEach((a, i) => {
      const ax = normAxis('Slice', a, x.shape.length);
      const d = x.shape[ax]!;
      const s = starts[i]!;
      const e = ends[i];
      endVals.push(e === undefined ? INT64_MAX : BigInt(e));
      if (typeof d === 'number') {
        const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
        shape[ax] = Math.max(0, clamp(e ?? d) - clamp(s));
      } else if (outShape === undefined) {
        if (s === 0 && e === undefined) shape[ax] = d;
        else throw new Error(`Slice: dimension ${ax} of ${fmtShape(x.shape)} is symbolic; give the output shape`);
      }
    });
    const startsV = this.ints(starts);
    const endsV = this.constant(BigInt64Array.from(endVals), [endVals.length], 'int64');
    return this.one('Slice', [x, startsV, endsV, this.ints(axes)], {}, { dtype: x.dtype, shape: outShape ?? shape });
  }

  gather(data: Value, indices: Value, axis = 0): Value {
    if (indices.dtype !== 'int64' && indices.dtype !== 'int32') throw new Error(`Gather: indices must be int64 or int32, not ${indices.dtype}`);
    const ax = normAxis('Gather', axis, data.shape.length);
    const shape = [...data.shape.slice(0, ax), ...indices.shape, ...data.shape.slice(ax + 1)];
    return this.one('Gather', [data, indices], { axis: ax }, { dtype: data.dtype, shape });
  }

  gatherElements(data: Value, indices: Value, axis: number): Value {
    if (indices.shape.length !== data.shape.length) throw new Error(`GatherElements: indices rank ${indices.shape.length} differs from data rank ${data.shape.length}`);
    const ax = normAxis('GatherElements', axis, data.shape.length);
    return this.one('GatherElements', [data, indices], { axis: ax }, { dtype: data.dtype, shape: indices.shape });
  }

  scatterElements(data: Value, indices: Value, updates: Value, axis: number, reduction: 'none' | 'add' = 'none'): Value {
    if (indices.shape.length !== data.shape.length || updates.shape.length !== data.shape.length) throw new Error('ScatterElements: data, indices and updates must have the same rank');
    const ax = normAxis('ScatterElements', axis, data.shape.length);
    return this.one('ScatterElements', [data, indices, updates], { axis: ax, reduction }, { dtype: data.dtype, shape: data.shape });
  }

  /** Expand `x` to the (broadcast) shape of `like` (read at run time, so symbolic dims work). */
  expandLike(x: Value, like: Value): Value {
    const shape = broadcastShapes('Expand', x.shape, like.shape);
    return this.one('Expand', [x, this.shapeOf(like)], {}, { dtype: x.dtype, shape });
  }

  expand(x: Value, shape: number[]): Value {
    const out = broadcastShapes('Expand', x.shape, shape);
    return this.one('Expand', [x, this.ints(shape)], {}, { dtype: x.dtype, shape: out });
  }

  shapeOf(x: Value): Value {
    return this.one('Shape', [x], {}, { dtype: 'int64', shape: [x.shape.length] });
  }

  // ── runtime-shaped helpers (autodiff and nn use them; symbolic dims stay symbolic) ──

  relu(x: Value): Value { return this.unary('Relu', x); }
  max(a: Value, b: Value): Value { return this.binary('Max', a, b); }
  min(a: Value, b: Value): Value { return this.binary('Min', a, b); }

  /** Dimension `axis` of `x` as an int64 scalar, read at run time. */
  dim(x: Value, axis: number): Value {
    const ax = normAxis('Shape', axis, x.shape.length);
    const d = x.shape[ax]!;
    if (typeof d === 'number') return this.scalar(d, 'int64');
    const s = this.one('Shape', [x], { start: ax, end: ax + 1 }, { dtype: 'int64', shape: [1] });
    return this.squeeze(s, [0]);
  }

  /** A tensor of `shape` (an int64 [rank] value) filled with `value`; `outShape` is its symbolic shape. */
  constantOfShape(shape: Value, value: number, dtype: DType, outShape: readonly Dim[]): Value {
    if (shape.dtype !== 'int64' || shape.shape.length !== 1) throw new Error(`ConstantOfShape: the shape must be an int64 vector, not ${shape.dtype}${fmtShape(shape.shape)}`);
    if (shape.shape[0] !== outShape.length) throw new Error(`ConstantOfShape: shape has ${shape.shape[0]} entries but the output shape ${fmtShape(outShape)} has rank ${outShape.length}`);
    const data = fromNumbers(dtype, [value]);
    return this.one('ConstantOfShape', [shape], { value: { t: { dtype, shape: [1], data } } }, { dtype, shape: outShape });
  }

  /** Zeros with the dtype and (run-time) shape of `like`. */
  zerosLike(like: Value, dtype: DType = like.dtype): Value {
    if (like.shape.length === 0) return this.scalar(0, dtype);
    return this.constantOfShape(this.shapeOf(like), 0, dtype, like.shape);
  }

  /** Reshape `x` to the run-time shape of `like` (same element count). */
  reshapeLike(x: Value, like: Value): Value {
    const inN = staticNumel(x.shape);
    const outN = staticNumel(like.shape);
    if (inN !== undefined && outN !== undefined && inN !== outN) throw new Error(`Reshape: ${fmtShape(x.shape)} has ${inN} elements, ${fmtShape(like.shape)} has ${outN}`);
    return this.one('Reshape', [x, this.shapeOf(like)], {}, { dtype: x.dtype, shape: like.shape });
  }

  /** Range(start, limit, delta) over scalars of one numeric type; `len` names the output length. */
  range(start: Value, limit: Value, delta: Value, len: Dim): Value {
    for (const v of [start, limit, delta]) {
      if (v.shape.length !== 0 || v.dtype !== start.dtype) throw new Error(`Range: start, limit and delta must be scalars of one type (got ${[start, limit, delta].map((u) => `${u.dtype}${fmtShape(u.shape)}`).join(', ')})`);
    }
    return this.one('Range', [start, limit, delta], {}, { dtype: start.dtype, shape: [len] });
  }

  /** ScatterND: `indices` [..., k] (int64) address slices of `data`; `updates` has shape indices[:-1] + data[k:]. */
  scatterND(data: Value, indices: Value, updates: Value, reduction: 'none' | 'add' = 'none'): Value {
    if (indices.dtype !== 'int64') throw new Error(`ScatterND: indices must be int64, not ${indices.dtype}`);
    const k = indices.shape[indices.shape.length - 1];
    if (typeof k !== 'number' || k > data.shape.length) throw new Error(`ScatterND: the last dimension of indices ${fmtShape(indices.shape)} must be a known size ≤ rank of data ${fmtShape(data.shape)}`);
    const expectRank = indices.shape.length - 1 + data.shape.length - k;
    if (updates.shape.length !== expectRank) throw new Error(`ScatterND: updates ${fmtShape(updates.shape)} must have rank ${expectRank} for data ${fmtShape(data.shape)} and indices ${fmtShape(indices.shape)}`);
    if (updates.dtype !== data.dtype) throw new Error(`ScatterND: updates type ${updates.dtype} differs from data type ${data.dtype}`);
    return this.one('ScatterND', [data, indices, updates], { reduction }, { dtype: data.dtype, shape: data.shape });
  }

  /** Constant-zero Pad with an int64 [2·rank] `pads` value (begins then ends); `outShape` is the result's shape. */
  pad(x: Value, pads: Value, outShape: readonly Dim[]): Value {
    if (pads.dtype !== 'int64' || pads.shape.length !== 1 || pads.shape[0] !== 2 * x.shape.length) throw new Error(`Pad: pads must be an int64 vector of length ${2 * x.shape.length}`);
    if (outShape.length !== x.shape.length) throw new Error(`Pad: output shape ${fmtShape(outShape)} must have the rank of ${fmtShape(x.shape)}`);
    return this.one('Pad', [x, pads], { mode: 'constant' }, { dtype: x.dtype, shape: outShape });
  }

  /** `If(cond)`: each branch builds a subgraph and returns its outputs (same types in both). */
  if(cond: Value, thenBranch: (g: Graph) => Value[], elseBranch: (g: Graph) => Value[]): Value[] {
    if (cond.dtype !== 'bool' || cond.shape.length > 1) throw new Error('If: condition must be a bool scalar');
    const thenG = new Graph(`${this.name}_then`, this);
    const elseG = new Graph(`${this.name}_else`, this);
    const thenOuts = thenBranch(thenG);
    const elseOuts = elseBranch(elseG);
    if (thenOuts.length !== elseOuts.length) throw new Error(`If: branches return ${thenOuts.length} and ${elseOuts.length} values`);
    thenOuts.forEach((t, i) => {
      const e = elseOuts[i]!;
      if (t.dtype !== e.dtype || t.shape.length !== e.shape.length) throw new Error(`If: output ${i} differs between branches (${t.dtype}${fmtShape(t.shape)} vs ${e.dtype}${fmtShape(e.shape)})`);
    });
    for (const [g, outs] of [[thenG, thenOuts], [elseG, elseOuts]] as const) {
      for (const v of outs) {
        // A subgraph output must be produced inside the subgraph (ONNX rule); wrap outer values.
        g.output(v.graph === g ? v : g.identity(v));
      }
    }
    return this.emit('If', [cond], { then_branch: { g: thenG }, else_branch: { g: elseG } }, thenOuts.map((t) => ({ dtype: t.dtype, shape: t.shape })));
  }
}

export type UnaryOp = 'Neg' | 'Exp' | 'Log' | 'Sqrt' | 'Reciprocal' | 'Tanh' | 'Sigmoid' | 'Erf' | 'Abs' | 'Relu' | 'Identity' | 'Sin' | 'Cos' | 'Not' | 'Sign' | 'Softplus' | 'Floor';
export type BinaryOp = 'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow' | 'Max' | 'Min' | 'Equal' | 'Less' | 'Greater' | 'LessOrEqual' | 'GreaterOrEqual' | 'And' | 'Or';
export type ReduceOp = 'ReduceSum' | 'ReduceMean' | 'ReduceMax' | 'ReduceMin' | 'ReduceSumSquare';

const COMPARISONS = new Set<string>(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or']);

function staticNumel(s: readonly Dim[]): number | undefined {
  let n = 1;
  for (const d of s) {
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}

function checkDataLength(name: string, data: TensorData, shape: number[]): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`initializer "${name}": ${data.length} values for shape ${fmtShape(shape)} (${n} expected)`);
}

function onnxDTypeNumber(d: DType): number {
  return { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 }[d];
}

export { allocate };

/** The graph an attribute holds (Loop/If bodies), if it holds one. */
export function subgraphOf(a: Attr): Graph | undefined {
  return typeof a === 'object' && a !== null && 'g' in a ? a.g : undefined;
}

/**
 * Every value name `g` reads — node inputs and graph outputs, its own and outer-scope values alike,
 * in `g` and every subgraph inside it — added to `into`.
 */
export function namesRead(g: Graph, into: Set<string> = new Set()): Set<string> {
  for (const n of g.nodes) {
    for (const x of n.inputs) if (x) into.add(x.name);
    for (const a of Object.values(n.attrs)) {
      const inner = subgraphOf(a);
      if (inner) namesRead(inner, into);
    }
  }
  for (const o of g.outputs) into.add(o.name);
  return into;
}
