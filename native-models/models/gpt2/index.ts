// The GPT-2 family.
import type { Gpt2Spec, ModelFamily } from '../spec';
import { gpt2Forward } from './forward';
import { gpt2WeightShapes } from './spec';

export { gpt2Forward } from './forward';
export { gpt2SpecFromConfig, gpt2WeightShapes } from './spec';

export const gpt2Family: ModelFamily<Gpt2Spec> = {
  name: 'gpt2',
  weightShapes: gpt2WeightShapes,
  forward: gpt2Forward,
};
