// ScaleOT Dynamic LayerReplace (ALGORITHMS.md §3): harmonizers trained jointly with a per-layer
// replaceability score learned by reinforcement learning.
//
// Design note — how a step replaces different layers in ONE compiled graph. The replacement is a
// graph input `scaleot/replace` (float [L], 1 = replaced), and every middle block computes the
// blend  y_i = r_i·H_i(h) + (1 − r_i)·Block_i(h)  (exact: 1·a + 0·b = a). Only the harmonizers
// of replaced layers may learn, so the train step is compiled with layer gating (train/layerwise.ts,
// the IST machinery): the replaced layers are the step's "selected" layers, whose harmonizers get
// gradients and AdamW updates; the others keep weights and moments bit for bit, and backward stops
// at the lowest replaced layer. The alternative, If(r_i) in the forward, skips the unused path,
// but there is no gradient rule through a forward If: backward would have to recompute each block
// inside a backward If (forward twice for kept blocks). Per middle block, counting a block's
// forward as F and its backward as 2F, the blend costs 3F (+ a harmonizer, a few percent of a
// block) whether replaced or not; If + recomputation costs 4F for a kept block and ≈0 for a
// replaced one, i.e. 2F on average at α = 0.5 — at most a 1.5× saving, bought with a hand-written
// block-by-block backward. Measured on the 8-layer d=64 test model (batch 8 × 32 tokens, CPU, a
// 2-core machine shared with other jobs): 60 blended steps plus 6 importance updates take about
// 5 s (~80 ms a step), dominated by per-node overhead more than FLOPs; the If variant was not
// built, as the saving would not change the picture at this size. So the simpler
// blend is used; the candidate evaluations (no gradient) use the same blend graph.
import { Batcher, type Batch as DataBatch } from '../data/batches';
import { Rng, seedState } from '../data/prng';
import type { Example } from '../data/tokenize';
import type { LoadedModel } from '../models/load';
import { crossEntropy } from '../nn/loss';
import type { Graph, Value } from '../onnx/graph';
import type { SessionSettings } from '../runtime/session';
import { compileEvalStep, type EvalStep } from '../train/eval-step';
import { compileTrainStep, type BlockBoundary, type ParamInit, type TrainState } from '../train/train-step';
import { harmonizerForward, harmonizerName, HARMONIZER_PARTS, harmonizerShapes, initHarmonizer, type HarmonizerPart } from './harmonizer';
import { blockPrefix } from './emulator';
import { distinctSetCount, finalReplacement, groupsOf, sampleReplacement, sigmoid, type LayerSplit } from './plan';
import { kdLoss, teacherStep, type KdSettings } from './kd';
import { BuildCancelled } from './errors';

export const REPLACE_INPUT = 'scaleot/replace';
export const TEACHER_INPUT = 'scaleot/teacher';

export interface LayerReplaceSettings {
  /** Fraction α of each group replaced by harmonizers. */
  alpha: number;
  /** Group size g (default 4). */
  groupSize: number;
  /** Training steps. */
  steps: number;
  /** Importance update every K steps (default 10). */
  interval: number;
  /** Candidate sets per importance update (default 3). */
  candidates: number;
  /** Score learning rate lr_rl (default 10). */
  scoreLr: number;
  /** Harmonizer width (default max(8, d/16)). */
  hidden: number;
  /** AdamW learning rate of the harmonizers. */
  lr: number;
  weightDecay: number;
  clip: number;
  batchSize: number;
  seqLen: number;
  padId: number;
  seed: number;
  kd: KdSettings | null;
}

export type LayerReplaceProgress =
  | { kind: 'step'; step: number; steps: number; loss: number; replaced: number[]; scores: Record<number, number> }
  | { kind: 'importance'; step: number; sets: number[][]; losses: number[]; rewards: number[]; scores: Record<number, number> };

export interface LayerReplaceResult {
  /** Replaceability per middle layer (high = safe to replace). */
  scores: Map<number, number>;
  /** The final choice: per group the round(α·g) layers with the highest scores. */
  replaced: number[];
  harmonizers: Map<number, Record<HarmonizerPart, Float32Array>>;
  losses: number[];
  importanceUpdates: number;
}

const CANDIDATE_SALT = 0x0c_a7_d1_da;

