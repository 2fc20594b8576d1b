// The inference graphs every family gets from its forward builder: logits, per-token
// log-probabilities (evaluation), and one key/value-cache step graph used for prefill, decode and
// (with an empty cache over the whole prefix) generation without a cache.
import { tokenLogProbs } from '../nn/loss';
import { Graph, type Value } from '../onnx/graph';
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
}

/** Names of the cache tensors of layer i (HF / optimum naming). */
export const pastKeyName = (i: number): string => `past_key_values.${i}.key`;
export const pastValueName = (i: number): string => `past_key_values.${i}.value`;
export const presentKeyName = (i: number): string => `present.${i}.key`;
export const presentValueName = (i: number): string => `present.${i}.value`;

function logitsOf(out: { logits?: Value }): Value {
  if (!out.logits) throw new Error('The forward pass stopped before the LM head (stopAfterLayer); this graph needs logits.');
  return out.logits;
}

function ctx(o: GraphOptions): { contextLength?: number } {
  return o.contextLength !== undefined ? { contextLength: o.contextLength } : {};
}

/** input_ids int64 [batch, seq] → logits float32 [batch, seq, vocab]. */
export function buildLogitsGraph(m: BuildableModel, o: GraphOptions = {}): Graph {
  const g = new Graph('logits');
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  g.output(logitsOf(m.family.forward(g, m.spec, m.weights, { inputIds: ids, ...ctx(o) }, o.hooks)), 'logits');
  return g;
}

/**
 * log p(target) per position, times the mask. Inputs: input_ids, target_ids (int64 [batch, seq]),
 * target_mask (float32 [batch, seq]). Output: token_logprobs float32 [batch, seq].
 */
export function buildTokenLogProbGraph(m: BuildableModel, o: GraphOptions = {}): Graph {
  const g = new Graph('token_logprobs');
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  const targets = g.input('target_ids', 'int64', ['batch', 'seq']);
  const mask = g.input('target_mask', 'float32', ['batch', 'seq']);
  const logits = logitsOf(m.family.forward(g, m.spec, m.weights, { inputIds: ids, ...ctx(o) }, o.hooks));
  g.output(g.mul(tokenLogProbs(g, logits, targets), mask), 'token_logprobs');
  return g;
}

/**
 * One generation step with a key/value cache (`singleToken`: the decode graph for exactly one new
 * token per sequence): input_ids [batch, new] and per layer
 * past_key_values.i.key/value [batch, kvHeads, past, headDim] (past may be 0) → logits of the last
 * position [batch, vocab] and present.i.key/value [batch, kvHeads, past+new, headDim]. The new
 * tokens' positions start at `past`, read from the cache's shape.
 */
export function buildCacheStepGraph(m: BuildableModel, o: GraphOptions & { singleToken?: boolean } = {}): Graph {
  const g = new Graph(o.singleToken ? 'decode_step' : 'cache_step');
  const s = m.spec;
  // The one-token decode graph has static shapes and no causal mask (one query sees every key).
  const ids = g.input('input_ids', 'int64', ['batch', o.singleToken ? 1 : 'new']);
  const past: LayerKV[] = [];
  for (let i = 0; i < s.layers; i++) {
    past.push({
      k: g.input(pastKeyName(i), 'float32', ['batch', s.kvHeads, 'past', s.headDim]),
      v: g.input(pastValueName(i), 'float32', ['batch', s.kvHeads, 'past', s.headDim]),
    });
  }
  const offset = g.dim(past[0]!.k, 2);
  const out = m.family.forward(g, s, m.weights, { inputIds: ids, past, positionOffset: offset, lastPositionOnly: true, singleTokenDecode: o.singleToken === true, ...ctx(o) }, o.hooks);
  g.output(g.squeeze(logitsOf(out), [1]), 'logits');
  for (let i = 0; i < s.layers; i++) {
    const p = out.present?.[i];
    // The cache has one entry per layer, so every layer must have run attention.
    if (!p) throw new Error(`Layer ${i} produced no key/value cache; generation with a cache needs every layer to run attention.`);
    g.output(p.k, presentKeyName(i));
    g.output(p.v, presentValueName(i));
  }
  return g;
}
