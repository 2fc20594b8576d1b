import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, openSync, closeSync, ftruncateSync, readFileSync, readdirSync, writeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  fromFloat32,
  toBigInt64,
  toFloat32,
  toInt32,
  DTYPES,
  type Dtype,
  type Tensor,
} from '../../../native-models/formats/dtypes';
import { FormatError } from '../../../native-models/formats/errors';
import { SafetensorsFile, encodeSafetensors, readSafetensors, writeSafetensors } from '../../../native-models/formats/safetensors';
import { tempDir } from './helpers';

const tmp = tempDir('offsite-safetensors-');
afterAll(() => tmp.cleanup());

/** A file assembled byte by byte from the format description, not by our writer. */
function handMade(): Uint8Array {
  const header = '{"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + 16);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  dv.setFloat32(8 + h.length, 1.5, true);
  dv.setFloat32(8 + h.length + 4, -2, true);
  dv.setBigInt64(8 + h.length + 8, -3n, true);
  return out;
}

/** Awkward test data for every dtype: extremes, signed zero, NaN payloads, subnormals. */
function sampleTensors(): Record<string, Tensor> {
  const u8 = (xs: number[]): Uint8Array => Uint8Array.from(xs);
  const f32bits = new Uint32Array([0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00001, 0x00000001, 0x7f7fffff, 0x3f800000]);
  return {
    f64: { dtype: 'F64', shape: [2, 2], data: new Float64Array([Math.PI, -0, Number.MAX_VALUE, Number.MIN_VALUE]) },
    f32: { dtype: 'F32', shape: [8], data: new Float32Array(f32bits.buffer) },
    f16: { dtype: 'F16', shape: [5], data: new Uint16Array([0x3c00, 0x8000, 0x7e01, 0x0001, 0x7bff]) },
    bf16: { dtype: 'BF16', shape: [1, 5], data: new Uint16Array([0x3f80, 0x8000, 0x7fc1, 0x0001, 0xff7f]) },
    i64: { dtype: 'I64', shape: [3], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n]) },
    i32: { dtype: 'I32', shape: [3], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 7]) },
    i16: { dtype: 'I16', shape: [2], data: new Int16Array([-32768, 32767]) },
    i8: { dtype: 'I8', shape: [3], data: new Int8Array([-128, 127, 0]) },
    u8: { dtype: 'U8', shape: [3], data: u8([0, 255, 17]) },
    bool: { dtype: 'BOOL', shape: [2], data: u8([1, 0]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    scalar: { dtype: 'F32', shape: [], data: new Float32Array([42]) },
  };
}

const bytes = (t: Tensor): Uint8Array => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

describe('safetensors reader', () => {
  it('reads a hand-made file: values, dtypes, metadata', async () => {
    const path = join(tmp.dir, 'hand.safetensors');
    writeFileSync(path, handMade());
    const f = await SafetensorsFile.open(path);
    try {
      expect(f.names()).toEqual(['a', 'b']);
      expect(f.metadata).toEqual({ format: 'pt' });
      expect(Array.from(await f.readFloat32('a'))).toEqual([1.5, -2]);
      expect(Array.from(toBigInt64(await f.read('b')))).toEqual([-3n]);
      expect(f.info('a')).toMatchObject({ dtype: 'F32', shape: [2], dataOffsets: [0, 8], byteLength: 8, numel: 2 });
      await expect(f.read('c')).rejects.toMatchObject({ rule: 'safetensors.missing-tensor' });
    } finally {
      await f.close();
    }
  });

  it('reads tensors on demand: a 3 GB (sparse) file opens and serves its last tensor without loading the rest', async () => {
    const path = join(tmp.dir, 'huge.safetensors');
    const big = 3_000_000_000;
    const header = new TextEncoder().encode(`{"big":{"dtype":"U8","shape":[${big}],"data_offsets":[0,${big}]},"small":{"dtype":"F32","shape":[2],"data_offsets":[${big},${big + 8}]}}`);
    const fd = openSync(path, 'w');
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(header.length), true);
    writeSync(fd, prefix, 0, 8, 0);
    writeSync(fd, header, 0, header.length, 8);
    const tail = new Float32Array([0.25, -8]);
    ftruncateSync(fd, 8 + header.length + big + 8);
    writeSync(fd, new Uint8Array(tail.buffer), 0, 8, 8 + header.length + big);
    closeSync(fd);
    const before = process.memoryUsage().arrayBuffers;
    const f = await SafetensorsFile.open(path);
    try {
      expect(f.info('big').byteLength).toBe(big);
      expect(Array.from(await f.readFloat32('small'))).toEqual([0.25, -8]);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(50 * 1024 * 1024);
    } finally {
      await f.close();
    }
  });
});

