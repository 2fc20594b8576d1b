// Bench section: a LoRA train step with the IST sampler (25% of the layers per step) against all
// layers, on an 8-layer LLaMA-style model (d 256, 8 heads, SwiGLU 688, vocab 512), batch 4 × 128
// tokens, LoRA r 8 on q_proj and v_proj (the ENGINE-NOTES PyTorch reference configuration).
// Time: one process compiles both train steps and alternates them update by update (all, ist, all,
// ist, …), so both see the same machine load (the machine is shared); IST's time per update
// includes its importance updates (3 no-gradient forward passes every 10 updates). Memory: each
// variant also runs the real tuning loop (native-models/tune) in a process of its own, whose peak
// RSS is reported.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultThreads } from '../../native-models/runtime/providers';
import { Rng } from '../../native-models/data/prng';
import { loadModel } from '../../native-models/models/load';
import { crossEntropy } from '../../native-models/nn/loss';
import { createLayerSampler } from '../../native-models/train/ist';
import { compileTrainStep, type ParamInit } from '../../native-models/train/train-step';
import { forwardWith, prepareAdapter, runTuning, TUNE_DEFAULTS, type TuneConfig, type TuneProgress } from '../../native-models/tune';
import { writeTinyLlama } from '../unit/tune/tiny-model';
import { stats, type BenchSection } from './report';

export interface IstBenchOptions {
  threads?: number;
  warmup?: number;
  /** Measured updates per variant (at least 20, so two importance updates fall inside). */
  reps?: number;
}

interface VariantResult {
  variant: string;
  wallMs: number[];
  stepMs: number[];
  peakRssMiB: number;
  tokensPerSecond: number;
  updates: number;
}

const SELF = fileURLToPath(import.meta.url);
const LAYERS = 8;
const SEQ = 129; // 128 positions per row
const BATCH = 4;

