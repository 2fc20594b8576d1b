// Session settings and tensor helpers.
import { describe, expect, it } from 'vitest';
import { Graph, serialize } from '../../../native-models/onnx';
import { openSession, resolveSettings } from '../../../native-models/runtime/session';
import { float64, fromOrt, int64, scalar, scalarValue, toNumbers, toOrt } from '../../../native-models/runtime/tensors';

describe('session factory', () => {
  it('applies settings, reports the provider and runs float64 and int64 graphs', async () => {
    const g = new Graph();
    const a = g.input('a', 'float64', ['n']);
    const i = g.input('i', 'int64', ['n']);
    g.output(g.mul(a, g.cast(i, 'float64')), 'prod');
    g.output(g.add(i, g.ints([10])), 'shifted');
    const opened = await openSession({ bytes: serialize(g).model }, { provider: 'cpu', intraOpThreads: 2, graphOptimization: 'basic', memoryArena: false, memoryPattern: false });
    expect(opened.provider.chosen).toBe('cpu');
    expect(opened.provider.reason).toBe('CPU requested.');
    expect(opened.settings).toMatchObject({ intraOpThreads: 2, graphOptimization: 'basic', memoryArena: false, memoryPattern: false });
    const out = await opened.session.run({ a: float64([0.1, 1e-300, -2.5]), i: int64([3, 2, -4]) });
    const prod = fromOrt(out.prod!);
    expect(prod.dtype).toBe('float64');
    expect(Array.from(prod.data as Float64Array)).toEqual([0.1 * 3, 2e-300, 10]);
    expect(toNumbers(out.shifted!)).toEqual([13, 12, 6]);
    await opened.session.release();
  });

  it('rejects bad thread counts and mismatched tensor sizes with sentences', () => {
    expect(() => resolveSettings({ intraOpThreads: 0 })).toThrow(/intra-op threads must be a whole number/);
    expect(() => toOrt('float32', new Float32Array(5), [2, 3])).toThrow(/needs 6 values, got 5/);
    expect(() => int64([1.5])).toThrow(/not a whole number/);
    expect(scalarValue(scalar(7, 'int64'))).toBe(7);
  });

  it('names a missing model file', async () => {
    await expect(openSession({ path: 'no/such/model.onnx' })).rejects.toThrow(/does not exist/);
  });
});
