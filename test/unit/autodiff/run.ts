// Runs a builder graph once with onnxruntime-node and returns its outputs as plain number arrays.
import * as ort from 'onnxruntime-node';
import { serialize, type Graph } from '../../../native-models/onnx';

export type Feed = { dtype: 'float32' | 'float64' | 'int64' | 'bool'; data: number[]; shape: number[] };

/**
 * Float64 graphs run with ORT's basic optimizations: its extended fusions are not float64-exact
 * (FusedMatMul keeps a float32 alpha; QuickGelu has no float64 kernel). Float32 graphs run fully
 * optimised, as the app runs them.
 */
export async function runGraph(g: Graph, feeds: Record<string, Feed>): Promise<Record<string, { data: number[]; dims: number[] }>> {
  const f64 = Object.values(feeds).some((f) => f.dtype === 'float64');
  const session = await ort.InferenceSession.create(serialize(g).model, { graphOptimizationLevel: f64 ? 'basic' : 'all' });
  const input: Record<string, ort.Tensor> = {};
  for (const [name, f] of Object.entries(feeds)) {
    const data =
      f.dtype === 'float32' ? Float32Array.from(f.data) : f.dtype === 'float64' ? Float64Array.from(f.data) : f.dtype === 'int64' ? BigInt64Array.from(f.data, BigInt) : Uint8Array.from(f.data);
    input[name] = new ort.Tensor(f.dtype, data as Float32Array, f.shape);
  }
  const out = await session.run(input);
  await session.release();
  const res: Record<string, { data: number[]; dims: number[] }> = {};
  for (const [k, t] of Object.entries(out)) res[k] = { data: Array.from(t.data as ArrayLike<number | bigint>, Number), dims: [...t.dims] };
  return res;
}