async function runVariant(variant: 'ist' | 'all', model: string, data: string, out: string, threads: number, warmup: number, reps: number): Promise<VariantResult> {
  const wall: number[] = [];
  const step: number[] = [];
  let last = performance.now();
  let lastElapsed = 0;
  let updates = 0;
  const r = await runTuning(
    { ...TUNE_DEFAULTS, model, data, out, sampler: variant, steps: warmup + reps, rank: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj'], lr: 1e-4, batchSize: BATCH, seqLen: SEQ, seed: 1, provider: 'cpu', threads, checkpointEvery: 1_000_000 },
    {
      progress: (p: TuneProgress) => {
        if (p.kind === 'importance') updates++;
        if (p.kind !== 'step') return;
        const now = performance.now();
        if (p.step >= warmup) {
          wall.push(now - last);
          step.push((p.elapsedSeconds - lastElapsed) * 1000);
        }
        last = now;
        lastElapsed = p.elapsedSeconds;
      },
    },
  );
  return { variant, wallMs: wall, stepMs: step, peakRssMiB: process.resourceUsage().maxRSS / 1024, tokensPerSecond: r.tokensPerSecond, updates };
}


interface PairedResult {
  allMs: number[];
  istMs: number[];
}

/** Both train steps in one process, alternating update by update (same load for both). */
async function runPaired(modelPath: string, threads: number, warmup: number, reps: number): Promise<PairedResult> {
  const model = await loadModel(modelPath);
  const c: TuneConfig = { ...TUNE_DEFAULTS, model: modelPath, data: '', out: '', rank: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj'], seed: 1 };
  const adapter = await prepareAdapter(model, c);
  const trainable: Record<string, ParamInit> = Object.fromEntries([...adapter.initial].map(([n, t]) => [n, { data: t.data, shape: t.shape }]));
  const frozen: Record<string, ParamInit> = {};
  for (const [n, w] of model.weights) if (!(n in trainable)) frozen[n] = { data: w.data, shape: w.shape };
  const session = { provider: 'cpu' as const, intraOpThreads: threads };
  const common = { trainable, frozen, optimizer: { type: 'adamw' as const }, schedule: { lr: 1e-4 }, clip: 1.0, session };
  const fn = (g: Parameters<typeof forwardWith>[3], p: Parameters<typeof forwardWith>[4]) => {
    const f = forwardWith(model, adapter, SEQ, g, p, { dropout: false });
    return { loss: crossEntropy(g, f.logits, f.targets, f.mask), blocks: f.blocks };
  };
  const all = await compileTrainStep(fn, common);
  const ist = await compileTrainStep(fn, { ...common, layers: { layerOf: (n: string) => adapter.layerOf(n) } });
  // The suppression passes as the tuning engine runs them: a loss-only pass through the IST train
  // step itself, with each suppressed layer's LoRA B scaled (no second session, no second copy of
  // the frozen weights).
  const suppressed = (params: Record<string, Float32Array | Float64Array>, scales: Float32Array) => {
    const out = { ...params };
    for (const m of adapter.lora!.modules) if (scales[m.layer] !== 1) out[m.keyB] = params[m.keyB]!.map((v) => v * scales[m.layer]!);
    return out;
  };
  const T = SEQ - 1;
  const rng = new Rng(3);
  const ids = BigInt64Array.from({ length: BATCH * T }, () => BigInt(1 + rng.int(511)));
  const tgt = BigInt64Array.from({ length: BATCH * T }, () => BigInt(1 + rng.int(511)));
  const batch = { input_ids: { data: ids, dims: [BATCH, T] }, targets: { data: tgt, dims: [BATCH, T] }, mask: { data: new Float32Array(BATCH * T).fill(1), dims: [BATCH, T] } };
  const sampler = createLayerSampler({ kind: 'ist', layers: LAYERS, seed: 1 });
  let sAll = all.initState();
  let sIst = ist.initState();
  const out: PairedResult = { allMs: [], istMs: [] };
  for (let k = 0; k < warmup + reps; k++) {
    let t0 = performance.now();
    sAll = (await all.step(batch, sAll)).state;
    const allMs = performance.now() - t0;
    t0 = performance.now();
    if (sampler.needsImportanceUpdate(k)) {
      await sampler.updateImportance(async (scales) => {
        return ist.forwardLoss(batch, suppressed(sIst.params, scales));
      });
    }
    sIst = (await ist.step(batch, sIst, { selected: sampler.select(k) })).state;
    const istMs = performance.now() - t0;
    if (k >= warmup) {
      out.allMs.push(allMs);
      out.istMs.push(istMs);
    }
  }
  await all.dispose();
  await ist.dispose();
  return out;
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

export async function benchIst(o: IstBenchOptions = {}): Promise<BenchSection> {
  const threads = o.threads ?? defaultThreads();
  const warmup = o.warmup ?? 3;
  const reps = Math.max(20, o.reps ?? 20);
  const dir = mkdtempSync(join(tmpdir(), 'offsite-bench-ist-'));
  try {
    const model = join(dir, 'llama8');
    await writeTinyLlama(model, { layers: LAYERS, hidden: 256, intermediate: 688, heads: 8, kvHeads: 8, vocab: 512, positions: 256, seed: 5 });
    let x = 7;
    const rows = Array.from({ length: 64 }, () => JSON.stringify({ tokens: Array.from({ length: SEQ }, () => {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      return 1 + (x % 511);
    }) }));
    const data = join(dir, 'data.jsonl');
    writeFileSync(data, `${rows.join('\n')}\n`);
    const child = (args: string[]) => {
      const p = spawnSync(process.execPath, ['--import', 'tsx', SELF, ...args, '--model', model, '--threads', String(threads), '--warmup', String(warmup), '--reps', String(reps)], { encoding: 'utf8', timeout: 1_800_000, maxBuffer: 1 << 24 });
      if (p.status !== 0) throw new Error(`The bench process (${args.join(' ')}) failed: ${p.stderr.slice(-2000)}`);
      return JSON.parse(p.stdout.trim().split('\n').pop()!) as unknown;
    };
    const paired = child(['--paired']) as PairedResult;
    // A fresh process per variant for memory: its peak RSS is its own.
    const results = (['all', 'ist'] as const).map((variant) => child(['--variant', variant, '--data', data, '--out', join(dir, `run-${variant}`)]) as VariantResult);
    const [all, ist] = results as [VariantResult, VariantResult];
    const med = (xs: number[]) => stats(xs).median;
    const ratio = med(paired.istMs) / med(paired.allMs);
    // Per-update ratios of the pairs (same load within a pair), for the spread.
    const pairRatios = paired.istMs.map((x, i) => x / paired.allMs[i]!);
    return {
      id: 'ist',
      title: 'IST train step vs all layers (LoRA r 8 on q,v; 8-layer LLaMA-style, batch 4 × 128)',
      description: `Median over ${reps} alternating update pairs after ${warmup} warm-up pairs, ${threads} thread(s). IST trains floor(0.25·8) = 2 layers per update; its time includes its importance updates (3 no-gradient forward passes every 10 updates). Peak RSS and tokens/s from one tuning-loop process per variant.`,
      columns: ['variant', 'ms/update (paired)', 'tokens/s (own run)', 'peak RSS MiB', 'importance updates'],
      rows: [
        { variant: 'all', 'ms/update (paired)': round(med(paired.allMs)), 'tokens/s (own run)': Math.round(all.tokensPerSecond), 'peak RSS MiB': round(all.peakRssMiB), 'importance updates': all.updates },
        { variant: 'ist', 'ms/update (paired)': round(med(paired.istMs)), 'tokens/s (own run)': Math.round(ist.tokensPerSecond), 'peak RSS MiB': round(ist.peakRssMiB), 'importance updates': ist.updates },
        { variant: 'ist / all', 'ms/update (paired)': round(ratio, 3), 'tokens/s (own run)': null, 'peak RSS MiB': round(ist.peakRssMiB / all.peakRssMiB, 3), 'importance updates': null },
      ],
      notes: [
        `Target: IST at ≤ 0.6× the all-layers step time. Measured ${round(ratio, 3)}× (pair ratios ${round(Math.min(...pairRatios), 2)}–${round(Math.max(...pairRatios), 2)}).`,
        'Bound: with LoRA the parameter gradients are small, so an update is ≈ forward (every layer, always) + activation backward from the top down to the lowest selected layer. With 2 of 8 layers drawn uniformly the lowest is layer 2 on average, so backward still crosses ~6 of 8 blocks: roughly (8 + 6) / (8 + 8) ≈ 0.9 if backward cost per block equals forward; backward costs more than forward here, which helps IST. No LoRA update can go below ≈ (8 + 1) / 16 even when only the top layer is chosen.',
        'IST runs its suppression passes through its own train-step session (TrainStep.forwardLoss: no layer selected, so the head and every block backward and every update sit in skipped If branches; a suppressed layer\'s LoRA output scale is applied to its B matrix host-side): no second session and no second copy of the frozen weights. Its remaining extra memory over all-layers is the If-branch plumbing only.',
        'Also skipped when nothing below needs it: each block\'s activation backward runs only at or above the lowest selected layer, parameter-gradient products only in selected layers, and updates (moments, weight decay) only for selected layers.',
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Standalone: `node --import tsx test/bench/ist.ts --section [--threads N] [--reps N]` prints this section.
if (process.argv.includes('--section')) {
  const n = (name: string) => (process.argv.includes(`--${name}`) ? Number(process.argv[process.argv.indexOf(`--${name}`) + 1]) : undefined);
  benchIst({ ...(n('threads') ? { threads: n('threads') } : {}), ...(n('reps') ? { reps: n('reps') } : {}) }).then(
    (s) => console.log(JSON.stringify({ rows: s.rows, notes: s.notes }, null, 1)),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : String(e));
      process.exit(1);
    },
  );
}

// Child-process mode: one variant, result as one JSON line on stdout.
const arg = (name: string) => process.argv[process.argv.indexOf(`--${name}`) + 1]!;
if (process.argv.includes('--paired')) {
  runPaired(arg('model'), Number(arg('threads')), Number(arg('warmup')), Number(arg('reps'))).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
} else if (process.argv.includes('--variant')) {
  runVariant(arg('variant') as 'ist' | 'all', arg('model'), arg('data'), arg('out'), Number(arg('threads')), Number(arg('warmup')), Number(arg('reps'))).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