interface Graphs {
  middle: Set<number>;
  /** Builds the blended forward; returns the loss and block boundaries. */
  build(g: Graph, params: Record<string, Value>): { loss: Value; blocks: BlockBoundary[] };
}

function blendedForward(model: LoadedModel, split: LayerSplit, seqLen: number, kd: KdSettings | null): Graphs {
  const middle = new Set(split.middle);
  const lastMiddle = split.middle[split.middle.length - 1]!;
  return {
    middle,
    build(g, params) {
      const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
      const targets = g.input('targets', 'int64', ['batch', 'seq']);
      const mask = g.input('mask', 'float32', ['batch', 'seq']);
      const replace = g.input(REPLACE_INPUT, 'float32', [model.spec.layers]);
      const teacher = kd ? g.input(TEACHER_INPUT, 'float32', ['batch', 'seq', model.spec.hiddenSize]) : undefined;
      const blocks: BlockBoundary[] = [];
      const out = model.family.forward(g, model.spec, model.weights, { inputIds: ids, contextLength: seqLen }, {
        param: (name) => params[name],
        block: (i, h, run, bg) => {
          let y: Value;
          if (middle.has(i)) {
            const prefix = blockPrefix(model.spec, i);
            const b = run(h);
            const hm = harmonizerForward(bg, h, { norm: params[harmonizerName(prefix, 'norm')]!, down: params[harmonizerName(prefix, 'down')]!, up: params[harmonizerName(prefix, 'up')]! });
            const r = bg.gather(replace, bg.constant(BigInt64Array.of(BigInt(i)), [], 'int64'), 0);
            y = bg.add(bg.mul(r, hm), bg.mul(bg.sub(bg.scalar(1), r), b));
          } else y = run(h);
          blocks[i] = { input: h, output: y };
          return y;
        },
      });
      if (!out.logits) throw new Error('The forward pass returned no logits.');
      let loss = crossEntropy(g, out.logits, targets, mask);
      if (kd && teacher) loss = g.add(g.mul(g.scalar(kd.lmWeight), loss), g.mul(g.scalar(kd.kdWeight), kdLoss(g, teacher, blocks[lastMiddle]!.output, mask)));
      return { loss, blocks };
    },
  };
}

function feeds(b: DataBatch, replace: Float32Array, teacher?: Float32Array, d?: number) {
  return {
    input_ids: { data: b.inputIds, dims: b.dims },
    targets: { data: b.targets, dims: b.dims },
    mask: { data: b.mask, dims: b.dims },
    [REPLACE_INPUT]: { data: replace, dims: [replace.length] },
    ...(teacher ? { [TEACHER_INPUT]: { data: teacher, dims: [...b.dims, d!] } } : {}),
  };
}

export interface LayerReplaceHooks {
  progress?(p: LayerReplaceProgress): void;
  cancelled?(): boolean;
}

