export * from './config';
export * from './checkpoint';
export * from './engine';
export * from './emulator';
