// Bench section: generation with the key/value cache vs recomputing the whole prefix every step,
// 64 new tokens from BOS, greedy. Rows: stories260K (a real llama2.c checkpoint) with the fused
// inference kernels the runner uses and, for comparison, with primitive ops only; and a random
// LLaMA of the size the engine notes use (d 256, 4 layers). Two figures per mode: per generated
// token over the whole run (prompt pass included; repetitions alternate the two modes; medians
// are the headline, best-of figures, least disturbed by other processes, come alongside), and the
// last (64th) token alone, made the way each mode makes it (see lastToken). With the fused
// kernels, greedy decoding with the cache runs its tokens inside one onnxruntime Loop per run
// (ModelRunner.greedySteps); msPerTokenStepwise is the same cache taken one session.run per token
// with host-side argmax, and runOverheadMs the cost of one session.run of a one-node graph with
// the decode step's inputs and outputs: together they say what a cached token is made of. Node
// counts are those onnxruntime runs after its own optimisation, the cost that bounds a small
// model's step.
// `npx tsx test/bench/generation.ts [--threads N] [--reps N] [--tokens N]` runs it alone.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import * as ort from 'onnxruntime-node';
import { generate } from '../../native-models/generate/generate';
import { argmax, Rng } from '../../native-models/generate/sampling';
import { familyFor } from '../../native-models/models/registry';
import { loadModel } from '../../native-models/models/load';
import { ModelRunner, openGraphSession } from '../../native-models/models/runner';
import { buildCacheStepGraph, buildGreedyLoopGraph, buildNextTokenGraph, cacheHeads, type BuildableModel } from '../../native-models/models/graphs';
import type { LlamaSpec, WeightMap } from '../../native-models/models/spec';
import { opsetFor } from '../../native-models/nn/fused';
import { Graph } from '../../native-models/onnx/graph';
import { toOrt } from '../../native-models/runtime/tensors';
import { serialize } from '../../native-models/onnx/serialize';
import type { BenchSection, Cell } from './report';

export interface GenerationBenchOptions {
  tokens?: number;
  reps?: number;
  threads?: number;
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A LLaMA with random weights (generation speed does not depend on their values). */
function randomLlama(): BuildableModel {
  const spec: LlamaSpec = {
    family: 'llama', modelType: 'llama', hiddenSize: 256, intermediateSize: 688, layers: 4, heads: 8, kvHeads: 4, headDim: 32,
    vocabSize: 512, maxPositions: 512, rmsNormEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false, qkvBias: false, oBias: false,
    mlpBias: false, slidingWindow: null, bosId: 1, eosIds: [2],
  };
  const family = familyFor('llama');
  const rng = new Rng(1);
  const weights: WeightMap = new Map();
  for (const [name, shape] of family.weightShapes(spec)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const norm = name.endsWith('norm.weight');
    for (let i = 0; i < n; i++) data[i] = norm ? 1 : (rng.next() - 0.5) * 0.1;
    weights.set(name, { shape, data });
  }
  return { spec, family, weights };
}

/**
 * Nodes onnxruntime keeps after optimising `g` (what each run of the session executes); for a
 * graph around a Loop, the nodes of the loop body (what each token executes).
 */
async function optimizedNodes(g: Graph): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-bench-'));
  try {
    const opset = opsetFor(g);
    const file = join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(serialize(g, opset ? { opset } : {}).model, {
      executionProviders: ['cpu'], graphOptimizationLevel: 'all', logSeverityLevel: 3, optimizedModelFilePath: file,
    });
    await session.release();
    const graph = fromBinary(ModelProtoSchema, readFileSync(file)).graph;
    const loop = graph?.node.find((n) => n.opType === 'Loop');
    const body = loop?.attribute.find((a) => a.name === 'body')?.g;
    return (body ?? graph)?.node.length ?? 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * ms of one session.run of a one-node graph with a decode step's inputs (one token, a cache of
 * `past` positions) and outputs (one row of logits, one cache row): onnxruntime's and the
 * binding's fixed cost per run, which no graph change removes.
 */
async function runOverheadMs(model: BuildableModel, past: number, threads: number): Promise<number> {
  const s = model.spec;
  const H2 = cacheHeads(s);
  const g = new Graph('overhead');
  const ids = g.input('input_ids', 'int64', [1, 1]);
  const cache = g.input('past_key_values', 'float32', ['past', 1, H2, s.headDim]);
  g.output(g.gather(g.initializer('table', new Float32Array(s.vocabSize * s.vocabSize), [s.vocabSize, s.vocabSize]), ids, 0), 'logits');
  g.output(g.slice(cache, [0], [0], [1], [1, 1, H2, s.headDim]), 'new_key_values');
  const { session } = await openGraphSession(g, { provider: 'cpu', intraOpThreads: threads });
  try {
    const feeds = { input_ids: toOrt('int64', BigInt64Array.of(1n), [1, 1]), past_key_values: toOrt('float32', new Float32Array(past * H2 * s.headDim), [past, 1, H2, s.headDim]) };
    const times: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      for (let i = 0; i < 200; i++) await session.run(feeds);
      times.push((performance.now() - t0) / 200);
    }
    return median(times);
  } finally {
    await session.release();
  }
}

