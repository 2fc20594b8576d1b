// Pieces shared by the train-step and eval compilers: declaring parameters, collecting the batch
// inputs the model declared, turning feeds into tensors, and opening a session for a built graph.
import type * as ort from 'onnxruntime-node';
import { serialize, type Dim, type DType, type Graph, type TensorData, type Value } from '../onnx';
import { openSession, type OpenedSession, type SessionSettings } from '../runtime/session';
import { toOrt } from '../runtime/tensors';

export interface ParamInit {
  data: TensorData;
  shape: number[];
  /** Defaults from the array: Float32Array → float32, Float64Array → float64, Uint16Array → float16. */
  dtype?: DType;
}

/** A batch tensor: an ort.Tensor, or data with its dims (the type comes from the graph input). */
export type Feed = ort.Tensor | { data: TensorData; dims: number[] };
export type Batch = Record<string, Feed>;

export interface InputSpec {
  name: string;
  dtype: DType;
  shape: readonly Dim[];
}

export function paramDType(name: string, p: ParamInit): DType {
  const d = p.dtype ?? (p.data instanceof Float64Array ? 'float64' : p.data instanceof Uint16Array ? 'float16' : p.data instanceof Float32Array ? 'float32' : undefined);
  if (!d) throw new Error(`Parameter "${name}": give its dtype (its data is a ${p.data.constructor.name}).`);
  const n = p.shape.reduce((a, b) => a * b, 1);
  if (p.data.length !== n) throw new Error(`Parameter "${name}" has ${p.data.length} values but its shape ${JSON.stringify(p.shape)} needs ${n}.`);
  return d;
}

/** Trainable parameters become graph inputs (named as given), frozen ones initializers. */
export function declareParams(g: Graph, trainable: Record<string, ParamInit>, frozen: Record<string, ParamInit>): { params: Record<string, Value>; trainableValues: Record<string, Value> } {
  const params: Record<string, Value> = {};
  const trainableValues: Record<string, Value> = {};
  for (const [name, p] of Object.entries(trainable)) {
    const dt = paramDType(name, p);
    if (dt !== 'float32' && dt !== 'float64') throw new Error(`Trainable parameter "${name}" is ${dt}; trainable parameters must be float32 or float64.`);
    params[name] = trainableValues[name] = g.input(name, dt, p.shape);
  }
  for (const [name, p] of Object.entries(frozen)) {
    if (name in params) throw new Error(`"${name}" is listed as both trainable and frozen.`);
    params[name] = g.initializer(name, p.data, p.shape, paramDType(name, p));
  }
  return { params, trainableValues };
}

/** The inputs the model function declared itself (everything that is not a parameter or ours). */
export function batchInputsOf(g: Graph, exclude: Set<string>): InputSpec[] {
  return g.inputs.filter((v) => !exclude.has(v.name)).map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape }));
}

export function checkLoss(loss: Value): void {
  if (loss.dtype !== 'float32' && loss.dtype !== 'float64') throw new Error(`The loss must be float32 or float64, not ${loss.dtype}.`);
  if (!loss.shape.every((d) => d === 1)) throw new Error(`The loss must be a scalar, not shape ${JSON.stringify(loss.shape)}.`);
}

export function batchFeeds(specs: InputSpec[], batch: Batch): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  const known = new Set(specs.map((s) => s.name));
  for (const k of Object.keys(batch)) if (!known.has(k)) throw new Error(`The batch has "${k}", which the model does not take (it takes: ${[...known].join(', ') || 'nothing'}).`);
  for (const s of specs) {
    const f = batch[s.name];
    if (!f) throw new Error(`The batch is missing "${s.name}" (${s.dtype} ${JSON.stringify(s.shape)}).`);
    if ('type' in f && 'size' in f) {
      if (f.type !== s.dtype) throw new Error(`Batch input "${s.name}" is ${f.type}, the model expects ${s.dtype}.`);
      out[s.name] = f;
    } else out[s.name] = toOrt(s.dtype, f.data, f.dims);
  }
  return out;
}

/** Initializers of at least this many bytes travel as external data (no 2 GB protobuf limit, no extra copy). */
export const DEFAULT_EXTERNAL_THRESHOLD = 1 << 20;

export async function sessionFor(g: Graph, settings: SessionSettings | undefined, externalThreshold = DEFAULT_EXTERNAL_THRESHOLD): Promise<OpenedSession> {
  const { model, external } = serialize(g, { externalThreshold, externalName: `${g.name}.weights` });
  return openSession({ bytes: model, externalData: external ? [{ name: external.name, data: external.data }] : [] }, settings);
}
