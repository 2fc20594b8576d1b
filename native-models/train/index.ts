export * from './schedule';
export * from './optimizers';
export * from './train-step';
export * from './eval-step';
export type { InputSpec } from './graph-parts';
