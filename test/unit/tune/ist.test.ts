// IST inside the tuning loop (ALGORITHMS.md §4) on a tiny 8-layer LLaMA: how many layers each step
// trains, when the scores change, the suppression sets of each importance update, and the sign of
// the update on a model with one useless layer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TUNE_DEFAULTS, runTuning, type TuneConfig, type TuneProgress } from '../../../native-models/tune';
import { writeFileSync } from 'node:fs';
import { writePeftAdapter } from '../../../native-models/formats/peft';
import { generate } from '../../../native-models/generate/generate';
import { loadModel } from '../../../native-models/models/load';
import { ModelRunner } from '../../../native-models/models/runner';
import { planLora } from '../../../native-models/peft/lora';
import { lcg } from '../../integration/tune/helpers';
import { periodicData, writeTinyLlama } from './tiny-model';

let dir: string;
let model: string;
let data: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-ist-'));
  model = join(dir, 'llama8');
  await writeTinyLlama(model, { layers: 8 });
  data = join(dir, 'data.jsonl');
  periodicData(data, 24, 24, 4, 64, 9);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(over: Partial<TuneConfig>): TuneConfig {
  return { ...TUNE_DEFAULTS, model, data, out: join(dir, `run-${Math.random().toString(36).slice(2)}`), provider: 'cpu', threads: 1, seqLen: 16, batchSize: 4, rank: 4, alpha: 8, lr: 1e-2, ...over };
}

async function collect(c: TuneConfig): Promise<{ steps: Extract<TuneProgress, { kind: 'step' }>[]; updates: Extract<TuneProgress, { kind: 'importance' }>[]; result: Awaited<ReturnType<typeof runTuning>> }> {
  const steps: Extract<TuneProgress, { kind: 'step' }>[] = [];
  const updates: Extract<TuneProgress, { kind: 'importance' }>[] = [];
  const result = await runTuning(c, { progress: (p) => (p.kind === 'step' ? steps.push(p) : p.kind === 'importance' ? updates.push(p) : undefined) });
  return { steps, updates, result };
}

