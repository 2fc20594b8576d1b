export * from './lora';
export * from './full';
