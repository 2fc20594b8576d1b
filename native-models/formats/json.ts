// Strict JSON for imported files: valid UTF-8, no duplicate keys (JSON.parse silently keeps the
// last one, so a hostile file could show one value to a checker and another to a loader), bounded
// nesting.
import { open } from 'node:fs/promises';
import { FormatError } from './errors';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes bytes as UTF-8, refusing invalid sequences instead of replacing them with U+FFFD. */
export function decodeUtf8Strict(bytes: Uint8Array, what: string, rulePrefix: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new FormatError(`${rulePrefix}.not-utf8`, `${what} is not valid UTF-8 text (rule: the text must be UTF-8).`);
  }
}

export interface DuplicateKey {
  /** JSON-pointer-like path of the object holding the duplicate, e.g. "/weight_map". */
  path: string;
  key: string;
}

/**
 * Finds the first duplicate key in a text that JSON.parse has already accepted (so the scanner
 * may assume well-formed JSON and only has to track strings and nesting). Iterative, so deep
 * nesting cannot overflow the stack. Keys are compared after unescaping ("a" equals "\u0061").
 */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  interface Frame { kind: 'object' | 'array'; keys?: Set<string>; expectKey: boolean; path: string; lastKey?: string; index: number }
  const stack: Frame[] = [];
  let i = 0;
  const n = text.length;
  const childPath = (f: Frame | undefined): string => {
    if (!f) return '';
    return f.kind === 'object' ? `${f.path}/${f.lastKey ?? ''}` : `${f.path}/${f.index}`;
  };
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      const top = stack[stack.length - 1];
      if (top && top.kind === 'object' && top.expectKey) {
        const raw = text.slice(start + 1, i);
        const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (top.keys!.has(key)) return { path: top.path || '/', key };
        top.keys!.add(key);
        top.lastKey = key;
        top.expectKey = false;
      }
      i++;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = stack[stack.length - 1];
      const path = childPath(parent);
      stack.push(c === 0x7b ? { kind: 'object', keys: new Set(), expectKey: true, path, index: 0 } : { kind: 'array', expectKey: false, path, index: 0 });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.kind === 'object') top.expectKey = true;
      else if (top) top.index++;
    }
    i++;
  }
  return undefined;
}

/** Maximum nesting depth of a JSON text, without recursion. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i++;
      while (i < text.length && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c ? 2 : 1;
    } else if (c === 0x7b || c === 0x5b) max = Math.max(max, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

export interface StrictJsonOptions {
  /** Used in messages, e.g. 'config.json' or 'the safetensors header of model.safetensors'. */
  what: string;
  /** Rule-id prefix, e.g. 'safetensors.header' → 'safetensors.header.duplicate-key'. */
  rulePrefix: string;
  maxDepth?: number;
}

/** Parses UTF-8 JSON text strictly: a JSON object at the top, no duplicate keys, bounded depth. */
export function parseStrictJsonObject(text: string, opts: StrictJsonOptions): Record<string, unknown> {
  const maxDepth = opts.maxDepth ?? 64;
  const depth = jsonDepth(text);
  if (depth > maxDepth) {
    throw new FormatError(`${opts.rulePrefix}.too-deep`, `${opts.what} nests ${depth} levels deep, more than the ${maxDepth} allowed (rule: bounded JSON nesting).`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${opts.rulePrefix}.not-json`, `${opts.what} is not valid JSON: ${(e as Error).message.replace(/\.$/, '')} (rule: the text must be JSON).`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new FormatError(`${opts.rulePrefix}.not-object`, `${opts.what} is ${got}, not a JSON object (rule: the top level must be an object).`);
  }
  const dup = findDuplicateKey(text);
  if (dup) {
    throw new FormatError(
      `${opts.rulePrefix}.duplicate-key`,
      `${opts.what} has the key "${dup.key}" twice${dup.path === '/' ? '' : ` in ${dup.path}`} (rule: no duplicate keys; JSON readers disagree on which one wins).`,
    );
  }
  return value as Record<string, unknown>;
}

/** Reads a small JSON file strictly (size-capped, UTF-8, object, no duplicate keys). */
export async function readStrictJsonFile(path: string, opts: StrictJsonOptions & { maxBytes?: number }): Promise<Record<string, unknown>> {
  const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new FormatError(`${opts.rulePrefix}.not-file`, `${opts.what} is not a regular file.`);
    if (st.size > maxBytes) {
      throw new FormatError(`${opts.rulePrefix}.too-large`, `${opts.what} is ${st.size} bytes, more than the ${maxBytes} allowed (rule: bounded JSON size).`);
    }
    const buf = new Uint8Array(st.size);
    let got = 0;
    while (got < st.size) {
      const { bytesRead } = await fh.read(buf, got, st.size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return parseStrictJsonObject(decodeUtf8Strict(buf.subarray(0, got), opts.what, opts.rulePrefix), opts);
  } finally {
    await fh.close();
  }
}
