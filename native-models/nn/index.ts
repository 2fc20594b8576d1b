export { linear, conv1d, project, type Projection } from './linear';
export { rmsNorm, layerNorm } from './norm';
export { silu, geluTanh, swiGLU } from './activations';
export { rope, ropeTables, ropeConstants, ropeAt, positionIds, type RopeTables } from './rope';
export { causalSelfAttention, type AttentionOptions, type AttentionResult } from './attention';
export { crossEntropy, tokenLogProbs } from './loss';
export { useFusedKernels, fusedKernels, opsetFor, FUSED_OPSET } from './fused';
