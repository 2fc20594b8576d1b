export * from './sampler';
