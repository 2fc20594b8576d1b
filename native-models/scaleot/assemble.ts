// Emulator assembly (ALGORITHMS.md §1, §3): adapter layers are exact copies of the original
// blocks; the middle keeps some blocks (optionally rank-compressed by SRC), stands in harmonizers
// for replaced ones and drops the rest; embeddings, final norm and LM head travel unchanged.
// Block indices are renumbered to the emulator's stack (emulator.ts describes the format).
import type { LayerMapEntry } from '../formats/package';
import type { LoadedModel } from '../models/load';
import type { WeightMap } from '../models/spec';
import { harmonizerName, HARMONIZER_PARTS, type HarmonizerPart } from './harmonizer';
import { blockPrefix, emulatorConfig, splitBlockName, SVD_DOWN, SVD_UP, type EmulatorBlock } from './emulator';
import type { LayerSplit } from './plan';
import { compressProjection, SRC_PROJECTIONS, type SrcProjection } from './src';

export interface SrcSettings {
  /** Rank ratio β in (0, 1]; 1 = no compression. */
  beta: number;
  projections: SrcProjection[];
}

export interface SrcEntry {
  layer: number;
  projection: SrcProjection;
  out: number;
  in: number;
  rank: number;
  /** out·in. */
  before: number;
  /** rank·(out + in). */
  after: number;
  relativeError: number;
}

export interface SrcReport {
  beta: number;
  projections: SrcProjection[];
  entries: SrcEntry[];
  /** Attention projection parameters of the kept middle blocks before SRC (all four projections). */
  keptAttentionBefore: number;
  /** The same after SRC (compressed ones as factors). */
  keptAttentionAfter: number;
}

export interface AssemblyInput {
  model: LoadedModel;
  split: LayerSplit;
  /** Middle layers replaced by their harmonizers. */
  replaced: readonly number[];
  /** Middle layers dropped outright (uniform LayerDrop). */
  dropped: readonly number[];
  /** Harmonizer weights by original layer (each replaced layer needs one). */
  harmonizers: ReadonlyMap<number, Record<HarmonizerPart, Float32Array>>;
  /** Trained weights of kept middle blocks (LayerDrop with KD) by their original names; the rest as loaded. */
  keptOverrides?: ReadonlyMap<string, Float32Array>;
  src: SrcSettings | null;
  /** Progress per compressed projection (SVD takes a moment on big matrices). */
  onSrc?: (done: number, total: number) => void;
}

export interface AssembledEmulator {
  weights: WeightMap;
  blocks: EmulatorBlock[];
  layerMap: LayerMapEntry[];
  configRaw: Record<string, unknown>;
  src: SrcReport | null;
  parameterCount: number;
}

const ATTENTION_PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];

