// The inference graphs every family gets from its forward builder: logits, per-token
// log-probabilities (evaluation), the next token's logits from a whole prefix (generation without
// a cache), one key/value-cache step used for prefill and decode, and greedy decoding of many
// tokens in one run (a Loop over the decode step).
//
// These graphs are never differentiated, so by default they use fused inference kernels
// (nn/fused.ts): on small models onnxruntime's fixed cost per node and per graph input/output, not
// arithmetic, bounds a generation step. For the same reason the cache travels as ONE tensor per
// step instead of a key and a value per layer, and a step returns only the positions it added.
import { useFusedKernels } from '../nn/fused';
import { tokenLogProbs } from '../nn/loss';
import { Graph, namesRead, subgraphOf, type OpNode, type Value } from '../onnx/graph';
import type { ForwardHooks, LayerKV, ModelFamily, ModelSpec, WeightMap } from './spec';

export interface BuildableModel {
  spec: ModelSpec;
  family: ModelFamily;
  weights: WeightMap;
}

export interface GraphOptions {
  hooks?: ForwardHooks;
  /** Positions the graph must support (default: the model's maximum). */
  contextLength?: number;
  /**
   * Fused inference kernels (default true). They need onnxruntime's opset-23 kernels; open such a
   * graph with `openGraphSession`, which serialises it with the opset it needs.
   */
  fused?: boolean;
}

/**
 * The cache input: past_key_values [past, batch, 2·layers·kvHeads, headDim], position-major so a
 * host buffer grows by appending and its first `past` positions are a view, never a copy. Along
 * axis 2, layer i's keys are heads [2i·kvHeads, (2i+1)·kvHeads) and its values the next kvHeads.
 */
export const PAST_NAME = 'past_key_values';
/** The cache output: the new positions' keys and values only, [new, batch, 2·layers·kvHeads, headDim]. */
export const NEW_NAME = 'new_key_values';

/** Rows of the stacked cache per position and sequence (see PAST_NAME). */
export function cacheHeads(spec: ModelSpec): number {
  return 2 * spec.layers * spec.kvHeads;
}

function logitsOf(out: { logits?: Value }): Value {
  if (!out.logits) throw new Error('The forward pass stopped before the LM head (stopAfterLayer); this graph needs logits.');
  return out.logits;
}

function ctx(o: GraphOptions): { contextLength?: number } {
  return o.contextLength !== undefined ? { contextLength: o.contextLength } : {};
}

function inferenceGraph(name: string, o: GraphOptions): Graph {
  const g = new Graph(name);
  if (o.fused ?? true) useFusedKernels(g);
  return g;
}

/**
 * Drops nodes and initializers no output depends on. onnxruntime keeps dead nodes and runs them
 * every step: e.g. the rotary table rows a fused rotary kernel no longer reads.
 */
export function pruneUnused(g: Graph): Graph {
  const live = new Set(g.outputs.map((v) => v.name));
  const kept: OpNode[] = [];
  // Nodes are recorded in topological order, so one backward sweep finds every live node.
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (!n.outputs.some((o) => live.has(o.name))) continue;
    kept.push(n);
    for (const x of n.inputs) if (x) live.add(x.name);
    for (const a of Object.values(n.attrs)) {
      const sub = subgraphOf(a);
      if (sub) namesRead(sub, live);
    }
  }
  g.nodes.splice(0, g.nodes.length, ...kept.reverse());
  const inits = g.initializers.filter((t) => live.has(t.value.name));
  g.initializers.splice(0, g.initializers.length, ...inits);
  return g;
}

/** input_ids int64 [batch, seq] → logits float32 [batch, seq, vocab]. */
export function buildLogitsGraph(m: BuildableModel, o: GraphOptions = {}): Graph {
  const g = inferenceGraph('logits', o);
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  g.output(logitsOf(m.family.forward(g, m.spec, m.weights, { inputIds: ids, ...ctx(o) }, o.hooks)), 'logits');
  return pruneUnused(g);
}

