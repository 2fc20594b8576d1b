// Bench part 2, the roofline: one large float32 MatMul run by onnxruntime (MLAS) in this process,
// the most FLOP/s our engine can get from this machine and thread count. The LoRA train-step
// bench runs it interleaved with its steps (train step, PyTorch step, MatMul, …), so the achieved
// fraction compares figures taken under the same load on a shared machine.
import type * as ort from 'onnxruntime-node';
import { Graph } from '../../native-models/onnx';
import { openGraphSession } from '../../native-models/models/runner';
import type { OpenedSession } from '../../native-models/runtime/session';
import { toOrt } from '../../native-models/runtime/tensors';
import { stats, type BenchSection, type Cell } from './report';

export interface MatMulProbe {
  /** n × n · n × n. */
  readonly size: number;
  /** Floating-point operations of one run (2n³). */
  readonly flops: number;
  /** Runs the MatMul once; returns its wall time in ms. */
  run(): Promise<number>;
  dispose(): Promise<void>;
}

function filled(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    a[i] = x / 2 ** 32 - 0.5;
  }
  return a;
}

/**
 * A = input, B = initializer (as a frozen weight is in our graphs), output written into a
 * preallocated buffer, so a run is the MatMul plus session.run's fixed cost (≈ 0.1 ms).
 */
export async function createMatMulProbe(threads: number, size = 2048): Promise<MatMulProbe> {
  const g = new Graph('roofline');
  const a = g.input('a', 'float32', [size, size]);
  const b = g.initializer('b', filled(size * size, 2), [size, size]);
  g.output(g.matmul(a, b), 'c');
  const opened: OpenedSession = await openGraphSession(g, { provider: 'cpu', intraOpThreads: threads });
  const feeds = { a: toOrt('float32', filled(size * size, 1), [size, size]) };
  const fetches: Record<string, ort.Tensor> = { c: toOrt('float32', new Float32Array(size * size), [size, size]) };
  return {
    size,
    flops: 2 * size ** 3,
    async run() {
      const t0 = performance.now();
      await opened.session.run(feeds, fetches);
      return performance.now() - t0;
    },
    async dispose() {
      await opened.session.release();
    },
  };
}

/** What the train-step bench measured for one model size (medians over interleaved repetitions). */
export interface RooflineSample {
  model: string;
  /** Model FLOPs of one train step (see lora-train-step.ts for the count). */
  stepFlops: number;
  stepMs: number[];
  matmulMs: number[];
  /** PyTorch's own 2048³ MatMul in its process (OpenBLAS), for the BLAS comparison. */
  torchMatmulMs: number[];
  matmulFlops: number;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const r1 = (x: number) => Math.round(x * 10) / 10;

export function rooflineSection(samples: RooflineSample[], threads: number, notes: string[] = []): BenchSection {
  const rows: Record<string, Cell>[] = samples.map((s) => {
    const step = stats(s.stepMs);
    const mm = stats(s.matmulMs);
    const gStep = s.stepFlops / step.median / 1e6;
    // The roofline is what the matrix unit can do: the best probe run, not a typical one.
    const gMm = s.matmulFlops / mm.min / 1e6;
    // Same-load ratio per interleaved pair: spread of the fraction.
    const pair = s.stepMs.map((t) => s.stepFlops / t / (s.matmulFlops / mm.min));
    const pr = stats(pair);
    const torchMm = s.torchMatmulMs.length ? s.matmulFlops / stats(s.torchMatmulMs).median / 1e6 : null;
    return {
      model: s.model,
      'train step GFLOP': r1(s.stepFlops / 1e9),
      'train step GFLOP/s': r1(gStep),
      'ORT MatMul GFLOP/s': r1(gMm),
      'fraction of roofline': r3(gStep / gMm),
      'pair fractions min–max': `${r3(pr.min)}–${r3(pr.max)}`,
      'PyTorch MatMul GFLOP/s': torchMm === null ? null : r1(torchMm),
      reps: step.n,
    };
  });
  return {
    id: 'roofline',
    title: 'Roofline: achieved FLOP/s of the LoRA train step ÷ one large ORT MatMul',
    description: `Roofline = best GFLOP/s (fastest of the repetitions) of one ${samples[0] ? Math.round(Math.cbrt(samples[0].matmulFlops / 2)) : 2048}³ float32 MatMul in onnxruntime (MLAS, ${threads} thread(s)), run interleaved with the train steps of the LoRA section (train step, PyTorch step, MatMul, …). Train-step FLOPs are counted from the architecture (see the LoRA section's notes). Target: ≥ 0.40 at d 768 / 12 layers.`,
    columns: ['model', 'train step GFLOP', 'train step GFLOP/s', 'ORT MatMul GFLOP/s', 'fraction of roofline', 'pair fractions min–max', 'PyTorch MatMul GFLOP/s', 'reps'],
    rows,
    notes,
  };
}
