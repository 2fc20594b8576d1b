// The emulator model format and its forward pass.
//
// An emulator package (formats/package.ts) holds, besides manifest.json / manifest.sig:
//   config.json        the source model's Hugging Face config with num_hidden_layers (GPT-2: n_layer)
//                      set to the emulator's block count E, plus an informational
//                      "offsite_emulator" object (roles per block); loaders ignore it.
//   model.safetensors  float32 tensors under the family's own names, with block indices RENUMBERED
//                      to the emulator stack 0..E−1 (the manifest's layerMap says which original
//                      layer each emulator block stands for):
//                        adapter / kept block j:   the original block's tensors, model.layers.{j}.…
//                        harmonizer block j:       model.layers.{j}.harmonizer.{norm,down,up}.weight
//                                                  ([d], [hidden, d], [d, hidden]); nothing else
//                        kept-compressed block j:  like kept, but each compressed projection P has
//                                                  P.svd_down.weight [r, in] (V_rᵀ) and
//                                                  P.svd_up.weight [out, r] (U_r·Σ_r) instead of
//                                                  P.weight (its bias, if any, is kept as P.bias)
//                      embeddings, final norm and LM head unchanged.
//   tokenizer.json     (and tokenizer_config.json) when the source model has them.
// The format is self-describing: a loader finds harmonizer and factorised blocks from the tensor
// names, and loadEmulator cross-checks them against the manifest's layer map.
//
// The forward pass is the family's own, with hooks: a harmonizer block replaces `run`, a
// factorised projection computes x·V_rᵀᵀ then ·(U_rΣ_r)ᵀ, and the caller's hooks (LoRA, trainable
// weights, IST block boundaries) wrap those exactly as they wrap an ordinary model.
import { join } from 'node:path';
import { toFloat32 } from '../formats/dtypes';
import { FormatError } from '../formats/errors';
import { parseHfConfig, readHfConfig, type HfConfig } from '../formats/hf';
import { readPackageManifest, type EmulatorManifest, type LayerMapEntry, type LayerRole } from '../formats/package';
import { readSafetensors } from '../formats/safetensors';
import { loadTokenizer } from '../formats/tokenizer';
import type { LoadedModel } from '../models/load';
import { familyOf, specFromConfig } from '../models/registry';
import type { ForwardHooks, ModelFamily, ModelSpec, WeightMap } from '../models/spec';
import { linear } from '../nn/linear';
import type { Graph, Value } from '../onnx/graph';
import { harmonizerForward, harmonizerName, HARMONIZER_PARTS } from './harmonizer';

/** "model.layers.{i}." (LLaMA family) or "transformer.h.{i}." (GPT-2). */
export function blockPrefix(spec: Pick<ModelSpec, 'family'>, i: number): string {
  return spec.family === 'gpt2' ? `transformer.h.${i}.` : `model.layers.${i}.`;
}

const BLOCK_NAME = /^(model\.layers|transformer\.h)\.(\d+)\.(.+)$/;

/** Splits "model.layers.3.self_attn.q_proj.weight" into its layer and the rest; undefined outside blocks. */
export function splitBlockName(name: string): { layer: number; rest: string } | undefined {
  const m = BLOCK_NAME.exec(name);
  return m ? { layer: Number(m[2]), rest: m[3]! } : undefined;
}

export const SVD_UP = 'svd_up.weight';
export const SVD_DOWN = 'svd_down.weight';

/** One block of the emulator's stack. */
export interface EmulatorBlock {
  /** Index of the original block it stands for. */
  source: number;
  role: Exclude<LayerRole, 'dropped'>;
  /** Factorised projections (module names relative to the block, e.g. "self_attn.q_proj"). */
  compressed: string[];
}

/** The block stack described by a layer map (entries with an index, in index order). */
export function blocksOfLayerMap(map: readonly LayerMapEntry[], compressed: (layer: number) => string[] = () => []): EmulatorBlock[] {
  return map
    .filter((e) => e.role !== 'dropped')
    .sort((a, b) => a.index! - b.index!)
    .map((e) => ({ source: e.layer, role: e.role as EmulatorBlock['role'], compressed: e.role === 'kept-compressed' ? compressed(e.layer) : [] }));
}

/** Projections of emulator block j stored as SVD factors, found from the tensor names. */
function factorisedModules(weights: WeightMap, prefix: string): string[] {
  const out: string[] = [];
  for (const name of weights.keys()) {
    if (name.startsWith(prefix) && name.endsWith(`.${SVD_UP}`)) out.push(name.slice(prefix.length, -SVD_UP.length - 1));
  }
  return out.sort();
}

function isHarmonizerBlock(weights: WeightMap, prefix: string): boolean {
  return weights.has(harmonizerName(prefix, 'down'));
}

/**
 * The forward hooks that make a family's forward pass run an emulator (harmonizer blocks,
 * factorised projections), wrapped around the caller's hooks.
 */
