// ORT sessions over a loaded model's graphs, compiled on first use: token log-probabilities for
// evaluation; for generation the key/value-cache steps (prefill and one-token decode), greedy
// decoding of many tokens in one run, and the next-token logits of a whole prefix (no cache). The
// cache lives host-side and grows by appending the new positions each run returns.
import type * as ort from 'onnxruntime-node';
import { opsetFor } from '../nn/fused';
import { serialize } from '../onnx/serialize';
import type { Graph } from '../onnx/graph';
import { openSession, type OpenedSession, type SessionSettings } from '../runtime/session';
import { toOrt } from '../runtime/tensors';
import type { ScoreWindow, TokenScorer } from '../eval/perplexity';
import { buildCacheStepGraph, buildGreedyLoopGraph, buildNextTokenGraph, buildTokenLogProbGraph, cacheHeads, GREEDY, NEW_NAME, PAST_NAME, type BuildableModel, type GraphOptions } from './graphs';

/** Opens a session for `g` (weights of 1 MiB and more travel as in-memory external data). */
export async function openGraphSession(g: Graph, settings: SessionSettings = {}): Promise<OpenedSession> {
  const opset = opsetFor(g);
  const { model, external } = serialize(g, { externalThreshold: 1 << 20, ...(opset ? { opset } : {}) });
  return openSession({ bytes: model, externalData: external ? [external] : [] }, settings);
}

/** Host memory behind caches: position-major rows [capacity, batch, 2·layers·kvHeads, headDim]. */
export interface CacheStore {
  data: Float32Array;
  /** Positions written so far. */
  used: number;
}

/**
 * A key/value cache: its first `length` positions in a host store that grows by appending. Caches
 * stay immutable to their holders: stepping from an older cache (one whose store has grown past
 * it since) copies its positions into a fresh store instead of overwriting the newer ones.
 */
export interface KVCache {
  readonly length: number;
  /** Sequences in the cache. */
  readonly batch: number;
  readonly store: CacheStore;
}

export interface RunnerOptions extends GraphOptions {
  settings?: SessionSettings;
}

export class ModelRunner implements TokenScorer {
  private logprob?: Promise<OpenedSession>;
  private step?: Promise<OpenedSession>;
  private decode?: Promise<OpenedSession>;
  private next?: Promise<OpenedSession>;
  private greedy?: Promise<OpenedSession>;
  readonly settings: SessionSettings;
  /** Longest sequence (past + new) the sessions accept. */
  readonly contextLength: number;

  constructor(
    readonly model: BuildableModel,
    readonly options: RunnerOptions = {},
  ) {
    this.settings = options.settings ?? {};
    this.contextLength = options.contextLength ?? model.spec.maxPositions;
    // The sessions that generate many tokens (the greedy loop, and recomputing the prefix without a
    // cache) run the same shapes token after token, where onnxruntime's memory pattern (buffers
    // planned once per shape instead of asked of the arena kernel by kernel) pays: 4–8 % less per
    // token in the loop on stories260K (1 thread), no change without a cache. Both get it, so the
    // two generation modes are compared on equal settings.
    this.generationSettings = { memoryPattern: true, ...this.settings };
  }

  private readonly generationSettings: SessionSettings;

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

  private greedySession(): Promise<OpenedSession> {
    this.greedy ??= openGraphSession(buildGreedyLoopGraph(this.model, this.options), this.generationSettings);
    return this.greedy;
  }

  /** Set when the greedy loop graph cannot be built for this model and options (see canDecodeGreedily). */
  private noGreedyLoop = false;

  /**
   * Whether `greedySteps` can run: the loop needs the fused attention kernels, which expose each
   * step's new keys and values (not with `fused: false`, nor where a layer's attention falls back
   * to primitives). Known for sure after `prepareGeneration(true, true)`.
   */
  get canDecodeGreedily(): boolean {
    return (this.options.fused ?? true) && !this.noGreedyLoop;
  }

  private nextSession(): Promise<OpenedSession> {
    this.next ??= openGraphSession(buildNextTokenGraph(this.model, this.options), this.generationSettings);
    return this.next;
  }