/**
 * log p(target) per position, times the mask. Inputs: input_ids, target_ids (int64 [batch, seq]),
 * target_mask (float32 [batch, seq]). Output: token_logprobs float32 [batch, seq].
 */
export function buildTokenLogProbGraph(m: BuildableModel, o: GraphOptions = {}): Graph {
  const g = inferenceGraph('token_logprobs', o);
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  const targets = g.input('target_ids', 'int64', ['batch', 'seq']);
  const mask = g.input('target_mask', 'float32', ['batch', 'seq']);
  const logits = logitsOf(m.family.forward(g, m.spec, m.weights, { inputIds: ids, ...ctx(o) }, o.hooks));
  g.output(g.mul(tokenLogProbs(g, logits, targets), mask), 'token_logprobs');
  return pruneUnused(g);
}

/**
 * Generation without a cache: input_ids int64 [batch, seq] (the whole prefix) → logits float32
 * [batch, vocab] of the last position. No key/value outputs, so recomputing pays only for the
 * recomputation.
 */
export function buildNextTokenGraph(m: BuildableModel, o: GraphOptions = {}): Graph {
  const g = inferenceGraph('next_token', o);
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  const out = m.family.forward(g, m.spec, m.weights, { inputIds: ids, lastPositionOnly: true, ...ctx(o) }, o.hooks);
  g.output(g.squeeze(logitsOf(out), [1]), 'logits');
  return pruneUnused(g);
}

/**
 * Which blocks ran attention in `out`. A block that runs none (an emulator's harmonizer, an MLP
 * standing in for a whole layer) keeps no keys or values: its rows of the cache hold zeros that
 * nothing reads, so every block keeps its place in the cache layout. At least one block must attend.
 */
function attendingBlocks(s: ModelSpec, out: { present?: (LayerKV | undefined)[] }): boolean[] {
  const attends = Array.from({ length: s.layers }, (_, i) => out.present?.[i] !== undefined);
  if (!attends.includes(true)) throw new Error('No block of this model runs attention, so there is no key/value cache to keep; generate without the cache.');
  return attends;
}

/**
 * Every block's keys and values in cache order (keys, values, block by block): `kv(i)` for the
 * blocks that attend, zeros shaped like the first attending block's (one tensor) for the others.
 */
function cacheEntries(g: Graph, attends: readonly boolean[], kv: (i: number) => LayerKV): Value[] {
  const like = kv(attends.indexOf(true)).k;
  let zeros: Value | undefined;
  return attends.flatMap((a, i) => {
    if (a) {
      const e = kv(i);
      return [e.k, e.v];
    }
    zeros ??= g.zerosLike(like);
    return [zeros, zeros];
  });
}

/**
 * One generation step with a key/value cache (`singleToken`: the decode graph for exactly one new
 * token per sequence): input_ids [batch, new] and past_key_values (layout at PAST_NAME; past may
 * be 0) → logits of the last position [batch, vocab] and new_key_values [new, batch,
 * 2·layers·kvHeads, headDim], which the caller appends to its cache. The new tokens' positions
 * start at `past`, read from the cache's shape. Returning only the new positions keeps the bytes
 * copied out of onnxruntime per step constant instead of growing with the context.
 */
