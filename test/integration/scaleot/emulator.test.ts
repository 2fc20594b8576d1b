// The emulator model format and its forward pass: a fresh harmonizer equals dropping the layer,
// SRC stores kept attention projections as rank-ceil(β·min) factors (parameter counts asserted),
// a written package loads back through loadEmulator with identical logits, and the plug-in maps
// adapter blocks through the layer map (LoRA merged equals LoRA run unmerged).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writePackage } from '../../../native-models/formats/package';
import { writePeftAdapter } from '../../../native-models/formats/peft';
import { writeSafetensors } from '../../../native-models/formats/safetensors';
import { writeFileAtomic } from '../../../native-models/formats/atomic';
import { Rng } from '../../../native-models/data/prng';
import { toFloat32 } from '../../../native-models/formats/dtypes';
import { buildLogitsGraph, type BuildableModel } from '../../../native-models/models/graphs';
import { loadModel, type LoadedModel } from '../../../native-models/models/load';
import { ModelRunner, openGraphSession } from '../../../native-models/models/runner';
import { generate } from '../../../native-models/generate/generate';
import type { ForwardHooks } from '../../../native-models/models/spec';
import { writeFullLayersAdapter } from '../../../native-models/peft/full';
import { toOrt } from '../../../native-models/runtime/tensors';
import { assembleEmulator } from '../../../native-models/scaleot/assemble';
import { inMemoryEmulator } from '../../../native-models/scaleot/build';
import { loadEmulator } from '../../../native-models/scaleot/emulator';
import { initHarmonizer } from '../../../native-models/scaleot/harmonizer';
import { splitLayers } from '../../../native-models/scaleot/plan';
import { plugIn } from '../../../native-models/scaleot/plugin';
import { randomLlamaWeights, resultsDir, TINY, writeHfModel } from './helpers';

const dir = resultsDir('emulator');
const T = 12;
const tokens = Array.from({ length: 2 * T }, (_, i) => (i * 7 + 3) % TINY.vocab);
let model: LoadedModel;

