// The LLaMA family: LLaMA 1–3, TinyLlama, Mistral, Qwen2 and llama2.c checkpoints.
import type { LlamaSpec, ModelFamily } from '../spec';
import { llamaForward } from './forward';
import { llamaWeightShapes } from './spec';

export { llamaForward } from './forward';
export { llamaSpecFromConfig, llamaWeightShapes } from './spec';

export const llamaFamily: ModelFamily<LlamaSpec> = {
  name: 'llama',
  weightShapes: llamaWeightShapes,
  forward: llamaForward,
};
