// The host side of a job: runs a worker module (see job-worker.ts) in a worker_threads thread,
// relays its progress, and turns every way it can end — result, cancel, thrown error,
// process.exit, a dead thread (out of memory) — into a value. The caller is never taken down.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { JobErrorInfo, JobWorkerData, WorkerMessage } from './job-protocol';

export type { JobErrorInfo } from './job-protocol';

export type JobOutcome<R> =
  | { status: 'done'; value: R }
  /** Cancelled: `value` is what the job returned after noticing the cancel (e.g. a checkpoint), if anything. */
  | { status: 'cancelled'; value: R | undefined; forced: boolean }
  | { status: 'failed'; error: JobErrorInfo };

export interface JobOptions<P> {
  onProgress?: (value: P) => void;
  /** V8 heap limits for the worker; exceeding them ends the job as failed (kind "crash"), not the app. */
  resourceLimits?: ResourceLimits;
  /** Extra workerData for the module (the job input travels separately). */
  name?: string;
}

export interface JobHandle<R> {
  /** Always resolves, never rejects. */
  readonly result: Promise<JobOutcome<R>>;
  /** Asks the job to stop at its next step boundary. */
  cancel(): void;
  /** Stops the thread now (for a job that does not answer cancel); the outcome is cancelled/forced. */
  terminate(): Promise<void>;
  readonly threadId: number;
}

const require = createRequire(import.meta.url);

function moduleUrl(m: string | URL): URL {
  if (m instanceof URL) return m;
  return m.startsWith('file:') ? new URL(m) : pathToFileURL(m);
}

/**
 * A TypeScript worker module (development and tests) is loaded through tsx's loader, registered
 * inside the new thread before the module is imported: `execArgv: ['--import', 'tsx']` does not
 * hook a worker's entry point on Node 20. A packaged build passes the bundled .js and needs no loader.
 */
function makeWorker(url: URL, data: JobWorkerData<unknown>, opts: JobOptions<unknown>): Worker {
  const common = { workerData: data, ...(opts.resourceLimits ? { resourceLimits: opts.resourceLimits } : {}), ...(opts.name ? { name: opts.name } : {}) };
  if (!/\.(c|m)?ts$/.test(url.pathname)) return new Worker(url, common);
  const tsxApi = tsxEsmApiUrl();
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { ...common, eval: true });
}

function tsxEsmApiUrl(): string {
  // The ESM build of tsx's API (its CommonJS build registers hooks by a path that breaks in a worker).
  const cjs = require.resolve('tsx/esm/api');
  const mjs = cjs.replace(/\.cjs$/, '.mjs');
  if (!existsSync(mjs)) throw new Error(`tsx's ESM loader API was not found beside ${cjs}; TypeScript job modules need tsx installed.`);
  return pathToFileURL(mjs).href;
}

export function startJob<I, P, R>(workerModule: string | URL, input: I, opts: JobOptions<P> = {}): JobHandle<R> {
  const url = moduleUrl(workerModule);
  const cancelFlag = new SharedArrayBuffer(4);
  const flag = new Int32Array(cancelFlag);
  let worker: Worker;
  let settle!: (o: JobOutcome<R>) => void;
  let settled = false;
  let forced = false;
  const result = new Promise<JobOutcome<R>>((resolve) => {
    settle = (o) => {
      if (settled) return;
      settled = true;
      resolve(o);
    };
  });
  const fail = (error: JobErrorInfo) => settle({ status: 'failed', error });
  if (url.protocol === 'file:' && !existsSync(fileURLToPath(url))) {
    fail({ kind: 'start', message: `The job module ${fileURLToPath(url)} does not exist.` });
    return { result, cancel() {}, terminate: async () => {}, threadId: -1 };
  }
  try {
    worker = makeWorker(url, { offsiteJob: { input, cancelFlag } }, opts as JobOptions<unknown>);
  } catch (e) {
    fail({ kind: 'start', message: `The job module ${fileURLToPath(url)} could not be started: ${e instanceof Error ? e.message : String(e)}` });
    return { result, cancel() {}, terminate: async () => {}, threadId: -1 };
  }
  worker.on('message', (m: WorkerMessage<P, R>) => {
    if (settled) return;
    if (m.type === 'progress') {
      try {
        opts.onProgress?.(m.value);
      } catch {
        // A failing progress listener must not end the job; the caller sees its own error elsewhere.
      }
    } else if (m.type === 'result') {
      settle(m.cancelled || Atomics.load(flag, 0) === 1 ? { status: 'cancelled', value: m.value, forced: false } : { status: 'done', value: m.value });
    } else if (m.type === 'error') fail(m.error);
  });
  worker.on('error', (e: Error & { code?: string }) => {
    if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') {
      fail({ kind: 'crash', name: e.name, message: 'The job ran out of memory and was stopped. Try a smaller batch or sequence length.' });
    } else {
      fail({ kind: 'crash', name: e.name, message: `The job stopped with an error: ${e.message}`, ...(e.stack ? { stack: e.stack } : {}) });
    }
  });
  worker.on('exit', (code) => {
    if (forced) settle({ status: 'cancelled', value: undefined, forced: true });
    else fail({ kind: 'exit', exitCode: code, message: `The job's worker ended (exit code ${code}) before reporting a result.` });
  });
  return {
    result,
    threadId: worker.threadId,
    cancel() {
      Atomics.store(flag, 0, 1);
    },
    async terminate() {
      Atomics.store(flag, 0, 1);
      forced = true;
      await worker.terminate();
    },
  };
}
