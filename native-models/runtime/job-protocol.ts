// The messages between a job host and its worker thread. Kept in one file so both sides agree.

/** What a worker sends to its host. */
export type WorkerMessage<P, R> =
  | { type: 'progress'; value: P }
  | { type: 'result'; value: R; cancelled: boolean }
  | { type: 'error'; error: JobErrorInfo };

export interface JobErrorInfo {
  /** thrown: the job threw; exit: the worker ended without a result; crash: the thread died (e.g. out of memory); start: the module could not be loaded. */
  kind: 'thrown' | 'exit' | 'crash' | 'start';
  message: string;
  name?: string;
  stack?: string;
  exitCode?: number;
}

/** The part of workerData the host reserves for the job machinery. */
export interface JobWorkerData<I> {
  offsiteJob: {
    input: I;
    /** Int32Array view over a SharedArrayBuffer: element 0 is 1 once cancel was asked. */
    cancelFlag: SharedArrayBuffer;
  };
}
