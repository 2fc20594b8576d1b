// Bench part 5, overheads around the train step (the audit log's cost is audit-overhead.ts):
//  - worker messaging: a tuning run lives in a worker thread (runtime/jobs) and posts one `step`
//    progress message per update; measured through the real startJob/runJob path (this file is
//    also the job's worker module): the worker's cost of posting (structured clone) and the
//    delivery latency to the host, plus a plain worker_threads echo round trip;
//  - host↔session copies: every step feeds the trainable parameters and both AdamW moments into
//    the session and fetches their next values into preallocated buffers. A graph with exactly
//    the train step's inputs and outputs whose body is Identity (plus one reduction so the mask is
//    read) prices that traffic: JS feed building + session.run with the copies and per-tensor
//    bookkeeping, next to a one-tensor graph for session.run's fixed cost.
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { Graph } from '../../native-models/onnx';
import { openGraphSession } from '../../native-models/models/runner';
import { startJob } from '../../native-models/runtime/jobs';
import { runJob } from '../../native-models/runtime/job-worker';
import { toOrt } from '../../native-models/runtime/tensors';
import { stats, type BenchSection, type Cell } from './report';

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

// ── host↔session copies ──

export interface IoProbeInput {
  model: string;
  /** Trainable tensors and their shapes (the LoRA adapter). */
  trainable: Record<string, number[]>;
  batch: number;
  seq: number;
  /** The train step's median ms in the same run (for the share). */
  stepMs: number;
}

interface IoProbeResult {
  tensorsIn: number;
  tensorsOut: number;
  bytesIn: number;
  bytesOut: number;
  feedBuildUs: number[];
  ioRunMs: number[];
  fixedRunMs: number[];
}

async function probeIo(p: IoProbeInput, threads: number, reps: number): Promise<IoProbeResult> {
  const g = new Graph('io_probe');
  const names: Array<{ name: string; shape: number[] }> = [];
  for (const [n, shape] of Object.entries(p.trainable)) for (const name of [n, `optimizer/m/${n}`, `optimizer/v/${n}`]) names.push({ name, shape });
  for (const { name, shape } of names) g.output(g.unary('Identity', g.input(name, 'float32', shape)), `${name}/next`);
  g.input('input_ids', 'int64', [p.batch, p.seq]);
  g.input('targets', 'int64', [p.batch, p.seq]);
  const mask = g.input('mask', 'float32', [p.batch, p.seq]);
  g.output(g.reduce('ReduceSum', mask, [0, 1], false), 'train/loss');
  const io = await openGraphSession(g, { provider: 'cpu', intraOpThreads: threads });
  const tiny = new Graph('fixed_cost');
  tiny.output(tiny.unary('Identity', tiny.input('x', 'float32', [1])), 'y');
  const fixed = await openGraphSession(tiny, { provider: 'cpu', intraOpThreads: threads });
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const host = names.map(({ name, shape }) => ({ name, shape, a: new Float32Array(size(shape)), b: new Float32Array(size(shape)) }));
  const ids = new BigInt64Array(p.batch * p.seq).fill(1n);
  const maskData = new Float32Array(p.batch * p.seq).fill(1);
  const r: IoProbeResult = {
    tensorsIn: names.length + 3,
    tensorsOut: names.length + 1,
    bytesIn: host.reduce((a, h) => a + h.a.byteLength, 0) + 2 * ids.byteLength + maskData.byteLength,
    bytesOut: host.reduce((a, h) => a + h.b.byteLength, 0) + 4,
    feedBuildUs: [],
    ioRunMs: [],
    fixedRunMs: [],
  };
  const xf = { x: toOrt('float32', Float32Array.of(1), [1]) };
  try {
    for (let i = 0; i < reps + 2; i++) {
      // As compileTrainStep does each step: wrap host arrays as tensors, outputs into preallocated buffers.
      const t0 = performance.now();
      const feeds: Record<string, ort.Tensor> = { input_ids: toOrt('int64', ids, [p.batch, p.seq]), targets: toOrt('int64', ids, [p.batch, p.seq]), mask: toOrt('float32', maskData, [p.batch, p.seq]) };
      const fetches: Record<string, ort.Tensor | null> = { 'train/loss': null };
      for (const h of host) {
        feeds[h.name] = toOrt('float32', h.a, h.shape);
        fetches[`${h.name}/next`] = toOrt('float32', h.b, h.shape);
      }
      const t1 = performance.now();
      await io.session.run(feeds, fetches);
      const t2 = performance.now();
      await fixed.session.run(xf);
      const t3 = performance.now();
      for (const h of host) [h.a, h.b] = [h.b, h.a];
      if (i >= 2) {
        r.feedBuildUs.push((t1 - t0) * 1000);
        r.ioRunMs.push(t2 - t1);
        r.fixedRunMs.push(t3 - t2);
      }
    }
  } finally {
    await io.session.release();
    await fixed.session.release();
  }
  return r;
}

