// Streaming line reader for data files that may be larger than memory: reads the file in chunks,
// splits on "\n" (a trailing "\r" is dropped, so CRLF files read the same), decodes each line as
// strict UTF-8, and hashes every byte it reads so the SHA-256 of exactly the bytes that were
// validated comes out of the same pass. A line longer than the cap is reported, not buffered.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** Longest line (bytes, without its newline) read by default: 8 MiB. */
export const DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024;

export type RawLine =
  /** 1-based line number and its text (no newline, no trailing CR, no BOM on line 1). */
  | { line: number; text: string }
  /** The line could not be read as text; `problem` says why in a sentence fragment. */
  | { line: number; text?: undefined; problem: 'too-long' | 'not-utf8'; bytes: number };

export interface LineReadResult {
  sha256: string;
  bytes: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Calls `onLine` for every line of the file, in order, and resolves with the file's SHA-256 and
 * size. A last line without a final newline is still a line; a file ending in "\n" has no extra
 * empty line after it. `onLine` may return false to stop reading early (the hash then covers only
 * what was read, and `complete` is false).
 */
export async function readLines(
  path: string,
  onLine: (line: RawLine) => boolean | void,
  options: { maxLineBytes?: number } = {},
): Promise<LineReadResult & { complete: boolean }> {
  const cap = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const hash = createHash('sha256');
  let bytes = 0;
  let lineNo = 1;
  let parts: Buffer[] = [];
  let partBytes = 0;
  let overflow = false; // the current line passed the cap: its bytes are counted, not kept
  let stopped = false;

  const emit = (): void => {
    const total = partBytes;
    let line: RawLine;
    if (overflow) line = { line: lineNo, problem: 'too-long', bytes: total };
    else {
      let buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partBytes);
      if (buf.length > 0 && buf[buf.length - 1] === 0x0d) buf = buf.subarray(0, buf.length - 1);
      if (lineNo === 1 && buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
      if (buf.length > cap) line = { line: lineNo, problem: 'too-long', bytes: total };
      else try {
        line = { line: lineNo, text: utf8.decode(buf) };
      } catch {
        line = { line: lineNo, problem: 'not-utf8', bytes: total };
      }
    }
    parts = [];
    partBytes = 0;
    overflow = false;
    lineNo++;
    if (onLine(line) === false) stopped = true;
  };

  const add = (piece: Buffer): void => {
    if (overflow) {
      partBytes += piece.length;
      return;
    }
    partBytes += piece.length;
    if (partBytes > cap + 1) {
      // +1: a trailing CR does not count against the cap
      overflow = true;
      parts = [];
      return;
    }
    parts.push(piece);
  };

  const stream = createReadStream(path, { highWaterMark: 1 << 16 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, start);
        if (nl === -1) break;
        add(chunk.subarray(start, nl));
        emit();
        if (stopped) return { sha256: hash.digest('hex'), bytes, complete: false };
        start = nl + 1;
      }
      if (start < chunk.length) add(chunk.subarray(start));
    }
  } finally {
    stream.destroy();
  }
  if (partBytes > 0 || overflow) emit();
  return { sha256: hash.digest('hex'), bytes, complete: !stopped };
}
