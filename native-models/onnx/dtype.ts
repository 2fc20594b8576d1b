// Element types the engine uses, with their ONNX enum values and JS typed arrays.
import { TensorProto_DataType } from 'onnx-buf';

export type DType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export const ONNX_DTYPE: Record<DType, TensorProto_DataType> = {
  float32: TensorProto_DataType.FLOAT,
  float64: TensorProto_DataType.DOUBLE,
  float16: TensorProto_DataType.FLOAT16,
  int64: TensorProto_DataType.INT64,
  int32: TensorProto_DataType.INT32,
  int8: TensorProto_DataType.INT8,
  uint8: TensorProto_DataType.UINT8,
  bool: TensorProto_DataType.BOOL,
};

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4, float64: 8, float16: 2, int64: 8, int32: 4, int8: 1, uint8: 1, bool: 1,
};

export type TensorData = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16';
}

export function allocate(dtype: DType, n: number): TensorData {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'float16': return new Uint16Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'int32': return new Int32Array(n);
    case 'int8': return new Int8Array(n);
    case 'uint8':
    case 'bool': return new Uint8Array(n);
  }
}

/** Typed array holding `values` (numbers) in `dtype`. */
export function fromNumbers(dtype: DType, values: ArrayLike<number>): TensorData {
  const out = allocate(dtype, values.length);
  if (out instanceof BigInt64Array) for (let i = 0; i < values.length; i++) out[i] = BigInt(Math.trunc(values[i]!));
  else if (dtype === 'float16') throw new Error('float16 constants must be given as raw Uint16Array bits');
  else (out as Float32Array).set(values);
  return out;
}
