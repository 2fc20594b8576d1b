// Greedy generation with exact match (ALGORITHMS.md §7). The prompt of an instruction line is the
// Alpaca template the data module trains with (data/tokenize.ts alpacaPrompt, with the tokenizer's
// special tokens); the reference is its "output". Generation is greedy through the key/value cache
// and stops at an EOS token, at a newline (unless the reference itself spans several lines, when
// only EOS and the token budget stop it), or after maxNewTokens. The answer is the text before the
// first newline (the whole text for multi-line references); a match compares both sides trimmed
// and lower-cased.
//
// Batching: sequences in one cache step must have the same length (the graphs have no padding
// mask), so prompts are grouped by token length and each group is generated batchSize at a time;
// a sequence that has stopped keeps being fed (its extra tokens are ignored) until its batch ends.
import type { DataRecord } from '../data/records';
import { alpacaPrompt, type DataTokenizer } from '../data/tokenize';
import { argmaxFirst } from './multiple-choice';

/** Trimmed and lower-cased: the comparison form of an answer. */
export function normalizeAnswer(s: string): string {
  return s.trim().toLowerCase();
}

export function isExactMatch(prediction: string, reference: string): boolean {
  return normalizeAnswer(prediction) === normalizeAnswer(reference);
}

export interface GenerationItem {
  line: number;
  prompt: number[];
  reference: string;
  /** Stop at the first newline (true unless the reference has several lines). */
  stopAtNewline: boolean;
}

/** The prompt tokens and reference of one instruction line. */
export function encodeInstructionItem(record: Extract<DataRecord, { format: 'instruction' }>, tokenizer: DataTokenizer): GenerationItem {
  return {
    line: record.line,
    prompt: tokenizer.encode(alpacaPrompt(record.instruction, record.input), { addSpecialTokens: true }),
    reference: record.output,
    stopAtNewline: !record.output.trim().includes('\n'),
  };
}

/** What greedy generation needs from a model (ModelRunner fits, with its KVCache as C). */
export interface CacheStepper<C> {
  readonly contextLength: number;
  emptyCache(batch: number): C;
  cacheStep(tokens: number[][], cache: C): Promise<{ logits: Float32Array[]; cache: C }>;
}

export interface GenerationScore {
  line: number;
  prediction: string;
  reference: string;
  match: boolean;
  /** Tokens generated (the stop token included). */
  generated: number;
  finish: 'eos' | 'newline' | 'length';
}

export interface ExactMatchResult {
  metric: 'em';
  em: number;
  n: number;
  items: GenerationScore[];
}

export interface ExactMatchOptions {
  batchSize: number;
  maxNewTokens: number;
  /** Token ids that end an answer (the model's EOS ids). */
  stopTokens: readonly number[];
  /** Token ids → text (special tokens skipped). */
  decode: (ids: number[]) => string;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** The answer text of a generation: up to the first newline when that stops it. */
export function answerText(text: string, stopAtNewline: boolean): string {
  if (!stopAtNewline) return text;
  const nl = text.indexOf('\n');
  return nl === -1 ? text : text.slice(0, nl);
}

/**
 * Greedy generation for every item, then exact match. A prompt longer than the context allows
 * (context − maxNewTokens) keeps its last tokens, as lm-evaluation-harness truncates on the left.
 */
export async function scoreExactMatch<C>(model: CacheStepper<C>, items: readonly GenerationItem[], opts: ExactMatchOptions): Promise<ExactMatchResult> {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`The batch size must be a whole number ≥ 1, not ${opts.batchSize}.`);
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1) throw new RangeError(`The number of new tokens must be a whole number ≥ 1, not ${opts.maxNewTokens}.`);
  const room = model.contextLength - opts.maxNewTokens;
  if (room < 1) throw new RangeError(`${opts.maxNewTokens} new tokens leave no room for a prompt in a context of ${model.contextLength} positions; generate fewer tokens.`);
  if (items.length === 0) throw new RangeError('There are no instruction items to score.');
  const prompts = items.map((it) => it.prompt.slice(-room));
  if (prompts.some((p) => p.length === 0)) throw new RangeError('A prompt encodes to no tokens; every instruction needs a prompt.');
  const stop = new Set(opts.stopTokens);
  const groups = new Map<number, number[]>();
  prompts.forEach((p, i) => groups.set(p.length, [...(groups.get(p.length) ?? []), i]));
  const batches: number[][] = [];
  for (const len of [...groups.keys()].sort((a, b) => b - a)) {
    const idx = groups.get(len)!;
    for (let b = 0; b < idx.length; b += opts.batchSize) batches.push(idx.slice(b, b + opts.batchSize));
  }
  const scores: GenerationScore[] = new Array(items.length);
  let done = 0;
  for (const batch of batches) {
    opts.signal?.throwIfAborted();
    const out: number[][] = batch.map(() => []);
    const finish: (GenerationScore['finish'] | null)[] = batch.map(() => null);
    let cache = model.emptyCache(batch.length);
    let feed = batch.map((i) => prompts[i]!);
    for (let step = 0; step < opts.maxNewTokens && finish.some((f) => f === null); step++) {
      opts.signal?.throwIfAborted();
      const res = await model.cacheStep(feed, cache);
      cache = res.cache;
      feed = res.logits.map((lg, k) => {
        const next = argmaxFirst(lg);
        if (finish[k] === null) {
          out[k]!.push(next);
          const item = items[batch[k]!]!;
          if (stop.has(next)) finish[k] = 'eos';
          else if (item.stopAtNewline && opts.decode(out[k]!).includes('\n')) finish[k] = 'newline';
        }
        return [next];
      });
    }
    batch.forEach((i, k) => {
      const item = items[i]!;
      const ids = out[k]!.filter((t) => !stop.has(t));
      const prediction = answerText(opts.decode(ids), item.stopAtNewline);
      scores[i] = { line: item.line, prediction, reference: item.reference, match: isExactMatch(prediction, item.reference), generated: out[k]!.length, finish: finish[k] ?? 'length' };
    });
    done += batch.length;
    opts.onProgress?.(done, items.length);
  }
  const em = scores.filter((s) => s.match).length / scores.length;
  return { metric: 'em', em, n: scores.length, items: scores };
}
