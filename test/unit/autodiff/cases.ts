// The finite-difference table: every registered gradient rule and every nn composite.
import type { Graph, Value } from '../../../native-models/onnx';
import * as nn from '../../../native-models/nn';
import { erf } from './erf64';
import type { GradCase, HostCase } from './gradcheck';

const f = (shape: number[], extra: Partial<GradCase['inputs'][number]> = {}) => ({ shape, ...extra });

/** Cases for single primitives (and small combinations that reach a rule's other branches). */
export const RULE_CASES: GradCase[] = [
  { name: 'Add broadcast [2,3,4] + [3,1]', inputs: [f([2, 3, 4]), f([3, 1])], build: (g, [a, b]) => g.add(a!, b!) },
  { name: 'Add symbolic [B,3,4] + [4]', inputs: [f([2, 3, 4], { decl: ['B', 3, 4] }), f([4])], build: (g, [a, b]) => g.add(a!, b!) },
  { name: 'Sub [3,4] − [2,1,4]', inputs: [f([3, 4]), f([2, 1, 4])], build: (g, [a, b]) => g.sub(a!, b!) },
  { name: 'Mul by scalar', inputs: [f([2, 3]), f([])], build: (g, [a, b]) => g.mul(a!, b!) },
  { name: 'Mul x·x (accumulated contributions)', inputs: [f([2, 3])], build: (g, [a]) => g.mul(a!, a!) },
  { name: 'Div [2,3] / [3]', inputs: [f([2, 3]), f([3], { kind: 'positive' })], build: (g, [a, b]) => g.div(a!, b!) },
  { name: 'Neg', inputs: [f([2, 3])], build: (g, [a]) => g.neg(a!) },
  { name: 'Pow constant exponent', inputs: [f([2, 3], { kind: 'positive' })], build: (g, [a]) => g.pow(a!, g.scalar(2.5, 'float64')) },
  { name: 'Pow both (broadcast exponent)', inputs: [f([2, 3], { kind: 'positive' }), f([3])], build: (g, [a, b]) => g.pow(a!, b!) },
  { name: 'Sqrt', inputs: [f([2, 3], { kind: 'positive' })], build: (g, [a]) => g.sqrt(a!) },
  { name: 'Reciprocal', inputs: [f([2, 3], { kind: 'awayFromZero' })], build: (g, [a]) => g.reciprocal(a!) },
  { name: 'Exp', inputs: [f([2, 3])], build: (g, [a]) => g.exp(a!) },
  { name: 'Log', inputs: [f([2, 3], { kind: 'positive' })], build: (g, [a]) => g.log(a!) },
  { name: 'Tanh', inputs: [f([2, 3])], build: (g, [a]) => g.tanh(a!) },
  { name: 'Sigmoid', inputs: [f([2, 3])], build: (g, [a]) => g.sigmoid(a!) },
  // End to end with ORT's real Erf forward, which only exists in float32 on the CPU provider, hence
  // the float32 tolerance; the float64 check of the Erf rule is in HOST_CASES.
  { name: 'Erf (float32, ORT forward)', inputs: [f([2, 3], { dtype: 'float32' })], build: (g, [a]) => g.erf(a!), tol: 2e-3 },
  { name: 'Relu', inputs: [f([2, 3], { kind: 'awayFromZero' })], build: (g, [a]) => g.relu(a!) },
  { name: 'Max broadcast', inputs: [f([2, 3]), f([3])], build: (g, [a, b]) => g.max(a!, b!) },
  { name: 'Min broadcast', inputs: [f([2, 3]), f([3])], build: (g, [a, b]) => g.min(a!, b!) },
  { name: 'Identity', inputs: [f([2, 3])], build: (g, [a]) => g.identity(a!) },
  {
    name: 'Cast float32 → float64',
    inputs: [f([2, 3], { dtype: 'float32' })],
    // x² is quadratic, so central differences are exact despite float32 steps.
    build: (g, [a]) => { const c = g.cast(a!, 'float64'); return g.mul(c, c); },
  },
  { name: 'Where', inputs: [f([2, 3], { kind: 'bool' }), f([2, 3]), f([3])], build: (g, [c, a, b]) => g.where(c!, a!, b!) },
  { name: 'Expand [3,1] → [2,3,4]', inputs: [f([3, 1])], build: (g, [a]) => g.expand(a!, [2, 3, 4]) },
  { name: 'Softmax last axis', inputs: [f([2, 3, 4])], build: (g, [a]) => g.softmax(a!, -1) },
  { name: 'Softmax axis 1', inputs: [f([2, 3, 4])], build: (g, [a]) => g.softmax(a!, 1) },
  { name: 'LogSoftmax axis 1', inputs: [f([2, 3, 4])], build: (g, [a]) => g.logSoftmax(a!, 1) },
  { name: 'ReduceSum keepdims', inputs: [f([2, 3, 4])], build: (g, [a]) => g.reduceSum(a!, [1], true) },
  { name: 'ReduceSum no keepdims, two axes', inputs: [f([2, 3, 4])], build: (g, [a]) => g.reduceSum(a!, [0, -1], false) },
  { name: 'ReduceMean static', inputs: [f([2, 3, 4])], build: (g, [a]) => g.reduceMean(a!, [2], true) },
  { name: 'ReduceMean symbolic axis', inputs: [f([2, 3, 4], { decl: ['B', 3, 'T'] })], build: (g, [a]) => g.reduceMean(a!, [0, 2], false) },
  { name: 'Reshape', inputs: [f([2, 3, 4])], build: (g, [a]) => g.reshape(a!, [6, 4]) },
  { name: 'Reshape symbolic', inputs: [f([2, 3, 4], { decl: ['B', 3, 4] })], build: (g, [a]) => g.reshape(a!, ['B', 12]) },
  { name: 'Transpose', inputs: [f([2, 3, 4])], build: (g, [a]) => g.transpose(a!, [2, 0, 1]) },
  { name: 'Unsqueeze', inputs: [f([2, 3])], build: (g, [a]) => g.unsqueeze(a!, [0, 2]) },
  { name: 'Squeeze', inputs: [f([2, 1, 3])], build: (g, [a]) => g.squeeze(a!, [1]) },
  { name: 'Concat axis 1', inputs: [f([2, 2, 3]), f([2, 1, 3]), f([2, 3, 3])], build: (g, [a, b, c]) => g.concat([a!, b!, c!], 1) },
  {
    name: 'Concat symbolic (KV-cache style)',
    inputs: [f([1, 2, 3, 2], { decl: ['B', 2, 'P', 2] }), f([1, 2, 2, 2], { decl: ['B', 2, 'T', 2] })],
    build: (g, [a, b]) => g.concat([a!, b!], 2),
  },
  { name: 'Split, all outputs used', inputs: [f([2, 5])], build: (g, [a]) => { const [p, q] = g.split(a!, 1, [2, 3]); return g.concat([g.exp(q!), p!], 1); } },
  { name: 'Split, one output unused', inputs: [f([2, 5])], build: (g, [a]) => g.split(a!, 1, [2, 3])[1]! },
  { name: 'Slice static', inputs: [f([3, 5])], build: (g, [a]) => g.slice(a!, [1], [1], [4]) },
  { name: 'Slice negative start, two axes', inputs: [f([3, 5])], build: (g, [a]) => g.slice(a!, [0, 1], [1, -3], [3, -1]) },
  { name: 'Slice symbolic head', inputs: [f([4, 3], { decl: ['T', 3] })], build: (g, [a]) => g.slice(a!, [0], [1], [undefined], ['T-1', 3]) },
  { name: 'Slice symbolic tail', inputs: [f([4, 3], { decl: ['T', 3] })], build: (g, [a]) => g.slice(a!, [0], [-2], [undefined], [2, 3]) },
  {
    name: 'Gather axis 0 (embedding, repeated ids)',
    inputs: [f([5, 3]), f([2, 3], { kind: { int: 5 }, data: [1, 4, 1, 0, 1, 4] })],
    build: (g, [e, ids]) => g.gather(e!, ids!, 0),
  },
  {
    name: 'Gather axis 1',
    inputs: [f([2, 4, 3]), f([3], { kind: { int: 4 }, data: [3, 0, 3] })],
    build: (g, [e, ids]) => g.gather(e!, ids!, 1),
  },
  {
    name: 'GatherElements axis 1 (repeats)',
    inputs: [f([2, 4]), f([2, 3], { kind: { int: 4 }, data: [0, 0, 3, 2, 1, 2] })],
    build: (g, [a, i]) => g.gatherElements(a!, i!, 1),
  },
  { name: 'MatMul 2-D', inputs: [f([3, 4]), f([4, 2])], build: (g, [a, b]) => g.matmul(a!, b!) },
  { name: 'MatMul batched broadcast [2,1,3,4]·[3,4,2]', inputs: [f([2, 1, 3, 4]), f([3, 4, 2])], build: (g, [a, b]) => g.matmul(a!, b!) },
  { name: 'MatMul x[B,T,K]·W[K,N] (flattened weight gradient)', inputs: [f([2, 3, 4], { decl: ['B', 'T', 4] }), f([4, 2])], build: (g, [a, b]) => g.matmul(a!, b!) },
  { name: 'Gemm plain with bias row', inputs: [f([3, 4]), f([4, 2]), f([2])], build: (g, [a, b, c]) => g.gemm(a!, b!, c!) },
  { name: 'Gemm transA, alpha/beta', inputs: [f([4, 3]), f([4, 2]), f([3, 1])], build: (g, [a, b, c]) => g.gemm(a!, b!, c!, { transA: true, alpha: 0.7, beta: -1.3 }) },
  { name: 'Gemm transB', inputs: [f([3, 4]), f([2, 4])], build: (g, [a, b]) => g.gemm(a!, b!, null, { transB: true }) },
  { name: 'Gemm transA transB', inputs: [f([4, 3]), f([2, 4]), f([3, 2])], build: (g, [a, b, c]) => g.gemm(a!, b!, c!, { transA: true, transB: true, alpha: 2 }) },
];

