import { describe, expect, it } from 'vitest';
import { Batcher, makeBatch, type DataCursor } from '../../../native-models/data/batches';
import { Rng, sampleWithoutReplacement } from '../../../native-models/data/prng';
import { splitValidation } from '../../../native-models/data/split';
import type { Example } from '../../../native-models/data/tokenize';

/** Example i has tokens [i*10+1, …] of length len, loss on all but the first token. */
function ex(line: number, tokens: number[], lossFrom = 1): Example {
  const lossMask = new Uint8Array(tokens.length);
  for (let i = lossFrom; i < tokens.length; i++) lossMask[i] = 1;
  return { tokens: Int32Array.from(tokens), lossMask, line };
}

const nums = (a: BigInt64Array): number[] => Array.from(a, Number);

describe('makeBatch', () => {
  it('targets are tokens[1:], rows truncated to seqLen and right-padded, padding masked, T = seqLen − 1', () => {
    const examples = [ex(1, [1, 2, 3, 4, 5, 6, 7]), ex(2, [8, 9]), ex(3, [10, 11, 12, 13], 2)];
    const b = makeBatch(examples, [0, 1, 2], { seqLen: 5, padId: 0 });
    expect(b.dims).toEqual([3, 4]);
    expect(nums(b.inputIds)).toEqual([1, 2, 3, 4, /**/ 8, 0, 0, 0, /**/ 10, 11, 12, 0]);
    expect(nums(b.targets)).toEqual([2, 3, 4, 5, /**/ 9, 0, 0, 0, /**/ 11, 12, 13, 0]);
    // Row 3 counts from token index 2 (its lossMask), i.e. targets 12 and 13.
    expect(Array.from(b.mask)).toEqual([1, 1, 1, 1, /**/ 1, 0, 0, 0, /**/ 0, 1, 1, 0]);
    expect(b.targetTokens).toBe(7);
    expect(b.lines).toEqual([1, 2, 3]);
  });

  it("padTo 'longest' uses the batch's longest row", () => {
    const b = makeBatch([ex(1, [1, 2, 3]), ex(2, [4, 5])], [1, 0], { seqLen: 16, padId: 9, padTo: 'longest' });
    expect(b.dims).toEqual([2, 2]);
    expect(nums(b.inputIds)).toEqual([4, 9, 1, 2]);
    expect(nums(b.targets)).toEqual([5, 9, 2, 3]);
    expect(Array.from(b.mask)).toEqual([1, 0, 1, 1]);
  });

  it('refuses a sequence length below 2', () => {
    expect(() => makeBatch([ex(1, [1, 2])], [0], { seqLen: 1, padId: 0 })).toThrow(/sequence length must be a whole number ≥ 2/);
  });
});

