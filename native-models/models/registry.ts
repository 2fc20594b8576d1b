// Hugging Face model_type → model family (transformers.js style): the one place that says which
// architectures the engine builds.
import type { HfConfig } from '../formats/hf';
import { UnsupportedModelError } from './errors';
import { gpt2Family } from './gpt2/index';
import { llamaFamily } from './llama/index';
import type { ModelFamily, ModelSpec } from './spec';
import { gpt2SpecFromConfig } from './gpt2/spec';
import { llamaSpecFromConfig } from './llama/spec';

const REGISTRY: Record<string, { family: ModelFamily; spec: (c: HfConfig) => ModelSpec }> = {
  llama: { family: llamaFamily as ModelFamily, spec: (c) => llamaSpecFromConfig(c as Extract<HfConfig, { model_type: 'llama' }>) },
  mistral: { family: llamaFamily as ModelFamily, spec: (c) => llamaSpecFromConfig(c as Extract<HfConfig, { model_type: 'mistral' }>) },
  qwen2: { family: llamaFamily as ModelFamily, spec: (c) => llamaSpecFromConfig(c as Extract<HfConfig, { model_type: 'qwen2' }>) },
  gpt2: { family: gpt2Family as ModelFamily, spec: (c) => gpt2SpecFromConfig(c as Extract<HfConfig, { model_type: 'gpt2' }>) },
};

/** The model_type values the engine builds. */
export const MODEL_TYPES: readonly string[] = Object.freeze(Object.keys(REGISTRY));

function entry(modelType: string) {
  const e = Object.prototype.hasOwnProperty.call(REGISTRY, modelType) ? REGISTRY[modelType] : undefined;
  if (!e) throw new UnsupportedModelError(`model_type "${modelType}" is not supported; supported model types are ${MODEL_TYPES.join(', ')}.`);
  return e;
}

/** The family that builds `modelType`; throws a sentence listing the supported types otherwise. */
export function familyFor(modelType: string): ModelFamily {
  return entry(modelType).family;
}

export function familyOf(spec: ModelSpec): ModelFamily {
  return familyFor(spec.modelType);
}

/** The model spec of a validated config (unsupported options are refused with a sentence). */
export function specFromConfig(config: HfConfig): ModelSpec {
  return entry(config.model_type).spec(config);
}