async function logits(m: BuildableModel, hooks?: ForwardHooks): Promise<Float32Array> {
  const g = buildLogitsGraph(m, { contextLength: T, fused: false, ...(hooks ? { hooks } : {}) });
  const { session } = await openGraphSession(g, { provider: 'cpu', intraOpThreads: 1 });
  try {
    const out = await session.run({ input_ids: toOrt('int64', BigInt64Array.from(tokens, BigInt), [2, T]) });
    return out.logits!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

beforeAll(async () => {
  // GQA (kv heads 2 of 4), so k/v projections are not square and SRC factors really are smaller.
  model = await loadModel(await writeHfModel(join(dir, 'model'), TINY, randomLlamaWeights(TINY, 3, 2), 2));
});

describe('harmonizer and assembly', () => {
  it('a fresh harmonizer (W_up = 0) equals dropping the layer', async () => {
    const split = splitLayers(8, 2, 2);
    const emu = assembleEmulator({ model, split, replaced: [4], dropped: [], harmonizers: new Map([[4, initHarmonizer(64, 8, 1)]]), src: null });
    expect(emu.layerMap[4]).toEqual({ layer: 4, role: 'harmonizer', index: 4 });
    const withHarmonizer = await logits(inMemoryEmulator(model, emu.weights, emu.configRaw));
    const dropped = await logits(model, { block: (i, h, run) => (i === 4 ? h : run(h)) });
    const full = await logits(model);
    expect(maxAbsDiff(withHarmonizer, dropped)).toBeLessThan(1e-5);
    expect(maxAbsDiff(withHarmonizer, full)).toBeGreaterThan(1e-3);
  });

  it('a trained harmonizer changes the block output (the harmonizer path is live)', async () => {
    const h = initHarmonizer(64, 8, 1);
    h.up = Float32Array.from({ length: 64 * 8 }, (_, i) => Math.sin(i) * 0.3);
    const emu = assembleEmulator({ model, split: splitLayers(8, 2, 2), replaced: [4], dropped: [], harmonizers: new Map([[4, h]]), src: null });
    const dropped = await logits(model, { block: (i, x, run) => (i === 4 ? x : run(x)) });
    expect(maxAbsDiff(await logits(inMemoryEmulator(model, emu.weights, emu.configRaw)), dropped)).toBeGreaterThan(1e-4);
  });

  it('SRC with β = 0.5 stores the kept middle attention projections as rank-ceil(β·min) factors', () => {
    const split = splitLayers(8, 2, 2);
    const emu = assembleEmulator({ model, split, replaced: [3, 5], dropped: [], harmonizers: new Map([[3, initHarmonizer(64, 8, 1)], [5, initHarmonizer(64, 8, 2)]]), src: { beta: 0.5, projections: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] } });
    expect(emu.layerMap.map((e) => e.role)).toEqual(['adapter', 'adapter', 'kept-compressed', 'harmonizer', 'kept-compressed', 'harmonizer', 'adapter', 'adapter']);
    // Kept middle layers 2 and 4. q/o: [64, 64] → r 32, factors 32·128 = 4096 (= 64·64, no saving
    // for square matrices); k/v: [32, 64] → r 16, factors 16·96 = 1536 instead of 2048.
    const perLayerBefore = 64 * 64 * 2 + 32 * 64 * 2;
    const perLayerAfter = 32 * (64 + 64) * 2 + 16 * (32 + 64) * 2;
    expect(emu.src!.keptAttentionBefore).toBe(2 * perLayerBefore);
    expect(emu.src!.keptAttentionAfter).toBe(2 * perLayerAfter);
    expect(emu.src!.keptAttentionBefore - emu.src!.keptAttentionAfter).toBe(2048);
    expect(emu.weights.get('model.layers.2.self_attn.k_proj.svd_down.weight')!.shape).toEqual([16, 64]);
    expect(emu.weights.get('model.layers.2.self_attn.k_proj.svd_up.weight')!.shape).toEqual([32, 16]);
    expect(emu.weights.has('model.layers.2.self_attn.k_proj.weight')).toBe(false);
    // Adapter layers are never compressed.
    expect(emu.weights.has('model.layers.0.self_attn.q_proj.weight')).toBe(true);
    expect(emu.weights.has('model.layers.6.self_attn.q_proj.svd_up.weight')).toBe(false);
  });

  it('SRC with β = 1 keeps full rank: the factorised forward equals the original (to rounding)', async () => {
    const split = splitLayers(8, 2, 2);
    const emu = assembleEmulator({ model, split, replaced: [], dropped: [], harmonizers: new Map(), src: { beta: 0.999, projections: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] } });
    expect(emu.src!.entries.every((e) => e.rank === Math.min(e.out, e.in))).toBe(true);
    expect(maxAbsDiff(await logits(inMemoryEmulator(model, emu.weights, emu.configRaw)), await logits(model))).toBeLessThan(1e-3);
  });
});

describe('generation on an emulator', () => {
  it('keeps a key/value cache past harmonizer blocks: the same tokens with and without it, greedy in the loop and sampled step by step', async () => {
    const h = (seed: number) => {
      const x = initHarmonizer(64, 8, seed);
      x.up = Float32Array.from({ length: 64 * 8 }, (_, i) => Math.sin(i * seed) * 0.3);
      return x;
    };
    const emu = assembleEmulator({ model, split: splitLayers(8, 2, 2), replaced: [3, 5], dropped: [], harmonizers: new Map([[3, h(1)], [5, h(2)]]), src: { beta: 0.5, projections: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] } });
    const runner = new ModelRunner(inMemoryEmulator(model, emu.weights, emu.configRaw), { settings: { provider: 'cpu', intraOpThreads: 1 }, contextLength: 40 });
    try {
      const prompt = [1, 9, 17, 33, 5];
      const opts = { maxNewTokens: 30, stopTokens: [] };
      const plain = await generate(runner, prompt, { ...opts, useCache: false });
      const cached = await generate(runner, prompt, { ...opts, useCache: true });
      // Greedy with the cache runs in the loop; the harmonizers' cache rows are zeros nothing reads.
      expect(runner.canDecodeGreedily).toBe(true);
      expect(cached.tokens).toEqual(plain.tokens);
      // A continuation that stops on a token picked above.
      const stop = plain.tokens[12]!;
      const stopped = await generate(runner, prompt, { ...opts, stopTokens: [stop], useCache: true });
      expect(stopped.tokens).toEqual(plain.tokens.slice(0, plain.tokens.indexOf(stop) + 1));
      // Sampling takes one cache step per token (prefill of the whole prompt, then decode).
      const sample = { ...opts, temperature: 0.9, topP: 0.95, seed: 7 };
      expect((await generate(runner, prompt, { ...sample, useCache: true })).tokens).toEqual((await generate(runner, prompt, { ...sample, useCache: false })).tokens);
    } finally {
      await runner.release();
    }
  });
});