export function buildCacheStepGraph(m: BuildableModel, o: GraphOptions & { singleToken?: boolean } = {}): Graph {
  const g = inferenceGraph(o.singleToken ? 'decode_step' : 'cache_step', o);
  const s = m.spec;
  const H2 = cacheHeads(s);
  // The one-token decode graph has no causal mask (one query sees every key).
  const ids = g.input('input_ids', 'int64', ['batch', o.singleToken ? 1 : 'new']);
  const cache = g.input(PAST_NAME, 'float32', ['past', 'batch', H2, s.headDim]);
  const parts = g.split(g.transpose(cache, [1, 2, 0, 3]), 1, Array.from({ length: 2 * s.layers }, () => s.kvHeads));
  const past: LayerKV[] = [];
  for (let i = 0; i < s.layers; i++) past.push({ k: parts[2 * i]!, v: parts[2 * i + 1]! });
  const offset = g.dim(cache, 0);
  // With one new token the last position is the only one: no slice needed.
  const out = m.family.forward(g, s, m.weights, { inputIds: ids, past, positionOffset: offset, lastPositionOnly: o.singleToken !== true, singleTokenDecode: o.singleToken === true, ...ctx(o) }, o.hooks);
  g.output(g.squeeze(logitsOf(out), [1]), 'logits');
  const attends = attendingBlocks(s, out);
  let added: Value;
  if (attends.every((a, i) => !a || out.added?.[i])) {
    // The fused kernels expose each layer's new keys and values [batch, new, kvHeads·headDim]:
    // stacked along the last axis they are [batch, new, H2·headDim], the rows the cache appends.
    const rows = g.concat(cacheEntries(g, attends, (i) => out.added![i]!), 2);
    // With one new token [batch, 1, …] and [1, batch, …] share one memory order.
    added = o.singleToken ? g.reshape(rows, [1, 'batch', H2, s.headDim]) : g.transpose(g.reshape(rows, ['batch', 'new', H2, s.headDim]), [1, 0, 2, 3]);
  } else {
    const all = g.concat(cacheEntries(g, attends, (i) => out.present![i]!), 1); // [batch, H2, past+new, headDim]
    if (o.singleToken) {
      // [batch, H2, 1, headDim] and [1, batch, H2, headDim] share one memory order.
      added = g.reshape(g.slice(all, [2], [-1], [undefined], ['batch', H2, 1, s.headDim]), [1, 'batch', H2, s.headDim]);
    } else {
      const T = g.emit('Shape', [ids], { start: 1, end: 2 }, [{ dtype: 'int64', shape: [1] }])[0]!;
      const last = g.emit('Slice', [all, g.neg(T), g.ints([2 ** 62]), g.ints([2])], {}, [{ dtype: 'float32', shape: ['batch', H2, 'new', s.headDim] }])[0]!;
      added = g.transpose(last, [2, 0, 1, 3]);
    }
  }
  g.output(added, NEW_NAME);
  return pruneUnused(g);
}

/** Inputs and outputs of the greedy decode loop (buildGreedyLoopGraph). */
export const GREEDY = { steps: 'max_steps', goingOn: 'goes_on_after', tokens: 'tokens_read', last: 'last_token' } as const;

/**
 * Greedy decoding of up to `max_steps` tokens in ONE run: an ONNX Loop whose body is the one-token
 * decode step followed by ArgMax. Per token this saves a session.run (its input/output marshalling
 * and the host round trip) and the re-layout of the cache, which inside the loop is carried per
 * layer in the kernel's own layout. Inputs: input_ids int64 [batch, 1] (the last token, not yet in
 * the cache), past_key_values (PAST_NAME layout, past ≥ 0), max_steps int64 scalar (≥ 1),
 * goes_on_after bool [vocab] (false for stop tokens: a step that picks one in any sequence is the
 * last). Outputs: tokens_read int64 [steps, batch, 1], the token each step read (input_ids first,
 * then every pick but the last); last_token int64 [batch, 1], the last step's pick (picks break
 * ties by the first index, as host-side argmax); new_key_values [steps, batch, 2·layers·kvHeads,
 * headDim], the cache rows of the tokens read (PAST_NAME layout).
 *
 * Every node of the body runs once per token, so the body holds nothing that can run once per
 * run: the picks leave as the tokens read (a loop input passed through, no copy node) plus the
 * final one, the new cache rows are cut from the loop's final per-layer caches after the loop,
 * and the stop test is one table lookup and one reduction.
 */
