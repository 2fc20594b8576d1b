// Exact match: normalisation, stopping rules and batching by prompt length, with a scripted model.
import { describe, expect, it } from 'vitest';
import { answerText, encodeInstructionItem, isExactMatch, normalizeAnswer, scoreExactMatch, type CacheStepper, type GenerationItem } from '../../../native-models/eval/exact-match';
import { alpacaPrompt } from '../../../native-models/data/tokenize';

describe('normalisation', () => {
  it('trims and lower-cases both sides', () => {
    expect(normalizeAnswer('  Paris \n')).toBe('paris');
    expect(isExactMatch(' PARIS', 'paris ')).toBe(true);
    expect(isExactMatch('Paris.', 'Paris')).toBe(false);
    expect(isExactMatch('New  York', 'new york')).toBe(false);
  });
  it('cuts the answer at the first newline when newlines stop it', () => {
    expect(answerText('42\nand more', true)).toBe('42');
    expect(answerText('a\nb', false)).toBe('a\nb');
  });
});

describe('encodeInstructionItem', () => {
  it('prompts with the Alpaca template the data module trains with', () => {
    const tok = { vocabSize: 300, bosId: 256, eosId: 257, padId: null, encode: (s: string, o?: { addSpecialTokens?: boolean }) => [...((o?.addSpecialTokens ?? true) ? [256] : []), ...Buffer.from(s)] };
    const item = encodeInstructionItem({ format: 'instruction', line: 4, instruction: 'Add', input: '1 and 2', output: '3' }, tok);
    expect(item.prompt).toEqual([256, ...Buffer.from(alpacaPrompt('Add', '1 and 2'))]);
    expect(item).toMatchObject({ line: 4, reference: '3', stopAtNewline: true });
    expect(encodeInstructionItem({ format: 'instruction', line: 1, instruction: 'x', input: null, output: 'a\nb' }, tok).stopAtNewline).toBe(false);
  });
});

/**
 * A scripted model over byte tokens: after a sequence whose last token is t, it predicts
 * script[t] (a byte, or EOS = 0). Every call is logged, so batching is visible.
 */
interface FakeCache {
  batch: number;
  length: number;
}

function scriptedModel(script: Record<number, number>, contextLength = 64): CacheStepper<FakeCache> & { calls: number[][][] } {
  const V = 130;
  const calls: number[][][] = [];
  return {
    contextLength,
    calls,
    emptyCache: (batch: number): FakeCache => ({ batch, length: 0 }),
    async cacheStep(tokens: number[][], cache: FakeCache) {
      expect(tokens.length).toBe(cache.batch);
      calls.push(tokens.map((r) => [...r]));
      const logits = tokens.map((row) => {
        const lg = new Float32Array(V).fill(-1);
        lg[script[row.at(-1)!] ?? 0] = 5;
        return lg;
      });
      return { logits, cache: { batch: cache.batch, length: cache.length + tokens[0]!.length } };
    },
  };
}

const decode = (ids: number[]) => String.fromCharCode(...ids);
const c = (s: string) => s.charCodeAt(0);

describe('scoreExactMatch', () => {
  // "A" → "b" → "c" → EOS; "N" → "o" → "\n" → "x" …; "L" → "L" forever.
  const script = { [c('A')]: c('b'), [c('b')]: c('c'), [c('c')]: 0, [c('N')]: c('o'), [c('o')]: 10, 10: c('x'), [c('x')]: c('x'), [c('L')]: c('L') };
  const item = (line: number, prompt: string, reference: string, stopAtNewline = true): GenerationItem => ({ line, prompt: [...prompt].map(c), reference, stopAtNewline });

  it('stops at EOS, at a newline and at the token budget, and matches trimmed lower-cased answers', async () => {
    const model = scriptedModel(script);
    const items = [item(1, 'qA', 'BC'), item(2, 'qN', 'o'), item(3, 'qL', 'LLLL'), item(4, 'qN', 'o\nx', false)];
    const r = await scoreExactMatch(model, items, { batchSize: 8, maxNewTokens: 4, stopTokens: [0], decode });
    expect(r.items.map((s) => [s.prediction, s.finish, s.generated, s.match])).toEqual([
      ['bc', 'eos', 3, true],
      ['o', 'newline', 2, true],
      ['LLLL', 'length', 4, true],
      // Multi-line reference: only EOS and the budget stop it.
      ['o\nxx', 'length', 4, false],
    ]);
    expect(r.em).toBe(0.75);
    expect(r.n).toBe(4);
  });

  it('batches prompts of equal length together and generates greedily with the cache', async () => {
    const model = scriptedModel(script);
    const items = [item(1, 'qA', 'bc'), item(2, 'longerA', 'bc'), item(3, 'qN', 'o')];
    const seen: number[] = [];
    const r = await scoreExactMatch(model, items, { batchSize: 2, maxNewTokens: 5, stopTokens: [0], decode, onProgress: (d) => seen.push(d) });
    expect(r.items.map((s) => s.prediction)).toEqual(['bc', 'bc', 'o']);
    // The 7-token prompt first (alone), then the two 2-token prompts together.
    expect(model.calls[0]).toEqual([[...'longerA'].map(c)]);
    const pair = model.calls.find((call) => call.length === 2)!;
    expect(pair).toEqual([[...'qA'].map(c), [...'qN'].map(c)]);
    // After the prefill, one new token per sequence per step.
    expect(model.calls.filter((call) => call.length === 2).slice(1).every((call) => call.every((row) => row.length === 1))).toBe(true);
    expect(seen).toEqual([1, 3]);
  });

  it('keeps the last tokens of a prompt that does not fit beside the new tokens', async () => {
    const model = scriptedModel(script, 6);
    await scoreExactMatch(model, [item(1, 'xxxxxqA', 'bc')], { batchSize: 1, maxNewTokens: 3, stopTokens: [0], decode });
    expect(model.calls[0]).toEqual([[...'xqA'].map(c)]);
    await expect(scoreExactMatch(model, [item(1, 'qA', 'bc')], { batchSize: 1, maxNewTokens: 6, stopTokens: [0], decode })).rejects.toThrow(/leave no room for a prompt/);
  });
});
