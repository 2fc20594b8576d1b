// A job worker for the worker-host tests: trains a float32 linear regression with the TrainStep
// API, reports progress each step, publishes its step count to shared memory (so the test knows
// exactly how far it was when it asked to cancel), and can fail in the ways a real job can.
import { runJob } from '../../../../native-models/runtime/job-worker';
import { compileTrainStep } from '../../../../native-models/train';

export interface ToyInput {
  steps: number;
  mode: 'train' | 'throw' | 'exit' | 'oom';
  /** Int32Array[1] the worker stores its completed step count into. */
  counter?: SharedArrayBuffer;
}
export interface ToyProgress { step: number; loss: number }
export interface ToyResult { steps: number; loss: number; firstLoss: number }

const D = 8;
const ROWS = 32;

runJob<ToyInput, ToyProgress, ToyResult>(async (input, ctx) => {
  if (input.mode === 'exit') process.exit(3);
  if (input.mode === 'oom') {
    const hog: number[][] = [];
    for (;;) hog.push(new Array(1 << 20).fill(Math.random()));
  }
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
  const wTrue = Float32Array.from({ length: D }, () => 2 * rand());
  const x = Float32Array.from({ length: ROWS * D }, () => 2 * rand());
  const y = new Float32Array(ROWS);
  for (let r = 0; r < ROWS; r++) for (let i = 0; i < D; i++) y[r]! += x[r * D + i]! * wTrue[i]!;

  const ts = await compileTrainStep(
    (g, p) => {
      const xs = g.input('x', 'float32', ['rows', D]);
      const ys = g.input('y', 'float32', ['rows', 1]);
      const d = g.sub(g.matmul(xs, p.w!), ys);
      return { loss: g.reduceMean(g.mul(d, d), [0, 1], false) };
    },
    { trainable: { w: { data: new Float32Array(D), shape: [D, 1] } }, optimizer: { type: 'adamw' }, schedule: { lr: 0.05 }, clip: 0, session: { intraOpThreads: 1 } },
  );
  const counter = input.counter ? new Int32Array(input.counter) : undefined;
  let state = ts.initState();
  let loss = NaN;
  let firstLoss = NaN;
  let step = 0;
  while (step < input.steps) {
    if (ctx.cancelled) break;
    if (input.mode === 'throw' && step === 3) throw new Error('deliberate failure at step 3');
    const r = await ts.step({ x: { data: x, dims: [ROWS, D] }, y: { data: y, dims: [ROWS, 1] } }, state);
    state = r.state;
    loss = r.loss;
    if (step === 0) firstLoss = loss;
    step++;
    if (counter) Atomics.store(counter, 0, step);
    ctx.progress({ step, loss });
  }
  await ts.dispose();
  return { steps: step, loss, firstLoss };
});
