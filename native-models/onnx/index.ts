export * from './dtype';
export * from './shape';
export * from './graph';
export * from './serialize';
