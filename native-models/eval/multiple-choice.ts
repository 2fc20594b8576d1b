// Multiple choice with lm-evaluation-harness semantics (ALGORITHMS.md §7). Each choice is scored by
// the sum of the log-probabilities of its continuation tokens given the context; acc takes the
// argmax of the sums, acc_norm the argmax of sum / (UTF-8 bytes of the choice). Ties go to the
// lowest index, as numpy's argmax does.
//
// Tokenisation follows the harness's `_encode_pair`: the continuation is `delimiter + choice`
// (delimiter " " by default: the harness's target_delimiter); trailing whitespace of the context
// moves to the front of the continuation; then
//     whole = encode(context + continuation), ctx = encode(context), cont = whole[len(ctx):]
// so a tokenizer that merges across the boundary scores the same tokens the harness would. Both
// encodes use the tokenizer's own special tokens (e.g. a leading BOS), like tuning does. An empty
// context that encodes to nothing is given the BOS token (else EOS) as its context, as the harness
// gives its prefix token. A request longer than the window keeps its last seqLen + 1 tokens.
import type { DataRecord } from '../data/records';
import type { DataTokenizer } from '../data/tokenize';
import { FormatError } from '../formats/errors';
import type { ScoreWindow, TokenScorer } from './perplexity';

export interface ChoiceItem {
  /** Line of the data file. */
  line: number;
  label: number;
  context: number[];
  /** Continuation tokens of each choice. */
  continuations: number[][];
  /** UTF-8 bytes of each choice (without the delimiter): acc_norm's denominator. */
  choiceBytes: number[];
}

export interface ChoiceEncoding {
  /** Put between context and choice (default " "). */
  delimiter?: string;
}

const utf8 = new TextEncoder();

/** Encodes one multiple-choice record the way lm-evaluation-harness does (see the file comment). */
export function encodeChoiceItem(
  record: Extract<DataRecord, { format: 'choice' }>,
  tokenizer: DataTokenizer,
  options: ChoiceEncoding = {},
  file = 'the data file',
): ChoiceItem {
  const delimiter = options.delimiter ?? ' ';
  const continuations = record.choices.map((choice, i) => {
    let context = record.context;
    let continuation = delimiter + choice;
    const spaces = context.length - context.trimEnd().length;
    if (spaces > 0) {
      continuation = context.slice(context.length - spaces) + continuation;
      context = context.slice(0, context.length - spaces);
    }
    let ctx = tokenizer.encode(context, { addSpecialTokens: true });
    let cont: number[];
    if (ctx.length === 0) {
      const prefix = tokenizer.bosId ?? tokenizer.eosId;
      if (prefix === null) throw new FormatError('eval.empty-context', `${file}: Line ${record.line} has an empty context and the tokenizer has neither a BOS nor an EOS token to stand in for it; give the line some context.`, file);
      ctx = [prefix];
      cont = tokenizer.encode(continuation, { addSpecialTokens: false });
    } else {
      cont = tokenizer.encode(context + continuation, { addSpecialTokens: true }).slice(ctx.length);
    }
    if (cont.length === 0) throw new FormatError('eval.empty-choice', `${file}: Line ${record.line}: choice ${i} encodes to no tokens after the context; give it some text.`, file);
    return { ctx, cont };
  });
  return {
    line: record.line,
    label: record.label,
    // The context of the first choice (identical for all unless the context ends in whitespace,
    // which then moved into every continuation alike).
    context: continuations[0]!.ctx,
    continuations: continuations.map((c) => c.cont),
    choiceBytes: record.choices.map((c) => utf8.encode(c).length),
  };
}

