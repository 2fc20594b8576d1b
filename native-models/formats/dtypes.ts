// Element types of the safetensors format and conversions between them. Tensor bytes are little
// endian on disk; typed arrays use the host order, so the engine requires a little-endian host
// (every platform Electron ships for is).
import { endianness } from 'node:os';

if (endianness() !== 'LE') throw new Error('Offsite Studio needs a little-endian machine to read model weights.');

export const DTYPE_SIZES = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 } as const;
export type Dtype = keyof typeof DTYPE_SIZES;
export const DTYPES = Object.keys(DTYPE_SIZES) as Dtype[];

export function isDtype(x: unknown): x is Dtype {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZES, x);
}

/** A tensor as stored: element type, shape and little-endian bytes (any typed array over them). */
export interface Tensor {
  dtype: Dtype;
  shape: number[];
  data: ArrayBufferView;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The bytes of `data` as a Uint8Array view (no copy). */
export function bytesOf(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A view of `bytes` whose byteOffset is a multiple of `align` (copies only when it is not). */
function aligned(bytes: Uint8Array, align: number): Uint8Array {
  if (bytes.byteOffset % align === 0) return bytes;
  return bytes.slice();
}

/** IEEE half-precision bits → float32 value (subnormals, infinities and NaN included). */
export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bfloat16 bits → float32 value (bfloat16 is the upper half of a float32). */
export function bfloat16BitsToFloat32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

/** float32 → bfloat16 bits, rounding to nearest even; NaN stays a (quiet) NaN. */
export function float32ToBfloat16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** float32 → IEEE half bits, rounding to nearest even; overflow → ±Infinity. */
export function float32ToFloat16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // too small even for a subnormal: ±0
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // may carry into the exponent: correct
  return sign | h;
}

/** The tensor's values as float32 (F32 without copying when aligned; F16, BF16 and F64 converted). */
export function toFloat32(t: Tensor): Float32Array {
  const b = bytesOf(t.data);
  const n = b.byteLength / DTYPE_SIZES[t.dtype];
  switch (t.dtype) {
    case 'F32': {
      const a = aligned(b, 4);
      return new Float32Array(a.buffer, a.byteOffset, n);
    }
    case 'F16': {
      const a = aligned(b, 2);
      const h = new Uint16Array(a.buffer, a.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = float16BitsToFloat32(h[i]!);
      return out;
    }
    case 'BF16': {
      const a = aligned(b, 2);
      const h = new Uint16Array(a.buffer, a.byteOffset, n);
      const out = new Float32Array(n);
      const o32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) o32[i] = h[i]! << 16;
      return out;
    }
    case 'F64': {
      const a = aligned(b, 8);
      return Float32Array.from(new Float64Array(a.buffer, a.byteOffset, n));
    }
    default:
      throw new TypeError(`A ${t.dtype} tensor holds integers; read it with toInt32 or toBigInt64, not as float32.`);
  }
}

export function toBigInt64(t: Tensor): BigInt64Array {
  if (t.dtype !== 'I64') throw new TypeError(`Expected an I64 tensor, got ${t.dtype}.`);
  const a = aligned(bytesOf(t.data), 8);
  return new BigInt64Array(a.buffer, a.byteOffset, a.byteLength / 8);
}

export function toInt32(t: Tensor): Int32Array {
  if (t.dtype !== 'I32') throw new TypeError(`Expected an I32 tensor, got ${t.dtype}.`);
  const a = aligned(bytesOf(t.data), 4);
  return new Int32Array(a.buffer, a.byteOffset, a.byteLength / 4);
}

/** A float32 tensor in the given storage dtype (F32 as is; F16/BF16 rounded to nearest even; F64 widened). */
export function fromFloat32(values: Float32Array, shape: number[], dtype: 'F32' | 'F16' | 'BF16' | 'F64' = 'F32'): Tensor {
  if (numel(shape) !== values.length) throw new RangeError(`shape [${shape.join(', ')}] holds ${numel(shape)} values, not ${values.length}.`);
  switch (dtype) {
    case 'F32':
      return { dtype, shape: [...shape], data: values };
    case 'F64':
      return { dtype, shape: [...shape], data: Float64Array.from(values) };
    case 'F16': {
      const out = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]!);
      return { dtype, shape: [...shape], data: out };
    }
    case 'BF16': {
      const out = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = float32ToBfloat16Bits(values[i]!);
      return { dtype, shape: [...shape], data: out };
    }
  }
}