export function emulatorHooks(spec: ModelSpec, weights: WeightMap, caller: ForwardHooks | undefined, g0: Graph): ForwardHooks {
  const cache = new Map<string, Value>();
  // Weights only the emulator reads (harmonizers, SVD factors), declared once in the top graph.
  const param = (name: string): Value => {
    let v = cache.get(name);
    if (v) return v;
    const w = weights.get(name);
    if (!w) throw new Error(`The emulator has no weight "${name}".`);
    v = caller?.param?.(name, w.shape, g0) ?? g0.initializer(name, w.data, w.shape);
    cache.set(name, v);
    return v;
  };
  const harmonizerAt = new Map<number, boolean>();
  const hooks: ForwardHooks = {
    ...(caller?.param ? { param: caller.param } : {}),
    ...(caller?.stopAfterLayer !== undefined ? { stopAfterLayer: caller.stopAfterLayer } : {}),
    linear: (name, x, base, g) => {
      const own = weights.has(`${name}.${SVD_UP}`)
        ? (y: Value): Value => {
            const bias = weights.has(`${name}.bias`) ? param(`${name}.bias`) : undefined;
            return linear(g, linear(g, y, param(`${name}.${SVD_DOWN}`)), param(`${name}.${SVD_UP}`), bias);
          }
        : base;
      return caller?.linear ? caller.linear(name, x, own, g) : own(x);
    },
    block: (i, h, run, g) => {
      const prefix = blockPrefix(spec, i);
      let harm = harmonizerAt.get(i);
      if (harm === undefined) harmonizerAt.set(i, (harm = isHarmonizerBlock(weights, prefix)));
      const inner = harm
        ? (x: Value): Value => harmonizerForward(g, x, { norm: param(harmonizerName(prefix, 'norm')), down: param(harmonizerName(prefix, 'down')), up: param(harmonizerName(prefix, 'up')) })
        : run;
      return caller?.block ? caller.block(i, h, inner, g) : inner(h);
    },
  };
  return hooks;
}

/** A model family whose forward pass runs the emulator stored in `weights` (see the file header). */
export function emulatorFamily(base: ModelFamily, weights: WeightMap): ModelFamily {
  return {
    name: base.name,
    weightShapes: () => new Map([...weights].map(([n, w]) => [n, [...w.shape]])),
    forward: (g, spec, w, inputs, hooks) => base.forward(g, spec, w, inputs, emulatorHooks(spec, w, hooks, g)),
  };
}

/** What loadEmulator returns: a LoadedModel (so tuning and evaluation run it as is) plus the package's facts. */
export interface LoadedEmulator extends LoadedModel {
  emulator: {
    dir: string;
    manifest: EmulatorManifest;
    manifestSha256: string;
    blocks: EmulatorBlock[];
    /** Emulator block indices of the adapter layers (bottom, then top). */
    adapterBlocks: number[];
    /** Emulator block index → original layer index. */
    originalLayer(block: number): number;
  };
}

function expectedBlockShapes(spec: ModelSpec, family: ModelFamily, j: number): Map<string, number[]> {
  // The family's own names for block j of a model with spec.layers blocks.
  const prefix = blockPrefix(spec, j);
  const all = family.weightShapes(spec);
  return new Map([...all].filter(([n]) => n.startsWith(prefix)));
}

/**
 * Loads an emulator package the app has verified (formats/package.ts verifyPackage) into host
 * memory. Checks that config, tensors and the manifest's layer map agree (names and shapes);
 * throws a FormatError sentence naming the tensor or field otherwise.
 */
