// The worker side of a job: `runJob(fn)` at the top level of a worker module runs `fn` once with the
// job's input, relays progress, and reports the result or the error to the host. Long jobs check
// `ctx.cancelled` (or call `ctx.throwIfCancelled()`) between steps; that is how cancel is honoured
// within one step even while session.run() blocks this thread.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { JobErrorInfo, JobWorkerData, WorkerMessage } from './job-protocol';

export interface JobContext<P> {
  /** Sends a progress value to the host (structured-cloned: plain data and typed arrays). */
  progress(value: P): void;
  /** True once the host asked to cancel. */
  readonly cancelled: boolean;
  /** Throws JobCancelled when the host asked to cancel. */
  throwIfCancelled(): void;
}

/** Thrown by throwIfCancelled(); the host reports the job as cancelled, not failed. */
export class JobCancelled extends Error {
  constructor() {
    super('The job was cancelled.');
    this.name = 'JobCancelled';
  }
}

export function runJob<I, P, R>(fn: (input: I, ctx: JobContext<P>) => R | Promise<R>): void {
  if (isMainThread || !parentPort) throw new Error('runJob() must be called in a worker thread started with startJob().');
  const data = workerData as JobWorkerData<I> | undefined;
  if (!data?.offsiteJob) throw new Error('runJob(): this worker was not started with startJob() (no job input).');
  const port = parentPort;
  const flag = new Int32Array(data.offsiteJob.cancelFlag);
  const post = (m: WorkerMessage<P, R>) => port.postMessage(m);
  const ctx: JobContext<P> = {
    progress: (value) => post({ type: 'progress', value }),
    get cancelled() {
      return Atomics.load(flag, 0) === 1;
    },
    throwIfCancelled() {
      if (Atomics.load(flag, 0) === 1) throw new JobCancelled();
    },
  };
  Promise.resolve()
    .then(() => fn(data.offsiteJob.input, ctx))
    .then(
      (value) => post({ type: 'result', value, cancelled: ctx.cancelled }),
      (e: unknown) => {
        if (e instanceof JobCancelled) {
          post({ type: 'result', value: undefined as R, cancelled: true });
          return;
        }
        post({ type: 'error', error: describeThrown(e) });
      },
    );
}

function describeThrown(e: unknown): JobErrorInfo {
  if (e instanceof Error) return { kind: 'thrown', message: e.message, name: e.name, ...(e.stack ? { stack: e.stack } : {}) };
  return { kind: 'thrown', message: String(e) };
}
