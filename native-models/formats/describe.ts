// `offsite inspect`: what is this file or folder? Each kind is one detector (a cheap `matches`
// test plus a strict `describe`), tried in order; adding a kind (emulator or adapter packages) is
// one more entry in `detectors`. Every describe validates fully, so a malformed input fails here
// with a FormatError naming the rule.
import { readdir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, join } from 'node:path';
import { DTYPE_SIZES, type Dtype } from './dtypes';
import { FormatError, shortName } from './errors';
import { findHfWeights, modelDims, openWeights, readHfConfig } from './hf';
import { llama2cParameterCount, llama2cToHfConfig, readLlama2cHeader } from './llama2c';
import { ADAPTER_CONFIG, readPeftAdapter } from './peft';
import { SafetensorsFile, type TensorInfo, type TensorSource } from './safetensors';
import { INDEX_FILE, ShardedSafetensors } from './sharded';
import { loadTokenizer } from './tokenizer';
import { packageDetector } from './package-describe';
import { fullAdapterDetector } from './full-adapter';

/** A JSON-ready description; `kind` says which detector produced it. */
export interface Description {
  kind: string;
  path: string;
  [field: string]: unknown;
}

export interface Detector {
  kind: string;
  /** Cheap test (names, stat): does PATH claim to be this kind? Never parses contents. */
  matches(path: string, st: Stats, entries: string[] | null): boolean;
  /** Full strict validation and the description. */
  describe(path: string): Promise<Description>;
  /** Human summary lines. */
  format(d: Description): string[];
}

const PICKLE_FILE = /\.(pt|pth|ckpt|pkl|pickle)$/i;

function dtypeCounts(infos: TensorInfo[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const t of infos) counts[t.dtype] = (counts[t.dtype] ?? 0) + t.numel;
  return counts;
}

/** The dtype holding most parameters (the model's storage precision). */
function mainDtype(counts: Record<string, number>): string | null {
  let best: string | null = null;
  for (const [d, n] of Object.entries(counts)) if (best === null || n > counts[best]!) best = d;
  return best;
}

