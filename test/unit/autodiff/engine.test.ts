import { describe, expect, it } from 'vitest';
import { gradients, registeredOps } from '../../../native-models/autodiff';
import { Graph, type Value } from '../../../native-models/onnx';
import { runGraph } from './run';

const newNodes = (g: Graph, from: number) => g.nodes.slice(from);
const reads = (nodes: Graph['nodes'], v: Value) => nodes.filter((n) => n.inputs.includes(v));

describe('gradients: structure', () => {
  it('fails loudly, naming the op and node, when an op on the path has no rule', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [3]);
    const s = g.unary('Sin', x);
    const loss = g.reduceSum(s, [0], false);
    expect(registeredOps()).not.toContain('Sin');
    expect(() => gradients(g, loss, [x])).toThrow(/no gradient rule for op Sin \(node "sin"/);
  });

  it('emits nothing for a branch that is not on a path from wrt to the loss', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [3]);
    const y = g.input('y', 'float64', [3]);
    const a = g.exp(y); // depends on y only: y is not a wrt
    const unused = g.tanh(x); // depends on x but does not reach the loss
    g.output(unused, 'side');
    const loss = g.reduceSum(g.mul(x, a), [0], false);
    const before = g.nodes.length;
    const [dx, dy] = gradients(g, loss, [x, g.input('z', 'float64', [3])]);
    const emitted = newNodes(g, before);
    expect(dx).toBeDefined();
    expect(dy).toBeUndefined(); // z does not influence the loss
    expect(reads(emitted, unused)).toEqual([]); // no Tanh gradient
    expect(reads(emitted, x)).toEqual([]); // d(x·a)/da = x is never formed: a needs no gradient
    expect(reads(emitted, y)).toEqual([]); // nothing flows towards y
    expect(emitted.map((n) => n.op).sort()).toEqual(['Expand', 'Mul', 'Shape', 'Unsqueeze']); // dx = expand(unsqueeze(1))·a
  });

  it('gives no gradient to integer indices, shapes and conditions', () => {
    const g = new Graph();
    const table = g.input('table', 'float64', [4, 2]);
    const ids = g.input('ids', 'int64', [3]);
    const loss = g.reduceSum(g.gather(table, ids, 0), [0, 1], false);
    const [dTable, dIds] = gradients(g, loss, [table, ids]);
    expect(dTable?.shape).toEqual([4, 2]);
    expect(dIds).toBeUndefined();
  });

  it('returns undefined for every wrt when the loss depends on none of them', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [2]);
    const loss = g.reduceSum(g.input('c', 'float64', [2]), [0], false);
    expect(gradients(g, loss, [x])).toEqual([undefined]);
  });
});

describe('gradients: broadcasting', () => {
  it('sums broadcast axes statically from symbolic shapes, giving each input its own shape', async () => {
    const g = new Graph();
    const a = g.input('a', 'float64', ['B', 'T', 3]);
    const b = g.input('b', 'float64', ['T', 1]);
    const c = g.input('c', 'float64', [3]);
    const seed = g.input('seed', 'float64', ['B', 'T', 3]);
    const z = g.mul(g.add(a, b), c); // [B, T, 3]
    const [da, db, dc] = gradients(g, z, [a, b, c], { seed });
    expect(da!.shape).toEqual(['B', 'T', 3]);
    expect(db!.shape).toEqual(['T', 1]);
    expect(dc!.shape).toEqual([3]);
    g.output(db!, 'db');
    g.output(dc!, 'dc');
    // B = 2, T = 2: b = 0, so a + b = a.
    const A = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const S = [1, -1, 2, 0.5, 3, -2, 1, 1, 1, 2, 2, 2];
    const C = [2, 3, 5];
    const out = await runGraph(g, {
      a: { dtype: 'float64', data: A, shape: [2, 2, 3] },
      b: { dtype: 'float64', data: [0, 0], shape: [2, 1] },
      c: { dtype: 'float64', data: C, shape: [3] },
      seed: { dtype: 'float64', data: S, shape: [2, 2, 3] },
    });
    // db[t] = Σ_b Σ_k seed[b,t,k]·c[k]; dc[k] = Σ_b Σ_t seed[b,t,k]·a[b,t,k]
    const dbRef = [0, 1].map((t) => [0, 1].reduce((s, bb) => s + [0, 1, 2].reduce((u, k) => u + S[bb * 6 + t * 3 + k]! * C[k]!, 0), 0));
    const dcRef = [0, 1, 2].map((k) => [0, 1, 2, 3].reduce((s, r) => s + S[r * 3 + k]! * A[r * 3 + k]!, 0));
    expect(out.db!.dims).toEqual([2, 1]);
    expect(out.db!.data).toEqual(dbRef);
    expect(out.dc!.data).toEqual(dcRef);
  });

  it('refuses to guess when symbolic names do not determine the broadcast', () => {
    const g = new Graph();
    const a = g.input('a', 'float64', ['T']);
    const b = g.input('b', 'float64', ['S']);
    // A node whose declared output size is a third name: nothing says which input it matches.
    const [z] = g.emit('Add', [a, b], {}, [{ dtype: 'float64', shape: ['U'] }]);
    const loss = g.reduceSum(z!, [0], false);
    expect(() => gradients(g, loss, [a])).toThrow(/cannot reduce the Add gradient \[U\] to the shape \[T\] of input "a".*dimension 0 is T in the input and U in the gradient/);
  });
});

describe('gradients: backward inside an If branch (per-layer gating)', () => {
  it('computes the same gradient in the taken branch and nothing in the other', async () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [2, 3]);
    const w = g.input('w', 'float64', [3, 2]);
    const on = g.input('on', 'bool', []);
    const loss = g.reduceSum(g.tanh(g.matmul(x, w)), [0, 1], false);
    const [plain] = gradients(g, loss, [w]);
    g.output(plain!, 'plain');
    const [gated] = g.if(
      on,
      (branch) => [gradients(branch, loss, [w])[0]!],
      (branch) => [branch.zerosLike(w)],
    );
    g.output(gated!, 'gated');
    const feeds = (flag: number) => ({
      x: { dtype: 'float64' as const, data: [0.1, -0.2, 0.3, 0.4, 0.5, -0.6], shape: [2, 3] },
      w: { dtype: 'float64' as const, data: [1, -1, 0.5, 2, -0.3, 0.7], shape: [3, 2] },
      on: { dtype: 'bool' as const, data: [flag], shape: [] },
    });
    const taken = await runGraph(g, feeds(1));
    expect(taken.gated!.data).toEqual(taken.plain!.data);
    expect(taken.plain!.data.some((v) => v !== 0)).toBe(true);
    const skipped = await runGraph(g, feeds(0));
    expect(skipped.gated!.data).toEqual([0, 0, 0, 0, 0, 0]);
  });
});