export function assembleEmulator(a: AssemblyInput): AssembledEmulator {
  const { model, split } = a;
  const spec = model.spec;
  const replaced = new Set(a.replaced);
  const dropped = new Set(a.dropped);
  for (const l of [...replaced, ...dropped]) {
    if (!split.middle.includes(l)) throw new RangeError(`Layer ${l} is not a middle layer (${split.middle[0]}..${split.middle[split.middle.length - 1]}); only middle layers are replaced or dropped.`);
  }
  for (const l of replaced) if (dropped.has(l)) throw new RangeError(`Layer ${l} cannot be both replaced and dropped.`);
  const src = a.src && a.src.beta < 1 && a.src.projections.length > 0 ? a.src : null;
  if (src && spec.family !== 'llama') throw new RangeError('Selective Rank Compression is implemented for LLaMA-family attention projections (q/k/v/o_proj); use --rank-ratio 1 for this model.');
  if (src) for (const p of src.projections) if (!SRC_PROJECTIONS.includes(p)) throw new RangeError(`SRC can compress ${SRC_PROJECTIONS.join(', ')}, not "${p}".`);

  const layerMap: LayerMapEntry[] = [];
  const blocks: EmulatorBlock[] = [];
  for (let i = 0; i < split.layers; i++) {
    const isAdapter = i < split.bottom || i >= split.layers - split.top;
    if (dropped.has(i)) {
      layerMap.push({ layer: i, role: 'dropped', index: null });
      continue;
    }
    const role: EmulatorBlock['role'] = isAdapter ? 'adapter' : replaced.has(i) ? 'harmonizer' : src ? 'kept-compressed' : 'kept';
    layerMap.push({ layer: i, role, index: blocks.length });
    blocks.push({ source: i, role, compressed: role === 'kept-compressed' ? src!.projections.map((p) => `self_attn.${p}`) : [] });
  }

  const weights: WeightMap = new Map();
  for (const [name, w] of model.weights) if (!splitBlockName(name)) weights.set(name, w);
  const byLayer = new Map<number, [string, string][]>();
  for (const name of model.weights.keys()) {
    const s = splitBlockName(name);
    if (s) byLayer.set(s.layer, [...(byLayer.get(s.layer) ?? []), [name, s.rest]]);
  }
  const entries: SrcEntry[] = [];
  let keptAttentionBefore = 0;
  let keptAttentionAfter = 0;
  const totalSrc = src ? blocks.filter((b) => b.role === 'kept-compressed').length * src.projections.length : 0;
  blocks.forEach((b, j) => {
    const to = blockPrefix(spec, j);
    if (b.role === 'harmonizer') {
      const h = a.harmonizers.get(b.source);
      if (!h) throw new Error(`Layer ${b.source} is replaced but has no trained harmonizer.`);
      const hidden = h.down.length / spec.hiddenSize;
      const shapes: Record<HarmonizerPart, number[]> = { norm: [spec.hiddenSize], down: [hidden, spec.hiddenSize], up: [spec.hiddenSize, hidden] };
      for (const p of HARMONIZER_PARTS) weights.set(harmonizerName(to, p), { shape: shapes[p], data: h[p] });
      return;
    }
    for (const [name, rest] of byLayer.get(b.source) ?? []) {
      const w = model.weights.get(name)!;
      const data = a.keptOverrides?.get(name) ?? w.data;
      const module = rest.replace(/\.weight$/, '');
      const proj = ATTENTION_PROJECTIONS.find((p) => module === `self_attn.${p}`);
      if (b.role !== 'adapter' && proj && rest.endsWith('.weight')) keptAttentionBefore += data.length;
      if (b.role === 'kept-compressed' && b.compressed.includes(module) && rest.endsWith('.weight')) {
        const [out, inF] = w.shape as [number, number];
        const f = compressProjection(data, out, inF, src!.beta);
        weights.set(`${to}${module}.${SVD_UP}`, { shape: [out, f.rank], data: f.left });
        weights.set(`${to}${module}.${SVD_DOWN}`, { shape: [f.rank, inF], data: f.right });
        entries.push({ layer: b.source, projection: proj as SrcProjection, out, in: inF, rank: f.rank, before: out * inF, after: f.rank * (out + inF), relativeError: f.relativeError });
        keptAttentionAfter += f.rank * (out + inF);
        a.onSrc?.(entries.length, totalSrc);
        continue;
      }
      if (b.role !== 'adapter' && proj && rest.endsWith('.weight')) keptAttentionAfter += data.length;
      weights.set(`${to}${rest}`, { shape: [...w.shape], data });
    }
  });
  const { raw } = emulatorConfig(model.config, blocks.length, {
    source_layers: split.layers,
    blocks: blocks.map((b) => ({ source: b.source, role: b.role, ...(b.compressed.length ? { compressed: b.compressed } : {}) })),
  });
  let parameterCount = 0;
  for (const w of weights.values()) parameterCount += w.data.length;
  return {
    weights,
    blocks,
    layerMap,
    configRaw: raw,
    src: src ? { beta: src.beta, projections: [...src.projections], entries, keptAttentionBefore, keptAttentionAfter } : null,
    parameterCount,
  };
}
