// Sign convention of Dynamic LayerReplace (ALGORITHMS.md §3): on a small model where one middle
// layer's residual contribution is scaled up (and the distillation text is sampled from that
// model, so it is the best predictor of it), the RL importance must give that layer the lowest
// replaceability of its group, and the final emulator must keep it.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../../native-models/models/load';
import { harmonizerHidden } from '../../../native-models/scaleot/harmonizer';
import { runLayerReplace, type LayerReplaceProgress } from '../../../native-models/scaleot/layer-replace';
import { splitLayers } from '../../../native-models/scaleot/plan';
import { randomLlamaWeights, resultsDir, sampleSequences, TINY, writeHfModel } from './helpers';

describe('Dynamic LayerReplace', () => {
  it('gives a critical middle layer the lowest replaceability and keeps it', async () => {
    const dir = resultsDir('critical');
    const w = randomLlamaWeights(TINY, 1);
    const critical = 3;
    for (const n of ['self_attn.o_proj.weight', 'mlp.down_proj.weight']) {
      const t = w.get(`model.layers.${critical}.${n}`)!;
      t.data.forEach((x, i) => (t.data[i] = x * 6));
    }
    const model = await loadModel(await writeHfModel(join(dir, 'model'), TINY, w));
    const seqs = await sampleSequences(model, 64, 33, 7);
    const examples = seqs.map((t, i) => ({ tokens: Int32Array.from(t), lossMask: Uint8Array.from(t, (_, k) => (k === 0 ? 0 : 1)), line: i + 1 }));
    const split = splitLayers(8, 2, 2);
    const events: LayerReplaceProgress[] = [];
    const run = () =>
      runLayerReplace(
        model,
        split,
        examples,
        { alpha: 0.5, groupSize: 4, steps: 60, interval: 10, candidates: 3, scoreLr: 10, hidden: harmonizerHidden(64), lr: 2e-3, weightDecay: 0, clip: 1, batchSize: 8, seqLen: 33, padId: 0, seed: 0, kd: null },
        { progress: (p) => events.push(p) },
        { provider: 'cpu', intraOpThreads: 1 },
      );
    const r = await run();
    const scores = split.middle.map((l) => r.scores.get(l)!);
    expect(Math.min(...scores)).toBe(r.scores.get(critical));
    expect(r.replaced).toHaveLength(2);
    expect(r.replaced).not.toContain(critical);
    // The importance was learned (6 updates of 3 distinct candidate sets each), not the initial zeros.
    const updates = events.filter((e) => e.kind === 'importance');
    expect(updates).toHaveLength(6);
    for (const u of updates) if (u.kind === 'importance') expect(new Set(u.sets.map((s) => s.join())).size).toBe(3);
    expect(r.scores.get(critical)!).toBeLessThan(-0.1);
    // Only replaced layers' harmonizers train: the steps report which were replaced, and harmonizers
    // of layers never replaced would keep W_up = 0.
    const everReplaced = new Set(events.flatMap((e) => (e.kind === 'step' ? e.replaced : [])));
    for (const l of split.middle) {
      const trained = r.harmonizers.get(l)!.up.some((x) => x !== 0);
      expect(trained).toBe(everReplaced.has(l));
    }
    // Seeded and deterministic (CPU).
    const again = await run();
    expect([...again.scores]).toEqual([...r.scores]);
    expect(again.losses).toEqual(r.losses);
  }, 180_000);
});
