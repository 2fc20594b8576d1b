// One streaming pass over a JSONL or CSV data file: detects the container and the format, checks
// every line, collects problems as sentences with line numbers (up to a cap, then counts them),
// hashes the exact bytes read, and hands valid records to the caller as they come.
import { basename, extname } from 'node:path';
import { FormatError } from '../formats/errors';
import { CsvRecordParser } from './csv';
import { DEFAULT_MAX_LINE_BYTES, readLines, type RawLine } from './lines';
import {
  checkCsvHeader,
  csvRowToObject,
  extraFields,
  FORMAT_LABELS,
  formatOfFields,
  parseJsonLine,
  validateRecord,
  type DataFormat,
  type DataRecord,
} from './records';

export type DataContainer = 'jsonl' | 'csv';

export interface DataIssue {
  /** 1-based line number the problem is on (a CSV record: the line it starts on). */
  line: number;
  /** A sentence naming the line and what to change. */
  message: string;
}

export interface ScanOptions {
  /** Token ids in {"tokens"} lines must be below this (the tokenizer's vocabulary size). */
  vocabSize?: number;
  /** Longest line in bytes (default 8 MiB); longer lines are problems, never buffered. */
  maxLineBytes?: number;
  /** Problems kept with their sentence (default 100); the rest are only counted. */
  maxIssues?: number;
  /** Records kept for the preview (default 5). */
  previewRows?: number;
  /** Overrides detection by file extension / first character. */
  container?: DataContainer;
  /** Stop reading at the first problem (training does: nothing may be skipped). */
  stopAtFirstIssue?: boolean;
  /** Receives every valid record in file order. */
  onRecord?: (record: DataRecord) => void;
}

export interface DataScan {
  /** The file's name (no folders, so reports can be shared). */
  file: string;
  container: DataContainer;
  /** The format every line agrees on; null when no line could be read. */
  format: DataFormat | null;
  /** Valid records (examples before tokenisation). */
  records: number;
  /** Physical lines read (a CSV header included). */
  lines: number;
  /** Blank lines (ignored, and said so in the summary). */
  blankLines: number;
  firstBlankLine: number | null;
  /** Fields present that no format reads (ignored). */
  extraFields: string[];
  /** The first problems, in file order. */
  issues: DataIssue[];
  /** All problems found, including those beyond `maxIssues`. */
  issueCount: number;
  preview: DataRecord[];
  sha256: string;
  bytes: number;
  /** False when reading stopped early (stopAtFirstIssue); the hash then covers only what was read. */
  complete: boolean;
}

/** A data file that cannot be used; `issues` lists the problems, the message the first one. */
export class DataFileError extends FormatError {
  override name = 'DataFileError';
  constructor(
    readonly issues: DataIssue[],
    readonly issueCount: number,
    file: string,
  ) {
    const first = issues[0];
    const more = issueCount > 1 ? ` (${issueCount - 1} more problem${issueCount === 2 ? '' : 's'} after it)` : '';
    super('data.bad-line', `${basename(file)}: ${first ? first.message : 'the file cannot be read.'}${more}`, file, first ? `line ${first.line}` : undefined);
  }
  /** Line of the first problem. */
  get line(): number | undefined {
    return this.issues[0]?.line;
  }
}

/** .csv → CSV; .jsonl/.ndjson/.json → JSONL; anything else is decided by its first non-blank line. */
export function containerOfPath(path: string): DataContainer | undefined {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return 'jsonl';
  return undefined;
}