// ── worker messaging ──

interface WorkerJobInput { benchOverheads: true; messages: number; layers: number }
interface StampedStep { kind: 'step'; step: number; totalSteps: number; loss: number; lr: number; gradNorm: number; selected: number[]; importance: number[]; tokensPerSecond: number; etaSeconds: number; elapsedSeconds: number; sentAt: number }

const now = () => performance.timeOrigin + performance.now();

function stepMessage(i: number, layers: number): StampedStep {
  return {
    kind: 'step', step: i, totalSteps: 1000, loss: 2.5 - i * 1e-3, lr: 1e-4, gradNorm: 0.7, selected: [0, Math.min(1, layers - 1)],
    importance: Array.from({ length: layers }, (_, l) => 1 + l / layers), tokensPerSecond: 1234.5, etaSeconds: 600, elapsedSeconds: i, sentAt: 0,
  };
}

async function workerMessaging(messages: number, layers: number): Promise<{ postUs: number[]; deliveryUs: number[]; echoUs: number[]; bytes: number }> {
  const deliveryUs: number[] = [];
  const job = startJob<WorkerJobInput, StampedStep, number[]>(new URL(import.meta.url), { benchOverheads: true, messages, layers }, {
    onProgress: (m) => deliveryUs.push((now() - m.sentAt) * 1000),
  });
  const out = await job.result;
  if (out.status !== 'done') throw new Error(`The messaging worker did not finish: ${out.status === 'failed' ? out.error.message : out.status}.`);
  // Plain worker_threads round trip of the same message (host → worker → host).
  const echo = new Worker("require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m));", { eval: true });
  const echoUs: number[] = [];
  try {
    for (let i = 0; i < messages; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        echo.once('message', () => resolve());
        echo.postMessage(stepMessage(i, layers));
      });
      if (i >= 10) echoUs.push((performance.now() - t0) * 1000);
    }
  } finally {
    await echo.terminate();
  }
  return { postUs: out.value.slice(10), deliveryUs: deliveryUs.slice(10), echoUs, bytes: JSON.stringify(stepMessage(1, layers)).length };
}

// The worker side: post `messages` step messages, one every 2 ms (as a fast tuning loop would),
// and return how long each post blocked the worker.
if (!isMainThread && (workerData as { offsiteJob?: { input?: WorkerJobInput } } | undefined)?.offsiteJob?.input?.benchOverheads) {
  runJob<WorkerJobInput, StampedStep, number[]>(async (input, ctx) => {
    const post: number[] = [];
    for (let i = 0; i < input.messages; i++) {
      const m = stepMessage(i, input.layers);
      const t0 = performance.now();
      m.sentAt = now();
      ctx.progress(m);
      post.push((performance.now() - t0) * 1000);
      await new Promise((r) => setTimeout(r, 2));
    }
    return post;
  });
}

// ── the sections ──

export interface OverheadsOptions {
  threads: number;
  reps: number;
  io: IoProbeInput[];
  /** Step time (ms) and layer count of the model the messaging share is quoted against. */
  messagingReference: { model: string; stepMs: number; layers: number } | null;
}