export function buildGreedyLoopGraph(m: BuildableModel, o: GraphOptions = {}): Graph {
  const g = inferenceGraph('greedy_loop', o);
  const s = m.spec;
  const H2 = cacheHeads(s);
  const ids = g.input('input_ids', 'int64', ['batch', 1]);
  const cache = g.input(PAST_NAME, 'float32', ['past', 'batch', H2, s.headDim]);
  const steps = g.input(GREEDY.steps, 'int64', []);
  const goesOn = g.input(GREEDY.goingOn, 'bool', [s.vocabSize]);
  const parts = g.split(g.transpose(cache, [1, 2, 0, 3]), 1, Array.from({ length: 2 * s.layers }, () => s.kvHeads));

  // Positions count on in the loop (the first read off the cache's length, once per run), so no
  // layer's cache length has to say where the step is: a block without attention keeps its own.
  const position0 = g.emit('Shape', [cache], { start: 0, end: 1 }, [{ dtype: 'int64', shape: [1] }])[0]!;

  const body = new Graph('greedy_step', g);
  body.input('iteration', 'int64', []);
  body.input('cond_in', 'bool', []);
  const tok = body.input('token_in', 'int64', ['batch', 1]);
  const position = body.input('position_in', 'int64', [1]);
  const past: LayerKV[] = [];
  for (let i = 0; i < s.layers; i++) {
    const kvShape = ['batch', s.kvHeads, `loop_past_${i}`, s.headDim];
    past.push({ k: body.input(`past_k_${i}`, 'float32', kvShape), v: body.input(`past_v_${i}`, 'float32', kvShape) });
  }
  const out = m.family.forward(body, s, m.weights, { inputIds: tok, past, positionOffset: body.squeeze(position, [0]), singleTokenDecode: true, ...ctx(o) }, o.hooks);
  const next = body.emit('ArgMax', [logitsOf(out)], { axis: -1, keepdims: 0 }, [{ dtype: 'int64', shape: ['batch', 1] }])[0]!;
  // Going on while every sequence's pick goes on (reduced over all axes to the scalar Loop wants).
  body.output(body.emit('ReduceMin', [body.gather(goesOn, next, 0)], { keepdims: 0 }, [{ dtype: 'bool', shape: [] }])[0]!);
  body.output(next);
  body.output(body.add(position, body.ints([1])));
  const attends = attendingBlocks(s, out);
  for (let i = 0; i < s.layers; i++) {
    const p = out.present?.[i];
    if (p && !out.added?.[i]) throw new Error(`Layer ${i} runs attention outside the fused kernel; greedy decoding in one run needs the fused kernels.`);
    // A block without attention passes its (zero) cache through unchanged.
    body.output(p ? p.k : past[i]!.k);
    body.output(p ? p.v : past[i]!.v);
  }
  body.output(tok); // scan output: the token each step read
  pruneUnused(body);

  const finalShape = (i: number) => ['batch', s.kvHeads, attends[i] ? 'total' : 'past', s.headDim];
  const loopOut = g.emit(
    'Loop',
    [steps, g.constant(Uint8Array.of(1), [], 'bool'), ids, position0, ...parts],
    { body: { g: body } },
    [
      { dtype: 'int64', shape: ['batch', 1] },
      { dtype: 'int64', shape: [1] },
      ...Array.from({ length: 2 * s.layers }, (_, j) => ({ dtype: 'float32' as const, shape: finalShape(j >> 1) })),
      { dtype: 'int64', shape: ['steps', 'batch', 1] },
    ],
  );
  g.output(loopOut.at(-1)!, GREEDY.tokens);
  g.output(loopOut[0]!, GREEDY.last);
  // The final caches [batch, kvHeads, past+steps, headDim] per layer, stacked as the input was split
  // ([batch, H2, past+steps, headDim], zeros for blocks without attention); positions from `past`
  // on, position-major: the new rows.
  const finals = loopOut.slice(2, 2 + 2 * s.layers);
  const all = g.concat(cacheEntries(g, attends, (i) => ({ k: finals[2 * i]!, v: finals[2 * i + 1]! })), 1);
  const fresh = g.emit('Slice', [all, position0, g.ints([2 ** 62]), g.ints([2])], {}, [{ dtype: 'float32', shape: ['batch', H2, 'steps', s.headDim] }])[0]!;
  g.output(g.transpose(fresh, [2, 0, 1, 3]), NEW_NAME);
  return pruneUnused(g);
}
