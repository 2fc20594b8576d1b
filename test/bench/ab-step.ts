// A/B timing of the LoRA train step between engine variants, in one run: each variant is a child
// process that compiles the step (from a source tree and with session settings of its own) and
// runs one update per request; the parent alternates the variants update by update, so on a
// shared machine both see the same load, and reports median and best per variant plus the
// per-pair ratios. Used to measure each optimisation before vs after (bench/report.md says which).
//
//   node --import tsx test/bench/ab-step.ts --size 512 --threads 1 --reps 7 \
//     --variant before=../some/older/tree --variant after=. [--variant 'arena-off=.:{"memoryArena":false}']
//
// A variant is name=ROOT[:SESSION-JSON]; ROOT is a checkout of this repository (its engine is
// imported from there), SESSION-JSON extra runtime SessionSettings. Without --variant: this tree.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface Variant { name: string; root: string; session: Record<string, unknown> }

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}
function intFlag(name: string, fallback: number): number {
  const v = flag(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} needs a whole number (got "${v}").`);
    process.exit(2);
  }
  return n;
}

// ── child: one compiled train step, one update per "step" line ──

async function serve(root: string, hidden: number, threads: number, session: Record<string, unknown>, ist: boolean): Promise<void> {
  const imp = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(resolve(root, rel)).href)) as T;
  const bench = await imp<typeof import('./lora-train-step')>('test/bench/lora-train-step.ts');
  const { loadModel } = await imp<typeof import('../../native-models/models/load')>('native-models/models/load.ts');
  const { crossEntropy } = await imp<typeof import('../../native-models/nn/loss')>('native-models/nn/loss.ts');
  const { compileTrainStep } = await imp<typeof import('../../native-models/train/train-step')>('native-models/train/train-step.ts');
  const tune = await imp<typeof import('../../native-models/tune')>('native-models/tune/index.ts');
  const s = bench.SIZES.find((x) => x.hidden === hidden);
  if (!s) throw new Error(`No bench size with d ${hidden} (sizes: ${bench.SIZES.map((x) => x.hidden).join(', ')}).`);
  const modelRoot = process.env.OFFSITE_AB_MODELS!;
  const dir = await bench.ensureBenchModel(modelRoot, s);
  const model = await loadModel(dir);
  const c = { ...tune.TUNE_DEFAULTS, model: dir, data: '', out: '', rank: bench.RANK, alpha: bench.ALPHA, dropout: 0, targets: bench.TARGETS, seed: 1 };
  const adapter = await tune.prepareAdapter(model, c);
  const trainable = Object.fromEntries([...adapter.initial].map(([n, t]) => [n, { data: t.data, shape: t.shape }]));
  const frozen: Record<string, { data: Float32Array; shape: number[] }> = {};
  for (const [n, w] of model.weights) if (!(n in trainable)) frozen[n] = { data: w.data as Float32Array, shape: w.shape };
  const layerOf = (n: string) => {
    const m = /layers\.(\d+)\./.exec(n);
    return m ? Number(m[1]) : undefined;
  };
  const t0 = performance.now();
  const step = await compileTrainStep(
    (g, p) => {
      const f = tune.forwardWith(model, adapter, bench.SEQ, g, p, { dropout: false });
      return { loss: crossEntropy(g, f.logits, f.targets, f.mask), blocks: f.blocks };
    },
    { trainable, frozen, optimizer: { type: 'adamw', weightDecay: 0 }, schedule: { lr: 1e-4 }, clip: 1.0, session: { provider: 'cpu', intraOpThreads: threads, ...session }, ...(ist ? { layers: { layerOf } } : {}) },
  );
  const compileMs = performance.now() - t0;
  const data = bench.benchBatch(s.batch, 3);
  const batch = {
    input_ids: { data: data.ids, dims: [s.batch, bench.SEQ] },
    targets: { data: data.targets, dims: [s.batch, bench.SEQ] },
    mask: { data: new Float32Array(s.batch * bench.SEQ).fill(1), dims: [s.batch, bench.SEQ] },
  };
  let state = step.initState();
  const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
  out({ ready: true, compileMs });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const cmd = JSON.parse(line) as { cmd: string; selected?: number[] };
    if (cmd.cmd === 'quit') break;
    const t = performance.now();
    const r = await step.step(batch, state, ist ? { selected: cmd.selected ?? [...Array(step.layerCount).keys()] } : undefined);
    const ms = performance.now() - t;
    state = r.state;
    out({ ms, loss: r.loss, gradNorm: r.gradNorm, rssMiB: process.memoryUsage().rss / 2 ** 20 });
  }
  await step.dispose();
}

// ── parent ──

interface Child { v: Variant; send(o: unknown): Promise<Record<string, number>>; close(): void }

function start(v: Variant, hidden: number, threads: number, ist: boolean, models: string): Promise<Child> {
  const p: ChildProcessWithoutNullStreams = spawn(process.execPath, ['--import', 'tsx', SELF, '--serve', v.root, '--size', String(hidden), '--threads', String(threads), '--session', JSON.stringify(v.session), ...(ist ? ['--ist'] : [])], {
    env: { ...process.env, OFFSITE_AB_MODELS: models },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const err: string[] = [];
  p.stderr.on('data', (d: Buffer) => err.push(d.toString()));
  const waiting: Array<(s: string) => void> = [];
  createInterface({ input: p.stdout }).on('line', (l) => waiting.shift()?.(l));
  const next = () => new Promise<string>((res, rej) => {
    waiting.push(res);
    p.once('close', (code) => rej(new Error(`variant ${v.name} ended (exit ${code}): ${err.join('').slice(-2000)}`)));
  });
  return next().then(() => ({
    v,
    send: async (o) => {
      const r = next();
      p.stdin.write(`${JSON.stringify(o)}\n`);
      return JSON.parse(await r) as Record<string, number>;
    },
    close: () => p.stdin.end(`${JSON.stringify({ cmd: 'quit' })}\n`),
  }));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const hidden = intFlag('size', 512);
  const threads = intFlag('threads', 1);
  const warmup = intFlag('warmup', 1);
  const reps = intFlag('reps', 5);
  const ist = process.argv.includes('--ist');
  const variants: Variant[] = [];
  process.argv.forEach((a, i) => {
    if (a !== '--variant') return;
    const spec = process.argv[i + 1] ?? '';
    const m = /^([^=]+)=([^:]+)(?::(.*))?$/.exec(spec);
    if (!m) {
      console.error(`--variant needs name=ROOT[:SESSION-JSON] (got "${spec}").`);
      process.exit(2);
    }
    variants.push({ name: m[1]!, root: resolve(m[2]!), session: m[3] ? (JSON.parse(m[3]) as Record<string, unknown>) : {} });
  });
  if (variants.length === 0) variants.push({ name: 'this tree', root: repoRoot, session: {} });
  const models = resolve(repoRoot, 'test-results/bench-models');
  const children: Child[] = [];
  try {
    // Sequentially: the first child writes the shared random model.
    for (const v of variants) children.push(await start(v, hidden, threads, ist, models));
    const ms = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    const loss = new Map<string, number>();
    const rss = new Map<string, number>();
    for (let i = 0; i < warmup + reps; i++) {
      // Alternate the order too, so neither variant always runs right after the other.
      const order = i % 2 ? [...children].reverse() : children;
      for (const c of order) {
        const r = await c.send({ cmd: 'step' });
        if (i === 0) loss.set(c.v.name, r.loss!);
        rss.set(c.v.name, r.rssMiB!);
        if (i >= warmup) ms.get(c.v.name)!.push(r.ms!);
      }
    }
    const base = variants[0]!.name;
    console.log(`d ${hidden}, ${threads} thread(s)${ist ? ', IST build (all layers selected)' : ''}, ${warmup} warm-up + ${reps} alternating repetitions`);
    for (const v of variants) {
      const xs = ms.get(v.name)!;
      const pair = xs.map((x, i) => x / ms.get(base)![i]!);
      console.log(`  ${v.name.padEnd(14)} median ${median(xs).toFixed(1)} ms  best ${Math.min(...xs).toFixed(1)} ms  ÷${base}: median ${median(pair).toFixed(3)} (pairs ${Math.min(...pair).toFixed(2)}–${Math.max(...pair).toFixed(2)})  first loss ${loss.get(v.name)!.toFixed(6)}  rss ${rss.get(v.name)!.toFixed(0)} MiB`);
    }
    console.log(JSON.stringify({ hidden, threads, reps, ms: Object.fromEntries(ms), firstLoss: Object.fromEntries(loss) }));
  } finally {
    for (const c of children) c.close();
  }
}

if (process.argv.includes('--serve')) {
  serve(resolve(flag('serve')!), intFlag('size', 512), intFlag('threads', 1), JSON.parse(flag('session') ?? '{}') as Record<string, unknown>, process.argv.includes('--ist')).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
} else {
  main().catch((e: unknown) => {
    console.error(`ab-step failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
