// Uniform LayerDrop (the Offsite-Tuning baseline, ALGORITHMS.md §2): keep n_keep middle layers at
// round(i·(m−1)/(n_keep−1)) and drop the rest. Optionally distil the kept middle blocks (all their
// weights trainable, everything else frozen) with lm_weight·lm + kd_weight·kd against the full
// model; off by default because it trains whole blocks and is the slow part of the baseline.
import { Batcher } from '../data/batches';
import type { Example } from '../data/tokenize';
import type { LoadedModel } from '../models/load';
import { crossEntropy } from '../nn/loss';
import type { SessionSettings } from '../runtime/session';
import { compileTrainStep, type ParamInit, type TrainState } from '../train/train-step';
import { splitBlockName } from './emulator';
import { kdLoss, teacherStep, type KdSettings } from './kd';
import { uniformKeptPositions, type LayerSplit } from './plan';
import { BuildCancelled } from './errors';

/** Middle layers uniform LayerDrop keeps (original indices). */
export function uniformKeptLayers(split: LayerSplit, nKeep: number): number[] {
  return uniformKeptPositions(split.middle.length, nKeep).map((p) => split.middle[p]!);
}

export interface LayerDropKdSettings extends KdSettings {
  steps: number;
  lr: number;
  clip: number;
  batchSize: number;
  seqLen: number;
  padId: number;
  seed: number;
}

export type LayerDropProgress = { kind: 'step'; step: number; steps: number; loss: number };

/** Distils the kept middle blocks; returns their trained weights by original name. */
export async function distilKeptLayers(
  model: LoadedModel,
  split: LayerSplit,
  kept: readonly number[],
  examples: readonly Example[],
  s: LayerDropKdSettings,
  hooks: { progress?(p: LayerDropProgress): void; cancelled?(): boolean } = {},
  session: SessionSettings = {},
): Promise<{ weights: Map<string, Float32Array>; losses: number[] }> {
  const keptSet = new Set(kept);
  const middle = new Set(split.middle);
  const trainable: Record<string, ParamInit> = {};
  const frozen: Record<string, ParamInit> = {};
  for (const [n, w] of model.weights) {
    const b = splitBlockName(n);
    (b && keptSet.has(b.layer) ? trainable : frozen)[n] = { data: w.data, shape: w.shape };
  }
  const last = split.middle[split.middle.length - 1]!;
  const train = await compileTrainStep(
    (g, params) => {
      const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
      const targets = g.input('targets', 'int64', ['batch', 'seq']);
      const mask = g.input('mask', 'float32', ['batch', 'seq']);
      const teacher = g.input('scaleot/teacher', 'float32', ['batch', 'seq', model.spec.hiddenSize]);
      let student: ReturnType<typeof g.input> | undefined;
      const out = model.family.forward(g, model.spec, model.weights, { inputIds: ids, contextLength: s.seqLen }, {
        param: (name) => params[name],
        block: (i, h, run) => {
          const y = middle.has(i) && !keptSet.has(i) ? h : run(h);
          if (i === last) student = y;
          return y;
        },
      });
      const lm = crossEntropy(g, out.logits!, targets, mask);
      return { loss: g.add(g.mul(g.scalar(s.lmWeight), lm), g.mul(g.scalar(s.kdWeight), kdLoss(g, teacher, student!, mask))) };
    },
    { trainable, frozen, optimizer: { type: 'adamw', weightDecay: 0 }, schedule: { lr: s.lr, decay: 'constant' }, clip: s.clip, session },
  );
  const teach = await teacherStep(model, split, s.seqLen, session);
  try {
    const batcher = new Batcher(examples, { batchSize: s.batchSize, seqLen: s.seqLen, padId: s.padId, shuffle: true, seed: s.seed });
    let state: TrainState = train.initState();
    const losses: number[] = [];
    for (let step = 0; step < s.steps; step++) {
      if (hooks.cancelled?.()) throw new BuildCancelled(step);
      const b = batcher.next();
      const t = await teach.run(b);
      const r = await train.step(
        { input_ids: { data: b.inputIds, dims: b.dims }, targets: { data: b.targets, dims: b.dims }, mask: { data: b.mask, dims: b.dims }, 'scaleot/teacher': { data: t, dims: [...b.dims, model.spec.hiddenSize] } },
        state,
      );
      state = r.state;
      losses.push(r.loss);
      hooks.progress?.({ kind: 'step', step, steps: s.steps, loss: r.loss });
    }
    return { weights: new Map(Object.keys(trainable).map((n) => [n, Float32Array.from(state.params[n]!)])), losses };
  } finally {
    await train.dispose();
    await teach.dispose();
  }
}