/** Greedy tokens with the cache, one session.run per token and argmax on the host. */
async function stepwise(runner: ModelRunner, tokens: number): Promise<{ ms: number; tokens: number[] }> {
  const t0 = performance.now();
  let res = await runner.cacheStep([[1]], runner.emptyCache(1));
  const out = [argmax(res.logits[0]!)];
  while (out.length < tokens) {
    res = await runner.cacheStep([[out.at(-1)!]], res.cache);
    out.push(argmax(res.logits[0]!));
  }
  return { ms: performance.now() - t0, tokens: out };
}

/** Greedy steps past the last token whose cost the per-position figure averages (see lastToken). */
const SPAN = 8;

/**
 * ms for the `tokens`-th new token alone, the way each mode makes it: without the cache one run
 * over the whole `tokens`-token prefix and a host argmax; with it, one decode step at that
 * position. In the greedy loop a step has no run of its own, so its cost is the difference
 * between loops of 1 + SPAN steps and of 1 step from the same cache, divided by SPAN (the run's
 * fixed cost cancels; the SPAN steps sit at positions tokens … tokens+SPAN−1, a little past the
 * token, so the figure errs high). Without the loop (fused: false) a step is one session.run.
 */
async function lastToken(runner: ModelRunner, sequence: number[], tokens: number, reps: number): Promise<{ cache: number; noCache: number }> {
  const prefix = sequence.slice(0, tokens);
  const before = await runner.cacheStep([prefix.slice(0, -1)], runner.emptyCache(1));
  const last = [[prefix.at(-1)!]];
  const timed = async (f: () => Promise<unknown>): Promise<number> => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  const one: number[] = [];
  const span: number[] = [];
  const full: number[] = [];
  for (let r = 0; r < 5 * reps; r++) {
    full.push(await timed(async () => argmax((await runner.nextTokenLogits([prefix]))[0]!)));
    if (runner.canDecodeGreedily) {
      one.push(await timed(() => runner.greedySteps(last, before.cache, 1)));
      span.push(await timed(() => runner.greedySteps(last, before.cache, 1 + SPAN)));
    } else {
      one.push(await timed(async () => argmax((await runner.cacheStep(last, before.cache)).logits[0]!)));
    }
  }
  const cache = runner.canDecodeGreedily ? (median(span) - median(one)) / SPAN : median(one);
  return { cache, noCache: median(full) };
}

async function measure(label: string, model: BuildableModel, tokens: number, reps: number, threads: number, fused = true): Promise<Record<string, Cell>> {
  const runner = new ModelRunner(model, { settings: { provider: 'cpu', intraOpThreads: threads }, contextLength: tokens + SPAN, fused });
  try {
    const run = (useCache: boolean) => generate(runner, [1], { maxNewTokens: tokens, stopTokens: [], useCache });
    await run(true); // warm-up: sessions compiled, memory planned
    await run(false);
    await stepwise(runner, tokens);
    const cached: number[] = [];
    const full: number[] = [];
    const steps: number[] = [];
    let same = true;
    for (let r = 0; r < reps; r++) {
      const a = await run(true);
      const b = await run(false);
      const c = await stepwise(runner, tokens);
      cached.push(a.totalMs / tokens);
      full.push(b.totalMs / tokens);
      steps.push(c.ms / tokens);
      same &&= a.tokens.join() === b.tokens.join() && c.tokens.join() === a.tokens.join();
    }
    const c = median(cached);
    const f = median(full);
    const at = await lastToken(runner, [1, ...(await run(true)).tokens], tokens, reps);
    const opts = { contextLength: tokens + SPAN, fused };
    return {
      model: label, newTokens: tokens, msPerTokenCache: +c.toFixed(3), msPerTokenNoCache: +f.toFixed(3), speedup: +(f / c).toFixed(2),
      speedupBest: +(Math.min(...full) / Math.min(...cached)).toFixed(2),
      msLastTokenCache: +at.cache.toFixed(3), msLastTokenNoCache: +at.noCache.toFixed(3), speedupLastToken: +(at.noCache / at.cache).toFixed(2),
      msPerTokenStepwise: +median(steps).toFixed(3),
      runOverheadMs: +(await runOverheadMs(model, tokens >> 1, threads)).toFixed(3),
      loopNodes: fused ? await optimizedNodes(buildGreedyLoopGraph(model, opts)) : '—',
      decodeNodes: await optimizedNodes(buildCacheStepGraph(model, { ...opts, singleToken: true })),
      noCacheNodes: await optimizedNodes(buildNextTokenGraph(model, opts)),
      sameTokens: same ? 'yes' : 'NO', threads,
    };
  } finally {
    await runner.release();
  }
}

