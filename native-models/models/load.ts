// Loads a model for the engine: a Hugging Face folder (config.json + safetensors, optional
// tokenizer.json) or a llama2.c checkpoint file. Weights end up in host memory as float32 under
// their Hugging Face names; llama2.c q/k rows are permuted to half-split RoPE by formats/llama2c.
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { toFloat32 } from '../formats/dtypes';
import { openHfModel, type HfConfig } from '../formats/hf';
import { llama2cToHfTensors, readLlama2c } from '../formats/llama2c';
import { quoteName } from '../formats/safetensors';
import { loadTokenizer, type LoadedTokenizer } from '../formats/tokenizer';
import { UnsupportedModelError } from './errors';
import { familyOf, specFromConfig } from './registry';
import type { ModelFamily, ModelSpec, WeightMap } from './spec';

export interface LoadedModel {
  source: { kind: 'hf' | 'llama2c'; path: string };
  config: HfConfig;
  spec: ModelSpec;
  family: ModelFamily;
  weights: WeightMap;
  /** The folder's tokenizer.json, when it has one (llama2.c checkpoints come without). */
  tokenizer: LoadedTokenizer | null;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Older GPT-2 checkpoints (e.g. openai-community/gpt2) store the body without "transformer.". */
function candidates(spec: ModelSpec, name: string): string[] {
  if (spec.family === 'gpt2' && name.startsWith('transformer.')) return [name, name.slice('transformer.'.length)];
  return [name];
}

export async function loadModel(path: string): Promise<LoadedModel> {
  const st = await stat(path);
  if (st.isFile()) {
    const ck = await readLlama2c(path);
    const config = ck.hfConfig;
    const spec = specFromConfig(config);
    const family = familyOf(spec);
    const tensors = llama2cToHfTensors(ck);
    const weights: WeightMap = new Map();
    for (const [name, shape] of family.weightShapes(spec)) {
      const t = tensors.get(name);
      if (!t) throw new UnsupportedModelError(`${basename(path)}: the converted checkpoint lacks ${name}.`);
      weights.set(name, { shape, data: toFloat32(t) });
    }
    return { source: { kind: 'llama2c', path }, config, spec, family, weights, tokenizer: null };
  }
  const hf = await openHfModel(path);
  try {
    const spec = specFromConfig(hf.config);
    const family = familyOf(spec);
    const weights: WeightMap = new Map();
    const file = basename(hf.weightsLocation.path);
    for (const [name, shape] of family.weightShapes(spec)) {
      const stored = candidates(spec, name).find((n) => hf.weights.has(n));
      if (stored === undefined) {
        throw new UnsupportedModelError(`${file} has no tensor ${quoteName(name)}, which a ${spec.modelType} model with this config.json needs.`);
      }
      const info = hf.weights.info(stored);
      if (!sameShape(info.shape, shape)) {
        throw new UnsupportedModelError(`${file}: tensor ${quoteName(stored)} has shape [${info.shape.join(', ')}], but config.json implies [${shape.join(', ')}].`);
      }
      weights.set(name, { shape, data: await hf.weights.readFloat32(stored) });
    }
    const tokenizer = hf.tokenizerPath
      ? await loadTokenizer(hf.tokenizerPath, { bosId: spec.bosId, eosId: spec.eosIds.length ? spec.eosIds : null })
      : null;
    return { source: { kind: 'hf', path }, config: hf.config, spec, family, weights, tokenizer };
  } finally {
    await hf.weights.close();
  }
}
