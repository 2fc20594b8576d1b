// Optional node outputs that nothing reads are serialised as '' so onnxruntime neither allocates
// nor fills them; one that a graph output or a subgraph reads keeps its name.
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { describe, expect, it } from 'vitest';
import { Graph, serialize } from '../../../native-models/onnx';
import { openSession } from '../../../native-models/runtime/session';
import { float32, toNumbers } from '../../../native-models/runtime/tensors';

/** x + skip and its RMSNorm, the four outputs of SkipSimplifiedLayerNormalization. */
function skipNorm(g: Graph, x: ReturnType<Graph['input']>) {
  const stat = { dtype: 'float32' as const, shape: [2, 1] };
  const full = { dtype: 'float32' as const, shape: [2, 4] };
  return g.emit('SkipSimplifiedLayerNormalization', [x, x, g.constant(new Float32Array([1, 1, 1, 1]), [4])], { epsilon: { f: 1e-6 } }, [full, stat, stat, full], 'com.microsoft', undefined, [1, 2, 3]);
}

function nodeOutputs(bytes: Uint8Array, op: string): string[][] {
  const graph = fromBinary(ModelProtoSchema, bytes).graph!;
  const found: string[][] = [];
  const visit = (nodes: typeof graph.node) => {
    for (const n of nodes) {
      if (n.opType === op) found.push([...n.output]);
      for (const a of n.attribute) if (a.g) visit(a.g.node);
    }
  };
  visit(graph.node);
  return found;
}

describe('optional outputs', () => {
  it('leaves out the ones nothing reads and keeps the read ones, and the model still runs', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 4]);
    const [normed, , , sum] = skipNorm(g, x);
    g.output(g.add(normed!, sum!), 'y');
    const { model } = serialize(g, { opset: 23 });
    const outs = nodeOutputs(model, 'SkipSimplifiedLayerNormalization')[0]!;
    expect(outs[0]).not.toBe('');
    expect(outs.slice(1, 3)).toEqual(['', '']);
    expect(outs[3]).not.toBe(''); // read by the Add
    const { session } = await openSession({ bytes: model }, { provider: 'cpu', intraOpThreads: 1 });
    const y = toNumbers((await session.run({ x: float32([1, 1, 1, 1, 3, 0, 0, 4], [2, 4]) })).y!);
    // Row 1: sum 2,2,2,2 → normed 1,1,1,1; row 2: sum 6,0,0,8 → rms 5 → 1.2,0,0,1.6.
    const want = [3, 3, 3, 3, 7.2, 0, 0, 9.6];
    y.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 4));
    await session.release();
  });

  it('keeps an optional output that is a graph output or read inside a subgraph', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 4]);
    const [normed, mean, invStd] = skipNorm(g, x);
    g.output(normed!, 'normed');
    g.output(mean!);
    const [branch] = g.if(g.constant(Uint8Array.of(1), [], 'bool'), (t) => [t.identity(invStd!)], (e) => [e.identity(invStd!)]);
    g.output(branch!, 'from_branch');
    const outs = nodeOutputs(serialize(g, { opset: 23 }).model, 'SkipSimplifiedLayerNormalization')[0]!;
    expect(outs.every((o, i) => (i === 3 ? o === '' : o !== ''))).toBe(true);
  });
});
