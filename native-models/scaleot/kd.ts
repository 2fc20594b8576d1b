// Knowledge distillation to the full model (ALGORITHMS.md §2, optional for both methods):
// kd = mean over unmasked positions of mean_d(((t − s) / rms(t))²), t the full model's hidden
// state after the last middle layer, s the emulator's at the same place; the training loss is
// lm_weight·lm + kd_weight·kd (reference 1.0 and 30.0). The teacher states come from a frozen
// forward of the full model that stops after the last middle layer.
import type { Batch as DataBatch } from '../data/batches';
import type { LoadedModel } from '../models/load';
import type { Graph, Value } from '../onnx/graph';
import type { SessionSettings } from '../runtime/session';
import { compileEvalStep } from '../train/eval-step';
import type { LayerSplit } from './plan';

export interface KdSettings {
  lmWeight: number;
  kdWeight: number;
}

export const KD_DEFAULTS: KdSettings = { lmWeight: 1.0, kdWeight: 30.0 };

/** Masked mean of ((t − s)/rms(t))², rms over the hidden axis. t, s [B, T, d]; mask [B, T]. */
export function kdLoss(g: Graph, t: Value, s: Value, mask: Value): Value {
  const rms = g.sqrt(g.add(g.reduceMean(g.mul(t, t), [-1], true), g.scalar(1e-6)));
  const diff = g.div(g.sub(t, s), rms);
  const perPos = g.reduceMean(g.mul(diff, diff), [-1], false); // [B, T]
  const count = g.max(g.reduceSum(mask, [0, 1], false), g.scalar(1));
  return g.div(g.reduceSum(g.mul(perPos, mask), [0, 1], false), count);
}

/** The full model's hidden state after the last middle layer, per batch. */
export async function teacherStep(model: LoadedModel, split: LayerSplit, seqLen: number, session: SessionSettings) {
  const last = split.middle[split.middle.length - 1]!;
  const step = await compileEvalStep(
    (g, params) => {
      const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
      const out = model.family.forward(g, model.spec, model.weights, { inputIds: ids, contextLength: seqLen }, { stopAfterLayer: last, param: (n) => params[n] });
      return { hidden: out.hidden };
    },
    { trainable: {}, frozen: Object.fromEntries([...model.weights].map(([n, w]) => [n, { data: w.data, shape: w.shape }])), session },
  );
  return {
    async run(b: DataBatch): Promise<Float32Array> {
      const out = await step.run({ input_ids: { data: b.inputIds, dims: b.dims } }, {});
      return out.hidden!.data as Float32Array;
    },
    dispose: () => step.dispose(),
  };
}
