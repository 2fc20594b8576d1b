// LoRA planning and initialisation (PEFT semantics), and the adapter round trip:
// export → --init-adapter → export gives identical bytes, for LoRA (LLaMA and GPT-2 Conv1D) and
// for full-layer adapters; `offsite inspect` describes the exported PEFT folder.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPeftAdapter } from '../../../native-models/formats/peft';
import { loadModel, type LoadedModel } from '../../../native-models/models/load';
import { initLora, planLora } from '../../../native-models/peft/lora';
import { exportAdapter, prepareAdapter, runTuning, TUNE_DEFAULTS, type TuneConfig } from '../../../native-models/tune';
import { parseJsonOut, runCli, writeTokenData } from '../../integration/tune/helpers';
import { writeTinyLlama } from '../tune/tiny-model';

let dir: string;
let llamaPath: string;
let llama: LoadedModel;
const shapesOf = (m: LoadedModel) => new Map([...m.weights].map(([n, w]) => [n, w.shape]));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-peft-'));
  llamaPath = join(dir, 'llama');
  await writeTinyLlama(llamaPath, { layers: 3 });
  llama = await loadModel(llamaPath);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('LoRA plan and initialisation', () => {
  it('adapts the named targets in the chosen layers with PEFT key names and shapes', () => {
    const plan = planLora(llama.spec, shapesOf(llama), { rank: 4, alpha: 16, dropout: 0, targets: ['q_proj', 'down_proj'], layers: [2, 0] });
    expect(plan.modules.map((m) => m.module)).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.mlp.down_proj', 'model.layers.2.self_attn.q_proj', 'model.layers.2.mlp.down_proj']);
    expect(plan.modules[0]!.keyA).toBe('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(plan.modules[1]).toMatchObject({ inFeatures: 64, outFeatures: 32, layer: 0 });
    expect(plan.scaling).toBe(4);
    expect(plan.settings.layers).toEqual([0, 2]);
  });

  it('refuses targets the family does not have, missing layers and bad ranks with a sentence', () => {
    const s = { rank: 4, alpha: 8, dropout: 0, layers: null };
    expect(() => planLora(llama.spec, shapesOf(llama), { ...s, targets: ['c_attn'] })).toThrow(/"c_attn" is not a LoRA target of a llama model; choose from q_proj/);
    expect(() => planLora(llama.spec, shapesOf(llama), { ...s, targets: ['q_proj'], layers: [3] })).toThrow(/Layer 3 does not exist; this model has layers 0 to 2/);
    expect(() => planLora(llama.spec, shapesOf(llama), { ...s, rank: 0, targets: ['q_proj'] })).toThrow(/rank must be a whole number/);
  });

  it('draws A from U(−1/√in, 1/√in) (kaiming_uniform_, a = √5) per seed, and sets B to zero', () => {
    const plan = planLora(llama.spec, shapesOf(llama), { rank: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj', 'down_proj'], layers: null });
    const a = initLora(plan, 1);
    const b = initLora(plan, 1);
    const c = initLora(plan, 2);
    for (const m of plan.modules) {
      const A = a.get(m.keyA)!.data;
      const bound = 1 / Math.sqrt(m.inFeatures);
      expect(Math.max(...A.map(Math.abs))).toBeLessThanOrEqual(bound);
      // Uniform on ±bound: variance bound²/3 (loose: a few hundred samples).
      const v = A.reduce((s, x) => s + x * x, 0) / A.length;
      expect(v / (bound * bound / 3)).toBeGreaterThan(0.75);
      expect(v / (bound * bound / 3)).toBeLessThan(1.25);
      expect(a.get(m.keyB)!.data.every((x) => x === 0)).toBe(true);
      expect(Array.from(A)).toEqual(Array.from(b.get(m.keyA)!.data));
      expect(Array.from(A)).not.toEqual(Array.from(c.get(m.keyA)!.data));
    }
  });
});

describe('adapter round trip', () => {
  const base = (over: Partial<TuneConfig>): TuneConfig => ({ ...TUNE_DEFAULTS, model: llamaPath, data: join(dir, 'train.jsonl'), out: join(dir, `run-${Math.random().toString(36).slice(2)}`), steps: 4, seqLen: 12, batchSize: 2, rank: 4, alpha: 8, lr: 1e-2, provider: 'cpu', threads: 1, ...over });

  it.each<[string, Partial<TuneConfig>]>([
    ['LoRA on all layers', { targets: ['q_proj', 'v_proj'] }],
    ['LoRA on chosen layers', { targets: ['up_proj'], layers: [0, 2] }],
    ['full layers (IST over layers 0 and 2)', { peft: 'full' as const, layers: [0, 2], dropout: 0, sampler: 'ist' as const }],
  ])('%s: export → init-adapter → export gives identical bytes', async (_label, over) => {
    writeTokenData(join(dir, 'train.jsonl'), [10, 12, 9, 11], 64, 2);
    const trained = await runTuning(base(over));
    const again = join(dir, `again-${Math.random().toString(36).slice(2)}`);
    const c = base({ ...over, initAdapter: trained.adapter! });
    const adapter = await prepareAdapter(llama, c);
    await exportAdapter(again, llama, adapter, Object.fromEntries([...adapter.initial].map(([k, t]) => [k, t.data])), c);
    const names = over.peft === 'full' ? ['adapter_layers.json', 'adapter_model.safetensors'] : ['adapter_config.json', 'adapter_model.safetensors'];
    for (const n of names) expect(Buffer.compare(readFileSync(join(trained.adapter!, n)), readFileSync(join(again, n)))).toBe(0);
    if (over.peft !== 'full') {
      const a = await readPeftAdapter(trained.adapter!);
      expect(a.config.layers_to_transform).toEqual(over.layers ?? null);
      expect(a.config.r).toBe(4);
      expect(a.config.lora_alpha).toBe(8);
      // Training moved B away from its zero initialisation.
      expect([...a.tensors].some(([k, t]) => k.includes('lora_B') && Array.from(new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4)).some((x) => x !== 0))).toBe(true);
    }
  }, 120_000);

  it('`offsite inspect` describes an exported PEFT adapter', async () => {
    writeTokenData(join(dir, 'train.jsonl'), [10, 12, 9, 11], 64, 2);
    const trained = await runTuning(base({ targets: ['q_proj', 'v_proj'], layers: [0, 1] }));
    const d = parseJsonOut<Record<string, unknown>>(await runCli(['inspect', trained.adapter!, '--json']));
    expect(d).toMatchObject({ kind: 'peft-adapter', peftType: 'LORA', r: 4, alpha: 8, targets: ['q_proj', 'v_proj'], layersToTransform: [0, 1], adaptedLayers: [0, 1], moduleCount: 4, baseModel: 'llama' });
  }, 120_000);
});