describe('safetensors writer', () => {
  it('round-trips every dtype bit-exactly (streaming and whole-file reads)', async () => {
    const input = sampleTensors();
    expect(new Set(Object.values(input).map((t) => t.dtype))).toEqual(new Set(DTYPES));
    const path = join(tmp.dir, 'all.safetensors');
    await writeSafetensors(path, input, { note: 'round trip' });
    for (const whole of [false, true]) {
      const f = await SafetensorsFile.open(path, { whole });
      try {
        expect(f.metadata).toEqual({ note: 'round trip' });
        expect(f.names()).toEqual(Object.keys(input).sort());
        for (const [name, t] of Object.entries(input)) {
          const got = await f.read(name);
          expect(got.dtype).toBe(t.dtype);
          expect(got.shape).toEqual(t.shape);
          expect(Buffer.from(bytes(got)).equals(Buffer.from(bytes(t))), name).toBe(true);
        }
      } finally {
        await f.close();
      }
    }
  });

  it('writes the same bytes for the same tensors, whatever the insertion order', async () => {
    const a = sampleTensors();
    const reversed = Object.fromEntries(Object.entries(a).reverse());
    const p1 = join(tmp.dir, 'det1.safetensors');
    const p2 = join(tmp.dir, 'det2.safetensors');
    await writeSafetensors(p1, a);
    await writeSafetensors(p2, new Map(Object.entries(reversed)));
    expect(readFileSync(p1).equals(readFileSync(p2))).toBe(true);
    expect(Buffer.from(encodeSafetensors(a)).equals(readFileSync(p1))).toBe(true);
  });

  it('pads the header with spaces to 8 bytes, sorts header keys and aligns every tensor to its element size', () => {
    const file = encodeSafetensors(sampleTensors(), { z: '1', a: '2' });
    const n = Number(new DataView(file.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const text = new TextDecoder().decode(file.subarray(8, 8 + n));
    expect(text.trimEnd().length).toBeLessThanOrEqual(n);
    expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
    const header = JSON.parse(text) as Record<string, { dtype: Dtype; data_offsets: [number, number] }>;
    const keys = Object.keys(header);
    expect(keys[0]).toBe('__metadata__');
    expect(Object.keys(header.__metadata__!)).toEqual(['a', 'z']);
    expect(keys.slice(1)).toEqual([...keys.slice(1)].sort());
    const size: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
    for (const k of keys.slice(1)) expect(header[k]!.data_offsets[0] % size[header[k]!.dtype]!, k).toBe(0);
  });

  it('is atomic: no temporary files are left and an invalid tensor writes nothing', async () => {
    const path = join(tmp.dir, 'atomic.safetensors');
    await expect(writeSafetensors(path, { x: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).rejects.toThrow(/needs 12 bytes/);
    expect(existsSync(path)).toBe(false);
    await writeSafetensors(path, { x: { dtype: 'F32', shape: [2], data: new Float32Array(2) } });
    expect(readdirSync(tmp.dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('reads back a file written by itself through the strict reader (whole-file helper)', async () => {
    const path = join(tmp.dir, 'helper.safetensors');
    await writeSafetensors(path, { w: fromFloat32(new Float32Array([1, 2, 3, 4]), [2, 2]) });
    const { tensors } = await readSafetensors(path);
    expect(Array.from(toFloat32(tensors.get('w')!))).toEqual([1, 2, 3, 4]);
  });
});

describe('dtype conversions', () => {
  it('decodes F16 bit patterns to the hand-computed values', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125], // 1.0101010101b × 2^-2
      [0x7bff, 65504],
      [0x0400, 2 ** -14],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    for (const [bits, v] of cases) expect(float16BitsToFloat32(bits), bits.toString(16)).toBe(v);
    expect(Object.is(float16BitsToFloat32(0x8000), -0)).toBe(true);
    expect(float16BitsToFloat32(0x7e00)).toBeNaN();
    const t = toFloat32({ dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x3555]) });
    expect(Array.from(t)).toEqual([1, -2, 0.333251953125]);
  });

  it('decodes BF16 bit patterns to the hand-computed values', () => {
    expect(bfloat16BitsToFloat32(0x3f80)).toBe(1);
    expect(bfloat16BitsToFloat32(0x4049)).toBe(3.140625); // 1.1001001b × 2
    expect(bfloat16BitsToFloat32(0xc2f7)).toBe(-123.5);
    expect(bfloat16BitsToFloat32(0x0001)).toBe(2 ** -133);
    expect(bfloat16BitsToFloat32(0x7f80)).toBe(Infinity);
    expect(bfloat16BitsToFloat32(0xff7f)).toBe(-(2 - 2 ** -7) * 2 ** 127);
    const t = toFloat32({ dtype: 'BF16', shape: [3], data: new Uint16Array([0x3f80, 0x4049, 0xc2f7]) });
    expect(Array.from(t)).toEqual([1, 3.140625, -123.5]);
  });

  it('rounds float32 to F16 and BF16 to nearest, ties to even', () => {
    expect(float32ToFloat16Bits(1 + 2 ** -10)).toBe(0x3c01);
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // rounds past 65504 → Infinity
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0x0000); // tie below the smallest subnormal → 0
    expect(float32ToFloat16Bits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
    expect(float32ToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(float32ToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even
    expect(float32ToBfloat16Bits(3.14159265)).toBe(0x4049);
    expect(float32ToBfloat16Bits(NaN) & 0x7fc0).toBe(0x7fc0);
  });

  it('decodes all 65,536 F16 patterns exactly as NumPy does', () => {
    const py = spawnSync('/usr/bin/python3', ['-c', 'import numpy as np,sys; sys.stdout.buffer.write(np.arange(65536,dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32).tobytes())'], { maxBuffer: 1 << 20 });
    expect(py.status, String(py.stderr)).toBe(0);
    const want = new Float32Array(new Uint8Array(py.stdout).buffer);
    const got = toFloat32({ dtype: 'F16', shape: [65536], data: Uint16Array.from({ length: 65536 }, (_, i) => i) });
    let mismatches = 0;
    for (let i = 0; i < 65536; i++) if (!Object.is(got[i], want[i]) && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) mismatches++;
    expect(mismatches).toBe(0);
    // and float32 → F16 → float32 is the identity on every finite F16 value
    let notIdentity = 0;
    for (let i = 0; i < 65536; i++) if (Number.isFinite(want[i]!) && float32ToFloat16Bits(want[i]!) !== i) notIdentity++;
    expect(notIdentity).toBe(0);
  });

  it('gives integers in their own arrays and refuses to read them as floats', () => {
    expect(Array.from(toInt32({ dtype: 'I32', shape: [2], data: new Int32Array([-5, 9]) }))).toEqual([-5, 9]);
    expect(Array.from(toBigInt64({ dtype: 'I64', shape: [1], data: new BigInt64Array([2n ** 40n]) }))).toEqual([2n ** 40n]);
    expect(() => toFloat32({ dtype: 'I32', shape: [1], data: new Int32Array(1) })).toThrow(/integers/);
    expect(Array.from(toFloat32({ dtype: 'F64', shape: [2], data: new Float64Array([0.5, 1e300]) }))).toEqual([0.5, Infinity]);
  });

  it('copies unaligned data instead of failing', () => {
    const buf = new Uint8Array(9);
    new DataView(buf.buffer).setFloat32(1, 2.5, true);
    new DataView(buf.buffer).setFloat32(5, -1, true);
    expect(Array.from(toFloat32({ dtype: 'F32', shape: [2], data: buf.subarray(1) }))).toEqual([2.5, -1]);
  });
});

describe('errors are FormatErrors that name the tensor', () => {
  it('reports the tensor of a size mismatch', async () => {
    const h = new TextEncoder().encode('{"layer.0.w":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}}');
    const file = new Uint8Array(8 + h.length + 4);
    new DataView(file.buffer).setBigUint64(0, BigInt(h.length), true);
    file.set(h, 8);
    const path = join(tmp.dir, 'mismatch.safetensors');
    writeFileSync(path, file);
    const e = await SafetensorsFile.open(path).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(FormatError);
    expect((e as FormatError).tensor).toBe('layer.0.w');
    expect((e as FormatError).message).toContain('"layer.0.w"');
  });
});
