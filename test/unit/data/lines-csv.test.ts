import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CsvRecordParser, type CsvEvent } from '../../../native-models/data/csv';
import { readLines, type RawLine } from '../../../native-models/data/lines';
import { tempFolder } from './helpers';

const tmp = tempFolder();

async function allLines(path: string, maxLineBytes?: number): Promise<{ lines: RawLine[]; sha256: string; bytes: number }> {
  const lines: RawLine[] = [];
  const r = await readLines(path, (l) => void lines.push(l), { maxLineBytes });
  return { lines, sha256: r.sha256, bytes: r.bytes };
}

function parseCsv(text: string, maxRecordChars = 1000): CsvEvent[] {
  const p = new CsvRecordParser(maxRecordChars);
  const out: CsvEvent[] = [];
  text.split('\n').forEach((t, i) => out.push(...p.push({ line: i + 1, text: t })));
  out.push(...p.end());
  return out;
}

describe('readLines', () => {
  it('splits on LF and CRLF, drops a BOM, keeps a last line without newline, hashes every byte', async () => {
    const content = '\ufefffirst\r\nsecond\n\nlast';
    const path = tmp.file('a.txt', content);
    const r = await allLines(path);
    expect(r.lines).toEqual([
      { line: 1, text: 'first' },
      { line: 2, text: 'second' },
      { line: 3, text: '' },
      { line: 4, text: 'last' },
    ]);
    expect(r.sha256).toBe(createHash('sha256').update(Buffer.from(content, 'utf8')).digest('hex'));
    expect(r.bytes).toBe(Buffer.byteLength(content));
  });

  it('a final newline does not make an extra line', async () => {
    const r = await allLines(tmp.file('b.txt', 'x\ny\n'));
    expect(r.lines.map((l) => l.line)).toEqual([1, 2]);
  });

  it('reassembles lines and multi-byte characters across 64 KiB chunk boundaries', async () => {
    const long = 'é'.repeat(50_000); // 100 000 bytes, crosses a chunk edge mid-character
    const r = await allLines(tmp.file('c.txt', `${long}\nshort\n${long}`));
    expect(r.lines.map((l) => l.text)).toEqual([long, 'short', long]);
  });

  it('reports a line over the cap without keeping it, and goes on with the next', async () => {
    const r = await allLines(tmp.file('d.txt', `ok\n${'x'.repeat(101)}\nfine\n${'y'.repeat(100)}\n`), 100);
    expect(r.lines).toEqual([
      { line: 1, text: 'ok' },
      { line: 2, problem: 'too-long', bytes: 101 },
      { line: 3, text: 'fine' },
      { line: 4, text: 'y'.repeat(100) },
    ]);
  });

  it('reports invalid UTF-8 instead of replacing it', async () => {
    const r = await allLines(tmp.file('e.txt', Buffer.from([0x61, 0x0a, 0xff, 0xfe, 0x0a, 0x62])));
    expect(r.lines).toEqual([
      { line: 1, text: 'a' },
      { line: 2, problem: 'not-utf8', bytes: 2 },
      { line: 3, text: 'b' },
    ]);
  });
});

describe('CSV (RFC 4180)', () => {
  it('reads plain, quoted, comma-holding, quote-doubling and empty fields', () => {
    expect(parseCsv('a,b,c\n1,"two, too","say ""hi"""\n,"",x')).toEqual([
      { line: 1, fields: ['a', 'b', 'c'] },
      { line: 2, fields: ['1', 'two, too', 'say "hi"'] },
      { line: 3, fields: ['', '', 'x'] },
    ]);
  });

  it('keeps line breaks inside quoted fields and reports the record by the line it starts on', () => {
    expect(parseCsv('text,label\n"line one\nline two",1\nnext,2')).toEqual([
      { line: 1, fields: ['text', 'label'] },
      { line: 2, fields: ['line one\nline two', '1'] },
      { line: 4, fields: ['next', '2'] },
    ]);
  });

  it('refuses a quote inside an unquoted field, text after a closing quote, and an unclosed quote', () => {
    const a = parseCsv('x\nab"c');
    expect(a[1]).toMatchObject({ line: 2 });
    expect((a[1] as { error: string }).error).toMatch(/line 2 has a double quote inside an unquoted field/);
    const b = parseCsv('x\n"ab"c');
    expect((b[1] as { error: string }).error).toMatch(/line 2 has text after a closing double quote/);
    const c = parseCsv('x\n"never closed\nmore');
    expect(c[1]).toEqual({ line: 2, error: 'the quoted field that starts on line 2 is never closed; add the closing double quote' });
  });

  it('caps a record so an unclosed quote cannot swallow the file', () => {
    const events = parseCsv(`x\n"${'a'.repeat(30)}\n${'b'.repeat(30)}`, 40);
    expect(events[1]).toMatchObject({ line: 2 });
    expect((events[1] as { error: string }).error).toMatch(/longer than the cap of 40 characters/);
  });
});
