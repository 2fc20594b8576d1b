// The job worker of `npm run pretrain-demo`: runs the pretraining loop off the main thread
// (session.run() blocks its thread) and honours cancel between steps with a checkpoint.
import { runJob } from '../runtime/job-worker';
import { runPretraining, type PretrainInput, type PretrainProgress, type PretrainResult } from './pretrain';

runJob<PretrainInput, PretrainProgress, PretrainResult>((input, ctx) =>
  runPretraining(input, { progress: (p) => ctx.progress(p), cancelled: () => ctx.cancelled }),
);