describe('emulator packages', () => {
  it('round-trips through writePackage and loadEmulator with identical logits; uniform LayerDrop renumbers blocks', async () => {
    const split = splitLayers(8, 2, 2);
    const emu = assembleEmulator({ model, split, replaced: [], dropped: [3, 4], harmonizers: new Map(), src: { beta: 0.5, projections: ['q_proj', 'v_proj'] } });
    expect(emu.blocks.map((b) => b.source)).toEqual([0, 1, 2, 5, 6, 7]);
    const pkg = join(dir, 'pkg-uniform');
    rmSync(pkg, { recursive: true, force: true });
    await writePackage(pkg, {
      producer: { app: 'Offsite Studio', version: 'test' },
      signingKey: null,
      manifest: {
        kind: 'emulator',
        method: 'uniform',
        sourceModel: { sha256: 'a'.repeat(64), name: 'model', modelType: 'llama', layers: 8 },
        triplet: { adapterLayers: [2, 2], alpha: 0.5, beta: 0.5 },
        layerMap: emu.layerMap,
        model: { config: 'config.json', weights: ['model.safetensors'], tokenizer: null },
        recommendedTuning: {},
        reference: { emuZS: [] },
      },
      fill: async (d) => {
        await writeFileAtomic(join(d, 'config.json'), new TextEncoder().encode(JSON.stringify(emu.configRaw)));
        await writeSafetensors(join(d, 'model.safetensors'), new Map([...emu.weights].map(([n, w]) => [n, { dtype: 'F32' as const, shape: w.shape, data: w.data }])));
      },
    });
    const loaded = await loadEmulator(pkg);
    expect(loaded.spec.layers).toBe(6);
    expect(loaded.emulator.adapterBlocks).toEqual([0, 1, 4, 5]);
    expect(loaded.emulator.adapterBlocks.map((b) => loaded.emulator.originalLayer(b))).toEqual([0, 1, 6, 7]);
    expect(loaded.emulator.blocks[3]).toEqual({ source: 5, role: 'kept-compressed', compressed: ['self_attn.q_proj', 'self_attn.v_proj'] });
    expect(maxAbsDiff(await logits(loaded), await logits(inMemoryEmulator(model, emu.weights, emu.configRaw)))).toBe(0);
  });
});

