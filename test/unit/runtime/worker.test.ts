// The worker job host: a real training job in a worker thread, cancel within one step, and every
// way a worker can fail coming back as a value.
import { describe, expect, it } from 'vitest';
import { startJob } from '../../../native-models/runtime/jobs';
import type { ToyInput, ToyProgress, ToyResult } from './workers/toy-train';

const WORKER = new URL('./workers/toy-train.ts', import.meta.url);

describe('worker job host', () => {
  it('trains a toy regression end to end in a worker thread with the TrainStep API', async () => {
    const seen: ToyProgress[] = [];
    const job = startJob<ToyInput, ToyProgress, ToyResult>(WORKER, { steps: 300, mode: 'train' }, { onProgress: (p) => seen.push(p) });
    const out = await job.result;
    expect(out.status).toBe('done');
    if (out.status !== 'done') return;
    expect(out.value.steps).toBe(300);
    expect(seen.length).toBe(300);
    expect(seen[0]!.step).toBe(1);
    expect(out.value.firstLoss).toBeGreaterThan(0.5);
    // Stated threshold: mean squared error below 1e-3 after 300 AdamW steps (starts above 0.5).
    expect(out.value.loss).toBeLessThan(1e-3);
  });

  it('cancel stops the job within one step', async () => {
    const counter = new SharedArrayBuffer(4);
    const steps = new Int32Array(counter);
    let atCancel = -1;
    const job = startJob<ToyInput, ToyProgress, ToyResult>(WORKER, { steps: 1_000_000, mode: 'train', counter }, {
      onProgress: (p) => {
        if (p.step >= 5 && atCancel < 0) {
          atCancel = Atomics.load(steps, 0);
          job.cancel();
        }
      },
    });
    const out = await job.result;
    expect(out.status).toBe('cancelled');
    if (out.status !== 'cancelled') return;
    expect(atCancel).toBeGreaterThanOrEqual(5);
    expect(out.value).toBeDefined();
    expect(out.value!.steps).toBeLessThanOrEqual(atCancel + 1);
    expect(out.value!.steps).toBeGreaterThanOrEqual(atCancel);
  });

  it('returns an error thrown inside the worker as a value', async () => {
    const out = await startJob<ToyInput, ToyProgress, ToyResult>(WORKER, { steps: 100, mode: 'throw' }).result;
    expect(out.status).toBe('failed');
    if (out.status !== 'failed') return;
    expect(out.error.kind).toBe('thrown');
    expect(out.error.message).toBe('deliberate failure at step 3');
  });

  it('returns a worker that calls process.exit as a value', async () => {
    const out = await startJob<ToyInput, ToyProgress, ToyResult>(WORKER, { steps: 100, mode: 'exit' }).result;
    expect(out.status).toBe('failed');
    if (out.status !== 'failed') return;
    expect(out.error.kind).toBe('exit');
    expect(out.error.exitCode).toBe(3);
    expect(out.error.message).toMatch(/exit code 3/);
  });

  it('returns a worker that runs out of memory as a value', async () => {
    const out = await startJob<ToyInput, ToyProgress, ToyResult>(WORKER, { steps: 100, mode: 'oom' }, { resourceLimits: { maxOldGenerationSizeMb: 48 } }).result;
    expect(out.status).toBe('failed');
    if (out.status !== 'failed') return;
    expect(out.error.kind).toBe('crash');
    expect(out.error.message).toMatch(/out of memory/);
  });

  it('reports a job module that does not exist as a value', async () => {
    const out = await startJob(new URL('./workers/no-such-job.ts', import.meta.url), {}).result;
    expect(out.status).toBe('failed');
    if (out.status !== 'failed') return;
    expect(out.error.kind).toBe('start');
    expect(out.error.message).toMatch(/no-such-job\.ts does not exist/);
  });
});
