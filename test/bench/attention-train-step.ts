// Bench section: one full train step (forward, backward, clipping, AdamW, schedule) of a causal
// self-attention block, ours (ORT, one fused graph) vs PyTorch 1.13 with the same thread count.
import { loadavg } from 'node:os';
import { toOrt } from '../../native-models/runtime/tensors';
import { onnxruntimeVersion } from '../../native-models/runtime/providers';
import { compileTrainStep } from '../../native-models/train';
import { attentionBatch, attentionModel, attentionParams, type AttentionConfig } from '../oracle/models';
import { encodeTensor, runPython, type Numeric } from '../oracle/run-python';
import { stats, type BenchSection, type Cell } from './report';

export interface AttentionBenchOptions {
  threads: number;
  warmup: number;
  reps: number;
}

const PEER = new URL('./attention_peer.py', import.meta.url);

interface PeerBlas {
  torch: string;
  build: Record<string, string>;
  libraries: string[];
  openblas: { core: string; config: string; threads: number } | null;
  threads: number;
}
interface PeerOut { times_ms: number[]; losses: number[]; threads: number; blas: PeerBlas }

function describeBlas(b: PeerBlas): string {
  const lib = b.openblas ? `${b.openblas.config} (core ${b.openblas.core}, ${b.openblas.threads} BLAS threads)` : b.libraries.join(', ') || 'no BLAS library mapped';
  return `${lib}; build BLAS_INFO=${b.build.BLAS_INFO ?? '?'}, LAPACK_INFO=${b.build.LAPACK_INFO ?? '?'}`;
}

export async function benchAttentionTrainStep(o: AttentionBenchOptions): Promise<{ section: BenchSection; machine: Record<string, Cell> }> {
  const c: AttentionConfig = { batch: 4, seq: 128, d: 256, heads: 4, vocab: 512, norm: 'rms', eps: 1e-5 };
  const params = attentionParams(c, 11);
  const b = attentionBatch(c, 12);
  const shape = [c.batch, c.seq];
  const opt = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, warmup: 10, total: 1000, decay: 'cosine' as const, min_lr: 0 };

  const ts = await compileTrainStep(attentionModel(c), {
    trainable: params,
    optimizer: { type: 'adamw', beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: opt.weight_decay },
    schedule: { lr: opt.lr, warmupSteps: opt.warmup, totalSteps: opt.total, decay: opt.decay },
    clip: 1.0,
    session: { intraOpThreads: o.threads },
  });
  const batch = { tokens: toOrt('int64', b.tokens, shape), labels: toOrt('int64', b.labels, shape), mask: toOrt('float32', b.mask, shape) };
  let state = ts.initState();
  const oursMs: number[] = [];
  const oursLosses: number[] = [];
  for (let i = 0; i < o.warmup + o.reps; i++) {
    const t0 = performance.now();
    const r = await ts.step(batch, state);
    const dt = performance.now() - t0;
    state = r.state;
    oursLosses.push(r.loss);
    if (i >= o.warmup) oursMs.push(dt);
  }
  await ts.dispose();

  const peer = await runPython<PeerOut>(PEER, {
    threads: o.threads,
    warmup: o.warmup,
    reps: o.reps,
    config: { d: c.d, heads: c.heads, norm: c.norm, eps: c.eps },
    params: Object.fromEntries(Object.entries(params).map(([n, p]) => [n, encodeTensor(p.data as Numeric, p.shape)])),
    batch: { tokens: encodeTensor(b.tokens, shape), labels: encodeTensor(b.labels, shape) },
    optimizer: opt,
    clip: 1.0,
  });

  const tokens = c.batch * c.seq;
  const ours = stats(oursMs);
  const torch = stats(peer.times_ms);
  const row = (name: string, s: ReturnType<typeof stats>, threads: number): Record<string, Cell> => ({
    implementation: name,
    threads,
    'median ms': round(s.median),
    'min–max ms': `${round(s.min)}–${round(s.max)}`,
    'tokens/s': Math.round((tokens / s.median) * 1000),
    reps: s.n,
  });
  const firstLossGap = Math.abs(oursLosses[0]! - peer.losses[0]!);
  return {
    machine: { torch: peer.blas.torch, 'torch BLAS': describeBlas(peer.blas), 'torch BLAS libraries': peer.blas.libraries.join(', '), onnxruntime: onnxruntimeVersion(), 'load average during bench (1 min)': loadavg()[0]!.toFixed(2) },
    section: {
      id: 'attention-train-step',
      title: 'Train step: causal self-attention block (d 256, 4 heads, seq 128, batch 4, vocab 512)',
      description:
        `One full update — embedding, RMSNorm, attention, output projection, vocabulary head, cross-entropy, backward, clipping at 1.0, AdamW with warmup + cosine — timed after ${o.warmup} warm-up steps, ${o.reps} repetitions, same thread count on both sides.`,
      columns: ['implementation', 'threads', 'median ms', 'min–max ms', 'tokens/s', 'reps'],
      rows: [
        row(`ours (onnxruntime-node ${onnxruntimeVersion()}, fused train-step graph)`, ours, o.threads),
        row(`PyTorch ${peer.blas.torch}`, torch, peer.threads),
        { implementation: 'ratio ours ÷ PyTorch (median time; > 1 = slower)', threads: null, 'median ms': round(ours.median / torch.median, 3), 'min–max ms': null, 'tokens/s': null, reps: null },
      ],
      notes: [
        `PyTorch BLAS: ${describeBlas(peer.blas)}; the peer runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its environment.`,
        `Same weights and batch on both sides; first-step loss ours ${oursLosses[0]!.toFixed(6)} vs PyTorch ${peer.losses[0]!.toFixed(6)} (difference ${firstLossGap.toExponential(1)}).`,
      ],
    },
  };
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