export async function benchOverheads(o: OverheadsOptions): Promise<BenchSection[]> {
  const ioRows: Record<string, Cell>[] = [];
  for (const p of o.io) {
    const r = await probeIo(p, o.threads, o.reps);
    const io = stats(r.ioRunMs);
    const fixed = stats(r.fixedRunMs);
    const feed = stats(r.feedBuildUs);
    ioRows.push({
      model: p.model,
      'tensors in / out': `${r.tensorsIn} / ${r.tensorsOut}`,
      'MiB in / out': `${round(r.bytesIn / 2 ** 20, 3)} / ${round(r.bytesOut / 2 ** 20, 3)}`,
      'feed building µs': round(feed.median, 0),
      'I/O graph run ms (min–max)': `${round(io.median, 3)} (${round(io.min, 3)}–${round(io.max, 3)})`,
      'fixed session.run ms': round(fixed.median, 3),
      'train step ms': round(p.stepMs, 1),
      'I/O share of step %': round(((io.median + feed.median / 1000) / p.stepMs) * 100, 3),
      reps: io.n,
    });
  }
  const sections: BenchSection[] = [{
    id: 'overheads-io',
    title: 'Overheads: host↔session copies per LoRA train step',
    description: `A graph with the train step's exact inputs (LoRA parameters, both AdamW moments, the [batch, ${o.io[0]?.seq ?? 256}] batch) and outputs (next parameters and moments into preallocated buffers), body Identity: what moving the state in and out of onnxruntime costs per step. Median of ${o.reps} runs, ${o.threads} thread(s).`,
    columns: ['model', 'tensors in / out', 'MiB in / out', 'feed building µs', 'I/O graph run ms (min–max)', 'fixed session.run ms', 'train step ms', 'I/O share of step %', 'reps'],
    rows: ioRows,
    notes: [
      'Frozen weights are initializers loaded once with the session: they cross no boundary per step. onnxruntime-node wraps input typed arrays without copying; the Identity kernels copy each tensor once, so the probe is an upper bound on the per-step copy cost.',
    ],
  }];
  if (o.messagingReference) {
    const ref = o.messagingReference;
    const m = await workerMessaging(Math.max(60, o.reps * 20), ref.layers);
    const post = stats(m.postUs);
    const del = stats(m.deliveryUs);
    const echo = stats(m.echoUs);
    sections.push({
      id: 'overheads-worker',
      title: 'Overheads: worker messaging per step',
      description: `One \`step\` progress message (the tuning loop's per-update message, ${ref.layers}-layer importance vector) per update, sent through startJob/runJob (runtime/jobs) from a worker thread; ${m.postUs.length} messages, one every 2 ms, after 10 warm-up messages.`,
      columns: ['path', 'message bytes (JSON)', 'median µs', 'min–max µs', 'share of a step %'],
      rows: [
        { path: 'worker: ctx.progress() (structured clone + post; blocks the training thread)', 'message bytes (JSON)': m.bytes, 'median µs': round(post.median, 1), 'min–max µs': `${round(post.min, 1)}–${round(post.max, 1)}`, 'share of a step %': round((post.median / 1000 / ref.stepMs) * 100, 4) },
        { path: 'delivery to the host listener (one way)', 'message bytes (JSON)': m.bytes, 'median µs': round(del.median, 1), 'min–max µs': `${round(del.min, 1)}–${round(del.max, 1)}`, 'share of a step %': null },
        { path: 'worker_threads echo round trip (host → worker → host)', 'message bytes (JSON)': m.bytes, 'median µs': round(echo.median, 1), 'min–max µs': `${round(echo.min, 1)}–${round(echo.max, 1)}`, 'share of a step %': round((echo.median / 1000 / ref.stepMs) * 100, 4) },
      ],
      notes: [`Shares are of the ${ref.model} LoRA train step measured in this run (${round(ref.stepMs, 1)} ms). Delivery happens on the main thread while the worker trains, so only the post cost is on the training path.`],
    });
  }
  return sections;
}
