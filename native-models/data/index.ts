// Training and evaluation data: readers for JSONL and CSV in the four formats of CLI.md, strict
// validation with line numbers, tokenisation with loss masks, deterministic batching with a
// resumable cursor, validation splits and summaries. See README.md.
export * from './prng';
export * from './lines';
export * from './csv';
export * from './records';
export * from './read';
export * from './tokenize';
export * from './batches';
export * from './split';
export * from './summary';
