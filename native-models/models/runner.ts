// ORT sessions over a loaded model's graphs, compiled on first use: token log-probabilities for
// evaluation and the key/value-cache step for generation.
import type * as ort from 'onnxruntime-node';
import { serialize } from '../onnx/serialize';
import type { Graph } from '../onnx/graph';
import { openSession, type OpenedSession, type SessionSettings } from '../runtime/session';
import { toOrt } from '../runtime/tensors';
import type { ScoreWindow, TokenScorer } from '../eval/perplexity';
import { buildCacheStepGraph, buildTokenLogProbGraph, pastKeyName, pastValueName, presentKeyName, presentValueName, type BuildableModel, type GraphOptions } from './graphs';

/** Opens a session for `g` (weights of 1 MiB and more travel as in-memory external data). */
export async function openGraphSession(g: Graph, settings: SessionSettings = {}): Promise<OpenedSession> {
  const { model, external } = serialize(g, { externalThreshold: 1 << 20 });
  return openSession({ bytes: model, externalData: external ? [external] : [] }, settings);
}

export interface KVCache {
  /** Per layer key and value, [batch, kvHeads, length, headDim]. */
  tensors: ort.Tensor[];
  length: number;
}

export interface RunnerOptions extends GraphOptions {
  settings?: SessionSettings;
}

export class ModelRunner implements TokenScorer {
  private logprob?: Promise<OpenedSession>;
  private step?: Promise<OpenedSession>;
  private decode?: Promise<OpenedSession>;
  readonly settings: SessionSettings;
  /** Longest sequence (past + new) the sessions accept. */
  readonly contextLength: number;

  constructor(
    readonly model: BuildableModel,
    readonly options: RunnerOptions = {},
  ) {
    this.settings = options.settings ?? {};
    this.contextLength = options.contextLength ?? model.spec.maxPositions;
  }

  private logprobSession(): Promise<OpenedSession> {
    this.logprob ??= openGraphSession(buildTokenLogProbGraph(this.model, this.options), this.settings);
    return this.logprob;
  }

  private stepSession(): Promise<OpenedSession> {
    this.step ??= openGraphSession(buildCacheStepGraph(this.model, this.options), this.settings);
    return this.step;
  }

  private decodeSession(): Promise<OpenedSession> {
    this.decode ??= openGraphSession(buildCacheStepGraph(this.model, { ...this.options, singleToken: true }), this.settings);
    return this.decode;
  }

  private checkLength(n: number): void {
    if (n > this.contextLength) throw new Error(`A sequence of ${n} positions exceeds this runner's context of ${this.contextLength}.`);
  }

  /** The execution provider the sessions run on (opens the step session if none is open yet). */
  async provider(): Promise<OpenedSession['provider']> {
    return (await (this.logprob ?? this.stepSession())).provider;
  }

  /** Log-probabilities of each window's targets; windows are right-padded to the longest one. */
  async scoreBatch(windows: ScoreWindow[]): Promise<Float32Array[]> {
    const { session } = await this.logprobSession();
    const B = windows.length;
    const T = Math.max(...windows.map((w) => w.input.length));
    this.checkLength(T);
    const ids = new BigInt64Array(B * T);
    const tgt = new BigInt64Array(B * T);
    const mask = new Float32Array(B * T);
    windows.forEach((w, b) => {
      w.input.forEach((t, j) => {
        ids[b * T + j] = BigInt(t);
        tgt[b * T + j] = BigInt(w.targets[j]!);
        mask[b * T + j] = w.scored[j]!;
      });
    });
    const res = await session.run({
      input_ids: toOrt('int64', ids, [B, T]),
      target_ids: toOrt('int64', tgt, [B, T]),
      target_mask: toOrt('float32', mask, [B, T]),
    });
    const lp = res.token_logprobs!.data as Float32Array;
    return windows.map((w, b) => lp.slice(b * T, b * T + w.input.length));
  }

  /** An empty cache for `batch` sequences. */
  emptyCache(batch = 1): KVCache {
    const s = this.model.spec;
    const tensors: ort.Tensor[] = [];
    for (let i = 0; i < 2 * s.layers; i++) tensors.push(toOrt('float32', new Float32Array(0), [batch, s.kvHeads, 0, s.headDim]));
    return { tensors, length: 0 };
  }

  /**
   * Runs `tokens` ([batch][new], equal lengths) after `cache`; returns the last position's logits
   * per sequence and the grown cache. With an empty cache and the whole prefix this is also
   * generation without a cache.
   */
  async cacheStep(tokens: number[][], cache: KVCache): Promise<{ logits: Float32Array[]; cache: KVCache }> {
    const s = this.model.spec;
    const B = tokens.length;
    const T = tokens[0]!.length;
    const { session } = await (T === 1 && cache.length > 0 ? this.decodeSession() : this.stepSession());
    if (tokens.some((r) => r.length !== T)) throw new Error('Every sequence of a cache step must have the same number of new tokens.');
    this.checkLength(cache.length + T);
    const ids = new BigInt64Array(B * T);
    tokens.forEach((row, b) => row.forEach((t, j) => (ids[b * T + j] = BigInt(t))));
    const feeds: Record<string, ort.Tensor> = { input_ids: toOrt('int64', ids, [B, T]) };
    for (let i = 0; i < s.layers; i++) {
      feeds[pastKeyName(i)] = cache.tensors[2 * i]!;
      feeds[pastValueName(i)] = cache.tensors[2 * i + 1]!;
    }
    const res = await session.run(feeds);
    const lg = res.logits!.data as Float32Array;
    const V = s.vocabSize;
    const logits = tokens.map((_, b) => lg.slice(b * V, (b + 1) * V));
    const tensors: ort.Tensor[] = [];
    for (let i = 0; i < s.layers; i++) tensors.push(res[presentKeyName(i)]!, res[presentValueName(i)]!);
    return { logits, cache: { tensors, length: cache.length + T } };
  }

  async release(): Promise<void> {
    for (const p of [this.logprob, this.step, this.decode]) {
      if (p) await (await p).session.release();
    }
    this.logprob = undefined;
    this.step = undefined;
    this.decode = undefined;
  }
}
