// Autoregressive generation: prefill the prompt once, then one token per step through the
// key/value cache; or, for comparison and as a fallback, recompute the whole prefix every step.
// Token choice happens host-side (sampling.ts) with a seeded PRNG; greedy decoding with a cache
// picks its tokens inside the graph, several per run.
import type { ModelRunner } from '../models/runner';
import { checkSampling, Rng, sampleToken } from './sampling';
import { contextOf } from '../models/spec';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy (default). */
  temperature?: number;
  /** Nucleus sampling mass (default 1: no truncation). */
  topP?: number;
  seed?: number;
  /** Use the key/value cache (default true). */
  useCache?: boolean;
  /** Stop after an end-of-sequence token (default: the model's EOS ids). Empty: never stop early. */
  stopTokens?: number[];
  onToken?: (token: number, index: number) => void;
  signal?: AbortSignal;
}

export interface GenerateResult {
  prompt: number[];
  /** The generated tokens (the stop token included when one ended the run). */
  tokens: number[];
  finish: 'stop' | 'length';
  useCache: boolean;
  /**
   * Time of the prompt pass (prefill, or the first full pass without a cache; when greedy decoding
   * in the graph takes a one-token prompt without a pass of its own, the first token's share of
   * that run).
   */
  prefillMs: number;
  /** Mean time per generated token after the first (decode steps), in milliseconds. */
  msPerToken: number;
  /** Wall time of all steps (prompt pass, decode steps and token choice), in milliseconds. */
  totalMs: number;
}

export async function generate(runner: ModelRunner, prompt: number[], opts: GenerateOptions): Promise<GenerateResult> {
  const spec = runner.model.spec;
  const temperature = opts.temperature ?? 0;
  const topP = opts.topP ?? 1;
  checkSampling({ temperature, topP });
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1) throw new Error(`The number of new tokens must be a whole number ≥ 1, not ${opts.maxNewTokens}.`);
  if (prompt.length === 0) throw new Error('The prompt is empty; give at least one token (e.g. the BOS token).');
  const bad = prompt.find((t) => !Number.isInteger(t) || t < 0 || t >= spec.vocabSize);
  if (bad !== undefined) throw new Error(`Prompt token ${bad} is outside the model's vocabulary (0..${spec.vocabSize - 1}).`);
  const limit = contextOf(spec);
  if (prompt.length + opts.maxNewTokens > limit) {
    throw new Error(`The prompt (${prompt.length} tokens) plus ${opts.maxNewTokens} new tokens exceed the model's context of ${limit} positions.`);
  }
  const useCache = opts.useCache ?? true;
  const stop = new Set(opts.stopTokens ?? spec.eosIds);
  const rng = new Rng(opts.seed ?? 0);
  const sampling = { temperature, topP };
  // Greedy with a cache: after the prompt pass the tokens are picked inside onnxruntime, many per
  // run (ModelRunner.greedySteps), the same tokens as one step at a time without the round trips.
  await runner.prepareGeneration(useCache, useCache && temperature === 0);
  const inGraph = useCache && temperature === 0 && runner.canDecodeGreedily;
  const seq = [...prompt];
  const out: number[] = [];
  let cache = runner.emptyCache(1);
  let finish: GenerateResult['finish'] = 'length';
  let prefillMs = 0;
  let decodeMs = 0;
  // Tokens per greedy run: each run aims at CHUNK_MS, so tokens still reach onToken and an abort
  // still lands within a fraction of a second on large models. The first run's size comes from a
  // deliberately slow estimate of the model's speed; later ones from the runs measured.
  let chunk = firstChunk(runner);
  const take = (next: number): boolean => {
    seq.push(next);
    out.push(next);
    opts.onToken?.(next, out.length - 1);
    if (stop.has(next)) finish = 'stop';
    return finish === 'stop';
  };
  while (out.length < opts.maxNewTokens) {
    opts.signal?.throwIfAborted();
    const t0 = performance.now();
    // The loop also starts from an empty cache, so a one-token prompt (e.g. BOS alone) needs no
    // prompt pass of its own: one session.run fewer.
    if (inGraph && seq.length - cache.length === 1) {
      const n = Math.min(chunk, opts.maxNewTokens - out.length);
      const res = await runner.greedySteps([seq.slice(cache.length)], cache, n, [...stop]);
      cache = res.cache;
      const dt = performance.now() - t0;
      const picked = res.tokens[0]!;
      // Without a separate prompt pass, the first token's share of this run stands for it.
      const first = out.length === 0 ? dt / picked.length : 0;
      prefillMs += first;
      decodeMs += dt - first;
      chunk = Math.max(1, Math.min(MAX_CHUNK, Math.floor(CHUNK_MS / (dt / picked.length))));
      if (picked.some(take)) break;
      continue;
    }
    // With a cache only the tokens it has not seen go in; without one, the whole prefix every time.
    let logits: Float32Array;
    if (useCache) {
      const res = await runner.cacheStep([seq.slice(cache.length)], cache);
      cache = res.cache;
      logits = res.logits[0]!;
    } else {
      logits = (await runner.nextTokenLogits([seq]))[0]!;
    }
    const next = sampleToken(logits, sampling, rng);
    const dt = performance.now() - t0;
    if (out.length === 0) prefillMs = dt;
    else decodeMs += dt;
    if (take(next)) break;
  }
  return { prompt: [...prompt], tokens: out, finish, useCache, prefillMs, msPerToken: out.length > 1 ? decodeMs / (out.length - 1) : prefillMs, totalMs: prefillMs + decodeMs };
}

/** The most greedy tokens picked in one in-graph run. */
const MAX_CHUNK = 256;
/**
 * A floor for a CPU's speed on one generated token, in FLOP/s: 2 FLOPs per weight (a small
 * model's token is dominated by fixed costs, covered by the per-token floor below).
 */
const SLOW_FLOPS = 1e9;
const TOKEN_FLOOR_MS = 0.5;

/** Tokens for the first in-graph run: what a slow machine generates in CHUNK_MS, at least 1. */
function firstChunk(runner: ModelRunner): number {
  let weights = 0;
  for (const w of runner.model.weights.values()) weights += w.data.length;
  const msPerToken = Math.max(TOKEN_FLOOR_MS, (2 * weights * 1000) / SLOW_FLOPS);
  return Math.max(1, Math.min(MAX_CHUNK, Math.floor(CHUNK_MS / msPerToken)));
}
/** Wall time one later in-graph run aims at. */
const CHUNK_MS = 100;
