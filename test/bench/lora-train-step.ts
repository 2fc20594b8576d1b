// Bench part 1: one LoRA train step (forward, backward, clipping at 1.0, AdamW) of LLaMA-style
// models, ours (the tuning engine's compiled train step, as native-models/tune builds it) against
// PyTorch eager (lora_peer.py: the same architecture, LoRA targets, rank, batch, sequence and
// thread count). The peer is a long-lived process driven line by line, so the repetitions
// alternate ours, PyTorch and the roofline MatMul (roofline.ts) one step at a time: on a shared
// machine every figure of a repetition sees the same load, and ratios are taken per repetition.
//
// Also here: the model sizes and the on-disk random models the forward bench shares, the peer
// client, and a profile mode (`--profile DIR --threads N`, run as a child process) that turns on
// onnxruntime's profiler for the train-step session and prints time per operator type.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { Rng } from '../../native-models/data/prng';
import { loadModel, type LoadedModel } from '../../native-models/models/load';
import { crossEntropy } from '../../native-models/nn/loss';
import { onnxruntimeVersion } from '../../native-models/runtime/providers';
import { compileTrainStep, type ParamInit, type TrainStep } from '../../native-models/train/train-step';
import { forwardWith, prepareAdapter, TUNE_DEFAULTS, type Adapter, type TuneConfig } from '../../native-models/tune';
import { encodeTensor, pythonEnv, PYTHON, type WireTensor } from '../oracle/run-python';
import { writeTinyLlama } from '../unit/tune/tiny-model';
import { stats, type BenchSection, type Cell } from './report';
import { createMatMulProbe, type MatMulProbe, type RooflineSample } from './roofline';

// ── model sizes shared with forward-eval.ts ──

export interface BenchSize {
  label: string;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  /** Train-step batch (rows of SEQ tokens). */
  batch: number;
}

export const VOCAB = 512;
export const SEQ = 256;
export const RANK = 8;
export const ALPHA = 16;
export const TARGETS = ['q_proj', 'v_proj'];

/** head dim 64, SwiGLU width ≈ 8/3·d rounded up to 16 (LLaMA's rule); batch 2 at d 768 keeps a step near a second or two on 2 cores. */
export const SIZES: BenchSize[] = [
  { label: 'd 256 / 4 layers', hidden: 256, layers: 4, heads: 4, intermediate: 688, batch: 4 },
  { label: 'd 512 / 8 layers', hidden: 512, layers: 8, heads: 8, intermediate: 1376, batch: 4 },
  { label: 'd 768 / 12 layers', hidden: 768, layers: 12, heads: 12, intermediate: 2048, batch: 2 },
];

/** A random LLaMA-style HF folder for `s` under `root` (written once per bench run). */
export async function ensureBenchModel(root: string, s: BenchSize): Promise<string> {
  const dir = join(root, `llama-d${s.hidden}-l${s.layers}`);
  if (!existsSync(join(dir, 'model.safetensors'))) {
    // Small block weights keep activations and the loss in a realistic range at every size.
    await writeTinyLlama(dir, { layers: s.layers, hidden: s.hidden, intermediate: s.intermediate, heads: s.heads, kvHeads: s.heads, vocab: VOCAB, positions: SEQ, seed: 5, blockScale: 0.6 / Math.sqrt(s.hidden) });
  }
  return dir;
}

/** Random ids and targets in [1, VOCAB), [batch, SEQ]. */
export function benchBatch(batch: number, seed: number): { ids: BigInt64Array; targets: BigInt64Array } {
  const rng = new Rng(seed);
  const ids = BigInt64Array.from({ length: batch * SEQ }, () => BigInt(1 + rng.int(VOCAB - 1)));
  const targets = BigInt64Array.from({ length: batch * SEQ }, () => BigInt(1 + rng.int(VOCAB - 1)));
  return { ids, targets };
}

/** Matmul weights of the transformer blocks (what a token's forward multiplies by, without the head). */
export function blockMatmulParams(s: BenchSize): number {
  const d = s.hidden;
  return s.layers * (4 * d * d + 3 * d * s.intermediate);
}

/**
 * Model FLOPs of one LoRA train step per token, PaLM's convention (attention counted as the full
 * T×T square, no causal halving): frozen matmuls 2N forward + 2N for the activation gradient (no
 * weight gradient), the LM head likewise, attention 4·T·d forward + 8·T·d backward per layer,
 * LoRA matmuls 6 per parameter. Embedding lookups, norms, softmax and the optimizer count zero.
 */
