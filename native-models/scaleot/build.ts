// Building an emulator package from a full model (the model owner's side of offsite-tuning):
// load model and distillation text → ScaleOT Dynamic LayerReplace (or uniform LayerDrop, with
// optional KD) → assembly with Selective Rank Compression → Emu ZS / Full ZS reference perplexity
// on the held-out part of the distillation text → signed package (formats/package.ts).
import { copyFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { loadExamples } from '../data/summary';
import { splitValidation } from '../data/split';
import { padIdOf, type Example } from '../data/tokenize';
import { writeSafetensors } from '../formats/safetensors';
import { writeFileAtomic } from '../formats/atomic';
import { writePackage, type EmulatorManifestInput, type LayerMapEntry, type PackageSigningKey } from '../formats/package';
import { perplexity } from '../eval/perplexity';
import { loadModel, type LoadedModel } from '../models/load';
import { familyOf, specFromConfig } from '../models/registry';
import { parseHfConfig } from '../formats/hf';
import { ModelRunner } from '../models/runner';
import type { WeightMap } from '../models/spec';
import type { SessionSettings } from '../runtime/session';
import { assembleEmulator, type SrcReport } from './assemble';
import { modelDigest } from './digest';
import { emulatorFamily } from './emulator';
import { harmonizerHidden, type HarmonizerPart } from './harmonizer';
import { KD_DEFAULTS } from './kd';
import { distilKeptLayers, uniformKeptLayers } from './layer-drop';
import { runLayerReplace, type LayerReplaceProgress } from './layer-replace';
import { groupsOf, replacedPerGroup, splitLayers } from './plan';
import { DEFAULT_RANK_RATIO, SRC_PROJECTIONS, type SrcProjection } from './src';

export type BuildMethod = 'scaleot' | 'uniform';

export interface BuildOptions {
  /** Hugging Face model folder or llama2.c .bin. */
  model: string;
  /** The package folder to write (must not exist, or be empty, unless overwrite). */
  out: string;
  /** The model owner's distillation text (JSONL/CSV, any LM or instruction format). */
  distillData: string;
  method: BuildMethod;
  /** [bottom, top] adapter layers (default 2, 2). */
  adapterLayers: [number, number];
  /** α: fraction of each group replaced by harmonizers (uniform: fraction of the middle dropped). */
  alpha: number;
  /** β: SRC rank ratio; 1 = off. */
  beta: number;
  srcProjections: SrcProjection[];
  groupSize: number;
  steps: number;
  interval: number;
  candidates: number;
  scoreLr: number;
  /** Harmonizer width; null = max(8, d/16). */
  hidden: number | null;
  lr: number;
  batchSize: number;
  /** null = min(256, the model's context). */
  seqLen: number | null;
  seed: number;
  /** Held-out fraction of the distillation text for the reference perplexity. */
  validationFraction: number;
  /** Distil with KD to the full model (off by default: slower). */
  kd: boolean;
  lmWeight: number;
  kdWeight: number;
  signingKey: string | PackageSigningKey | null;
  producer: { app: string; version: string };
  /** SHA-256 of the source model as the audit log hashes it; computed when absent. */
  sourceSha256?: string;
  provider?: 'auto' | 'cpu' | 'cuda';
  threads?: number | null;
  overwrite?: boolean;
}

export const BUILD_DEFAULTS = {
  method: 'scaleot' as BuildMethod,
  adapterLayers: [2, 2] as [number, number],
  alpha: 0.5,
  beta: DEFAULT_RANK_RATIO,
  srcProjections: [...SRC_PROJECTIONS] as SrcProjection[],
  groupSize: 4,
  steps: 200,
  interval: 10,
  candidates: 3,
  scoreLr: 10,
  hidden: null as number | null,
  lr: 2e-3,
  batchSize: 8,
  seqLen: null as number | null,
  seed: 0,
  validationFraction: 0.1,
  kd: false,
  lmWeight: KD_DEFAULTS.lmWeight,
  kdWeight: KD_DEFAULTS.kdWeight,
};

export type BuildProgress =
  | { kind: 'status'; message: string }
  | { kind: 'started'; method: BuildMethod; layers: number; middle: number[]; groups: number[][]; steps: number; provider: string }
  | LayerReplaceProgress
  | { kind: 'src'; done: number; total: number }
  | { kind: 'evaluated'; what: 'emuZS' | 'fullZS'; ppl: number; tokens: number };

export interface BuildResult {
  out: string;
  manifestSha256: string;
  signerKeyId: string | null;
  method: BuildMethod;
  sourceSha256: string;
  layerMap: LayerMapEntry[];
  /** Replaceability per middle layer (ScaleOT), by original index. */
  scores: Record<number, number>;
  replaced: number[];
  dropped: number[];
  emuZsPpl: number;
  fullZsPpl: number;
  src: SrcReport | null;
  losses: number[];
  parameterCount: number;
  sourceParameterCount: number;
}

export function checkBuildOptions(o: BuildOptions): void {
  const whole = (label: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${label} must be a whole number ≥ ${min}, not ${v}.`);
  };
  if (o.method !== 'scaleot' && o.method !== 'uniform') throw new RangeError(`The method must be scaleot or uniform, not "${String(o.method)}".`);
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw new RangeError(`The replace ratio α must be between 0 and 1, not ${o.alpha}.`);
  if (!(o.beta > 0 && o.beta <= 1)) throw new RangeError(`The rank ratio β must be above 0 and at most 1, not ${o.beta}.`);
  for (const p of o.srcProjections) if (!SRC_PROJECTIONS.includes(p)) throw new RangeError(`SRC projections are ${SRC_PROJECTIONS.join(', ')}; "${p}" is not one of them.`);
  whole('The group size', o.groupSize, 1);
  whole('The number of steps', o.steps, 0);
  whole('The importance interval', o.interval, 1);
  whole('The number of candidate sets', o.candidates, 2);
  if (!(o.scoreLr > 0)) throw new RangeError(`The score learning rate must be > 0, not ${o.scoreLr}.`);
  if (o.hidden !== null) whole('The harmonizer width', o.hidden, 1);
  if (!(o.lr > 0)) throw new RangeError(`The learning rate must be > 0, not ${o.lr}.`);
  whole('The batch size', o.batchSize, 1);
  if (o.seqLen !== null) whole('The sequence length', o.seqLen, 2);
  if (!Number.isSafeInteger(o.seed)) throw new RangeError(`The seed must be a whole number, not ${o.seed}.`);
  if (!(o.validationFraction >= 0 && o.validationFraction < 1)) throw new RangeError(`The validation fraction must be at least 0 and below 1, not ${o.validationFraction}.`);
  if (!(o.lmWeight >= 0 && o.kdWeight >= 0)) throw new RangeError('The LM and KD weights must be ≥ 0.');
}

export interface BuildHooks {
  progress?(p: BuildProgress): void;
  cancelled?(): boolean;
}

/** A model held in memory whose forward runs the assembled emulator. */
export function inMemoryEmulator(model: LoadedModel, weights: WeightMap, configRaw: Record<string, unknown>) {
  const config = parseHfConfig(configRaw);
  const spec = specFromConfig(config);
  return { spec, family: emulatorFamily(familyOf(spec), weights), weights };
}

async function loadDistillation(path: string, model: LoadedModel): Promise<Example[]> {
  const { examples } = await loadExamples(path, { tokenizer: model.tokenizer, lossOnPrompt: true });
  const V = model.spec.vocabSize;
  for (const ex of examples) for (const t of ex.tokens) if (t < 0 || t >= V) throw new RangeError(`${basename(path)} line ${ex.line}: token id ${t} is outside the model's vocabulary (0..${V - 1}).`);
  const usable = examples.filter((e) => e.tokens.length >= 2);
  if (usable.length === 0) throw new RangeError(`${basename(path)} has no example of two tokens or more to distil on.`);
  return usable;
}

export async function buildEmulator(o: BuildOptions, hooks: BuildHooks = {}): Promise<BuildResult> {
  checkBuildOptions(o);
  const say = (message: string) => hooks.progress?.({ kind: 'status', message });
  const out = await stat(o.out).catch(() => undefined);
  if (out && !o.overwrite) throw new RangeError(`${o.out} already exists; choose a new package folder.`);
  say(`Loading ${basename(o.model)}…`);
  const model = await loadModel(o.model);
  const sourceSha256 = o.sourceSha256 ?? (await modelDigest(o.model));
  const split = splitLayers(model.spec.layers, o.adapterLayers[0], o.adapterLayers[1]);
  const groups = groupsOf(split.middle, o.groupSize);
  const seqLen = o.seqLen ?? Math.min(256, model.spec.maxPositions);
  if (seqLen > model.spec.maxPositions) throw new RangeError(`The sequence length ${seqLen} exceeds the model's ${model.spec.maxPositions} positions.`);
  const session: SessionSettings = { provider: o.provider ?? 'auto', ...(o.threads ? { intraOpThreads: o.threads } : {}) };
  say(`Reading the distillation text ${basename(o.distillData)}…`);
  const all = await loadDistillation(o.distillData, model);
  const parts = o.validationFraction > 0 && all.length >= 2 ? splitValidation(all, { fraction: o.validationFraction, seed: o.seed }) : { train: all, validation: all };
  const padId = padIdOf(model.tokenizer);
  const hidden = harmonizerHidden(model.spec.hiddenSize, o.hidden ?? undefined);
  hooks.progress?.({ kind: 'started', method: o.method, layers: model.spec.layers, middle: split.middle, groups, steps: o.method === 'scaleot' || o.kd ? o.steps : 0, provider: session.provider ?? 'auto' });

  let replaced: number[] = [];
  let dropped: number[] = [];
  let scores: Record<number, number> = {};
  let losses: number[] = [];
  let harmonizers = new Map<number, Record<HarmonizerPart, Float32Array>>();
  let keptOverrides: Map<string, Float32Array> | undefined;
  const kd = o.kd ? { lmWeight: o.lmWeight, kdWeight: o.kdWeight } : null;
  if (o.method === 'scaleot') {
    const r = await runLayerReplace(
      model,
      split,
      parts.train,
      { alpha: o.alpha, groupSize: o.groupSize, steps: o.steps, interval: o.interval, candidates: o.candidates, scoreLr: o.scoreLr, hidden, lr: o.lr, weightDecay: 0, clip: 1.0, batchSize: o.batchSize, seqLen, padId, seed: o.seed, kd },
      hooks,
      session,
    );
    replaced = r.replaced;
    harmonizers = r.harmonizers;
    scores = Object.fromEntries(r.scores);
    losses = r.losses;
  } else {
    // Equal size to ScaleOT with the same α: the same number of middle layers leave the stack.
    const nDrop = groups.reduce((s, g) => s + replacedPerGroup(g.length, o.alpha), 0);
    const kept = uniformKeptLayers(split, split.middle.length - nDrop);
    dropped = split.middle.filter((l) => !kept.includes(l));
    if (o.kd && o.steps > 0) {
      const r = await distilKeptLayers(model, split, kept, parts.train, { ...kd!, steps: o.steps, lr: o.lr, clip: 1.0, batchSize: o.batchSize, seqLen, padId, seed: o.seed }, {
        progress: (p) => hooks.progress?.({ kind: 'step', step: p.step, steps: p.steps, loss: p.loss, replaced: [], scores: {} }),
        cancelled: hooks.cancelled,
      }, session);
      keptOverrides = r.weights;
      losses = r.losses;
    }
  }
  say('Assembling the emulator…');
  const asm = assembleEmulator({
    model,
    split,
    replaced,
    dropped,
    harmonizers,
    ...(keptOverrides ? { keptOverrides } : {}),
    src: { beta: o.beta, projections: o.srcProjections },
    onSrc: (done, total) => hooks.progress?.({ kind: 'src', done, total }),
  });

  say('Measuring reference perplexities on the held-out distillation text…');
  const docs = parts.validation.map((e) => Array.from(e.tokens));
  const evalOpts = { seqLen, batchSize: o.batchSize };
  const emuRunner = new ModelRunner(inMemoryEmulator(model, asm.weights, asm.configRaw), { contextLength: seqLen, settings: session });
  const emu = await perplexity(emuRunner, docs, evalOpts).finally(() => emuRunner.release());
  hooks.progress?.({ kind: 'evaluated', what: 'emuZS', ppl: emu.ppl, tokens: emu.tokens });
  const fullRunner = new ModelRunner(model, { contextLength: seqLen, settings: session });
  const full = await perplexity(fullRunner, docs, evalOpts).finally(() => fullRunner.release());
  hooks.progress?.({ kind: 'evaluated', what: 'fullZS', ppl: full.ppl, tokens: full.tokens });

  const adapterBlocks = [...Array.from({ length: split.bottom }, (_, k) => k), ...Array.from({ length: split.top }, (_, k) => asm.blocks.length - split.top + k)];
  const tokenizerSrc = model.source.kind === 'hf' && model.tokenizer ? join(model.source.path, 'tokenizer.json') : null;
  const tokenizerConfig = tokenizerSrc ? join(model.source.path, 'tokenizer_config.json') : null;
  const hasTokConfig = tokenizerConfig ? await stat(tokenizerConfig).then((s) => s.isFile(), () => false) : false;
  const task = `distillation validation (${basename(o.distillData)}, ${docs.length} document${docs.length === 1 ? '' : 's'}, seq ${seqLen})`;
  const manifest: EmulatorManifestInput = {
    kind: 'emulator',
    method: o.method,
    sourceModel: { sha256: sourceSha256, name: basename(o.model), modelType: model.spec.modelType, layers: model.spec.layers },
    triplet: { adapterLayers: [split.bottom, split.top], alpha: o.alpha, beta: o.beta },
    layerMap: asm.layerMap,
    model: { config: 'config.json', weights: ['model.safetensors'], tokenizer: tokenizerSrc ? 'tokenizer.json' : null },
    recommendedTuning: {
      peft: 'lora',
      layers: adapterBlocks,
      rank: 8,
      alpha: 16,
      sampler: 'ist',
      lr: 2e-4,
      seqLen,
    },
    reference: {
      emuZS: [{ task, metric: 'ppl', value: emu.ppl }],
      fullZS: [{ task, metric: 'ppl', value: full.ppl }],
    },
    notes:
      o.method === 'scaleot'
        ? `ScaleOT emulator: ${replaced.length} of ${split.middle.length} middle layers replaced by harmonizers (groups of ${o.groupSize}, ${o.steps} steps)${asm.src ? `, SRC β ${o.beta} on ${o.srcProjections.join(', ')}` : ''}. Tune the adapter blocks ${adapterBlocks.join(', ')} (emulator indices).`
        : `Uniform LayerDrop emulator: ${dropped.length} of ${split.middle.length} middle layers dropped${o.kd ? ' (kept layers distilled with KD)' : ''}${asm.src ? `, SRC β ${o.beta}` : ''}. Tune the adapter blocks ${adapterBlocks.join(', ')} (emulator indices).`,
  };
  say(`Writing the package ${basename(o.out)}…`);
  const tensors = new Map([...asm.weights].map(([n, w]) => [n, { dtype: 'F32' as const, shape: [...w.shape], data: w.data }]));
  const written = await writePackage(o.out, {
    manifest,
    producer: o.producer,
    signingKey: o.signingKey,
    overwrite: o.overwrite ?? false,
    fill: async (dir) => {
      await writeFileAtomic(join(dir, 'config.json'), new TextEncoder().encode(`${JSON.stringify(asm.configRaw, null, 2)}\n`));
      await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt', offsite: 'emulator' });
      if (tokenizerSrc) await copyFile(tokenizerSrc, join(dir, 'tokenizer.json'));
      if (hasTokConfig) await copyFile(tokenizerConfig!, join(dir, 'tokenizer_config.json'));
    },
  });
  let sourceParameterCount = 0;
  for (const w of model.weights.values()) sourceParameterCount += w.data.length;
  return {
    out: written.dir,
    manifestSha256: written.manifestSha256,
    signerKeyId: written.signerKeyId,
    method: o.method,
    sourceSha256,
    layerMap: asm.layerMap,
    scores,
    replaced,
    dropped,
    emuZsPpl: emu.ppl,
    fullZsPpl: full.ppl,
    src: asm.src,
    losses,
    parameterCount: asm.parameterCount,
    sourceParameterCount,
  };
}
