// RFC 4180 CSV, strictly: comma-separated fields; a field may be enclosed in double quotes, and then
// may hold commas, line breaks and doubled quotes (""); a quote inside an unquoted field, or text
// after a closing quote, is an error rather than a guess. Records can span lines (quoted line
// breaks), so each record is reported with the line it starts on.
import type { RawLine } from './lines';

export type CsvEvent = { line: number; fields: string[] } | { line: number; error: string };

export class CsvRecordParser {
  private fields: string[] = [];
  private field = '';
  private inQuotes = false;
  private startLine = 0;
  private size = 0;

  /** `maxRecordChars`: longest record (all its lines) before it is refused, so an unclosed quote cannot eat the file. */
  constructor(private readonly maxRecordChars: number) {}

  private reset(): void {
    this.fields = [];
    this.field = '';
    this.inQuotes = false;
    this.startLine = 0;
    this.size = 0;
  }

  private fail(line: number, error: string): CsvEvent {
    this.reset();
    return { line, error };
  }

  /** True while a quoted field is open (the next line continues the record). */
  get inQuotedField(): boolean {
    return this.inQuotes;
  }

  /** Feeds one physical line; returns the records (or errors) it completes. */
  push(raw: RawLine): CsvEvent[] {
    if (raw.text === undefined) {
      const at = this.startLine || raw.line;
      const why = raw.problem === 'too-long' ? `line ${raw.line} is longer than the line-length cap (${raw.bytes} bytes)` : `line ${raw.line} is not valid UTF-8 text`;
      return [this.fail(at, why)];
    }
    const text = raw.text;
    if (this.startLine === 0) {
      this.startLine = raw.line;
    } else {
      // Continuing a quoted field across a line break.
      this.field += '\n';
    }
    this.size += text.length + 1;
    if (this.size > this.maxRecordChars) {
      return [this.fail(this.startLine, `the record starting on line ${this.startLine} is longer than the cap of ${this.maxRecordChars} characters (is a quoted field never closed?)`)];
    }
    let i = 0;
    const n = text.length;
    // A line that does not continue a quoted field starts a new record, hence a new field.
    let fieldStart = !this.inQuotes;
    while (i < n) {
      const c = text[i]!;
      if (this.inQuotes) {
        if (c === '"') {
          if (text[i + 1] === '"') {
            this.field += '"';
            i += 2;
            continue;
          }
          this.inQuotes = false;
          i++;
          // After a closing quote only a comma or the end of the record may follow.
          if (i < n && text[i] !== ',') {
            return [this.fail(this.startLine, `line ${raw.line} has text after a closing double quote (column ${i + 1}); a quoted field must end right before a comma or the end of the line`)];
          }
          continue;
        }
        this.field += c;
        i++;
        continue;
      }
      if (c === ',') {
        this.fields.push(this.field);
        this.field = '';
        fieldStart = true;
        i++;
        continue;
      }
      if (c === '"') {
        if (!fieldStart || this.field !== '') {
          return [this.fail(this.startLine, `line ${raw.line} has a double quote inside an unquoted field (column ${i + 1}); enclose the whole field in double quotes and write the quote as ""`)];
        }
        this.inQuotes = true;
        fieldStart = false;
        i++;
        continue;
      }
      this.field += c;
      fieldStart = false;
      i++;
    }
    if (this.inQuotes) return []; // the record continues on the next line
    this.fields.push(this.field);
    const done: CsvEvent = { line: this.startLine, fields: this.fields };
    this.reset();
    return [done];
  }

  /** Call at the end of the file: an unclosed quoted field is an error. */
  end(): CsvEvent[] {
    if (this.inQuotes) return [this.fail(this.startLine, `the quoted field that starts on line ${this.startLine} is never closed; add the closing double quote`)];
    return [];
  }
}