describe('plug-in', () => {
  // An emulator that dropped middle layers 3 and 4: emulator blocks 4, 5 are model layers 6, 7.
  const layerMap = assembleEmulatorMap();
  function assembleEmulatorMap() {
    return [0, 1, 2, 3, 4, 5, 6, 7].map((l) => (l === 3 || l === 4 ? { layer: l, role: 'dropped' as const, index: null } : { layer: l, role: l < 2 || l > 5 ? ('adapter' as const) : ('kept' as const), index: l < 3 ? l : l - 2 }));
  }

  it('merges LoRA into the mapped layers; the merged model equals the unmerged adapter to 1e-5', async () => {
    const rng = new Rng(9);
    const r = 4;
    const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * s);
    const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
    for (const block of [1, 5]) {
      for (const [mod, out] of [['q_proj', 64], ['v_proj', 32]] as const) {
        tensors.set(`base_model.model.model.layers.${block}.self_attn.${mod}.lora_A.weight`, { dtype: 'F32', shape: [r, 64], data: rand(r * 64, 0.3) });
        tensors.set(`base_model.model.model.layers.${block}.self_attn.${mod}.lora_B.weight`, { dtype: 'F32', shape: [out, r], data: rand(out * r, 0.3) });
      }
    }
    const adapter = join(dir, 'lora');
    await writePeftAdapter(adapter, { r, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'], layers_to_transform: [1, 5] }, tensors, { overwrite: true });
    const merged = join(dir, 'plugin-merged');
    const unmerged = join(dir, 'plugin-unmerged');
    rmSync(merged, { recursive: true, force: true });
    rmSync(unmerged, { recursive: true, force: true });
    const res = await plugIn({ model: model.source.path, adapter, out: merged, layerMap, merge: true });
    expect(res.layerMapping).toEqual([{ adapterLayer: 1, modelLayer: 1 }, { adapterLayer: 5, modelLayer: 7 }]);
    expect(res.changedWeights.sort()).toEqual(['model.layers.1.self_attn.q_proj.weight', 'model.layers.1.self_attn.v_proj.weight', 'model.layers.7.self_attn.q_proj.weight', 'model.layers.7.self_attn.v_proj.weight']);
    const res2 = await plugIn({ model: model.source.path, adapter, out: unmerged, layerMap, merge: false });
    expect(res2.files).toContain('adapter/adapter_model.safetensors');
    const { readPeftAdapter } = await import('../../../native-models/formats/peft');
    const remapped = await readPeftAdapter(join(unmerged, 'adapter'));
    expect(remapped.config.layers_to_transform).toEqual([1, 7]);
    // Unmerged: the full model with PEFT's y = W x + (alpha/r)·B(A x) on the remapped modules.
    const byModule = new Map(remapped.modules.map((m) => [m.module, m]));
    const base = await loadModel(unmerged);
    const lora: ForwardHooks = {
      linear: (name, x, baseFn, g) => {
        const m = byModule.get(name);
        if (!m) return baseFn(x);
        const A = g.initializer(m.keyA, toFloat32(remapped.tensors.get(m.keyA)!), [r, m.inFeatures]);
        const B = g.initializer(m.keyB, toFloat32(remapped.tensors.get(m.keyB)!), [m.outFeatures, r]);
        return g.add(baseFn(x), g.mul(g.matmul(g.matmul(x, g.transpose(A, [1, 0])), g.transpose(B, [1, 0])), g.scalar(8 / r)));
      },
    };
    const a = await logits(await loadModel(merged));
    const b = await logits(base, lora);
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
    expect(maxAbsDiff(a, await logits(model))).toBeGreaterThan(1e-3);
  });

  it('replaces full adapter layers at their mapped indices and refuses a harmonizer block', async () => {
    const adapter = join(dir, 'full-adapter');
    const tuned = new Map<string, { data: Float32Array; shape: number[] }>();
    for (const [n, w] of model.weights) {
      const m = /^model\.layers\.7\.(.+)$/.exec(n);
      if (m) tuned.set(`model.layers.5.${m[1]}`, { data: w.data.map((x) => x * 0.5), shape: w.shape });
    }
    await writeFullLayersAdapter(adapter, { format: 'full-layers', model_type: 'llama', base_model_name_or_path: null, layers: [5] }, tuned, true);
    const out = join(dir, 'plugin-full');
    rmSync(out, { recursive: true, force: true });
    const res = await plugIn({ model: model.source.path, adapter, out, layerMap, merge: false });
    expect(res.merged).toBe(true);
    const p = await loadModel(out);
    expect(p.weights.get('model.layers.7.mlp.up_proj.weight')!.data).toEqual(model.weights.get('model.layers.7.mlp.up_proj.weight')!.data.map((x) => x * 0.5));
    expect(p.weights.get('model.layers.5.mlp.up_proj.weight')!.data).toEqual(model.weights.get('model.layers.5.mlp.up_proj.weight')!.data);
    const harmonizerMap = layerMap.map((e) => (e.layer === 7 ? { ...e, role: 'harmonizer' as const } : e));
    await expect(plugIn({ model: model.source.path, adapter, out: join(dir, 'plugin-refused'), layerMap: harmonizerMap, merge: false })).rejects.toThrow(/harmonizer standing in for original layer 7/);
  });
});
