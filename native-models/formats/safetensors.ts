// Strict safetensors reader and deterministic, atomic writer.
// Format: u64 LE header length N, N bytes of UTF-8 JSON header, then the data section.
// Every rule in SECURITY.md ("Imported files are hostile until verified") is checked before any
// tensor byte is read, and each failure names the tensor and the rule. Only the header is read at
// open; tensors are read on demand by offset, so multi-GB checkpoints never land in one Buffer.
import { open, type FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from './atomic';
import { DTYPE_SIZES, DTYPES, bytesOf, isDtype, numel, toFloat32, type Dtype, type Tensor } from './dtypes';
import { FormatError, shortName } from './errors';
import { decodeUtf8Strict, parseStrictJsonObject } from './json';

export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** [begin, end) relative to the start of the data section. */
  dataOffsets: [number, number];
  byteLength: number;
  numel: number;
}

export interface SafetensorsHeader {
  /** All tensors in data order (ascending offsets). */
  tensors: TensorInfo[];
  metadata: Record<string, string>;
  /** Byte length of the JSON header (the u64 at the start). */
  headerLength: number;
  /** Absolute file offset where the data section starts (8 + headerLength). */
  dataStart: number;
  dataSize: number;
}

/** Anything that serves named tensors: one safetensors file, a sharded checkpoint, … */
export interface TensorSource {
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  read(name: string): Promise<Tensor>;
  readFloat32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/** A tensor name made safe for a one-line message (quoted, control characters escaped, bounded). */
export function quoteName(name: string): string {
  const q = JSON.stringify(name);
  return q.length > 120 ? `${q.slice(0, 100)}…"` : q;
}

function fail(rule: string, file: string, message: string, tensor?: string): never {
  throw new FormatError(`safetensors.${rule}`, `${shortName(file)}: ${message}`, file, tensor);
}

const isNonNegSafeInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/**
 * Validates a header (the JSON bytes after the length prefix) against a data section of `dataSize`
 * bytes. Pure: no I/O, so it is also what the fuzz-style tests exercise.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, dataSize: number, file = 'safetensors file'): SafetensorsHeader {
  const what = `${shortName(file)}: the header`;
  let obj: Record<string, unknown>;
  try {
    const text = decodeUtf8Strict(headerBytes, what, 'safetensors.header');
    obj = parseStrictJsonObject(text, { what, rulePrefix: 'safetensors.header', maxDepth: 8 });
  } catch (e) {
    if (e instanceof FormatError) throw new FormatError(e.rule, e.message, file);
    throw e;
  }
  let metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(obj)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
        fail('bad-metadata', file, '__metadata__ is not an object (rule: __metadata__ maps strings to strings).');
      }
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail('bad-metadata', file, `__metadata__ entry ${quoteName(k)} is not a string (rule: __metadata__ maps strings to strings).`);
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    const t = quoteName(name);
    if (name.length === 0) fail('bad-entry', file, 'a tensor has an empty name (rule: tensor names are non-empty).', name);
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      fail('bad-entry', file, `tensor ${t} is not an object with dtype, shape and data_offsets (rule: tensor entries).`, name);
    }
    const e = entry as Record<string, unknown>;
    const keys = Object.keys(e).sort();
    if (keys.join(',') !== 'data_offsets,dtype,shape') {
      const missing = ['dtype', 'shape', 'data_offsets'].filter((k) => !(k in e));
      const extra = keys.filter((k) => !['dtype', 'shape', 'data_offsets'].includes(k));
      fail(
        'bad-entry',
        file,
        `tensor ${t} ${missing.length ? `lacks ${missing.join(', ')}` : `has unexpected field${extra.length > 1 ? 's' : ''} ${extra.map(quoteName).join(', ')}`} (rule: tensor entries have exactly dtype, shape and data_offsets).`,
        name,
      );
    }
    if (!isDtype(e.dtype)) {
      fail('unknown-dtype', file, `tensor ${t} has unknown dtype ${quoteName(String(e.dtype))} (rule: dtype must be one of ${DTYPES.join(', ')}).`, name);
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every(isNonNegSafeInt)) {
      fail('bad-shape', file, `tensor ${t} has shape ${JSON.stringify(shape).slice(0, 80)} (rule: a shape is a list of non-negative whole numbers).`, name);
    }
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isNonNegSafeInt) || offs[0] > offs[1]) {
      fail('bad-offsets', file, `tensor ${t} has data_offsets ${JSON.stringify(offs).slice(0, 80)} (rule: data_offsets are [begin, end] with 0 ≤ begin ≤ end).`, name);
    }
    const [begin, end] = offs as [number, number];
    // BigInt: a hostile shape like [2^40, 2^40] must not wrap around to a plausible size.
    const expected = (shape as number[]).reduce((p, d) => p * BigInt(d), 1n) * BigInt(DTYPE_SIZES[e.dtype]);
    if (expected !== BigInt(end - begin)) {
      fail(
        'size-mismatch',
        file,
        `tensor ${t} has shape [${(shape as number[]).join(', ')}] of ${e.dtype} = ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin} (rule: shape × dtype size must equal end − begin).`,
        name,
      );
    }
    tensors.push({ name, dtype: e.dtype, shape: [...(shape as number[])], dataOffsets: [begin, end], byteLength: end - begin, numel: numel(shape as number[]) });
  }
  tensors.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let cursor = 0;
  let prev: TensorInfo | undefined;
  for (const t of tensors) {
    const [begin] = t.dataOffsets;
    if (begin < cursor) {
      fail('overlap', file, `tensor ${quoteName(t.name)} starts at byte ${begin}, inside tensor ${quoteName(prev!.name)} which ends at ${cursor} (rule: tensors must not overlap).`, t.name);
    }
    if (begin > cursor) {
      fail('hole', file, `tensor ${quoteName(t.name)} starts at byte ${begin} but the previous data ends at ${cursor}, leaving a hole (rule: offsets are contiguous from 0).`, t.name);
    }
    cursor = t.dataOffsets[1];
    prev = t;
  }
  if (cursor > dataSize) {
    fail('truncated', file, `tensor ${quoteName(prev!.name)} ends at byte ${cursor} but the data section holds only ${dataSize} bytes; the file is truncated (rule: the last end equals the data size).`, prev!.name);
  }
  if (cursor < dataSize) {
    fail('trailing-data', file, `the tensors end at byte ${cursor} but the data section holds ${dataSize} bytes (rule: the last end equals the data size; nothing may be hidden after it).`);
  }
  return { tensors, metadata, headerLength: headerBytes.byteLength, dataStart: 8 + headerBytes.byteLength, dataSize };
}

async function readExactly(fh: FileHandle, length: number, position: number, file: string): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) fail('truncated', file, `the file ended after ${position + got} bytes while reading (rule: the file must not change or shrink while it is read).`);
    got += bytesRead;
  }
  return buf;
}

/** Reads and validates the length prefix and header of an open file; reads nothing else. */
async function readHeader(fh: FileHandle, file: string): Promise<SafetensorsHeader> {
  const st = await fh.stat();
  if (!st.isFile()) fail('not-file', file, 'is not a regular file.');
  const size = st.size;
  if (size < 8) fail('too-short', file, `is ${size} bytes long, shorter than the 8-byte header length (rule: a safetensors file is at least 8 bytes).`);
  const prefix = await readExactly(fh, 8, 0, file);
  const n = new DataView(prefix.buffer).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    fail('header-too-large', file, `declares a ${n}-byte header, more than the ${MAX_HEADER_BYTES} bytes allowed (rule: header length ≤ 100 MB).`);
  }
  if (n > BigInt(size - 8)) {
    fail('header-past-end', file, `declares a ${n}-byte header but only ${size - 8} bytes follow the length (rule: header length ≤ file size − 8).`);
  }
  const headerLength = Number(n);
  const headerBytes = await readExactly(fh, headerLength, 8, file);
  return parseSafetensorsHeader(headerBytes, size - 8 - headerLength, file);
}

