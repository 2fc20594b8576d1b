export { gradients, customGradient, unbroadcast, type GradientOptions, type CustomGradient } from './gradients';
export { registeredOps } from './register';
export type { GradRule, GradContext, InputGrads } from './rule';
