// What a user (and the audit log) sees of a data file before it is used: format, count, token
// statistics, SHA-256 and the first rows; plus loading a file all the way to token examples.
import { readDataFile, scanDataFile, type DataIssue, type DataScan, type ScanOptions } from './read';
import { FORMAT_FIELDS, FORMAT_LABELS, type DataFormat, type DataRecord } from './records';
import { tokenizeRecord, type DataTokenizer, type Example, type TokenizeOptions } from './tokenize';

export interface TokenStats {
  examples: number;
  /** Tokens over all examples (before truncation). */
  total: number;
  min: number;
  max: number;
  mean: number;
  /** Tokens that count in the loss (after the loss mask, before truncation). */
  lossTokens: number;
  /** Examples longer than seqLen (they will be truncated), when seqLen was given. */
  longerThanSeqLen: number | null;
  seqLen: number | null;
}

export interface DataSummary {
  file: string;
  container: DataScan['container'];
  format: DataFormat | null;
  /** e.g. 'instruction ({"instruction", "input"?, "output"})'. */
  formatLabel: string | null;
  examples: number;
  lines: number;
  blankLines: number;
  firstBlankLine: number | null;
  extraFields: string[];
  sha256: string;
  bytes: number;
  issues: DataIssue[];
  issueCount: number;
  /** Columns of the preview table, in order. */
  columns: string[];
  /** The first rows as short display texts, by column. */
  preview: Array<{ line: number; cells: Record<string, string> }>;
  /** Null when the format needs a tokenizer and none was given, or the file has problems. */
  tokenStats: TokenStats | null;
}

export interface SummaryOptions extends Omit<ScanOptions, 'onRecord' | 'vocabSize'>, TokenizeOptions {
  tokenizer?: DataTokenizer | null;
  seqLen?: number;
  /** Longest text shown in a preview cell (default 200 characters). */
  maxCellChars?: number;
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** One record as display texts, by the columns of its format. */
export function previewCells(record: DataRecord, maxChars = 200): Record<string, string> {
  switch (record.format) {
    case 'text':
      return { text: clip(record.text, maxChars) };
    case 'tokens': {
      const shown = record.tokens.slice(0, 24).join(', ');
      return { tokens: clip(`[${shown}${record.tokens.length > 24 ? ', …' : ''}] (${record.tokens.length} ids)`, maxChars) };
    }
    case 'instruction':
      return { instruction: clip(record.instruction, maxChars), input: clip(record.input ?? '', maxChars), output: clip(record.output, maxChars) };
    case 'choice':
      return {
        context: clip(record.context, maxChars),
        choices: clip(record.choices.map((c, i) => `${i}: ${c}`).join(' | '), maxChars),
        label: String(record.label),
      };
  }
}

class Stats {
  n = 0;
  total = 0;
  min = Infinity;
  max = 0;
  loss = 0;
  over = 0;
  add(e: Example, seqLen: number | undefined): void {
    const len = e.tokens.length;
    this.n++;
    this.total += len;
    this.min = Math.min(this.min, len);
    this.max = Math.max(this.max, len);
    for (const m of e.lossMask) this.loss += m;
    if (seqLen !== undefined && len > seqLen) this.over++;
  }
  done(seqLen: number | undefined): TokenStats | null {
    if (this.n === 0) return null;
    return {
      examples: this.n,
      total: this.total,
      min: this.min,
      max: this.max,
      mean: this.total / this.n,
      lossTokens: this.loss,
      longerThanSeqLen: seqLen === undefined ? null : this.over,
      seqLen: seqLen ?? null,
    };
  }
}

/** Reads the whole file once (streaming) and summarises it; problems are listed, not thrown. */
export async function summarizeDataFile(path: string, options: SummaryOptions = {}): Promise<DataSummary> {
  const tokenizer = options.tokenizer ?? null;
  const stats = new Stats();
  let canCount = true;
  const scan = await scanDataFile(path, {
    ...options,
    vocabSize: tokenizer?.vocabSize,
    onRecord: (r) => {
      if (r.format !== 'tokens' && !tokenizer) {
        canCount = false;
        return;
      }
      stats.add(tokenizeRecord(r, tokenizer, options), options.seqLen);
    },
  });
  const maxChars = options.maxCellChars ?? 200;
  return {
    file: scan.file,
    container: scan.container,
    format: scan.format,
    formatLabel: scan.format ? FORMAT_LABELS[scan.format] : null,
    examples: scan.records,
    lines: scan.lines,
    blankLines: scan.blankLines,
    firstBlankLine: scan.firstBlankLine,
    extraFields: scan.extraFields,
    sha256: scan.sha256,
    bytes: scan.bytes,
    issues: scan.issues,
    issueCount: scan.issueCount,
    columns: scan.format ? [...FORMAT_FIELDS[scan.format]] : [],
    preview: scan.preview.map((r) => ({ line: r.line, cells: previewCells(r, maxChars) })),
    tokenStats: canCount && scan.issueCount === 0 ? stats.done(options.seqLen) : null,
  };
}

export interface LoadOptions extends Omit<ScanOptions, 'onRecord' | 'stopAtFirstIssue' | 'vocabSize'>, TokenizeOptions {
  /** Needed for every format but {"tokens"} (which it checks ids against, when given). */
  tokenizer: DataTokenizer | null;
}

/** Reads, validates and tokenises a whole data file; throws DataFileError naming the first bad line. */
export async function loadExamples(path: string, options: LoadOptions): Promise<{ scan: DataScan; records: DataRecord[]; examples: Example[] }> {
  const { scan, records } = await readDataFile(path, { ...options, vocabSize: options.tokenizer?.vocabSize });
  const examples = records.map((r) => tokenizeRecord(r, options.tokenizer, options));
  return { scan, records, examples };
}
