// Typed arrays ↔ ort.Tensor. The engine's DType names match ORT's tensor type names, so this is
// mostly about checking lengths, int64 as BigInt64Array, and copying out of ORT-owned memory.
import * as ort from 'onnxruntime-node';
import { allocate, DTYPE_BYTES, type DType, type TensorData } from '../onnx/dtype';

/** A tensor as the engine passes it around host-side. */
export interface HostTensor {
  dtype: DType;
  dims: number[];
  data: TensorData;
}

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: 'float32', float64: 'float64', float16: 'float16', int64: 'int64', int32: 'int32', int8: 'int8', uint8: 'uint8', bool: 'bool',
};

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`Tensor dimension ${d} is not a size (dims ${JSON.stringify(dims)}).`);
    n *= d;
  }
  return n;
}

/** Wraps `data` (no copy) as an ort.Tensor of `dtype` and `dims`. */
export function toOrt(dtype: DType, data: TensorData, dims: readonly number[]): ort.Tensor {
  const n = elementCount(dims);
  if (data.length !== n) throw new Error(`A ${dtype} tensor of shape ${JSON.stringify(dims)} needs ${n} values, got ${data.length}.`);
  if (dtype === 'float16' && !(data instanceof Uint16Array)) throw new Error('float16 tensors must be given as Uint16Array bits.');
  if (dtype === 'int64' && !(data instanceof BigInt64Array)) throw new Error('int64 tensors must be given as BigInt64Array.');
  // ORT reads bool tensors as one byte each.
  return new ort.Tensor(ORT_TYPE[dtype], data as never, dims);
}

export function hostToOrt(t: HostTensor): ort.Tensor {
  return toOrt(t.dtype, t.data, t.dims);
}

/** Copies an ort.Tensor out into memory the caller owns. */
export function fromOrt(t: ort.Tensor): HostTensor {
  const dtype = dtypeOf(t);
  const out = allocate(dtype, t.size);
  (out as Float32Array).set(t.data as Float32Array);
  return { dtype, dims: [...t.dims], data: out };
}

export function dtypeOf(t: ort.Tensor): DType {
  const d = t.type as string;
  if (d in ORT_TYPE) return d as DType;
  throw new Error(`Tensor type ${d} is not used by the engine.`);
}

/** int64 tensor from plain numbers (each must be a safe integer). */
export function int64(values: ArrayLike<number>, dims: readonly number[] = [values.length]): ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isSafeInteger(v)) throw new Error(`int64 value ${v} at index ${i} is not a whole number.`);
    data[i] = BigInt(v);
  }
  return toOrt('int64', data, dims);
}

export function float32(values: ArrayLike<number>, dims: readonly number[] = [values.length]): ort.Tensor {
  return toOrt('float32', Float32Array.from(values), dims);
}

export function float64(values: ArrayLike<number>, dims: readonly number[] = [values.length]): ort.Tensor {
  return toOrt('float64', Float64Array.from(values), dims);
}

/** A scalar (rank-0) tensor. */
export function scalar(value: number, dtype: 'float32' | 'float64' | 'int64' = 'float32'): ort.Tensor {
  if (dtype === 'int64') return int64([value], []);
  return toOrt(dtype, dtype === 'float32' ? Float32Array.of(value) : Float64Array.of(value), []);
}

/** Reads a float tensor as plain numbers (float16 is not decoded here). */
export function toNumbers(t: ort.Tensor): number[] {
  if (t.type === 'int64') return Array.from(t.data as BigInt64Array, Number);
  if (t.type === 'float16') throw new Error('float16 tensors must be decoded before reading them as numbers.');
  return Array.from(t.data as Float32Array);
}

/** The single number in a one-element tensor. */
export function scalarValue(t: ort.Tensor): number {
  if (t.size !== 1) throw new Error(`Expected a tensor with one value, got shape ${JSON.stringify(t.dims)}.`);
  return toNumbers(t)[0]!;
}

export function byteSize(dtype: DType, dims: readonly number[]): number {
  return elementCount(dims) * DTYPE_BYTES[dtype];
}
