// ModelProto writing with onnx-buf. Initializers above a size threshold can go to one external data
// file (required past protobuf's 2 GB limit); that file is referenced by a relative name only.
import { create, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataLocation,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type GraphProto,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';
import { ONNX_DTYPE, type DType, type TensorData } from './dtype';
import { namesRead, type Attr, type Graph, type TensorConst, type Value } from './graph';

export const DEFAULT_OPSET = 18;

export interface SerializeOptions {
  opset?: number;
  /** Initializers of at least this many bytes go to the external data file. Default: never. */
  externalThreshold?: number;
  /** Relative file name of the external data file (default "weights.bin"). */
  externalName?: string;
  producer?: string;
}

export interface SerializedModel {
  model: Uint8Array;
  /** Present when some initializers went external: write it beside the model under `name`. */
  external?: { name: string; data: Uint8Array };
}

function bytesOf(data: TensorData): Uint8Array<ArrayBuffer> {
  return new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
}

function valueInfo(v: Value): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name: v.name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, {
          elemType: ONNX_DTYPE[v.dtype],
          shape: create(TensorShapeProtoSchema, {
            dim: v.shape.map((d) =>
              create(TensorShapeProto_DimensionSchema, {
                value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d },
              }),
            ),
          }),
        }),
      },
    }),
  });
}

function tensorProto(name: string, dtype: DType, shape: number[], data: TensorData): TensorProto {
  return create(TensorProtoSchema, { name, dataType: ONNX_DTYPE[dtype], dims: shape.map(BigInt), rawData: bytesOf(data) });
}

/** What serialising one model needs besides the caller's options. */
interface Pass extends SerializeOptions {
  /** Every value name some node reads or some graph outputs, in the root graph and every subgraph. */
  read: Set<string>;
}

function attribute(name: string, a: Attr, opts: Pass): AttributeProto {
  const T = AttributeProto_AttributeType;
  if (typeof a === 'number') return create(AttributeProtoSchema, { name, type: T.INT, i: BigInt(a) });
  if (typeof a === 'string') return create(AttributeProtoSchema, { name, type: T.STRING, s: new TextEncoder().encode(a) });
  if (Array.isArray(a)) {
    if (a.every((x) => typeof x === 'number')) return create(AttributeProtoSchema, { name, type: T.INTS, ints: (a as number[]).map(BigInt) });
    return create(AttributeProtoSchema, { name, type: T.STRINGS, strings: (a as string[]).map((s) => new TextEncoder().encode(s)) });
  }
  if ('f' in a) return create(AttributeProtoSchema, { name, type: T.FLOAT, f: a.f });
  if ('fs' in a) return create(AttributeProtoSchema, { name, type: T.FLOATS, floats: a.fs });
  if ('t' in a) {
    const t: TensorConst = a.t;
    return create(AttributeProtoSchema, { name, type: T.TENSOR, t: tensorProto('', t.dtype, t.shape, t.data) });
  }
  return create(AttributeProtoSchema, { name, type: T.GRAPH, g: graphProto(a.g, opts, undefined) });
}

interface ExternalSink {
  name: string;
  threshold: number;
  chunks: Uint8Array[];
  offset: number;
}

function graphProto(g: Graph, opts: Pass, sink: ExternalSink | undefined): GraphProto {
  const initializer = g.initializers.map((init) => {
    const v = init.value;
    const bytes = bytesOf(init.data);
    // Integer tensors (shapes, axes, indices) stay inline: ORT's shape inference must read them.
    if (sink && bytes.byteLength >= sink.threshold && v.dtype.startsWith('float')) {
      // Keep offsets 4 KiB aligned so ORT can memory-map the file.
      const pad = (4096 - (sink.offset % 4096)) % 4096;
      if (pad) {
        sink.chunks.push(new Uint8Array(pad));
        sink.offset += pad;
      }
      const t = create(TensorProtoSchema, {
        name: v.name,
        dataType: ONNX_DTYPE[v.dtype],
        dims: init.shape.map(BigInt),
        dataLocation: TensorProto_DataLocation.EXTERNAL,
        externalData: [
          create(StringStringEntryProtoSchema, { key: 'location', value: sink.name }),
          create(StringStringEntryProtoSchema, { key: 'offset', value: String(sink.offset) }),
          create(StringStringEntryProtoSchema, { key: 'length', value: String(bytes.byteLength) }),
        ],
      });
      sink.chunks.push(bytes);
      sink.offset += bytes.byteLength;
      return t;
    }
    return tensorProto(v.name, v.dtype, init.shape, init.data);
  });
  const node = g.nodes.map((n) =>
    create(NodeProtoSchema, {
      name: n.name,
      opType: n.op,
      domain: n.domain,
      input: n.inputs.map((x) => (x ? x.name : '')),
      // An optional output nothing reads is left out (''), so the kernel neither allocates nor fills it.
      output: n.outputs.map((x, i) => (n.optionalOutputs?.includes(i) && !opts.read.has(x.name) ? '' : x.name)),
      attribute: Object.entries(n.attrs).map(([k, a]) => attribute(k, a, opts)),
    }),
  );
  return create(GraphProtoSchema, {
    name: g.name,
    node,
    initializer,
    input: g.inputs.map(valueInfo),
    output: g.outputs.map(valueInfo),
  });
}

/** Serialises the root graph `g` into ModelProto bytes (plus external data when asked). */
export function serialize(g: Graph, opts: SerializeOptions = {}): SerializedModel {
  if (g.parent) throw new Error('serialize: pass the root graph, not a subgraph');
  if (g.outputs.length === 0) throw new Error('serialize: the graph has no outputs');
  const sink: ExternalSink | undefined =
    opts.externalThreshold !== undefined ? { name: opts.externalName ?? 'weights.bin', threshold: opts.externalThreshold, chunks: [], offset: 0 } : undefined;
  if (sink && (sink.name.includes('/') || sink.name.includes('\\') || sink.name.startsWith('.'))) {
    throw new Error(`serialize: external data name "${sink.name}" must be a plain file name`);
  }
  const usesMsDomain = hasDomain(g, 'com.microsoft');
  const model = create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: opts.producer ?? 'offsite-studio',
    opsetImport: [
      create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opts.opset ?? DEFAULT_OPSET) }),
      ...(usesMsDomain ? [create(OperatorSetIdProtoSchema, { domain: 'com.microsoft', version: 1n })] : []),
    ],
    graph: graphProto(g, { ...opts, read: namesRead(g) }, sink),
  });
  const bytes = toBinary(ModelProtoSchema, model);
  if (!sink || sink.chunks.length === 0) return { model: bytes };
  const data = new Uint8Array(sink.offset);
  let o = 0;
  for (const c of sink.chunks) {
    data.set(c, o);
    o += c.byteLength;
  }
  return { model: bytes, external: { name: sink.name, data } };
}

function hasDomain(g: Graph, domain: string): boolean {
  return g.nodes.some((n) => n.domain === domain || Object.values(n.attrs).some((a) => typeof a === 'object' && a !== null && 'g' in a && hasDomain(a.g, domain)));
}
