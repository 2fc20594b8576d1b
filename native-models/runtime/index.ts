export * from './providers';
export * from './session';
export * from './tensors';
export * from './jobs';
export type { JobContext } from './job-worker';