export interface OpenOptions {
  /** Read the whole file into memory at open (for small files); tensors are then views. */
  whole?: boolean;
}

/** One safetensors file; tensors are read on demand. Close it when done. */
export class SafetensorsFile implements TensorSource {
  private readonly byName: Map<string, TensorInfo>;
  private constructor(
    readonly path: string,
    readonly header: SafetensorsHeader,
    private fh: FileHandle | undefined,
    private whole: Uint8Array | undefined,
  ) {
    this.byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  static async open(path: string, opts: OpenOptions = {}): Promise<SafetensorsFile> {
    const fh = await open(path, 'r');
    try {
      const header = await readHeader(fh, path);
      if (opts.whole) {
        const all = await readExactly(fh, header.dataSize, header.dataStart, path);
        await fh.close();
        return new SafetensorsFile(path, header, undefined, all);
      }
      return new SafetensorsFile(path, header, fh, undefined);
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  /** Tensor names, sorted. */
  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new FormatError('safetensors.missing-tensor', `${shortName(this.path)} has no tensor ${quoteName(name)}.`, this.path, name);
    return t;
  }

  /** The tensor's bytes, in a buffer of exactly its size (or a view in whole-file mode). */
  async read(name: string): Promise<Tensor> {
    const t = this.info(name);
    const [begin, end] = t.dataOffsets;
    let data: Uint8Array;
    if (this.whole) data = this.whole.subarray(begin, end);
    else if (this.fh) data = await readExactly(this.fh, t.byteLength, this.header.dataStart + begin, this.path);
    else throw new Error(`${shortName(this.path)} is closed.`);
    return { dtype: t.dtype, shape: [...t.shape], data };
  }

  async readFloat32(name: string): Promise<Float32Array> {
    return toFloat32(await this.read(name));
  }

  /** Every tensor, by name (for small files such as adapters). */
  async readAll(): Promise<Map<string, Tensor>> {
    const out = new Map<string, Tensor>();
    for (const n of this.names()) out.set(n, await this.read(n));
    return out;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.whole = undefined;
    await fh?.close();
  }
}

/** Validates a file's header without reading tensor data. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const f = await SafetensorsFile.open(path);
  try {
    return f.header;
  } finally {
    await f.close();
  }
}

/** Reads a whole (small) safetensors file: metadata and every tensor. */
export async function readSafetensors(path: string): Promise<{ metadata: Record<string, string>; tensors: Map<string, Tensor> }> {
  const f = await SafetensorsFile.open(path, { whole: true });
  try {
    return { metadata: f.metadata, tensors: await f.readAll() };
  } finally {
    await f.close();
  }
}

export type TensorMap = Map<string, Tensor> | Record<string, Tensor>;

function checkWritable(tensors: TensorMap, metadata: Record<string, string> | undefined): [string, Tensor][] {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of entries) {
    if (name.length === 0 || name === '__metadata__') throw new RangeError(`Cannot write a tensor named ${quoteName(name)}.`);
    if (!isDtype(t.dtype)) throw new RangeError(`Tensor ${quoteName(name)} has unknown dtype ${quoteName(String(t.dtype))}.`);
    if (!t.shape.every((d) => isNonNegSafeInt(d))) throw new RangeError(`Tensor ${quoteName(name)} has an invalid shape [${t.shape.join(', ')}].`);
    const want = numel(t.shape) * DTYPE_SIZES[t.dtype];
    if (t.data.byteLength !== want) {
      throw new RangeError(`Tensor ${quoteName(name)}: shape [${t.shape.join(', ')}] of ${t.dtype} needs ${want} bytes, but its data has ${t.data.byteLength}.`);
    }
  }
  if (metadata) for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new RangeError(`Metadata ${quoteName(k)} must be a string.`);
  return entries;
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Lays out a file: header keys sorted by name; data ordered by element size (largest first) then
 * name, so that every tensor starts at a multiple of its element size (the header is padded with
 * spaces to a multiple of 8, as the format allows). Same input → same bytes.
 */
export function layoutSafetensors(tensors: TensorMap, metadata?: Record<string, string>): { prefix: Uint8Array; order: [string, Tensor][] } {
  const entries = checkWritable(tensors, metadata);
  const order = [...entries].sort((a, b) => DTYPE_SIZES[b[1].dtype] - DTYPE_SIZES[a[1].dtype] || byCodeUnit(a[0], b[0]));
  const offsets = new Map<string, [number, number]>();
  let cursor = 0;
  for (const [name, t] of order) {
    offsets.set(name, [cursor, cursor + t.data.byteLength]);
    cursor += t.data.byteLength;
  }
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    const m: Record<string, string> = {};
    for (const k of Object.keys(metadata).sort(byCodeUnit)) m[k] = metadata[k]!;
    header.__metadata__ = m;
  }
  for (const [name, t] of [...entries].sort((a, b) => byCodeUnit(a[0], b[0]))) {
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: offsets.get(name) };
  }
  let json = JSON.stringify(header);
  let jsonBytes = new TextEncoder().encode(json);
  const pad = (8 - (jsonBytes.byteLength % 8)) % 8;
  if (pad) {
    json += ' '.repeat(pad);
    jsonBytes = new TextEncoder().encode(json);
  }
  const prefix = new Uint8Array(8 + jsonBytes.byteLength);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(jsonBytes.byteLength), true);
  prefix.set(jsonBytes, 8);
  return { prefix, order };
}

/** The whole file in memory (for small outputs and tests). */
export function encodeSafetensors(tensors: TensorMap, metadata?: Record<string, string>): Uint8Array {
  const { prefix, order } = layoutSafetensors(tensors, metadata);
  const total = prefix.byteLength + order.reduce((s, [, t]) => s + t.data.byteLength, 0);
  const out = new Uint8Array(total);
  out.set(prefix, 0);
  let off = prefix.byteLength;
  for (const [, t] of order) {
    out.set(bytesOf(t.data), off);
    off += t.data.byteLength;
  }
  return out;
}

/** Writes a safetensors file atomically (temp file, fsync, rename), streaming tensor by tensor. */
export async function writeSafetensors(path: string, tensors: TensorMap, metadata?: Record<string, string>): Promise<void> {
  const { prefix, order } = layoutSafetensors(tensors, metadata);
  await writeFileAtomic(path, [prefix, ...order.map(([, t]) => bytesOf(t.data))]);
}