export function trainFlopsPerToken(s: BenchSize): number {
  const d = s.hidden;
  const lora = s.layers * 2 * RANK * (d + d);
  return 4 * (blockMatmulParams(s) + d * VOCAB) + 6 * lora + 12 * s.layers * SEQ * d;
}

/** Forward-only FLOPs per token (same convention). */
export function forwardFlopsPerToken(s: BenchSize): number {
  return 2 * (blockMatmulParams(s) + s.hidden * VOCAB) + 4 * s.layers * SEQ * s.hidden;
}

// ── the long-lived PyTorch peer ──

export interface PeerBlas {
  torch: string;
  build: Record<string, string>;
  libraries: string[];
  openblas: { core: string; config: string; threads: number } | null;
  threads: number;
}

export interface PeerReady { ready: true; blas: PeerBlas; threads: number; lora_params: number }
export interface PeerTimes { times_ms: number[]; values?: number[] }

export interface Peer {
  readonly ready: PeerReady;
  call(cmd: Record<string, unknown>): Promise<PeerTimes>;
  close(): Promise<void>;
}

/** Starts `script` with /usr/bin/python3 (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed, see ENGINE-NOTES.md) and sends the setup line. */
export async function startPeer(script: URL, setup: Record<string, unknown>): Promise<Peer> {
  // Same thread count on both sides: torch.set_num_threads sets only the OpenMP pool, OpenBLAS
  // starts one thread per core unless told, so a "1 thread" peer would still multiply on 2 cores.
  const threads = typeof setup.threads === 'number' ? String(setup.threads) : undefined;
  const env = pythonEnv(threads ? { OPENBLAS_NUM_THREADS: threads, OMP_NUM_THREADS: threads } : {});
  const child: ChildProcessWithoutNullStreams = spawn(PYTHON, [fileURLToPath(script)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const err: string[] = [];
  child.stderr.on('data', (d: Buffer) => err.push(d.toString('utf8')));
  const lines: Interface = createInterface({ input: child.stdout });
  const pending: Array<{ resolve: (s: string) => void; reject: (e: Error) => void }> = [];
  let dead: Error | null = null;
  lines.on('line', (l) => pending.shift()?.resolve(l));
  const die = (why: string) => {
    dead = new Error(`The PyTorch peer ${fileURLToPath(script)} ${why}: ${err.join('').slice(-3000)}`);
    for (const p of pending.splice(0)) p.reject(dead);
  };
  child.on('error', (e) => die(`could not start (${e.message}; install python3 and python3-torch)`));
  child.on('close', (code, signal) => {
    if (code !== 0 || signal) die(`ended (${signal ?? `exit code ${code}`})`);
    else die('ended');
  });
  const next = (): Promise<string> => (dead ? Promise.reject(dead) : new Promise((resolve, reject) => pending.push({ resolve, reject })));
  const send = async <T>(obj: unknown): Promise<T> => {
    const p = next();
    child.stdin.write(`${JSON.stringify(obj)}\n`);
    return JSON.parse(await p) as T;
  };
  const ready = await send<PeerReady>(setup);
  return {
    ready,
    call: (cmd) => send<PeerTimes>(cmd),
    async close() {
      if (!dead) {
        const closed = new Promise<void>((r) => child.once('close', () => r()));
        child.stdin.end(`${JSON.stringify({ cmd: 'quit' })}\n`);
        await closed;
      }
    },
  };
}

export function describeBlas(b: PeerBlas): string {
  const lib = b.openblas ? `${b.openblas.config} (core ${b.openblas.core}, ${b.openblas.threads} BLAS threads)` : b.libraries.join(', ') || 'no BLAS library mapped';
  return `${lib}; torch build BLAS_INFO=${b.build.BLAS_INFO ?? '?'}`;
}

// ── our train step, as the tuning engine compiles it ──

interface Compiled {
  model: LoadedModel;
  adapter: Adapter;
  step: TrainStep;
  compileMs: number;
}

async function compileOurs(modelDir: string, threads: number): Promise<Compiled> {
  const model = await loadModel(modelDir);
  const c: TuneConfig = { ...TUNE_DEFAULTS, model: modelDir, data: '', out: '', rank: RANK, alpha: ALPHA, dropout: 0, targets: TARGETS, seed: 1 };
  const adapter = await prepareAdapter(model, c);
  const trainable: Record<string, ParamInit> = Object.fromEntries([...adapter.initial].map(([n, t]) => [n, { data: t.data, shape: t.shape }]));
  const frozen: Record<string, ParamInit> = {};
  for (const [n, w] of model.weights) if (!(n in trainable)) frozen[n] = { data: w.data, shape: w.shape };
  const t0 = performance.now();
  const step = await compileTrainStep(
    (g, p) => {
      const f = forwardWith(model, adapter, SEQ, g, p, { dropout: false });
      return { loss: crossEntropy(g, f.logits, f.targets, f.mask), blocks: f.blocks };
    },
    { trainable, frozen, optimizer: { type: 'adamw', weightDecay: 0 }, schedule: { lr: 1e-4 }, clip: 1.0, session: { provider: 'cpu', intraOpThreads: threads } },
  );
  return { model, adapter, step, compileMs: performance.now() - t0 };
}

function feedsOf(b: { ids: BigInt64Array; targets: BigInt64Array }, batch: number) {
  return {
    input_ids: { data: b.ids, dims: [batch, SEQ] },
    targets: { data: b.targets, dims: [batch, SEQ] },
    mask: { data: new Float32Array(batch * SEQ).fill(1), dims: [batch, SEQ] },
  };
}

// ── the bench ──

export interface LoraBenchOptions {
  threads: number;
  warmup: number;
  reps: number;
  sizes: BenchSize[];
  /** Folder for the random models (shared with the forward bench). */
  modelRoot: string;
  /** Size to profile in a child process (null: none). */
  profile: BenchSize | null;
  /** Size to run once more with 1 thread on both sides (null: none): no thread hand-offs, so the least load-sensitive ratio. */
  singleThread?: BenchSize | null;
}

export interface LoraSizeResult {
  size: BenchSize;
  threads: number;
  oursMs: number[];
  torchMs: number[];
  matmulMs: number[];
  torchMatmulMs: number[];
  compileMs: number;
  firstLoss: { ours: number; torch: number };
  trainable: Record<string, number[]>;
}

export interface LoraBenchResult {
  section: BenchSection;
  roofline: RooflineSample[];
  results: LoraSizeResult[];
  blas: PeerBlas;
  profile: OpProfile | null;
}

const PEER = new URL('./lora_peer.py', import.meta.url);
const SELF = fileURLToPath(import.meta.url);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

async function benchSize(s: BenchSize, o: LoraBenchOptions, probe: MatMulProbe, log: (m: string) => void): Promise<{ r: LoraSizeResult; blas: PeerBlas }> {
  const dir = await ensureBenchModel(o.modelRoot, s);
  log(`  ${s.label}: compiling our train step…`);
  const ours = await compileOurs(dir, o.threads);
  const data = benchBatch(s.batch, 3);
  const batch = feedsOf(data, s.batch);
  const loraA = Object.fromEntries([...ours.adapter.initial].filter(([n]) => n.endsWith('lora_A.weight')).map(([n, t]) => [n, encodeTensor(t.data, t.shape)] as [string, WireTensor]));
  log(`  ${s.label}: starting the PyTorch peer…`);
  const peer = await startPeer(PEER, {
    model_dir: dir, threads: o.threads, rank: RANK, alpha: ALPHA, lora_targets: TARGETS, lora_init: loraA,
    input_ids: encodeTensor(data.ids, [s.batch, SEQ]), targets: encodeTensor(data.targets, [s.batch, SEQ]),
    optimizer: { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0 }, clip: 1.0,
  });
  try {
    const oursCount = ours.step.trainableNames.reduce((a, n) => a + ours.adapter.initial.get(n)!.data.length, 0);
    if (peer.ready.lora_params !== oursCount) throw new Error(`The PyTorch peer trains ${peer.ready.lora_params} LoRA parameters, ours a different number: the bench would compare different models.`);
    let state = ours.step.initState();
    const r: LoraSizeResult = { size: s, threads: o.threads, oursMs: [], torchMs: [], matmulMs: [], torchMatmulMs: [], compileMs: ours.compileMs, firstLoss: { ours: NaN, torch: NaN }, trainable: Object.fromEntries([...ours.adapter.initial].map(([n, t]) => [n, t.shape])) };
    log(`  ${s.label}: ${o.warmup} warm-up + ${o.reps} interleaved repetitions…`);
    for (let i = 0; i < o.warmup + o.reps; i++) {
      const t0 = performance.now();
      const out = await ours.step.step(batch, state);
      const ms = performance.now() - t0;
      state = out.state;
      await settle();
      const t = await peer.call({ cmd: 'step', n: 1 });
      if (i === 0) r.firstLoss = { ours: out.loss, torch: t.values![0]! };
      await settle();
      const mm = await probe.run();
      await settle();
      const tmm = await peer.call({ cmd: 'matmul', n: 1, size: probe.size });
      await settle();
      if (i >= o.warmup) {
        r.oursMs.push(ms);
        r.torchMs.push(t.times_ms[0]!);
        r.matmulMs.push(mm);
        r.torchMatmulMs.push(tmm.times_ms[0]!);
      }
    }
    return { r, blas: peer.ready.blas };
  } finally {
    await peer.close();
    await ours.step.dispose();
  }
}

/**
 * A pause between the interleaved measurements: onnxruntime's and OpenBLAS's worker threads
 * spin-wait for a while after their work, and on 2 cores that spinning would be charged to
 * whichever side runs next.
 */
const settle = () => new Promise<void>((r) => setTimeout(r, 250));

export async function benchLoraTrainStep(o: LoraBenchOptions, log: (m: string) => void = (m) => console.error(m)): Promise<LoraBenchResult> {
  const probe = await createMatMulProbe(o.threads);
  const results: LoraSizeResult[] = [];
  let blas: PeerBlas | null = null;
  try {
    for (const s of o.sizes) {
      const { r, blas: b } = await benchSize(s, o, probe, log);
      results.push(r);
      blas = b;
    }
  } finally {
    await probe.dispose();
  }
  if (o.singleThread) {
    const probe1 = await createMatMulProbe(1);
    try {
      log(`  ${o.singleThread.label} again with 1 thread on both sides…`);
      results.push((await benchSize(o.singleThread, { ...o, threads: 1 }, probe1, log)).r);
    } finally {
      await probe1.dispose();
    }
  }
  let profile: OpProfile | null = null;
  if (o.profile) {
    log(`  profiling our train step at ${o.profile.label} (onnxruntime profiler, child process)…`);
    profile = profileInChild(await ensureBenchModel(o.modelRoot, o.profile), o.profile, o.threads);
  }
  const rows: Record<string, Cell>[] = [];
  for (const r of results) {
    const tokens = r.size.batch * SEQ;
    const ours = stats(r.oursMs);
    const torch = stats(r.torchMs);
    const ratios = stats(r.oursMs.map((t, i) => r.torchMs[i]! / t));
    rows.push({
      model: r.size.label,
      threads: r.threads,
      batch: `${r.size.batch} × ${SEQ}`,
      'ours ms (median, min–max)': `${round(ours.median, 1)} (${round(ours.min, 1)}–${round(ours.max, 1)})`,
      'PyTorch ms (median, min–max)': `${round(torch.median, 1)} (${round(torch.min, 1)}–${round(torch.max, 1)})`,
      'ours tokens/s': Math.round((tokens / ours.median) * 1000),
      'PyTorch tokens/s': Math.round((tokens / torch.median) * 1000),
      'tokens/s ratio ours ÷ PyTorch': round(torch.median / ours.median, 3),
      'per-rep ratio min–max': `${round(ratios.min, 2)}–${round(ratios.max, 2)}`,
      'first loss ours / PyTorch': `${r.firstLoss.ours.toFixed(5)} / ${r.firstLoss.torch.toFixed(5)}`,
      'compile s': round(r.compileMs / 1000, 1),
      reps: ours.n,
    });
  }
  const at512 = results.find((r) => r.size.hidden === 512 && r.threads === o.threads);
  const target = at512 ? round(stats(at512.torchMs).median / stats(at512.oursMs).median, 3) : null;
  const notes = [
    `Target: ≥ 1.2× PyTorch tokens/s at d 512 / 8 layers. ${target === null ? 'Not measured in this mode.' : `Measured ${target}× — ${target >= 1.2 ? 'met' : 'missed'}.`}`,
    `Models: LLaMA-style, vocabulary ${VOCAB}, head dim 64 (as many key/value heads as query heads), SwiGLU, RMSNorm, rotary, untied head, random weights; LoRA r ${RANK}, alpha ${ALPHA}, on ${TARGETS.join(' and ')} of every layer, no dropout; AdamW (β 0.9/0.999, ε 1e-8, no weight decay), clipping at global norm 1.0, lr 1e-4; sequence ${SEQ}.`,
    'Ours: the train step the tuning engine compiles (forwardWith + crossEntropy + compileTrainStep, all layers, one fused ONNX graph: forward, backward, clipping, AdamW), timed around step() in this process. PyTorch: lora_peer.py, eager float32, zero_grad + forward + backward + clip_grad_norm_ + AdamW.step, timed in its own process.',
    `Order per repetition: our step, PyTorch step, ORT MatMul, PyTorch MatMul; warm-up ${o.warmup}, ${o.reps} repetitions; ratios per repetition give the spread. Same thread count on both sides (${o.threads}: ORT intra-op threads = torch.set_num_threads = the peer's OPENBLAS_NUM_THREADS and OMP_NUM_THREADS, so a 1-thread PyTorch row multiplies on one core, not on OpenBLAS's default of one thread per core).`,
    `Train-step FLOPs per token (for the roofline): 4·(block matmul weights + head) + 6·LoRA params + 12·layers·seq·d (attention as the full square, PaLM convention).`,
    `PyTorch BLAS: ${blas ? describeBlas(blas) : 'unknown'}; the peer runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its environment (ENGINE-NOTES.md).`,
    'On a loaded machine PyTorch at 2 threads slows down far more than we do (its OpenMP workers and OpenBLAS threads spin-wait for each other when the cores are oversubscribed; a standalone d 256 step measured 0.43 s on a quiet moment and 3–5 s under load 6–10 minutes later): the 1-thread row, free of thread hand-offs, is the load-robust comparison.',
    'The first-step loss pair checks both sides train the same model on the same batch (float32 on both sides, so they agree to about 1e-5 relative).',
    'Optimised (issue 10; before/after with test/bench/ab-step.ts, which alternates two engine trees update by update): RMSNorm, rotary, the SwiGLU gate and the attention core carry closed-form gradients (native-models/nn/train-fusions.ts) — RMSNorm forward one SimplifiedLayerNormalization whose inverse RMS the backward reuses, rotary one RotaryEmbedding kernel forward and one (rotation by −θ) backward, σ computed once for SwiGLU, attention products as FusedMatMul with transposed operands and the scale in alpha (no kᵀ/vᵀ/Pᵀ copies); three or more gradient contributions are summed by one Sum. At d 768 / 12 layers that took the step from 3115 to about 2400 nodes and removed most Transpose, Concat, Split and Neg work; the remaining non-MatMul time is mostly SwiGLU and softmax elementwise work on the largest activations.',
  ];
  if (profile) notes.push(...profileNotes(profile));
  return {
    section: {
      id: 'lora-train-step',
      title: `LoRA train step: ours vs PyTorch eager (onnxruntime-node ${onnxruntimeVersion()} vs torch ${blas?.torch ?? '?'})`,
      description: `Tokens per second of one full LoRA update (forward, backward, clipping, AdamW), median of ${o.reps} interleaved repetitions after ${o.warmup} warm-up, ${o.threads} thread(s) on both sides.`,
      columns: ['model', 'threads', 'batch', 'ours ms (median, min–max)', 'PyTorch ms (median, min–max)', 'ours tokens/s', 'PyTorch tokens/s', 'tokens/s ratio ours ÷ PyTorch', 'per-rep ratio min–max', 'first loss ours / PyTorch', 'compile s', 'reps'],
      rows,
      notes,
    },
    roofline: results.map((r) => ({ model: r.threads === o.threads ? r.size.label : `${r.size.label}, ${r.threads} thread`, stepFlops: trainFlopsPerToken(r.size) * r.size.batch * SEQ, stepMs: r.oursMs, matmulMs: r.matmulMs, torchMatmulMs: r.torchMatmulMs, matmulFlops: probe.flops })),
    results,
    blas: blas!,
    profile,
  };
}

// ── profile: onnxruntime's own per-node timings of the train-step session ──

export interface OpProfile {
  model: string;
  /** Model FLOPs of one step (trainFlopsPerToken × tokens). */
  flops: number;
  runs: number;
  /** Nodes onnxruntime ran per step (after its graph optimisation). */
  nodes: number;
  stepMs: number;
  /** Per operator type: ms per step, share of node time, node count. */
  ops: Array<{ op: string; ms: number; share: number; nodes: number }>;
  /** Node time ÷ step wall time (the rest: session.run overhead, copies, thread hand-offs). */
  nodeShare: number;
}

function profileInChild(modelDir: string, s: BenchSize, threads: number): OpProfile | null {
  const p = spawnSync(process.execPath, ['--import', 'tsx', SELF, '--profile', modelDir, '--size', String(SIZES.indexOf(s)), '--threads', String(threads)], { encoding: 'utf8', timeout: 600_000, maxBuffer: 1 << 24 });
  if (p.status !== 0) {
    console.error(`  the profile run failed (${p.signal ?? `exit code ${p.status}`}): ${p.stderr.slice(-1500)}`);
    return null;
  }
  return JSON.parse(p.stdout.trim().split('\n').pop()!) as OpProfile;
}

interface TraceEvent { cat?: string; name?: string; ts?: number; dur?: number; args?: { op_name?: string } }

async function runProfile(modelDir: string, s: BenchSize, threads: number): Promise<OpProfile> {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-bench-profile-'));
  const created: ort.InferenceSession[] = [];
  // Bench only: turn the profiler on for every session this process opens (the engine has no
  // setting for it, and the bench must not change the engine).
  const IS = ort.InferenceSession as unknown as { create: (...a: unknown[]) => Promise<ort.InferenceSession> };
  const create = IS.create.bind(IS);
  IS.create = async (model: unknown, options?: unknown, ...rest: unknown[]) => {
    const opts = { ...(options as object), enableProfiling: true, profileFilePrefix: join(dir, 'trainstep') };
    const sess = await create(model, opts, ...rest);
    created.push(sess);
    return sess;
  };
  try {
    const ours = await compileOurs(modelDir, threads);
    const batch = feedsOf(benchBatch(s.batch, 3), s.batch);
    let state = ours.step.initState();
    const wall: number[] = [];
    const runs = 3;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      state = (await ours.step.step(batch, state)).state;
      wall.push(performance.now() - t0);
    }
    for (const sess of created) sess.endProfiling();
    await ours.step.dispose();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('onnxruntime wrote no profile file.');
    const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as TraceEvent[];
    // Skip the first run (allocation, planning): count node events from the second model_run on.
    const starts = events.filter((e) => e.name === 'model_run').map((e) => e.ts!).sort((a, b) => a - b);
    const from = starts[1] ?? 0;
    const counted = starts.length - (starts.length > 1 ? 1 : 0);
    const byOp = new Map<string, { us: number; nodes: Set<string> }>();
    const allNodes = new Set<string>();
    let total = 0;
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || (e.ts ?? 0) < from) continue;
      const op = e.args?.op_name ?? '?';
      const x = byOp.get(op) ?? { us: 0, nodes: new Set<string>() };
      x.us += e.dur ?? 0;
      x.nodes.add(e.name);
      allNodes.add(e.name);
      byOp.set(op, x);
      total += e.dur ?? 0;
    }
    const stepMs = stats(wall.slice(1)).median;
    return {
      model: s.label,
      flops: trainFlopsPerToken(s) * s.batch * SEQ,
      runs: counted,
      nodes: allNodes.size,
      stepMs,
      ops: [...byOp].map(([op, x]) => ({ op, ms: x.us / 1000 / counted, share: x.us / total, nodes: x.nodes.size })).sort((a, b) => b.ms - a.ms),
      nodeShare: total / 1000 / counted / stepMs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const MATMUL_OPS = new Set(['MatMul', 'FusedMatMul', 'Gemm', 'MatMulNBits', 'FusedGemm']);

function profileNotes(p: OpProfile): string[] {
  const mmOps = p.ops.filter((o) => MATMUL_OPS.has(o.op));
  const mm = mmOps.reduce((a, o) => a + o.share, 0);
  const mmMs = mmOps.reduce((a, o) => a + o.ms, 0);
  const top = p.ops.slice(0, 10).map((o) => `${o.op} ${round(o.ms, 1)} ms (${round(o.share * 100, 1)}%, ${o.nodes} nodes)`).join('; ');
  return [
    `Profile of our train step at ${p.model} (onnxruntime profiler, ${p.runs} steps after the first, profiled step ${round(p.stepMs, 1)} ms): ${p.nodes} nodes run per step; kernels account for ${round(p.nodeShare * 100, 1)}% of the step's wall time; MatMul-type kernels ${round(mm * 100, 1)}% of kernel time, running at ${round(p.flops / mmMs / 1e6, 1)} GFLOP/s (the step's model FLOPs ÷ their time); everything else is memory-bound elementwise work.`,
    `Top operator types per step: ${top}.`,
  ];
}

// Child-process mode (profile).
if (process.argv.includes('--profile')) {
  const arg = (name: string) => process.argv[process.argv.indexOf(`--${name}`) + 1]!;
  runProfile(arg('profile'), SIZES[Number(arg('size'))]!, Number(arg('threads'))).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