/** Runs Dynamic LayerReplace on `model` with the distillation examples; seeded and deterministic on CPU. */
export async function runLayerReplace(model: LoadedModel, split: LayerSplit, examples: readonly Example[], s: LayerReplaceSettings, hooks: LayerReplaceHooks = {}, session: SessionSettings = {}): Promise<LayerReplaceResult> {
  const L = model.spec.layers;
  const d = model.spec.hiddenSize;
  const groups = groupsOf(split.middle, s.groupSize);
  const scores = new Map(split.middle.map((l) => [l, 0]));
  const harmonizers = new Map<number, Record<HarmonizerPart, Float32Array>>();
  split.middle.forEach((l) => harmonizers.set(l, initHarmonizer(d, s.hidden, (seedState(s.seed) + l * 7919) >>> 0)));
  const anyReplaced = groups.some((grp) => Math.round(s.alpha * grp.length) > 0);
  if (!anyReplaced || s.steps === 0) {
    return { scores, replaced: finalReplacement(groups, s.alpha, scores), harmonizers, losses: [], importanceUpdates: 0 };
  }
  const shapes = harmonizerShapes(d, s.hidden);
  const trainable: Record<string, ParamInit> = {};
  const layerOfParam = new Map<string, number>();
  for (const l of split.middle) {
    const prefix = blockPrefix(model.spec, l);
    for (const p of HARMONIZER_PARTS) {
      const n = harmonizerName(prefix, p);
      trainable[n] = { data: harmonizers.get(l)![p], shape: shapes[p] };
      layerOfParam.set(n, l);
    }
  }
  const frozen: Record<string, ParamInit> = {};
  for (const [n, w] of model.weights) frozen[n] = { data: w.data, shape: w.shape };
  const fwd = blendedForward(model, split, s.seqLen, s.kd);
  const train = await compileTrainStep((g, params) => fwd.build(g, params), {
    trainable,
    frozen,
    optimizer: { type: 'adamw', weightDecay: s.weightDecay },
    schedule: { lr: s.lr, decay: 'constant' },
    clip: s.clip,
    layers: { layerOf: (n) => layerOfParam.get(n) },
    session,
  });
  let evalStep: EvalStep | undefined;
  let teacher: Awaited<ReturnType<typeof teacherStep>> | undefined;
  try {
    evalStep = await compileEvalStep((g, params) => ({ loss: fwd.build(g, params).loss }), { trainable, frozen, session });
    if (s.kd) teacher = await teacherStep(model, split, s.seqLen, session);
    const batcher = new Batcher(examples, { batchSize: s.batchSize, seqLen: s.seqLen, padId: s.padId, shuffle: true, seed: s.seed });
    const rng = new Rng(s.seed);
    const candRng = Rng.fromState((seedState(s.seed) ^ CANDIDATE_SALT) >>> 0);
    const vector = (set: readonly number[]) => {
      const v = new Float32Array(L);
      for (const l of set) v[l] = 1;
      return v;
    };
    const snapshot = () => Object.fromEntries([...scores].map(([k, v]) => [k, v]));
    let state: TrainState = train.initState();
    const losses: number[] = [];
    let updates = 0;
    const possible = distinctSetCount(groups, s.alpha);
    for (let step = 0; step < s.steps; step++) {
      if (hooks.cancelled?.()) throw new BuildCancelled(step);
      const batch = batcher.next();
      const t = teacher ? await teacher.run(batch) : undefined;
      const set = sampleReplacement(groups, s.alpha, scores, rng);
      const r = await train.step(feeds(batch, vector(set), t, d), state, { selected: set });
      state = r.state;
      losses.push(r.loss);
      hooks.progress?.({ kind: 'step', step, steps: s.steps, loss: r.loss, replaced: set, scores: snapshot() });
      if ((step + 1) % s.interval === 0 && possible >= 2) {
        // R distinct candidate sets, sampled the same way; one no-gradient forward each on this batch.
        const want = Math.min(s.candidates, possible);
        const sets: number[][] = [];
        for (let tries = 0; sets.length < want && tries < 1000; tries++) {
          const c = sampleReplacement(groups, s.alpha, scores, candRng);
          if (!sets.some((x) => x.join() === c.join())) sets.push(c);
        }
        const candLosses: number[] = [];
        for (const c of sets) {
          const out = await evalStep.run(feeds(batch, vector(c), t, d), state.params);
          candLosses.push((out.loss!.data as Float32Array)[0]!);
        }
        const ex = candLosses.map((l) => Math.exp(-l));
        const mean = ex.reduce((a, b) => a + b, 0) / ex.length;
        const rewards = ex.map((e) => e - mean);
        const p = new Map([...scores].map(([l, v]) => [l, sigmoid(v)]));
        sets.forEach((c, k) => {
          for (const l of c) scores.set(l, scores.get(l)! + s.scoreLr * rewards[k]! * p.get(l)! * (1 - p.get(l)!));
        });
        updates++;
        hooks.progress?.({ kind: 'importance', step, sets, losses: candLosses, rewards, scores: snapshot() });
      }
    }
    for (const l of split.middle) {
      const prefix = blockPrefix(model.spec, l);
      const h = {} as Record<HarmonizerPart, Float32Array>;
      for (const p of HARMONIZER_PARTS) h[p] = Float32Array.from(state.params[harmonizerName(prefix, p)]!);
      harmonizers.set(l, h);
    }
    return { scores, replaced: finalReplacement(groups, s.alpha, scores), harmonizers, losses, importanceUpdates: updates };
  } finally {
    await train.dispose();
    await evalStep?.dispose();
    await teacher?.dispose();
  }
}

