// Job worker entry for a tuning run (started by electron/services/runs.ts with startJob): runs the
// loop in this worker thread, streams progress to the main thread, honours cancel at the next step
// boundary (leaving a checkpoint), and returns the run's result.
import { runJob } from '../runtime/job-worker';
import type { TuneConfig } from './config';
import { runTuning, type TuneProgress, type TuneResult, type TuneRunOptions } from './engine';

export interface TuneJobInput {
  config: TuneConfig;
  options: TuneRunOptions;
}

runJob<TuneJobInput, TuneProgress, TuneResult>((input, ctx) =>
  runTuning(input.config, { progress: (p) => ctx.progress(p), cancelled: () => ctx.cancelled }, input.options),
);