  private checkLength(n: number): void {
    if (n > this.contextLength) throw new Error(`A sequence of ${n} positions exceeds this runner's context of ${this.contextLength}.`);
  }

  /**
   * Compiles the sessions generation will use (with a cache: prefill and decode, the decode being
   * the greedy loop when `greedy` and the model allows it; without: the next-token graph), so that
   * timing a generation measures steps, not compilation.
   */
  async prepareGeneration(useCache: boolean, greedy = false): Promise<void> {
    if (!useCache) {
      await this.nextSession();
      return;
    }
    if (greedy && this.canDecodeGreedily && !this.greedy) {
      let graph: Graph | undefined;
      try {
        graph = buildGreedyLoopGraph(this.model, this.options);
      } catch {
        // Some layer's attention is not the fused kernel: greedy decoding goes step by step.
        this.noGreedyLoop = true;
      }
      if (graph) this.greedy = openGraphSession(graph, this.settings);
    }
    await Promise.all([this.stepSession(), greedy && this.canDecodeGreedily ? this.greedySession() : this.decodeSession()]);
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
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`A cache holds a whole number ≥ 1 of sequences, not ${batch}.`);
    return { length: 0, batch, store: { data: new Float32Array(0), used: 0 } };
  }

  /** Floats per cached position (all sequences, layers, keys and values). */
  private rowSize(batch: number): number {
    return batch * cacheHeads(this.model.spec) * this.model.spec.headDim;
  }

  /** The cache as the graphs read it, [length, batch, 2·layers·kvHeads, headDim]: a view, no copy. */
  cacheTensor(cache: KVCache): ort.Tensor {
    const s = this.model.spec;
    return toOrt('float32', cache.store.data.subarray(0, cache.length * this.rowSize(cache.batch)), [cache.length, cache.batch, cacheHeads(s), s.headDim]);
  }

  /** `cache` followed by `rows` (the new positions): appended in place when `cache` is its store's newest. */
  private append(cache: KVCache, rows: Float32Array, T: number): KVCache {
    const row = this.rowSize(cache.batch);
    const need = (cache.length + T) * row;
    let store = cache.store;
    if (store.used !== cache.length || store.data.length < need) {
      // Grow geometrically (up to the context) so appending one token rarely reallocates.
      const capacity = Math.max(cache.length + T, Math.min(this.contextLength, Math.max(16, 2 * (store.data.length / row))));
      const data = new Float32Array(capacity * row);
      data.set(store.data.subarray(0, cache.length * row));
      store = { data, used: cache.length };
    }
    store.data.set(rows, cache.length * row);
    store.used = cache.length + T;
    return { length: cache.length + T, batch: cache.batch, store };
  }

  /**
   * Runs `tokens` ([batch][new], equal lengths) after `cache`; returns the last position's logits
   * per sequence and the grown cache.
   */
  async cacheStep(tokens: number[][], cache: KVCache): Promise<{ logits: Float32Array[]; cache: KVCache }> {
    const T = this.checkTokens(tokens);
    this.checkLength(cache.length + T);
    if (cache.batch !== tokens.length) throw new Error(`The cache holds ${cache.batch} sequences but ${tokens.length} were given.`);
    const { session } = await (T === 1 && cache.length > 0 ? this.decodeSession() : this.stepSession());
    const res = await session.run({ input_ids: this.ids(tokens, T), [PAST_NAME]: this.cacheTensor(cache) });
    return { logits: this.rows(res.logits!, tokens.length), cache: this.append(cache, res[NEW_NAME]!.data as Float32Array, T) };
  }

  /**
   * Greedy decoding inside one session run: from `tokens` ([batch][1], the last token of each
   * sequence, not yet in `cache`, which may be empty: the prompt's only token) picks up to `maxSteps`
   * tokens by argmax, stopping after the step in which any sequence picks one of `stopIds`. Returns
   * the picked tokens per sequence and the cache grown by the positions read (`tokens` and every
   * picked token but the last). Same tokens as `cacheStep` + argmax, without a host round trip per
   * token.
   */
  async greedySteps(tokens: number[][], cache: KVCache, maxSteps: number, stopIds: readonly number[] = []): Promise<{ tokens: number[][]; cache: KVCache }> {
    if (!this.canDecodeGreedily) throw new Error('Greedy decoding in one run needs the fused inference kernels; this runner was opened with fused: false.');
    if (this.checkTokens(tokens) !== 1) throw new Error('Greedy decoding continues from exactly one token per sequence.');
    if (cache.batch !== tokens.length) throw new Error(`The cache holds ${cache.batch} sequences but ${tokens.length} were given.`);
    if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new Error(`The number of greedy steps must be a whole number ≥ 1, not ${maxSteps}.`);
    this.checkLength(cache.length + maxSteps);
    const { session } = await this.greedySession();
    const res = await session.run({
      input_ids: this.ids(tokens, 1),
      [PAST_NAME]: this.cacheTensor(cache),
      [GREEDY.steps]: toOrt('int64', BigInt64Array.of(BigInt(maxSteps)), []),
      [GREEDY.goingOn]: this.goesOnAfter(stopIds),
    });
    const read = res[GREEDY.tokens]!;
    const n = read.dims[0]!;
    const readIds = read.data as BigInt64Array;
    const lastIds = res[GREEDY.last]!.data as BigInt64Array;
    const B = tokens.length;
    // Step t read token t (input_ids first) and picked token t+1; the last pick is read by no step.
    const out = Array.from({ length: B }, (_, b) => Array.from({ length: n }, (_, t) => Number(t + 1 < n ? readIds[(t + 1) * B + b] : lastIds[b])));
    return { tokens: out, cache: this.append(cache, res[NEW_NAME]!.data as Float32Array, n) };
  }

  /** goes_on_after for `stopIds`: false at each stop token; one table per stop set, reused. */
  private goesOnAfter(stopIds: readonly number[]): ort.Tensor {
    const V = this.model.spec.vocabSize;
    const key = stopIds.join(',');
    if (this.goesOn?.key !== key) {
      const table = new Uint8Array(V).fill(1);
      for (const id of stopIds) {
        if (!Number.isInteger(id)) throw new Error(`A stop token must be a whole number, not ${id}.`);
        // A stop token outside the vocabulary can never be picked.
        if (id >= 0 && id < V) table[id] = 0;
      }
      this.goesOn = { key, tensor: toOrt('bool', table, [V]) };
    }
    return this.goesOn.tensor;
  }

  private goesOn?: { key: string; tensor: ort.Tensor };

  /**
   * The next token's logits after each whole sequence ([batch][seq], equal lengths), recomputed
   * from scratch: generation without a cache.
   */
  async nextTokenLogits(tokens: number[][]): Promise<Float32Array[]> {
    const T = this.checkTokens(tokens);
    this.checkLength(T);
    const { session } = await this.nextSession();
    const res = await session.run({ input_ids: this.ids(tokens, T) });
    return this.rows(res.logits!, tokens.length);
  }

  private checkTokens(tokens: number[][]): number {
    const T = tokens[0]?.length ?? 0;
    if (T === 0) throw new Error('A step needs at least one sequence with at least one token.');
    if (tokens.some((r) => r.length !== T)) throw new Error('Every sequence of a step must have the same number of tokens.');
    return T;
  }

  private ids(tokens: number[][], T: number): ort.Tensor {
    const ids = new BigInt64Array(tokens.length * T);
    tokens.forEach((row, b) => row.forEach((t, j) => (ids[b * T + j] = BigInt(t))));
    return toOrt('int64', ids, [tokens.length, T]);
  }

  /** Per-sequence views of logits [batch, vocab] (no copy: each run returns fresh memory). */
  private rows(logits: ort.Tensor, batch: number): Float32Array[] {
    const lg = logits.data as Float32Array;
    const V = this.model.spec.vocabSize;
    return Array.from({ length: batch }, (_, b) => lg.subarray(b * V, (b + 1) * V));
  }

  async release(): Promise<void> {
    for (const p of [this.logprob, this.step, this.decode, this.next, this.greedy]) {
      if (p) await (await p).session.release();
    }
    this.logprob = undefined;
    this.step = undefined;
    this.decode = undefined;
    this.next = undefined;
    this.greedy = undefined;
  }
}