function tensorSummary(src: TensorSource): { infos: TensorInfo[]; parameterCount: number; bytes: number; dtypes: Record<string, number> } {
  const infos = src.names().map((n) => src.info(n));
  return { infos, parameterCount: infos.reduce((s, t) => s + t.numel, 0), bytes: infos.reduce((s, t) => s + t.byteLength, 0), dtypes: dtypeCounts(infos) };
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

const dtypeLine = (d: Record<string, number>): string => Object.entries(d).map(([k, v]) => `${k} ${formatCount(v)}`).join(', ');

function modelLines(d: Description): string[] {
  const m = d as Description & Record<string, number | string | boolean | null | Record<string, unknown>>;
  const tok = m.tokenizer as { present: boolean; vocabSize?: number } | undefined;
  return [
    `${m.architecture} (model_type ${m.modelType})`,
    `layers ${m.layers}, hidden ${m.hiddenSize}, heads ${m.heads} (kv ${m.kvHeads}, head dim ${m.headDim}), intermediate ${m.intermediateSize}`,
    `vocabulary ${m.vocabSize}, context ${m.maxPositions}, ${m.tiedEmbeddings ? 'tied' : 'separate'} input/output embeddings`,
    `parameters ${formatCount(m.parameterCount as number)} (${m.parameterCount}), dtype ${m.dtype}, ${formatBytes(m.weightBytes as number)} of weights`,
    `tokenizer: ${tok?.present ? `tokenizer.json, ${tok.vocabSize} tokens` : 'none'}`,
  ];
}

export const safetensorsDetector: Detector = {
  kind: 'safetensors',
  matches: (path, st) => st.isFile() && path.toLowerCase().endsWith('.safetensors'),
  async describe(path) {
    const f = await SafetensorsFile.open(path);
    try {
      const s = tensorSummary(f);
      return {
        kind: 'safetensors',
        path,
        fileSize: 8 + f.header.headerLength + f.header.dataSize,
        headerBytes: f.header.headerLength,
        tensorCount: s.infos.length,
        parameterCount: s.parameterCount,
        dataBytes: s.bytes,
        dtypes: s.dtypes,
        metadata: f.metadata,
        tensors: s.infos.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
      };
    } finally {
      await f.close();
    }
  },
  format(d) {
    const tensors = d.tensors as { name: string; dtype: Dtype; shape: number[] }[];
    const shown = tensors.slice(0, 20).map((t) => `  ${t.name}  ${t.dtype} [${t.shape.join(', ')}]`);
    return [
      `safetensors file, ${formatBytes(d.fileSize as number)}: ${d.tensorCount} tensors, ${formatCount(d.parameterCount as number)} parameters (${dtypeLine(d.dtypes as Record<string, number>)})`,
      ...shown,
      ...(tensors.length > shown.length ? [`  … and ${tensors.length - shown.length} more (--json lists all)`] : []),
    ];
  },
};

export const shardedDetector: Detector = {
  kind: 'safetensors-sharded',
  matches: (path, st) => st.isFile() && path.toLowerCase().endsWith('.safetensors.index.json'),
  async describe(path) {
    const src = await ShardedSafetensors.open(path);
    try {
      const s = tensorSummary(src);
      return { kind: 'safetensors-sharded', path, shards: src.shardNames(), tensorCount: s.infos.length, parameterCount: s.parameterCount, dataBytes: s.bytes, dtypes: s.dtypes };
    } finally {
      await src.close();
    }
  },
  format: (d) => [`sharded safetensors checkpoint: ${(d.shards as string[]).length} shards, ${d.tensorCount} tensors, ${formatCount(d.parameterCount as number)} parameters (${dtypeLine(d.dtypes as Record<string, number>)}), ${formatBytes(d.dataBytes as number)}`],
};

export const peftDetector: Detector = {
  kind: 'peft-adapter',
  matches: (_p, st, entries) => st.isDirectory() && !!entries?.includes(ADAPTER_CONFIG),
  async describe(path) {
    const a = await readPeftAdapter(path);
    const infos = [...a.tensors.entries()].map(([name, t]) => ({ name, dtype: t.dtype, numel: t.shape.reduce((p, x) => p * x, 1) }));
    const dtypes: Record<string, number> = {};
    for (const t of infos) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + t.numel;
    const layers = [...new Set(a.modules.map((m) => m.layer).filter((l): l is number => l !== null))].sort((x, y) => x - y);
    return {
      kind: 'peft-adapter',
      path,
      peftType: a.config.peft_type,
      taskType: a.config.task_type,
      r: a.config.r,
      alpha: a.config.lora_alpha,
      dropout: a.config.lora_dropout,
      targets: a.config.target_modules,
      layersToTransform: a.config.layers_to_transform,
      adaptedLayers: layers,
      baseModel: a.config.base_model_name_or_path,
      moduleCount: a.modules.length,
      parameterCount: a.parameterCount,
      dtypes,
    };
  },
  format: (d) => [
    `PEFT ${d.peftType} adapter (${d.taskType}): r ${d.r}, alpha ${d.alpha}, dropout ${d.dropout}`,
    `targets ${(d.targets as string[]).join(', ')}; layers ${d.layersToTransform ? (d.layersToTransform as number[]).join(', ') : 'all'}; ${d.moduleCount} modules`,
    `parameters ${formatCount(d.parameterCount as number)} (${d.parameterCount}), ${dtypeLine(d.dtypes as Record<string, number>)}; base model ${d.baseModel ?? 'not named'}`,
  ],
};

export const hfDetector: Detector = {
  kind: 'hf-model',
  matches: (_p, st, entries) => st.isDirectory() && !!entries?.includes('config.json'),
  async describe(path) {
    const { config } = await readHfConfig(join(path, 'config.json'));
    const loc = await findHfWeights(path);
    const src = await openWeights(loc);
    let s;
    try {
      s = tensorSummary(src);
    } finally {
      await src.close();
    }
    const dims = modelDims(config);
    const hasTok = (await readdir(path)).includes('tokenizer.json');
    let tokenizer: Record<string, unknown> = { present: false };
    if (hasTok) {
      const t = await loadTokenizer(path, { bosId: config.bos_token_id, eosId: config.eos_token_id });
      tokenizer = { present: true, vocabSize: t.vocabSize, bosId: t.bosId, eosId: t.eosId };
    }
    return {
      kind: 'hf-model',
      path,
      modelType: config.model_type,
      architecture: config.architectures[0] ?? config.model_type,
      layers: dims.layers,
      hiddenSize: dims.hiddenSize,
      heads: dims.heads,
      kvHeads: dims.kvHeads,
      headDim: dims.headDim,
      intermediateSize: dims.intermediateSize,
      vocabSize: dims.vocabSize,
      maxPositions: dims.maxPositions,
      tiedEmbeddings: dims.tiedEmbeddings,
      parameterCount: s.parameterCount,
      dtype: mainDtype(s.dtypes) ?? config.torch_dtype,
      dtypes: s.dtypes,
      weights: { kind: loc.kind, file: basename(loc.path) },
      weightBytes: s.bytes,
      tokenizer,
    };
  },
  format: modelLines,
};

export const llama2cDetector: Detector = {
  kind: 'llama2c',
  matches: (path, st) => st.isFile() && path.toLowerCase().endsWith('.bin'),
  async describe(path) {
    const { config: c, fileSize } = await readLlama2cHeader(path);
    const hf = llama2cToHfConfig(c);
    const dims = modelDims(hf);
    const parameterCount = llama2cParameterCount(c);
    return {
      kind: 'llama2c',
      path,
      modelType: 'llama',
      architecture: 'llama2.c checkpoint (legacy version 0, float32)',
      ...dims,
      tiedEmbeddings: c.sharedClassifier,
      sharedClassifier: c.sharedClassifier,
      parameterCount,
      dtype: 'F32' satisfies Dtype,
      weightBytes: parameterCount * DTYPE_SIZES.F32,
      fileSize,
      tokenizer: { present: false },
    };
  },
  format: modelLines,
};

/** Pickle files are recognised only to be refused with advice. */
export const pickleDetector: Detector = {
  kind: 'pickle',
  matches: (path, st) => st.isFile() && PICKLE_FILE.test(path),
  async describe(path) {
    throw new FormatError(
      'pickle.refused',
      `${shortName(path)} is a PyTorch pickle file, which can run arbitrary code when loaded, so it is refused; convert it to safetensors on a machine with PyTorch: python -c "import torch; from safetensors.torch import save_file; save_file({k: v.clone().contiguous() for k, v in torch.load('${shortName(path)}', map_location='cpu', weights_only=True).items()}, 'model.safetensors')"`,
      path,
    );
  },
  format: () => [],
};

/** Tried in order; the first whose `matches` holds describes the path. Folders with several marker files go to the most specific kind first. */
export const detectors: Detector[] = [packageDetector, peftDetector, fullAdapterDetector, hfDetector, shardedDetector, safetensorsDetector, llama2cDetector, pickleDetector];

/** Describes PATH with the first matching detector, or says which kinds it could have been. */
export async function describePath(path: string): Promise<{ description: Description; text: string }> {
  const st = await stat(path);
  const entries = st.isDirectory() ? await readdir(path) : null;
  const detector = detectors.find((d) => d.matches(path, st, entries));
  if (!detector) {
    const kinds = st.isDirectory()
      ? `a Hugging Face model folder (config.json), a PEFT adapter folder (${ADAPTER_CONFIG}) or an emulator or adapter package (manifest.json)`
      : 'a .safetensors file, a model.safetensors.index.json, or a llama2.c .bin checkpoint';
    throw new FormatError('inspect.unknown-kind', `${shortName(path)} is not a kind offsite can inspect; expected ${kinds}.`, path);
  }
  const description = await detector.describe(path);
  return { description, text: detector.format(description).join('\n') };
}

export { INDEX_FILE };
