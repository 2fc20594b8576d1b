// Perplexity per document (CLI.md): every line of an LM data file is scored on its own; a document
// longer than the window is scored in windows of `seqLen` inputs, each window after the first
// conditioned on the tokens before it (lm-evaluation-harness rolling windows). nll = total negative
// log-likelihood / predicted tokens, ppl = exp(nll). The first token of a document is context only.
// Reading and tokenising the documents is tasks.ts's job (the data module's strict readers).
import { basename } from 'node:path';
import { FORMAT_LABELS, formatOfFields, parseJsonLine, validateRecord, type DataFormat } from '../data/records';
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

/**
 * Parses the content of a JSONL file of {"text"} or {"tokens"} lines with the data module's rules
 * (blank lines ignored, one format per file, the same sentences). A bad line throws a FormatError
 * naming the file and the line. Files on disk are better read with tasks.ts readEvalTask (CSV too).
 */
export function parseLmJsonl(content: string, file: string): LmLine[] {
  const name = basename(file);
  const fail = (line: number, message: string): never => {
    throw new FormatError('data.bad-line', `${name}: ${message}`, file, `line ${line}`);
  };
  const out: LmLine[] = [];
  let first: { format: DataFormat; line: number } | null = null;
  content.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const text = raw.replace(/\r$/, '');
    if (text.trim() === '') return;
    const parsed = parseJsonLine(text, line);
    if (!parsed.ok) return fail(line, parsed.message);
    const format = formatOfFields(Object.keys(parsed.value), line);
    if (!format.ok) return fail(line, format.message);
    if (format.value !== 'text' && format.value !== 'tokens') return fail(line, `Line ${line} is ${FORMAT_LABELS[format.value]} data; perplexity needs {"text"} or {"tokens"} lines.`);
    if (first && first.format !== format.value) {
      return fail(line, `Line ${line} is in the ${FORMAT_LABELS[format.value]} format, but line ${first.line} is in the ${FORMAT_LABELS[first.format]} format; a file must use one format throughout.`);
    }
    first ??= { format: format.value, line };
    const record = validateRecord(format.value, parsed.value, line);
    if (!record.ok) return fail(line, record.message);
    const r = record.value;
    out.push(r.format === 'text' ? { line, text: r.text } : { line, tokens: (r as { tokens: number[] }).tokens });
  });
  return out;
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
