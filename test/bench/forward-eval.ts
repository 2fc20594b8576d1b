// Bench part 4 (forward): evaluation tokens/s, ours vs PyTorch eager. Ours is the graph the
// evaluation suite scores with (buildTokenLogProbGraph: forward, log-softmax, the target's
// log-probability per position; fused inference kernels), opened as the runner opens it; the peer
// (forward_peer.py) runs the same model under torch.no_grad(). Repetitions alternate ours and the
// peer's one at a time (same load on a shared machine); both sides sum the log-probabilities so
// the report can show they computed the same thing.
import type * as ort from 'onnxruntime-node';
import { buildTokenLogProbGraph } from '../../native-models/models/graphs';
import { loadModel } from '../../native-models/models/load';
import { openGraphSession } from '../../native-models/models/runner';
import { toOrt } from '../../native-models/runtime/tensors';
import { encodeTensor } from '../oracle/run-python';
import { benchBatch, ensureBenchModel, forwardFlopsPerToken, SEQ, startPeer, type BenchSize } from './lora-train-step';
import { stats, type BenchSection, type Cell } from './report';

export interface ForwardBenchOptions {
  threads: number;
  warmup: number;
  reps: number;
  sizes: BenchSize[];
  modelRoot: string;
  /** Rows per evaluation batch (default 4). */
  batch?: number;
}

const PEER = new URL('./forward_peer.py', import.meta.url);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export async function benchForwardEval(o: ForwardBenchOptions, log: (m: string) => void = (m) => console.error(m)): Promise<BenchSection> {
  const B = o.batch ?? 4;
  const rows: Record<string, Cell>[] = [];
  const notes: string[] = [];
  for (const s of o.sizes) {
    const dir = await ensureBenchModel(o.modelRoot, s);
    const model = await loadModel(dir);
    log(`  ${s.label}: evaluation graph and PyTorch peer…`);
    const opened = await openGraphSession(buildTokenLogProbGraph(model, { contextLength: SEQ }), { provider: 'cpu', intraOpThreads: o.threads });
    const data = benchBatch(B, 4);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: toOrt('int64', data.ids, [B, SEQ]),
      target_ids: toOrt('int64', data.targets, [B, SEQ]),
      target_mask: toOrt('float32', new Float32Array(B * SEQ).fill(1), [B, SEQ]),
    };
    const peer = await startPeer(PEER, { model_dir: dir, threads: o.threads, input_ids: encodeTensor(data.ids, [B, SEQ]), targets: encodeTensor(data.targets, [B, SEQ]) });
    const oursMs: number[] = [];
    const torchMs: number[] = [];
    let sums = { ours: NaN, torch: NaN };
    try {
      for (let i = 0; i < o.warmup + o.reps; i++) {
        const t0 = performance.now();
        const out = await opened.session.run(feeds);
        const ms = performance.now() - t0;
        const t = await peer.call({ cmd: 'eval', n: 1 });
        if (i === 0) {
          const lp = out.token_logprobs!.data as Float32Array;
          let sum = 0;
          for (const v of lp) sum += v;
          sums = { ours: sum, torch: t.values![0]! };
        }
        if (i >= o.warmup) {
          oursMs.push(ms);
          torchMs.push(t.times_ms[0]!);
        }
      }
    } finally {
      await peer.close();
      await opened.session.release();
    }
    const tokens = B * SEQ;
    const ours = stats(oursMs);
    const torch = stats(torchMs);
    const pr = stats(oursMs.map((t, i) => torchMs[i]! / t));
    rows.push({
      model: s.label,
      batch: `${B} × ${SEQ}`,
      'ours ms (median, min–max)': `${round(ours.median, 1)} (${round(ours.min, 1)}–${round(ours.max, 1)})`,
      'PyTorch ms (median, min–max)': `${round(torch.median, 1)} (${round(torch.min, 1)}–${round(torch.max, 1)})`,
      'ours tokens/s': Math.round((tokens / ours.median) * 1000),
      'PyTorch tokens/s': Math.round((tokens / torch.median) * 1000),
      'tokens/s ratio ours ÷ PyTorch': round(torch.median / ours.median, 3),
      'per-rep ratio min–max': `${round(pr.min, 2)}–${round(pr.max, 2)}`,
      'ours GFLOP/s': round((forwardFlopsPerToken(s) * tokens) / ours.median / 1e6, 1),
      'Σ log p ours / PyTorch': `${sums.ours.toFixed(2)} / ${sums.torch.toFixed(2)}`,
      reps: ours.n,
    });
  }
  notes.push(
    `Same random LLaMA-style models as the LoRA section (no adapter), batch ${B} × ${SEQ} tokens, ${o.threads} thread(s) on both sides, warm-up ${o.warmup}, ${o.reps} alternating repetitions.`,
    'Ours: buildTokenLogProbGraph (the evaluation suite\'s scoring graph, fused RMSNorm/rotary/attention kernels) in one onnxruntime session. PyTorch: forward_peer.py, eager float32 under no_grad, log_softmax + gather.',
    'Forward FLOPs per token: 2·(block matmul weights + head) + 4·layers·seq·d (full-square attention).',
    'Generation tokens/s with and without the key/value cache are in the generation sections below (stories260K and a d 256 LLaMA).',
  );
  return {
    id: 'forward-eval',
    title: 'Forward-only evaluation: ours vs PyTorch eager',
    description: `Tokens per second of scoring a batch (forward + per-token log-probabilities), median of ${o.reps} alternating repetitions.`,
    columns: ['model', 'batch', 'ours ms (median, min–max)', 'PyTorch ms (median, min–max)', 'ours tokens/s', 'PyTorch tokens/s', 'tokens/s ratio ours ÷ PyTorch', 'per-rep ratio min–max', 'ours GFLOP/s', 'Σ log p ours / PyTorch', 'reps'],
    rows,
    notes,
  };
}
