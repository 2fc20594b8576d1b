// compileEvalStep: the forward pass alone (no gradients), with trainable parameters as inputs so
// it evaluates whatever state a run has reached, and frozen weights as initializers.
import type * as ort from 'onnxruntime-node';
import { Graph, type TensorData, type Value } from '../onnx';
import type { ProviderChoice } from '../runtime/providers';
import type { SessionSettings } from '../runtime/session';
import { fromOrt, toOrt, type HostTensor } from '../runtime/tensors';
import { batchFeeds, batchInputsOf, declareParams, paramDType, sessionFor, type Batch, type InputSpec, type ParamInit } from './graph-parts';

/** Builds the forward pass and returns the values to read out (e.g. { loss, logits }). */
export type EvalFn = (g: Graph, params: Record<string, Value>) => Record<string, Value>;

export interface EvalStepOptions {
  /** Parameters fed at run time (their `data` is only used for dtype and shape). */
  trainable: Record<string, ParamInit>;
  frozen?: Record<string, ParamInit>;
  session?: SessionSettings;
  externalThreshold?: number;
}

export interface EvalStep {
  readonly provider: ProviderChoice;
  readonly batchInputs: InputSpec[];
  readonly outputNames: string[];
  /** Runs the forward pass with `params` (e.g. a TrainState's params); outputs are copies the caller owns. */
  run(batch: Batch, params: Record<string, TensorData>): Promise<Record<string, HostTensor>>;
  dispose(): Promise<void>;
}

export async function compileEvalStep(fn: EvalFn, opts: EvalStepOptions): Promise<EvalStep> {
  const g = new Graph('eval_step');
  const { params } = declareParams(g, opts.trainable, opts.frozen ?? {});
  const outs = fn(g, params);
  const outputNames = Object.keys(outs);
  if (outputNames.length === 0) throw new Error('The evaluation function returned no outputs.');
  for (const [name, v] of Object.entries(outs)) g.output(v, name);
  const trainableNames = Object.keys(opts.trainable);
  const batchInputs = batchInputsOf(g, new Set(trainableNames));
  const opened = await sessionFor(g, opts.session, opts.externalThreshold);
  const specs = Object.fromEntries(trainableNames.map((n) => [n, { dtype: paramDType(n, opts.trainable[n]!), shape: opts.trainable[n]!.shape }]));
  return {
    provider: opened.provider,
    batchInputs,
    outputNames,
    async run(batch, values) {
      const feeds: Record<string, ort.Tensor> = batchFeeds(batchInputs, batch);
      for (const n of trainableNames) {
        const d = values[n];
        if (!d) throw new Error(`Evaluation needs a value for parameter "${n}".`);
        feeds[n] = toOrt(specs[n]!.dtype, d, specs[n]!.shape);
      }
      const out = await opened.session.run(feeds);
      return Object.fromEntries(outputNames.map((n) => [n, fromOrt(out[n] as ort.Tensor)]));
    },
    async dispose() {
      await opened.session.release();
    },
  };
}
