// Layer bookkeeping of emulator building: the adapter/middle split, uniform LayerDrop's index
// rule, ScaleOT's groups, replacement sampling and the final choice, and the plug-in's mapping of
// emulator blocks back to full-model layers.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../native-models/data/prng';
import { uniformKeptLayers } from '../../../native-models/scaleot/layer-drop';
import { distinctSetCount, finalReplacement, groupsOf, replacedPerGroup, sampleReplacement, splitLayers, uniformKeptPositions } from '../../../native-models/scaleot/plan';
import { mapAdapterLayer } from '../../../native-models/scaleot/plugin';
import { harmonizerHidden, harmonizerParameterCount, initHarmonizer } from '../../../native-models/scaleot/harmonizer';
import type { LayerMapEntry } from '../../../native-models/formats/package';

describe('uniform LayerDrop', () => {
  it('keeps round(i·(m−1)/(n_keep−1)), first and last always', () => {
    // m = 8, n_keep = 3: 0, 3.5 → 4, 7.
    expect(uniformKeptPositions(8, 3)).toEqual([0, 4, 7]);
    // m = 6, n_keep = 4: 0, 1.667 → 2, 3.333 → 3, 5.
    expect(uniformKeptPositions(6, 4)).toEqual([0, 2, 3, 5]);
    expect(uniformKeptPositions(4, 4)).toEqual([0, 1, 2, 3]);
    expect(uniformKeptPositions(5, 1)).toEqual([0]);
    expect(() => uniformKeptPositions(4, 5)).toThrow(/1 to 4/);
  });

  it('maps positions to original middle layers', () => {
    const split = splitLayers(24, 2, 2);
    expect(split.middle).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    // The Offsite-Tuning 2-8-2 emulator of a 24-layer model: 8 of 20 middle layers kept.
    expect(uniformKeptLayers(split, 8)).toEqual([2, 5, 7, 10, 13, 16, 18, 21]);
    expect(() => splitLayers(4, 2, 2)).toThrow(/no middle layer/);
  });
});

describe('ScaleOT groups and sampling', () => {
  it('groups consecutive middle layers, the last group smaller', () => {
    expect(groupsOf([2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 4)).toEqual([[2, 3, 4, 5], [6, 7, 8, 9], [10, 11]]);
    expect(replacedPerGroup(4, 0.5)).toBe(2);
    expect(replacedPerGroup(2, 0.5)).toBe(1);
    expect(replacedPerGroup(4, 0)).toBe(0);
    expect(distinctSetCount([[0, 1, 2, 3], [4, 5]], 0.5)).toBe(6 * 2);
  });

  it('samples round(α·g) distinct layers per group, reproducibly from the seed', () => {
    const groups = [[2, 3, 4, 5], [6, 7, 8, 9]];
    const scores = new Map([2, 3, 4, 5, 6, 7, 8, 9].map((l) => [l, 0]));
    const a = new Rng(5);
    const b = new Rng(5);
    for (let k = 0; k < 50; k++) {
      const s = sampleReplacement(groups, 0.5, scores, a);
      expect(s).toEqual(sampleReplacement(groups, 0.5, scores, b));
      expect(new Set(s).size).toBe(4);
      expect(s.filter((l) => l <= 5)).toHaveLength(2);
      expect(s.filter((l) => l >= 6)).toHaveLength(2);
    }
  });

  it('favours layers with high replaceability when sampling (weights sigmoid(r))', () => {
    const groups = [[0, 1, 2, 3]];
    const scores = new Map([[0, 6], [1, -6], [2, -6], [3, -6]]);
    const rng = new Rng(1);
    let hits = 0;
    for (let k = 0; k < 200; k++) if (sampleReplacement(groups, 0.25, scores, rng).includes(0)) hits++;
    // p(0 first) = σ(6) / (σ(6) + 3σ(−6)) ≈ 0.993.
    expect(hits).toBeGreaterThan(190);
  });

  it('finally replaces the highest-scoring layers of every group', () => {
    const groups = [[2, 3, 4, 5], [6, 7]];
    const scores = new Map([[2, 0.3], [3, -1], [4, 0.9], [5, 0.1], [6, -0.2], [7, 0.4]]);
    expect(finalReplacement(groups, 0.5, scores)).toEqual([2, 4, 7]);
  });
});

describe('harmonizer', () => {
  it('has hidden width max(8, d/16), zero W_up and unit norm at init', () => {
    expect(harmonizerHidden(64)).toBe(8);
    expect(harmonizerHidden(4096)).toBe(256);
    const h = initHarmonizer(64, 8, 3);
    expect(h.up.every((x) => x === 0)).toBe(true);
    expect(h.norm.every((x) => x === 1)).toBe(true);
    expect(h.down.some((x) => x !== 0)).toBe(true);
    expect(Math.max(...h.down.map(Math.abs))).toBeLessThanOrEqual(1 / 8);
    // A few percent of a LLaMA-7B block (d 4096, 4·d² attention + 3·d·11008 MLP).
    expect(harmonizerParameterCount(4096, 256) / (4 * 4096 ** 2 + 3 * 4096 * 11008)).toBeLessThan(0.02);
  });
});

describe('plug-in layer mapping', () => {
  // 8 layers, adapters 2 + 2, uniform LayerDrop kept middle layers 2 and 5: the emulator has 6 blocks.
  const map: LayerMapEntry[] = [
    { layer: 0, role: 'adapter', index: 0 },
    { layer: 1, role: 'adapter', index: 1 },
    { layer: 2, role: 'kept', index: 2 },
    { layer: 3, role: 'dropped', index: null },
    { layer: 4, role: 'dropped', index: null },
    { layer: 5, role: 'kept-compressed', index: 3 },
    { layer: 6, role: 'adapter', index: 4 },
    { layer: 7, role: 'adapter', index: 5 },
  ];
  it('maps top adapter blocks through the layer map (emulator index ≠ model index)', () => {
    expect(mapAdapterLayer(0, map, 8)).toBe(0);
    expect(mapAdapterLayer(4, map, 8)).toBe(6);
    expect(mapAdapterLayer(5, map, 8)).toBe(7);
    expect(mapAdapterLayer(2, map, 8)).toBe(2);
    expect(mapAdapterLayer(5, null, 8)).toBe(5);
  });
  it('refuses blocks with no counterpart in the full model', () => {
    expect(() => mapAdapterLayer(3, map, 8)).toThrow(/kept-compressed standing in for original layer 5/);
    expect(() => mapAdapterLayer(6, map, 8)).toThrow(/does not have/);
    expect(() => mapAdapterLayer(1, map, 12)).toThrow(/different model/);
  });
});