const rot = nn.ropeTables(4, 8);
const ropeIn = (g: Graph, positions: number[]) => {
  const t = nn.ropeConstants(g, rot, 'float64');
  return nn.ropeAt(g, t, g.ints(positions));
};

/** Cases for the nn compositions (float64). */
export const NN_CASES: GradCase[] = [
  { name: 'nn.linear with bias', inputs: [f([2, 3, 4]), f([5, 4]), f([5])], build: (g, [x, w, b]) => nn.linear(g, x!, w!, b!) },
  { name: 'nn.conv1d (GPT-2 layout)', inputs: [f([2, 3, 4]), f([4, 5]), f([5])], build: (g, [x, w, b]) => nn.conv1d(g, x!, w!, b!) },
  { name: 'nn.rmsNorm', inputs: [f([2, 3, 6]), f([6])], build: (g, [x, w]) => nn.rmsNorm(g, x!, w!, 1e-5) },
  { name: 'nn.layerNorm', inputs: [f([2, 3, 6]), f([6]), f([6])], build: (g, [x, w, b]) => nn.layerNorm(g, x!, w!, b!, 1e-5) },
  { name: 'nn.geluTanh', inputs: [f([2, 5], { data: [-3, -1.5, -0.5, -0.1, 0, 0.1, 0.5, 1, 2, 3.5] })], build: (g, [x]) => nn.geluTanh(g, x!) },
  {
    name: 'nn.swiGLU',
    inputs: [f([2, 3, 4]), f([6, 4]), f([6, 4]), f([4, 6])],
    build: (g, [x, wg, wu, wd]) => nn.swiGLU(g, x!, wg!, wu!, wd!),
  },
  {
    name: 'nn.rope at positions 2..4',
    inputs: [f([1, 2, 3, 4])],
    build: (g, [x]) => { const { cos, sin } = ropeIn(g, [2, 3, 4]); return nn.rope(g, x!, cos, sin); },
  },
  {
    name: 'nn.causalSelfAttention GQA (4 heads, 2 kv heads), rope, padding mask',
    inputs: [f([2, 3, 8], { decl: ['B', 'T', 8] }), f([2, 3, 4], { decl: ['B', 'T', 4] }), f([2, 3, 4], { decl: ['B', 'T', 4] }), f([2, 3], { decl: ['B', 'T'], data: [1, 1, 0, 1, 1, 1], constant: true })],
    build: (g, [q, k, v, m]) => nn.causalSelfAttention(g, q!, k!, v!, { numHeads: 4, numKvHeads: 2, headDim: 2, rope: ropeIn2(g, q!), attentionMask: m! }).out,
  },
  {
    name: 'nn.causalSelfAttention with past K/V (decoding)',
    inputs: [f([1, 2, 8], { decl: ['B', 'T', 8] }), f([1, 2, 4], { decl: ['B', 'T', 4] }), f([1, 2, 4], { decl: ['B', 'T', 4] }), f([1, 2, 3, 2], { decl: ['B', 2, 'P', 2] }), f([1, 2, 3, 2], { decl: ['B', 2, 'P', 2] })],
    build: (g, [q, k, v, pk, pv]) => {
      const r = nn.causalSelfAttention(g, q!, k!, v!, { numHeads: 4, numKvHeads: 2, headDim: 2, past: { k: pk!, v: pv! } });
      // Include the cache outputs so their gradients (to the new k, v and the past) are checked too.
      return g.concat([g.reshape(r.out, ['B', 'n1']), g.reshape(r.present.k, ['B', 'n2']), g.reshape(r.present.v, ['B', 'n3'])], 1);
    },
  },
  {
    name: 'nn.crossEntropy (fused gradient) with label mask',
    inputs: [f([2, 3, 5]), f([2, 3], { kind: { int: 5 }, data: [1, 4, -100, 0, 0, 3] }), f([2, 3], { data: [1, 1, 0, 1, 1, 1], constant: true })],
    build: (g, [l, t, m]) => nn.crossEntropy(g, l!, t!, m!),
  },
  {
    name: 'nn.tokenLogProbs',
    inputs: [f([2, 3, 5]), f([2, 3], { kind: { int: 5 } })],
    build: (g, [l, t]) => nn.tokenLogProbs(g, l!, t!),
  },
];

function ropeIn2(g: Graph, q: Value): { cos: Value; sin: Value } {
  const t = nn.ropeConstants(g, nn.ropeTables(2, 8), 'float64');
  return nn.ropeAt(g, t, nn.positionIds(g, q, 1));
}

/**
 * Rules checked in float64 against a host forward, because ORT has no float64 kernel for the op.
 * The range reaches past erf's series/continued-fraction switch (2.5) and into the flat tails.
 */
export const HOST_CASES: HostCase[] = [
  { name: 'Erf (float64, host forward)', shape: [4, 5], range: 3.5, build: (g, a) => g.erf(a), host: erf },
];