export async function loadEmulator(dir: string): Promise<LoadedEmulator> {
  const { manifest, manifestSha256 } = await readPackageManifest(dir);
  if (manifest.kind !== 'emulator') throw new FormatError('emulator.kind', `${dir} is an ${manifest.kind} package, not an emulator package.`, dir);
  if (!manifest.model.config) throw new FormatError('emulator.config', `${dir}: the manifest names no config.json for the emulator model.`, dir);
  if (manifest.model.weights.length === 0) throw new FormatError('emulator.weights', `${dir}: the manifest names no weight files for the emulator model.`, dir);
  const { config } = await readHfConfig(join(dir, manifest.model.config));
  const spec = specFromConfig(config);
  const base = familyOf(spec);
  const blocks = blocksOfLayerMap(manifest.layerMap);
  if (blocks.length !== spec.layers) {
    throw new FormatError('emulator.layers', `${dir}: config.json has ${spec.layers} blocks, but the manifest's layer map places ${blocks.length}.`, dir);
  }
  const weights: WeightMap = new Map();
  for (const file of manifest.model.weights) {
    const st = await readSafetensors(join(dir, file));
    for (const [name, t] of st.tensors) {
      if (weights.has(name)) throw new FormatError('emulator.duplicate-tensor', `${dir}: tensor ${name} appears in more than one weight file.`, dir);
      weights.set(name, { shape: [...t.shape], data: toFloat32(t) });
    }
  }
  const want = (name: string, shape: readonly number[]) => {
    const w = weights.get(name);
    if (!w) throw new FormatError('emulator.missing-tensor', `${dir}: the emulator has no tensor ${name}, which its layer map and config imply.`, dir);
    if (w.shape.join(',') !== shape.join(',')) throw new FormatError('emulator.tensor-shape', `${dir}: tensor ${name} has shape [${w.shape.join(', ')}], expected [${shape.join(', ')}].`, dir);
  };
  const expected = new Set<string>();
  for (const [n, shape] of base.weightShapes(spec)) {
    if (splitBlockName(n)) continue;
    want(n, shape);
    expected.add(n);
  }
  blocks.forEach((b, j) => {
    const prefix = blockPrefix(spec, j);
    if (b.role === 'harmonizer') {
      const down = weights.get(harmonizerName(prefix, 'down'));
      if (!down || down.shape.length !== 2) throw new FormatError('emulator.missing-tensor', `${dir}: emulator block ${j} (original layer ${b.source}) is a harmonizer, but ${harmonizerName(prefix, 'down')} is missing or not 2-D.`, dir);
      const [hidden, d] = down.shape as [number, number];
      if (d !== spec.hiddenSize) throw new FormatError('emulator.tensor-shape', `${dir}: ${harmonizerName(prefix, 'down')} has input width ${d}, the model's hidden size is ${spec.hiddenSize}.`, dir);
      want(harmonizerName(prefix, 'norm'), [d]);
      want(harmonizerName(prefix, 'up'), [d, hidden]);
      for (const p of HARMONIZER_PARTS) expected.add(harmonizerName(prefix, p));
      return;
    }
    const factored = factorisedModules(weights, prefix);
    if (b.role === 'kept-compressed' && factored.length === 0) throw new FormatError('emulator.layer-map', `${dir}: original layer ${b.source} is kept-compressed, but emulator block ${j} has no SVD factors.`, dir);
    if (b.role !== 'kept-compressed' && factored.length > 0) throw new FormatError('emulator.layer-map', `${dir}: emulator block ${j} has SVD factors, but the layer map says original layer ${b.source} is ${b.role}.`, dir);
    b.compressed = factored;
    for (const [n, shape] of expectedBlockShapes(spec, base, j)) {
      const module = n.slice(prefix.length).replace(/\.weight$/, '');
      if (factored.includes(module) && n.endsWith('.weight')) {
        const up = weights.get(`${prefix}${module}.${SVD_UP}`);
        const r = up?.shape[1] ?? 0;
        want(`${prefix}${module}.${SVD_UP}`, [shape[0]!, r]);
        want(`${prefix}${module}.${SVD_DOWN}`, [r, shape[1]!]);
        expected.add(`${prefix}${module}.${SVD_UP}`).add(`${prefix}${module}.${SVD_DOWN}`);
      } else {
        want(n, shape);
        expected.add(n);
      }
    }
  });
  const extra = [...weights.keys()].filter((n) => !expected.has(n));
  if (extra.length) throw new FormatError('emulator.extra-tensor', `${dir}: the emulator holds tensor ${extra[0]}, which its layer map and config do not account for${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}.`, dir);
  const tokenizer = manifest.model.tokenizer ? await loadTokenizer(join(dir, manifest.model.tokenizer), { bosId: spec.bosId, eosId: spec.eosIds.length ? spec.eosIds : null }) : null;
  const b = manifest.triplet.adapterLayers[0];
  const t = manifest.triplet.adapterLayers[1];
  const adapterBlocks = [...Array.from({ length: b }, (_, k) => k), ...Array.from({ length: t }, (_, k) => blocks.length - t + k)];
  return {
    source: { kind: 'hf', path: dir },
    config,
    spec,
    family: emulatorFamily(base, weights),
    weights,
    tokenizer,
    emulator: {
      dir,
      manifest,
      manifestSha256,
      blocks,
      adapterBlocks,
      originalLayer(block: number): number {
        const bl = blocks[block];
        if (!bl) throw new RangeError(`The emulator has blocks 0..${blocks.length - 1}, not ${block}.`);
        return bl.source;
      },
    },
  };
}

/** The source config with its block count set to `blocks` (validated by the strict parser). */
export function emulatorConfig(source: HfConfig, blocks: number, info: Record<string, unknown>): { raw: Record<string, unknown>; config: HfConfig } {
  const raw: Record<string, unknown> = { ...(source as unknown as Record<string, unknown>) };
  if (source.model_type === 'gpt2') raw.n_layer = blocks;
  else raw.num_hidden_layers = blocks;
  raw.offsite_emulator = info;
  return { raw, config: parseHfConfig(raw) };
}
