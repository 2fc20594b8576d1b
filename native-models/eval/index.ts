// Local evaluation: perplexity (rolling windows), multiple choice (acc, acc_norm) and greedy
// generation with exact match, over the data module's formats; adapters merged at load. README.md.
export * from './perplexity';
export * from './tasks';
export * from './multiple-choice';
export * from './exact-match';
export * from './adapter';
export * from './evaluate';