describe('IST layer selection and importance updates', () => {
  it.each([
    ['all 8 layers', null, 2, 4],
    ['6 chosen layers', [1, 2, 3, 5, 6, 7], 1, 3],
  ])('%s: floor(0.25·L) layers per step, scores change on steps 10 and 20 only, 3 distinct sets of floor(0.5·L)', async (_label, layers, nTrain, nSupp) => {
    const { steps, updates, result } = await collect(config({ sampler: 'ist', steps: 25, layers, dropout: 0.1 }));
    const tunable = layers ?? [0, 1, 2, 3, 4, 5, 6, 7];
    expect(result.tunableLayers).toEqual(tunable);
    expect(steps.map((s) => s.step)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    for (const s of steps) {
      expect(s.selected).toHaveLength(nTrain);
      expect(new Set(s.selected).size).toBe(nTrain);
      for (const l of s.selected) expect(tunable).toContain(l);
    }
    // The score vector (as recorded after each step) changes exactly on steps 10 and 20.
    const changedAt = steps.slice(1).filter((s, i) => JSON.stringify(s.importance) !== JSON.stringify(steps[i]!.importance)).map((s) => s.step);
    expect(changedAt).toEqual([10, 20]);
    expect(steps[0]!.importance).toEqual(new Array(tunable.length).fill(0));
    expect(updates.map((u) => u.step)).toEqual([10, 20]);
    for (const u of updates) {
      expect(u.sets).toHaveLength(3);
      expect(new Set(u.sets.map((s) => s.join(','))).size).toBe(3);
      for (const set of u.sets) {
        expect(set).toHaveLength(nSupp);
        expect(new Set(set).size).toBe(nSupp);
      }
      expect(u.losses.every(Number.isFinite)).toBe(true);
      expect(u.rewards.reduce((a, b) => a + b, 0)).toBeCloseTo(0, 12);
    }
    // Uniform sampling: the same number of layers per step, and no importance updates.
    const uni = await collect(config({ sampler: 'uniform', steps: 12, layers }));
    expect(uni.steps.every((s) => s.selected.length === nTrain)).toBe(true);
    expect(uni.updates).toHaveLength(0);
  }, 120_000);

  // A model whose tuned layers all matter about equally: identical blocks, the same LoRA factors
  // (on o_proj and down_proj) in tuned layers 3–7, and data sampled from that model with its
  // adapter merged in (so any suppression of a useful adapter raises the expected loss). One tuned
  // layer's LoRA output is multiplied by 0 (A = B = 0, in the data's model too). The adapter is
  // not trained (lr 0): only the importance updates act, 9 of them in 100 steps.
  it.each([3, 5, 7])('raises the score of layer %i, whose LoRA output is multiplied by 0, above every other layer within 100 steps', async (useless) => {
    const tuned = [3, 4, 5, 6, 7];
    const targets = ['o_proj', 'down_proj'];
    const base = join(dir, `same-${useless}`);
    await writeTinyLlama(base, { layers: 8, sameLayers: true, seed: 3 });
    const m = await loadModel(base);
    const plan = planLora(m.spec, new Map([...m.weights].map(([n, w]) => [n, w.shape])), { rank: 4, alpha: 8, dropout: 0, targets, layers: tuned });
    const rnd = lcg(11);
    const factors = new Map(targets.map((t) => {
      const mod = plan.modules.find((x) => x.target === t)!;
      return [t, { A: Float32Array.from({ length: 4 * mod.inFeatures }, () => (rnd() * 2 - 1) * 0.5), B: Float32Array.from({ length: mod.outFeatures * 4 }, () => (rnd() * 2 - 1) * 0.5) }];
    }));
    const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
    for (const mod of plan.modules) {
      const f = factors.get(mod.target)!;
      const A = mod.layer === useless ? new Float32Array(f.A.length) : f.A.slice();
      const B = mod.layer === useless ? new Float32Array(f.B.length) : f.B.slice();
      tensors.set(mod.keyA, { dtype: 'F32', shape: [4, mod.inFeatures], data: A });
      tensors.set(mod.keyB, { dtype: 'F32', shape: [mod.outFeatures, 4], data: B });
      // Merge into the teacher: W += (alpha / r) · B · A.
      const W = m.weights.get(`${mod.module}.weight`)!.data;
      for (let o = 0; o < mod.outFeatures; o++) for (let i = 0; i < mod.inFeatures; i++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += B[o * 4 + k]! * A[k * mod.inFeatures + i]!;
        W[o * mod.inFeatures + i]! += 2 * s;
      }
    }
    const init = join(dir, `same-${useless}-adapter`);
    await writePeftAdapter(init, { r: 4, lora_alpha: 8, target_modules: targets, layers_to_transform: tuned }, tensors);
    const runner = new ModelRunner(m, { settings: { provider: 'cpu', intraOpThreads: 1 } });
    const lines: string[] = [];
    for (let i = 0; i < 48; i++) {
      const g = await generate(runner, [1], { maxNewTokens: 15, temperature: 0.3, seed: 100 + i, stopTokens: [] });
      lines.push(JSON.stringify({ tokens: [1, ...g.tokens] }));
    }
    await runner.release();
    const teacherData = join(dir, `same-${useless}.jsonl`);
    writeFileSync(teacherData, `${lines.join('\n')}\n`);
    const { steps, updates, result } = await collect(config({ model: base, data: teacherData, sampler: 'ist', steps: 100, dropout: 0, lr: 0, initAdapter: init, targets, layers: tuned, rank: 4, alpha: 8, ist: { ...TUNE_DEFAULTS.ist, batchSize: 48 } }));
    const scores = result.importance;
    console.log(`IST scores of layers ${tuned.join(', ')} after 100 steps (layer ${useless} useless): ${scores.map((s) => s.toFixed(4)).join(', ')}`);
    expect(steps).toHaveLength(100);
    expect(updates).toHaveLength(9);
    const k = tuned.indexOf(useless);
    for (let l = 0; l < scores.length; l++) if (l !== k) expect(scores[k]).toBeGreaterThan(scores[l]!);
  }, 180_000);
});