/** ms per generated token with and without the key/value cache (one section, one row per model). */
export async function benchGeneration(o: GenerationBenchOptions = {}): Promise<BenchSection> {
  const tokens = o.tokens ?? 64;
  const reps = o.reps ?? 5;
  const threads = o.threads ?? 1;
  const stories = await loadModel(resolve(repoRoot, '../shared/fixtures/llama2c/stories260K.bin'));
  const rows = [
    await measure('stories260K (dim 64, 5 layers)', stories, tokens, reps, threads),
    await measure('stories260K, primitive ops only', stories, tokens, reps, threads, false),
    await measure('random LLaMA (dim 256, 4 layers)', randomLlama(), tokens, reps, threads),
  ];
  return {
    id: 'generation',
    title: `Generation: key/value cache vs full recompute, ${threads} thread${threads === 1 ? '' : 's'}`,
    description: `Greedy generation of ${tokens} tokens from BOS, CPU, ${threads} intra-op thread(s). msPerToken*: wall time per generated token over the whole run (prompt pass included), median of ${reps} alternating repetitions (speedupBest: the fastest run of each mode). msLastToken*: the ${tokens}th token alone, median of ${5 * reps}: without the cache one run over the ${tokens}-token prefix; with it one decode step (in the loop: the difference between loops of ${1 + SPAN} and of 1 step from the same ${tokens - 1}-position cache, over ${SPAN}). With the cache, the fused rows pick their tokens inside one onnxruntime Loop per run; msPerTokenStepwise: the same cache, one session.run per token and argmax on the host; runOverheadMs: one session.run of a one-node graph with the decode step's inputs and outputs. loopNodes / decodeNodes / noCacheNodes: nodes onnxruntime runs per token in the loop, per one-token decode run, per no-cache run, after its optimisation.`,
    columns: ['model', 'newTokens', 'msPerTokenCache', 'msPerTokenNoCache', 'speedup', 'speedupBest', 'msLastTokenCache', 'msLastTokenNoCache', 'speedupLastToken', 'msPerTokenStepwise', 'runOverheadMs', 'loopNodes', 'decodeNodes', 'noCacheNodes', 'sameTokens', 'threads'],
    rows,
    notes: [
      'Every session.run pays a fixed cost (runOverheadMs: the binding, input and output tensors, the executor) and each node a fraction of a microsecond to a few of its own whatever its size; on a model as small as stories260K those fixed costs, not arithmetic, are most of a cached token. Greedy decoding therefore runs many tokens per session.run (a 64-token generation of stories260K is one run) in a Loop that carries each layer\'s cache in the attention kernel\'s layout, and the loop body holds only what must run per token: the decode step (one MatMul per linear, each residual add joined to the next RMSNorm, rotary and attention as one kernel each), ArgMax and a one-lookup stop test; the picks and the new cache rows are gathered after the loop. msPerTokenStepwise − msPerTokenCache is what the loop saves per token.',
      'Where a stories260K token in the loop goes (1 intra-op thread; each kernel timed in loops of 20 copies at the decode shapes): the Loop ≈ 0.65 µs per iteration; 5 Attention ≈ 4.5 µs + 0.03 µs per cached position each (5.3 µs at 32 positions: a quarter of the token); 21 MatMul 0.75–1.9 µs; 10 RotaryEmbedding and 10 SkipSimplifiedLayerNormalization ≈ 0.6 µs; SwiGLU, norm, embedding, ArgMax and stop test 0.4–0.6 µs: about 105 µs per token. Tried and measured slower in the same loop: attention written out in primitives (77 vs 59 µs for the five layers\' attention), com.microsoft MultiHeadAttention (6.8–8.8 µs a call) and GroupQueryAttention (whose own rotary also needs head size 16: padded, 64 vs 62 µs), the whole SwiGLU MLP as one com.microsoft MoE kernel (40 vs 32 µs for five layers), q/k/v and gate/up as one stacked MatMul + Split (a Split costs ≈ 1.6 µs; stacking is kept where a step has many positions).',
      'Without the cache each step recomputes the whole prefix, so its cost per token grows with the position (the last token costs about twice the run\'s average) while a cached step grows only by the attention over one more position: the speedup for the last token is about twice the run\'s average, and both grow with the number of tokens (run with --tokens 256) and with model size.',
    ],
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const flag = (name: string): number | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i < 0 ? undefined : Number(process.argv[i + 1]);
  };
  const section = await benchGeneration({ threads: flag('threads'), reps: flag('reps'), tokens: flag('tokens') });
  console.log(JSON.stringify(section, null, 2));
}
