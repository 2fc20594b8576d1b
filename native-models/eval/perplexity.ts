// Perplexity per document (CLI.md): every line of an LM data file is scored on its own; a document
// longer than the window is scored in windows of `seqLen` inputs, each window after the first
// conditioned on the tokens before it (lm-evaluation-harness rolling windows). nll = total negative
// log-likelihood / predicted tokens, ppl = exp(nll). The first token of a document is context only.
import { FormatError } from '../formats/errors';

/** One forward window: inputs, the token each position predicts, and which positions count. */
export interface ScoreWindow {
  input: number[];
  targets: number[];
  /** 1 where the position's prediction is scored (not already scored by an earlier window). */
  scored: number[];
}

/**
 * Rolling windows over `tokens` with at most `seqLen` inputs each. Every token after the first is
 * predicted exactly once; a later window re-reads up to seqLen − (new tokens) tokens of context.
 */
export function rollingWindows(tokens: readonly number[], seqLen: number): ScoreWindow[] {
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new Error(`The window length must be a whole number ≥ 1, not ${seqLen}.`);
  const n = tokens.length;
  const out: ScoreWindow[] = [];
  let done = 0; // tokens[1..done] have been scored
  while (done < n - 1) {
    const end = Math.min(n - 1, done + seqLen); // last target index of this window
    const start = Math.max(0, end - seqLen);
    const input = tokens.slice(start, end) as number[];
    const targets = tokens.slice(start + 1, end + 1) as number[];
    // Position i predicts tokens[start + i + 1]; count it when that index is past `done`.
    const scored = targets.map((_, i) => (start + i + 1 > done ? 1 : 0));
    out.push({ input, targets, scored });
    done = end;
  }
  return out;
}

/** One line of an LM data file, after validation. */
export interface LmLine {
  /** 1-based line number in the file. */
  line: number;
  text?: string;
  tokens?: number[];
}

function badLine(file: string, line: number, why: string): never {
  throw new FormatError('data.bad-line', `${file} line ${line}: ${why}`, file, `line ${line}`);
}

/**
 * Parses a JSONL file of {"text": …} or {"tokens": [ids…]} lines (blank lines are allowed). A
 * malformed line throws a FormatError whose message names the file and the line.
 */
export function parseLmJsonl(content: string, file: string): LmLine[] {
  const lines = content.split('\n');
  const out: LmLine[] = [];
  lines.forEach((raw, i) => {
    const line = i + 1;
    const s = raw.replace(/\r$/, '');
    if (s.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(s);
    } catch (e) {
      badLine(file, line, `is not valid JSON (${(e as Error).message.replace(/\.$/, '')}).`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) badLine(file, line, 'must be a JSON object such as {"text": "..."} or {"tokens": [1, 2, 3]}.');
    const o = obj as Record<string, unknown>;
    const hasText = Object.prototype.hasOwnProperty.call(o, 'text');
    const hasTokens = Object.prototype.hasOwnProperty.call(o, 'tokens');
    if (hasText && hasTokens) badLine(file, line, 'has both "text" and "tokens"; give one of them.');
    if (hasText) {
      if (typeof o.text !== 'string') badLine(file, line, '"text" must be a string.');
      out.push({ line, text: o.text });
      return;
    }
    if (hasTokens) {
      const t = o.tokens;
      if (!Array.isArray(t) || !t.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
        badLine(file, line, '"tokens" must be a list of token ids (whole numbers ≥ 0).');
      }
      out.push({ line, tokens: t as number[] });
      return;
    }
    badLine(file, line, 'has neither "text" nor "tokens" (perplexity needs language-modelling lines).');
  });
  return out;
}

/** Token ids of each line: {"tokens"} as given, {"text"} through `encode` (which adds what the tokenizer adds). */
export function tokenizeLmLines(
  lines: LmLine[],
  file: string,
  vocabSize: number,
  encode: ((text: string) => number[]) | null,
): { line: number; tokens: number[] }[] {
  return lines.map((l) => {
    let tokens: number[];
    if (l.tokens) tokens = l.tokens;
    else if (encode) tokens = encode(l.text!);
    else badLine(file, l.line, 'has "text" but the model has no tokenizer.json; give {"tokens": [...]} lines or add the tokenizer to the model folder.');
    const bad = tokens.find((t) => t >= vocabSize);
    if (bad !== undefined) badLine(file, l.line, `token id ${bad} is outside the model's vocabulary (0..${vocabSize - 1}).`);
    return { line: l.line, tokens };
  });
}

/** Scores a batch of windows: per-position log-probabilities of the targets (0 where not scored). */
export interface TokenScorer {
  scoreBatch(windows: ScoreWindow[]): Promise<Float32Array[]>;
}

export interface PerplexityResult {
  metric: 'ppl';
  ppl: number;
  nll: number;
  /** Predicted (scored) tokens. */
  tokens: number;
  documents: number;
  windows: number;
}

export interface PerplexityOptions {
  seqLen: number;
  batchSize: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** Perplexity over documents (each a token list), batching windows in file order. */
export async function perplexity(scorer: TokenScorer, docs: readonly (readonly number[])[], opts: PerplexityOptions): Promise<PerplexityResult> {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`The batch size must be a whole number ≥ 1, not ${opts.batchSize}.`);
  const windows = docs.flatMap((d) => rollingWindows(d, opts.seqLen));
  let total = 0;
  let count = 0;
  for (let b = 0; b < windows.length; b += opts.batchSize) {
    opts.signal?.throwIfAborted();
    const batch = windows.slice(b, b + opts.batchSize);
    const lps = await scorer.scoreBatch(batch);
    batch.forEach((w, i) => {
      const lp = lps[i]!;
      w.scored.forEach((s, j) => {
        if (s) {
          total -= lp[j]!;
          count++;
        }
      });
    });
    opts.onProgress?.(Math.min(b + opts.batchSize, windows.length), windows.length);
  }
  if (count === 0) throw new Error('There is nothing to score: every document has fewer than two tokens.');
  const nll = total / count;
  return { metric: 'ppl', ppl: Math.exp(nll), nll, tokens: count, documents: docs.length, windows: windows.length };
}
