// The forward builder's hooks, as a trainer and the emulator builder use them: weights as graph
// inputs, LoRA around a named linear layer, a replaced block, and stopping after a layer.
import { beforeAll, describe, expect, it } from 'vitest';
import { llama2cToHfTensors, readLlama2c, unpermuteRopeRows } from '../../../native-models/formats/llama2c';
import { loadModel, type LoadedModel } from '../../../native-models/models/load';
import { openGraphSession } from '../../../native-models/models/runner';
import type { ForwardHooks } from '../../../native-models/models/spec';
import { Graph, type Value } from '../../../native-models/onnx/graph';
import { toOrt } from '../../../native-models/runtime/tensors';
import { fixedTokens, maxAbsDiff, stories260K } from './oracle';

const tokens = fixedTokens(12, 512, 5);
let model: LoadedModel;

async function run(hooks: ForwardHooks | undefined, feeds: Record<string, Float32Array> = {}, shapes: Record<string, number[]> = {}, m: LoadedModel = model): Promise<Float32Array> {
  const g = new Graph('t');
  const ids = g.input('input_ids', 'int64', [1, tokens.length]);
  const out = m.family.forward(g, m.spec, m.weights, { inputIds: ids, contextLength: 16 }, hooks);
  g.output(out.logits ?? out.hidden, 'out');
  const { session } = await openGraphSession(g, { provider: 'cpu', intraOpThreads: 1 });
  try {
    const f: Record<string, ReturnType<typeof toOrt>> = { input_ids: toOrt('int64', BigInt64Array.from(tokens, BigInt), [1, tokens.length]) };
    for (const [k, v] of Object.entries(feeds)) f[k] = toOrt('float32', v, shapes[k]!);
    const res = await session.run(f);
    return res.out!.data as Float32Array;
  } finally {
    await session.release();
  }
}

beforeAll(async () => {
  model = await loadModel(stories260K);
});

describe('forward hooks', () => {
  let base: Float32Array;
  beforeAll(async () => {
    base = await run(undefined);
  });

  it('takes trainable weights as graph inputs through param()', async () => {
    const name = 'model.layers.1.self_attn.q_proj.weight';
    const w = model.weights.get(name)!;
    const hooks: ForwardHooks = { param: (n, shape, g) => (n === name ? g.input(n, 'float32', [...shape]) : undefined) };
    expect(maxAbsDiff(await run(hooks, { [name]: w.data }, { [name]: w.shape }), base)).toBeLessThan(1e-5);
    const scaled = w.data.map((x) => x * 1.5);
    expect(maxAbsDiff(await run(hooks, { [name]: scaled }, { [name]: w.shape }), base)).toBeGreaterThan(1e-3);
  });

  it('wraps a named linear layer with LoRA (B = 0 leaves the model unchanged)', async () => {
    const r = 4;
    const target = 'model.layers.2.self_attn.v_proj';
    const [out, inp] = model.weights.get(`${target}.weight`)!.shape as [number, number];
    const a = Float32Array.from({ length: r * inp }, (_, i) => Math.sin(i) * 0.1);
    const seen: string[] = [];
    const hooks: ForwardHooks = {
      linear: (name, x, baseFn, g) => {
        seen.push(name);
        if (name !== target) return baseFn(x);
        const A: Value = g.input('lora_A', 'float32', [r, inp]);
        const B: Value = g.input('lora_B', 'float32', [out, r]);
        const delta = g.matmul(g.matmul(x, g.transpose(A, [1, 0])), g.transpose(B, [1, 0]));
        return g.add(baseFn(x), g.mul(delta, g.scalar(2)));
      },
    };
    const zeroB = await run(hooks, { lora_A: a, lora_B: new Float32Array(out * r) }, { lora_A: [r, inp], lora_B: [out, r] });
    expect(maxAbsDiff(zeroB, base)).toBeLessThan(1e-5);
    expect(seen).toContain('model.layers.0.mlp.down_proj');
    expect(seen).not.toContain('lm_head'); // stories260K's head is tied to the embedding
    const someB = Float32Array.from({ length: out * r }, (_, i) => Math.cos(i) * 0.1);
    expect(maxAbsDiff(await run(hooks, { lora_A: a, lora_B: someB }, { lora_A: [r, inp], lora_B: [out, r] }), base)).toBeGreaterThan(1e-3);
  });

  it('replaces blocks through block() and stops after a layer', async () => {
    expect(maxAbsDiff(await run({ block: (_i, h, runBlock) => runBlock(h) }), base)).toBe(0);
    const dropped = await run({ block: (i, h, runBlock) => (i === 2 ? h : runBlock(h)) });
    expect(maxAbsDiff(dropped, base)).toBeGreaterThan(1e-3);
    const hidden = await run({ stopAfterLayer: 1 });
    expect(hidden.length).toBe(tokens.length * model.spec.hiddenSize);
  });

  it('would be caught by the parity tests if q/k rows kept llama2.c\'s adjacent-pair order', async () => {
    // Undo the importer's permutation: same weights, wrong RoPE pairing → different logits.
    const ck = await readLlama2c(stories260K);
    const t = llama2cToHfTensors(ck);
    const weights = new Map(model.weights);
    for (const [name, heads] of [['model.layers.0.self_attn.q_proj.weight', 8], ['model.layers.0.self_attn.k_proj.weight', 4]] as const) {
      weights.set(name, { shape: t.get(name)!.shape, data: unpermuteRopeRows(model.weights.get(name)!.data, heads, 64) });
    }
    const wrong = await run(undefined, {}, {}, { ...model, weights });
    expect(maxAbsDiff(wrong, base)).toBeGreaterThan(1e-2);
  });
});
