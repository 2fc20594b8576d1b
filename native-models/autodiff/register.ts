// Every gradient rule, registered explicitly (one file per op in rules/). A test checks that the
// finite-difference table covers each rule listed here.
import type { GradRule } from './rule';
import { Add } from './rules/Add';
import { Cast } from './rules/Cast';
import { Concat } from './rules/Concat';
import { Div } from './rules/Div';
import { Erf } from './rules/Erf';
import { Exp } from './rules/Exp';
import { Expand } from './rules/Expand';
import { Gather } from './rules/Gather';
import { GatherElements } from './rules/GatherElements';
import { Gemm } from './rules/Gemm';
import { Identity } from './rules/Identity';
import { Log } from './rules/Log';
import { LogSoftmax } from './rules/LogSoftmax';
import { MatMul } from './rules/MatMul';
import { Max } from './rules/Max';
import { Min } from './rules/Min';
import { Mul } from './rules/Mul';
import { Neg } from './rules/Neg';
import { Pow } from './rules/Pow';
import { Reciprocal } from './rules/Reciprocal';
import { ReduceMean } from './rules/ReduceMean';
import { ReduceSum } from './rules/ReduceSum';
import { Relu } from './rules/Relu';
import { Reshape } from './rules/Reshape';
import { Sigmoid } from './rules/Sigmoid';
import { Slice } from './rules/Slice';
import { Softmax } from './rules/Softmax';
import { Split } from './rules/Split';
import { Sqrt } from './rules/Sqrt';
import { Squeeze } from './rules/Squeeze';
import { Sub } from './rules/Sub';
import { Tanh } from './rules/Tanh';
import { Transpose } from './rules/Transpose';
import { Unsqueeze } from './rules/Unsqueeze';
import { Where } from './rules/Where';

const ALL: readonly GradRule[] = [
  Add,
  Cast,
  Concat,
  Div,
  Erf,
  Exp,
  Expand,
  Gather,
  GatherElements,
  Gemm,
  Identity,
  Log,
  LogSoftmax,
  MatMul,
  Max,
  Min,
  Mul,
  Neg,
  Pow,
  Reciprocal,
  ReduceMean,
  ReduceSum,
  Relu,
  Reshape,
  Sigmoid,
  Slice,
  Softmax,
  Split,
  Sqrt,
  Squeeze,
  Sub,
  Tanh,
  Transpose,
  Unsqueeze,
  Where,
];

export const RULES: ReadonlyMap<string, GradRule> = (() => {
  const m = new Map<string, GradRule>();
  for (const r of ALL) {
    if (m.has(r.op)) throw new Error(`autodiff: two gradient rules for op ${r.op}`);
    m.set(r.op, r);
  }
  return m;
})();

/** The ops that have a gradient rule. */
export function registeredOps(): string[] {
  return [...RULES.keys()].sort();
}