export async function scanDataFile(path: string, options: ScanOptions = {}): Promise<DataScan> {
  const maxIssues = options.maxIssues ?? 100;
  const previewRows = options.previewRows ?? 5;
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let container: DataContainer | undefined = options.container ?? containerOfPath(path);
  let format: DataFormat | null = null;
  let formatLine = 0;
  let records = 0;
  let lines = 0;
  let blankLines = 0;
  let firstBlankLine: number | null = null;
  const extras = new Set<string>();
  const issues: DataIssue[] = [];
  let issueCount = 0;
  const preview: DataRecord[] = [];
  let csv: CsvRecordParser | undefined;
  let header: string[] | undefined;
  let stop = false;

  const issue = (line: number, message: string): void => {
    issueCount++;
    if (issues.length < maxIssues) issues.push({ line, message });
    if (options.stopAtFirstIssue) stop = true;
  };

  const accept = (keys: string[], obj: Record<string, unknown>, line: number, lineFormat: DataFormat): void => {
    if (format === null) {
      format = lineFormat;
      formatLine = line;
    } else if (lineFormat !== format) {
      issue(line, `Line ${line} is in the ${FORMAT_LABELS[lineFormat]} format, but line ${formatLine} is in the ${FORMAT_LABELS[format]} format; a file must use one format throughout.`);
      return;
    }
    for (const k of extraFields(keys)) extras.add(k);
    const checked = validateRecord(lineFormat, obj, line, { vocabSize: options.vocabSize });
    if (!checked.ok) return issue(line, checked.message);
    records++;
    if (preview.length < previewRows) preview.push(checked.value);
    options.onRecord?.(checked.value);
  };

  const unreadable = (raw: RawLine & { text?: undefined }): void => {
    if (raw.problem === 'too-long') issue(raw.line, `Line ${raw.line} is ${raw.bytes} bytes long, over the cap of ${maxLineBytes} bytes per line; split it into shorter examples.`);
    else issue(raw.line, `Line ${raw.line} is not valid UTF-8 text; save the file with UTF-8 encoding.`);
  };

  const onJsonLine = (raw: RawLine): void => {
    if (raw.text === undefined) return unreadable(raw);
    const parsed = parseJsonLine(raw.text, raw.line);
    if (!parsed.ok) return issue(raw.line, parsed.message);
    const keys = Object.keys(parsed.value);
    const f = formatOfFields(keys, raw.line);
    if (!f.ok) return issue(raw.line, f.message);
    accept(keys, parsed.value, raw.line, f.value);
  };

  const onCsvRecord = (line: number, cells: string[]): void => {
    if (!header) {
      const h = checkCsvHeader(cells, line);
      if (!h.ok) {
        issue(line, h.message);
        stop = true; // without a header no row can be read
        return;
      }
      header = h.value.header;
      format = h.value.format;
      formatLine = line;
      for (const k of extraFields(header)) extras.add(k);
      return;
    }
    const o = csvRowToObject(header, cells, line);
    if (!o.ok) return issue(line, o.message);
    const checked = validateRecord(format!, o.value, line, { vocabSize: options.vocabSize });
    if (!checked.ok) return issue(line, checked.message);
    records++;
    if (preview.length < previewRows) preview.push(checked.value);
    options.onRecord?.(checked.value);
  };

  const feedCsv = (raw: RawLine): void => {
    csv ??= new CsvRecordParser(maxLineBytes);
    for (const ev of csv.push(raw)) {
      if ('error' in ev) issue(ev.line, `${ev.error[0]!.toUpperCase()}${ev.error.slice(1)}.`);
      else onCsvRecord(ev.line, ev.fields);
      if (stop) return;
    }
  };

  let inCsvQuote = false;
  const { sha256, bytes, complete } = await readLines(
    path,
    (raw) => {
      lines = raw.line;
      const blank = raw.text !== undefined && raw.text.trim() === '';
      if (blank && !inCsvQuote) {
        blankLines++;
        firstBlankLine ??= raw.line;
        return true;
      }
      if (container === undefined) {
        // JSON Lines start with an object; "[" too, so a JSON array file gets a clear sentence.
        const first = raw.text?.trimStart()[0];
        container = first === '{' || first === '[' ? 'jsonl' : 'csv';
      }
      if (container === 'jsonl') onJsonLine(raw);
      else {
        feedCsv(raw);
        inCsvQuote = csv?.inQuotedField === true;
      }
      return !stop;
    },
    { maxLineBytes },
  );
  if (!stop && csv) for (const ev of csv.end()) issue(ev.line, 'error' in ev ? `${ev.error[0]!.toUpperCase()}${ev.error.slice(1)}.` : '');

  if (complete && issueCount === 0 && records === 0) {
    if (bytes === 0) issue(1, `The file is empty; it needs at least one example line.`);
    else if (container === 'csv' && header) issue(lines, `The file has a header (line ${formatLine}) but no data rows; add at least one row under it.`);
    else issue(1, `The file has only blank lines; it needs at least one example line.`);
  }
  return {
    file: basename(path),
    container: container ?? 'jsonl',
    format,
    records,
    lines,
    blankLines,
    firstBlankLine,
    extraFields: [...extras].sort(),
    issues,
    issueCount,
    preview,
    sha256,
    bytes,
    complete,
  };
}

/**
 * Reads every record of a data file, or throws a DataFileError naming the first bad line. Records
 * are kept in memory (training shuffles them); use scanDataFile with onRecord to stream instead.
 */
export async function readDataFile(path: string, options: Omit<ScanOptions, 'onRecord' | 'stopAtFirstIssue'> = {}): Promise<{ scan: DataScan; records: DataRecord[] }> {
  const records: DataRecord[] = [];
  const scan = await scanDataFile(path, { ...options, stopAtFirstIssue: true, onRecord: (r) => records.push(r) });
  if (scan.issueCount > 0) throw new DataFileError(scan.issues, scan.issueCount, path);
  return { scan, records };
}