/** Index of the largest value; the lowest index on ties (numpy argmax). */
export function argmaxFirst(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

export interface ChoiceScore {
  line: number;
  label: number;
  /** Sum of the continuation's token log-probabilities, per choice. */
  loglikelihoods: number[];
  /** loglikelihood / UTF-8 bytes of the choice, per choice. */
  normalized: number[];
  /** argmax of loglikelihoods (acc's prediction). */
  pred: number;
  /** argmax of normalized (acc_norm's prediction). */
  predNorm: number;
}

export interface MultipleChoiceResult {
  metric: 'mc';
  acc: number;
  acc_norm: number;
  /** Items scored. */
  n: number;
  items: ChoiceScore[];
}

export interface MultipleChoiceOptions {
  /** Most input positions per forward pass (the model's context, or less). */
  seqLen: number;
  /** (item, choice) requests per forward pass. */
  batchSize: number;
  /** Called after each batch with requests done and the total. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** One (item, choice) request as a scoring window: its continuation positions are scored. */
export function choiceWindow(context: readonly number[], continuation: readonly number[], seqLen: number): ScoreWindow {
  if (continuation.length > seqLen) throw new RangeError(`A continuation of ${continuation.length} tokens does not fit a window of ${seqLen} positions.`);
  const all = [...context, ...continuation].slice(-(seqLen + 1));
  const input = all.slice(0, -1);
  const targets = all.slice(1);
  const firstScored = targets.length - continuation.length;
  return { input, targets, scored: targets.map((_, j) => (j >= firstScored ? 1 : 0)) };
}

/**
 * Scores every choice of every item in batches of `batchSize` requests (longest first, so a batch
 * pads little; the order changes nothing else) and returns acc, acc_norm and the per-choice sums.
 */
export async function scoreMultipleChoice(scorer: TokenScorer, items: readonly ChoiceItem[], opts: MultipleChoiceOptions): Promise<MultipleChoiceResult> {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`The batch size must be a whole number ≥ 1, not ${opts.batchSize}.`);
  if (!Number.isInteger(opts.seqLen) || opts.seqLen < 1) throw new RangeError(`The window length must be a whole number ≥ 1, not ${opts.seqLen}.`);
  const requests: { item: number; choice: number; window: ScoreWindow }[] = [];
  items.forEach((it, i) =>
    it.continuations.forEach((cont, c) => {
      if (cont.length > opts.seqLen) throw new RangeError(`Line ${it.line}: choice ${c} is ${cont.length} tokens long, more than the window of ${opts.seqLen} tokens; use a longer --seq-len or a shorter choice.`);
      requests.push({ item: i, choice: c, window: choiceWindow(it.context, cont, opts.seqLen) });
    }),
  );
  const order = requests.map((_, i) => i).sort((a, b) => requests[b]!.window.input.length - requests[a]!.window.input.length || a - b);
  const sums = items.map((it) => new Array<number>(it.continuations.length).fill(0));
  for (let b = 0; b < order.length; b += opts.batchSize) {
    opts.signal?.throwIfAborted();
    const batch = order.slice(b, b + opts.batchSize).map((i) => requests[i]!);
    const lps = await scorer.scoreBatch(batch.map((r) => r.window));
    batch.forEach((r, k) => {
      const lp = lps[k]!;
      let s = 0;
      r.window.scored.forEach((m, j) => {
        if (m) s += lp[j]!;
      });
      sums[r.item]![r.choice] = s;
    });
    opts.onProgress?.(Math.min(b + opts.batchSize, order.length), order.length);
  }
  const scores: ChoiceScore[] = items.map((it, i) => {
    const ll = sums[i]!;
    const normalized = ll.map((s, c) => s / it.choiceBytes[c]!);
    return { line: it.line, label: it.label, loglikelihoods: ll, normalized, pred: argmaxFirst(ll), predNorm: argmaxFirst(normalized) };
  });
  const n = scores.length;
  if (n === 0) throw new RangeError('There are no multiple-choice items to score.');
  const acc = scores.filter((s) => s.pred === s.label).length / n;
  const accNorm = scores.filter((s) => s.predNorm === s.label).length / n;
  return { metric: 'mc', acc, acc_norm: accNorm, n, items: scores };
}
