// Uniform LayerDrop with the optional KD (ALGORITHMS.md §2): the kept middle blocks are distilled
// with lm_weight·lm + kd_weight·kd against the full model's middle output; the loss falls and only
// kept middle blocks change.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../../native-models/models/load';
import { runLayerReplace } from '../../../native-models/scaleot/layer-replace';
import { distilKeptLayers, uniformKeptLayers } from '../../../native-models/scaleot/layer-drop';
import { splitLayers } from '../../../native-models/scaleot/plan';
import { corpus, randomLlamaWeights, resultsDir, TINY, writeHfModel } from './helpers';

describe('uniform LayerDrop with KD', () => {
  it('distils the kept middle blocks: the combined loss falls, other blocks stay frozen', async () => {
    const cfg = { ...TINY, vocab: 128 };
    const model = await loadModel(await writeHfModel(join(resultsDir('kd'), 'model'), cfg, randomLlamaWeights(cfg, 8)));
    const split = splitLayers(8, 2, 2);
    const kept = uniformKeptLayers(split, 2);
    expect(kept).toEqual([2, 5]);
    const examples = corpus(32, 24, 3).map((t, i) => ({ tokens: Int32Array.from(t), lossMask: Uint8Array.from(t, (_, k) => (k === 0 ? 0 : 1)), line: i + 1 }));
    const r = await distilKeptLayers(model, split, kept, examples, { lmWeight: 1, kdWeight: 30, steps: 12, lr: 3e-3, clip: 1, batchSize: 8, seqLen: 24, padId: 0, seed: 0 }, {}, { provider: 'cpu', intraOpThreads: 1 });
    expect(r.losses).toHaveLength(12);
    expect(r.losses[11]!).toBeLessThan(r.losses[0]!);
    const layers = new Set([...r.weights.keys()].map((n) => Number(/^model\.layers\.(\d+)\./.exec(n)![1])));
    expect([...layers].sort()).toEqual([2, 5]);
    const q = 'model.layers.5.self_attn.q_proj.weight';
    expect(r.weights.get(q)!.some((x, i) => x !== model.weights.get(q)!.data[i])).toBe(true);
  }, 120_000);

  it('trains harmonizers with KD added to the LM loss (ScaleOT option)', async () => {
    const cfg = { ...TINY, vocab: 128 };
    const model = await loadModel(await writeHfModel(join(resultsDir('kd'), 'model2'), cfg, randomLlamaWeights(cfg, 8)));
    const examples = corpus(32, 24, 3).map((t, i) => ({ tokens: Int32Array.from(t), lossMask: Uint8Array.from(t, (_, k) => (k === 0 ? 0 : 1)), line: i + 1 }));
    const base = { alpha: 0.5, groupSize: 4, steps: 10, interval: 5, candidates: 3, scoreLr: 10, hidden: 8, lr: 3e-3, weightDecay: 0, clip: 1, batchSize: 8, seqLen: 24, padId: 0, seed: 0 };
    const session = { provider: 'cpu' as const, intraOpThreads: 1 };
    const plain = await runLayerReplace(model, splitLayers(8, 2, 2), examples, { ...base, kd: null }, {}, session);
    const withKd = await runLayerReplace(model, splitLayers(8, 2, 2), examples, { ...base, kd: { lmWeight: 1, kdWeight: 30 } }, {}, session);
    // Same seed, same replaced sets: the KD term is added on top of the LM loss.
    expect(withKd.losses[0]!).toBeGreaterThan(plain.losses[0]!);
    expect(withKd.importanceUpdates).toBe(2);
  }, 120_000);
});