describe('Batcher', () => {
  const examples = Array.from({ length: 10 }, (_, i) => ex(i + 1, [i + 1, 100 + i]));

  it('without shuffling: file order, batchSize at a time, a smaller last batch, then again from the start', () => {
    const b = new Batcher(examples, { batchSize: 4, seqLen: 8, padId: 0, shuffle: false });
    expect(b.batchesPerEpoch).toBe(3);
    const seen = Array.from({ length: 4 }, () => b.next());
    expect(seen.map((x) => x.examples)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9], [0, 1, 2, 3]]);
    expect(seen.map((x) => x.epoch)).toEqual([0, 0, 0, 1]);
    expect(seen[2]!.dims).toEqual([2, 7]);
  });

  it('dropLast drops the short batch', () => {
    const b = new Batcher(examples, { batchSize: 4, seqLen: 8, padId: 0, shuffle: false, dropLast: true });
    expect([b.next(), b.next(), b.next()].map((x) => x.examples)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3]]);
  });

  it('with shuffling: each epoch is a permutation of all examples, epochs differ, the same seed repeats it', () => {
    const run = (seed: number): number[][] => {
      const b = new Batcher(examples, { batchSize: 5, seqLen: 8, padId: 0, seed });
      const epochs: number[][] = [];
      for (let e = 0; e < 3; e++) epochs.push([...b.next().examples, ...b.next().examples]);
      return epochs;
    };
    const a = run(7);
    for (const order of a) expect([...order].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(a[0]).not.toEqual(a[1]);
    expect(a[1]).not.toEqual(a[2]);
    expect(run(7)).toEqual(a);
    expect(run(8)).not.toEqual(a);
  });

  it('a saved cursor (through JSON) resumes with bit-identical batches, across epoch boundaries', () => {
    for (const at of [0, 1, 2, 3, 5, 7]) {
      const opts = { batchSize: 3, seqLen: 8, padId: 0, seed: 42 };
      const original = new Batcher(examples, opts);
      for (let i = 0; i < at; i++) original.next();
      const cursor = JSON.parse(JSON.stringify(original.cursor)) as DataCursor;
      const resumed = new Batcher(examples, opts, cursor);
      for (let i = 0; i < 9; i++) {
        const x = original.next();
        const y = resumed.next();
        expect([y.epoch, y.examples, nums(y.inputIds), nums(y.targets), Array.from(y.mask)]).toEqual([x.epoch, x.examples, nums(x.inputIds), nums(x.targets), Array.from(x.mask)]);
      }
    }
  });

  it('refuses a cursor that does not fit the data', () => {
    expect(() => new Batcher(examples, { batchSize: 2, seqLen: 4, padId: 0 }, { epoch: 0, index: 11, rngState: 1 })).toThrow(/does not fit a dataset of 10 examples/);
  });
});

describe('PRNG', () => {
  it('mulberry32 state round trip continues the same stream; int() stays in range', () => {
    const a = new Rng(123);
    a.next();
    const b = Rng.fromState(a.state);
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(Array.from({ length: 5 }, () => a.nextUint32()));
    for (let i = 0; i < 1000; i++) {
      const v = a.int(7);
      expect(Number.isInteger(v) && v >= 0 && v < 7).toBe(true);
    }
  });

  it('sampling without replacement never repeats and never picks a zero weight', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 200; i++) {
      const s = sampleWithoutReplacement(rng, [1, 0, 2, 3, 0, 1], 3);
      expect(new Set(s).size).toBe(3);
      expect(s.includes(1) || s.includes(4)).toBe(false);
    }
    expect(() => sampleWithoutReplacement(rng, [1, 0, 0], 2)).toThrow(/only 1 have a weight above 0/);
  });
});

describe('splitValidation', () => {
  const items = Array.from({ length: 20 }, (_, i) => i);

  it('holds out round(fraction·n), disjoint from training, both in file order, same for the same seed', () => {
    const s = splitValidation(items, { fraction: 0.25, seed: 3 });
    expect(s.validation.length).toBe(5);
    expect(s.train.length).toBe(15);
    expect([...s.train, ...s.validation].sort((a, b) => a - b)).toEqual(items);
    expect(s.validation).toEqual([...s.validation].sort((a, b) => a - b));
    expect(s.train).toEqual([...s.train].sort((a, b) => a - b));
    expect(splitValidation(items, { fraction: 0.25, seed: 3 })).toEqual(s);
    expect(splitValidation(items, { fraction: 0.25, seed: 4 }).validation).not.toEqual(s.validation);
  });

  it('keeps at least one example on each side, and says when that is impossible', () => {
    expect(splitValidation(items, { fraction: 0.001, seed: 1 }).validation.length).toBe(1);
    expect(splitValidation([1, 2], { fraction: 0.9, seed: 1 }).train.length).toBe(1);
    expect(splitValidation(items, { fraction: 0, seed: 1 }).train).toEqual(items);
    expect(() => splitValidation([1], { fraction: 0.5, seed: 1 })).toThrow(/needs at least 2 examples/);
  });
});
