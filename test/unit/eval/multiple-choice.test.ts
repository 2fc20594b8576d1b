// Multiple choice: harness-style tokenisation, batching, sums, acc and acc_norm — all against
// values worked out by hand in this file.
import { describe, expect, it } from 'vitest';
import type { DataTokenizer } from '../../../native-models/data/tokenize';
import { argmaxFirst, choiceWindow, encodeChoiceItem, scoreMultipleChoice, type ChoiceItem } from '../../../native-models/eval/multiple-choice';
import type { ScoreWindow, TokenScorer } from '../../../native-models/eval/perplexity';

/** Characters are their char codes; " x" is ONE token (1000 + code of x): merges across the boundary. BOS = 1. */
function mergingTokenizer(bos: number | null = 1): DataTokenizer {
  return {
    vocabSize: 2000,
    bosId: bos,
    eosId: 2,
    padId: null,
    encode(text, opts) {
      const out: number[] = [];
      if ((opts?.addSpecialTokens ?? true) && bos !== null) out.push(bos);
      for (let i = 0; i < text.length; i++) {
        if (text[i] === ' ' && i + 1 < text.length && text[i + 1] !== ' ') {
          out.push(1000 + text.charCodeAt(i + 1));
          i++;
        } else out.push(text.charCodeAt(i));
      }
      return out;
    },
  };
}

const rec = (context: string, choices: string[], label = 0) => ({ format: 'choice' as const, line: 7, context, choices, label });

describe('encodeChoiceItem (lm-evaluation-harness _encode_pair)', () => {
  it('takes the continuation as tokens(context + " " + choice) after tokens(context)', () => {
    const it = encodeChoiceItem(rec('ab', ['cd', 'é']), mergingTokenizer());
    expect(it.context).toEqual([1, 97, 98]);
    // " c" merges into one token 1099; "d" follows.
    expect(it.continuations).toEqual([[1099, 100], [1000 + 'é'.charCodeAt(0)]]);
    // acc_norm divides by UTF-8 bytes of the choice itself: "é" is 2 bytes.
    expect(it.choiceBytes).toEqual([2, 2]);
    expect(it.line).toBe(7);
  });

  it('moves trailing whitespace of the context into the continuation', () => {
    const it = encodeChoiceItem(rec('ab ', ['c', 'd']), mergingTokenizer());
    // context "ab", continuation "  c": " " stays a char (next is a space), then " c" merges.
    expect(it.context).toEqual([1, 97, 98]);
    expect(it.continuations).toEqual([[32, 1099], [32, 1100]]);
  });

  it('uses a custom delimiter', () => {
    const it = encodeChoiceItem(rec('Q:', ['x', 'y']), mergingTokenizer(), { delimiter: '\n' });
    expect(it.continuations).toEqual([[10, 120], [10, 121]]);
  });

  it('gives an empty context the BOS token, else EOS', () => {
    const withBos = encodeChoiceItem(rec('', ['x', 'y']), mergingTokenizer(1));
    expect(withBos.context).toEqual([1]);
    expect(withBos.continuations).toEqual([[1120], [1121]]);
    const noBos = encodeChoiceItem(rec('', ['x', 'y']), { ...mergingTokenizer(null), bosId: null });
    expect(noBos.context).toEqual([2]);
  });
});

describe('argmaxFirst', () => {
  it('breaks ties by the lowest index, like numpy', () => {
    expect(argmaxFirst([1, 3, 3, 2])).toBe(1);
    expect(argmaxFirst([-5, -5])).toBe(0);
    expect(argmaxFirst([-Infinity, -1e9])).toBe(1);
  });
});

describe('choiceWindow', () => {
  it('scores the continuation positions only', () => {
    expect(choiceWindow([1, 2, 3], [4, 5], 10)).toEqual({ input: [1, 2, 3, 4], targets: [2, 3, 4, 5], scored: [0, 0, 1, 1] });
  });
  it('keeps the last seqLen + 1 tokens when the request is too long', () => {
    expect(choiceWindow([1, 2, 3, 4, 5], [6, 7], 3)).toEqual({ input: [4, 5, 6], targets: [5, 6, 7], scored: [0, 1, 1] });
    expect(() => choiceWindow([1], [2, 3, 4], 2)).toThrow(/does not fit/);
  });
});

describe('scoreMultipleChoice', () => {
  // log p(target | input) = −target / 10, whatever the context: sums are easy by hand.
  const scorer = {
    batches: [] as number[],
    async scoreBatch(ws: ScoreWindow[]) {
      this.batches.push(ws.length);
      return ws.map((w) => Float32Array.from(w.targets, (t, j) => (w.scored[j] ? -t / 10 : 0)));
    },
  } satisfies TokenScorer & { batches: number[] };

  const items: ChoiceItem[] = [
    // Sums: [−(3+3)/10, −(1+1+1+1)/10] = [−0.6, −0.4] → acc picks 1. Bytes [1, 8]: normalised
    // [−0.6, −0.05] → acc_norm picks 1. Label 1: both right.
    { line: 1, label: 1, context: [9, 9], continuations: [[3, 3], [1, 1, 1, 1]], choiceBytes: [1, 8] },
    // Sums [−0.2, −0.5, −0.2]: tie between 0 and 2 → 0. Bytes [1, 10, 2]: [−0.2, −0.05, −0.1] → 1.
    // Label 0: acc right, acc_norm wrong.
    { line: 2, label: 0, context: [9], continuations: [[2], [5], [1, 1]], choiceBytes: [1, 10, 2] },
    // Sums [−0.7, −0.8] → 0; bytes [7, 4]: [−0.1, −0.2] → 0. Label 1: both wrong.
    { line: 3, label: 1, context: [9, 9, 9], continuations: [[7], [4, 4]], choiceBytes: [7, 4] },
  ];

  it('sums continuation log-probabilities and takes acc and acc_norm like the harness', async () => {
    scorer.batches = [];
    const r = await scoreMultipleChoice(scorer, items, { seqLen: 16, batchSize: 3 });
    expect(r.items.map((s) => s.loglikelihoods.map((x) => Number(x.toFixed(6))))).toEqual([[-0.6, -0.4], [-0.2, -0.5, -0.2], [-0.7, -0.8]]);
    expect(r.items.map((s) => [s.pred, s.predNorm])).toEqual([[1, 1], [0, 1], [0, 0]]);
    expect(r.acc).toBeCloseTo(2 / 3, 12);
    expect(r.acc_norm).toBeCloseTo(1 / 3, 12);
    expect(r.n).toBe(3);
    // 7 requests in batches of 3.
    expect(scorer.batches).toEqual([3, 3, 1]);
  });

  it('gives the same scores whatever the batch size, and reports progress', async () => {
    const seen: [number, number][] = [];
    const a = await scoreMultipleChoice(scorer, items, { seqLen: 16, batchSize: 1, onProgress: (d, t) => seen.push([d, t]) });
    const b = await scoreMultipleChoice(scorer, items, { seqLen: 16, batchSize: 64 });
    expect(a.items).toEqual(b.items);
    expect(seen.at(-1)).toEqual([7, 7]);
    expect(seen.length).toBe(7);
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(scoreMultipleChoice(scorer, items, { seqLen: 16, batchSize: 1, signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('refuses a choice longer than the window, naming the line', async () => {
    await expect(scoreMultipleChoice(scorer, items, { seqLen: 3, batchSize: 2 })).rejects.toThrow(/Line 1: choice 1 is 4 tokens long, more than the window of 3/);
  });
});
