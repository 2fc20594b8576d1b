// Job worker entry for an evaluation (started by electron/services/evaluations.ts with startJob):
// the forward passes block this thread, not the app's. Cancel is seen after every batch.
import { JobCancelled, runJob } from '../runtime/job-worker';
import { runEvaluation, type EvalProgress, type EvaluationResult, type EvaluationSpec } from './evaluate';

runJob<EvaluationSpec, EvalProgress, EvaluationResult>(async (spec, ctx) => {
  // The cancel flag lives in shared memory; turn it into an abort between batches.
  const abort = new AbortController();
  try {
    return await runEvaluation(spec, {
      signal: abort.signal,
      progress: (p) => {
        ctx.progress(p);
        if (ctx.cancelled) abort.abort();
      },
    });
  } catch (e) {
    if (ctx.cancelled || (e as Error)?.name === 'AbortError') throw new JobCancelled();
    throw e;
  }
});
