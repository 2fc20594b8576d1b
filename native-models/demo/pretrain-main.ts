// `npm run pretrain-demo`: regenerates the demo task files, pretrains the demo base model in a job
// worker, and writes the Hugging Face folder native-models/demo/base (atomically) with its model
// card. Interrupt it (Ctrl-C) and run the same command again to resume from the last checkpoint.
//
//   npm run pretrain-demo [-- --threads N] [--steps N] [--out DIR] [--work DIR] [--fresh] [--tasks-only]
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { writeDirAtomic, writeFileAtomic } from '../formats/atomic';
import { writeSafetensors } from '../formats/safetensors';
import { BYTE_LEVEL_IDS, writeByteLevelTokenizerJson } from '../formats/tokenizer';
import { llamaWeightShapes } from '../models/llama/spec';
import { startJob } from '../runtime/jobs';
import { onnxruntimeVersion } from '../runtime/providers';
import { demoHfConfig, demoSpec } from './model';
import { DEMO_BASE_DIR, DEMO_TASKS_DIR, REPO_ROOT } from './paths';
import { DEMO_PRETRAIN, LOG_EVERY, type PretrainConfig, type PretrainInput, type PretrainProgress, type PretrainResult } from './pretrain';
import { buildDemoTasks, writeDemoTasks, type DemoTasksManifest } from './tasks';

interface Args {
  threads: number;
  steps: number | null;
  out: string;
  work: string;
  fresh: boolean;
  tasksOnly: boolean;
  checkpointEvery: number;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Args {
  const a: Args = { threads: 2, steps: null, out: DEMO_BASE_DIR, work: join(REPO_ROOT, '.scratch', 'pretrain-demo'), fresh: false, tasksOnly: false, checkpointEvery: 100 };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < 1) throw new UsageError(`${flag} needs a whole number ≥ 1, not ${v === undefined ? 'nothing' : JSON.stringify(v)}.`);
    return n;
  };
  const path = (flag: string, v: string | undefined): string => {
    if (!v) throw new UsageError(`${flag} needs a folder path.`);
    return resolve(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === '--threads') a.threads = num(f, argv[++i]);
    else if (f === '--steps') a.steps = num(f, argv[++i]);
    else if (f === '--checkpoint-every') a.checkpointEvery = num(f, argv[++i]);
    else if (f === '--out') a.out = path(f, argv[++i]);
    else if (f === '--work') a.work = path(f, argv[++i]);
    else if (f === '--fresh') a.fresh = true;
    else if (f === '--tasks-only') a.tasksOnly = true;
    else throw new UsageError(`Unknown option ${JSON.stringify(f)}; use --threads N, --steps N, --checkpoint-every N, --out DIR, --work DIR, --fresh or --tasks-only.`);
  }
  return a;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function showProgress(p: PretrainProgress): void {
  switch (p.kind) {
    case 'status':
      log(p.message);
      break;
    case 'started':
      log(`Training ${p.parameterCount.toLocaleString('en-US')} parameters on ${p.trainTokens.toLocaleString('en-US')} tokens (${p.windows} windows), steps ${p.startStep + 1}..${p.totalSteps}, ${p.provider}, ${p.threads} threads.`);
      break;
    case 'step':
      if (p.step === 1 || p.step % 10 === 0 || p.step === p.totalSteps) {
        log(`step ${p.step}/${p.totalSteps}  loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(2)}  ${Math.round(p.tokensPerSecond).toLocaleString('en-US')} tok/s  elapsed ${duration(p.elapsedSeconds)}  ETA ${duration(p.etaSeconds)}`);
      }
      break;
    case 'checkpoint':
      log(`checkpoint at step ${p.step}`);
      break;
    case 'evaluating':
      if (p.done === p.total) log(`held-out windows scored: ${p.total}`);
      break;
  }
}

/** Writes the task files unless they are already byte-identical; says which. */
async function refreshTasks(): Promise<DemoTasksManifest> {
  const tasks = await buildDemoTasks();
  let same = true;
  for (const [name, content] of tasks.files) {
    const old = await readFile(join(DEMO_TASKS_DIR, name), 'utf8').catch(() => null);
    if (old !== content) same = false;
  }
  if (same) log(`Task files in ${relative(REPO_ROOT, DEMO_TASKS_DIR)} are up to date (${tasks.files.size} files).`);
  else {
    await writeDemoTasks(DEMO_TASKS_DIR, tasks);
    log(`Wrote ${tasks.files.size} task files to ${relative(REPO_ROOT, DEMO_TASKS_DIR)}.`);
  }
  return tasks.manifest;
}

function modelCard(o: { config: PretrainConfig; result: PretrainResult; manifest: DemoTasksManifest; command: string; threads: number; safetensorsBytes: number }): string {
  const { config: c, result: r, manifest: m } = o;
  const spec = demoSpec(c.model);
  const h = r.heldout!;
  const moby = m.tasks['moby-dick'].splits;
  const epochs = r.tokensSeen / r.trainTokens;
  const curve = r.losses.filter((p) => p.step % 100 === 0 || p.step === r.totalSteps || p.step === LOG_EVERY);
  return `# Offsite Studio demo base model

A small byte-level LLaMA-architecture language model, trained from scratch by Offsite Studio's own
engine (\`native-models/train\`: forward, backward and AdamW compiled into ONNX graphs run by
onnxruntime-node) on Herman Melville's *Moby Dick*. It exists so that \`offsite demo\` has a base
model to build an emulator from, tune and plug into, on any laptop in minutes; it writes
Melville-flavoured byte soup and is good for nothing else.

## Reproduce

\`\`\`
${o.command}
\`\`\`

The command regenerates \`native-models/demo/tasks/\` (deterministic; byte-identical with the same
package versions), trains in a worker thread with progress lines (step, loss, tokens/s, ETA),
checkpoints every 100 steps to \`.scratch/pretrain-demo/\` (interrupt it and run it again to
resume), and replaces this folder atomically. Weights depend only on the seed, the data, the code
and onnxruntime's kernels: the same command with the same thread count and engine version gives
the same bytes (an interrupted and resumed run included); another thread count or a changed
graph formulation gives a different, equally good model.

## Model

| | |
|---|---|
| architecture | \`LlamaForCausalLM\`: RMSNorm, rotary embeddings (θ 10000), grouped-query attention, SwiGLU, untied LM head |
| layers | ${spec.layers} (an emulator keeps 2 bottom + 2 top adapter layers around a ${spec.layers - 4}-layer middle) |
| hidden size | ${spec.hiddenSize}; ${spec.heads} heads of ${spec.headDim}, ${spec.kvHeads} key/value heads; SwiGLU width ${spec.intermediateSize} |
| context | ${spec.maxPositions} tokens (bytes) |
| vocabulary | ${spec.vocabSize}: byte-level, ids 0–255 are the bytes, ${BYTE_LEVEL_IDS.bos} \`<s>\` (added before every text), ${BYTE_LEVEL_IDS.eos} \`</s>\`, ${BYTE_LEVEL_IDS.pad} \`<pad>\` |
| parameters | ${r.parameterCount.toLocaleString('en-US')} |
| file | \`model.safetensors\`, float32, ${o.safetensorsBytes.toLocaleString('en-US')} bytes |

Why this size: the whole \`offsite demo\` (emulator build, IST LoRA tuning, full fine-tuning and five
evaluations) must finish in minutes on two CPU cores, and the model must stay under 8 MB; eight
layers leave a middle worth compressing, and d ${spec.hiddenSize} keeps one train step of ${c.batchSize} × ${spec.maxPositions} tokens well under a second.

## Data

\`${m.sources[0]!.package}\` ${m.sources[0]!.version} (public domain: PDDL-1.0 database, CC0-1.0 contents).
Training: \`tasks/${moby.train.file}\` (${moby.train.count} chapters, ${moby.train.bytes.toLocaleString('en-US')} bytes,
sha256 \`${r.trainSha256}\`). Held out: \`tasks/${moby.heldout.file}\` (${moby.heldout.count} chapters: ${moby.heldout.chapters!.join(', ')};
sha256 \`${r.heldoutSha256}\`). Each chapter is tokenized as a \`{"text"}\` line (\`<s>\` + its UTF-8
bytes); the chapters are concatenated and cut into windows of ${spec.maxPositions + 1} tokens sharing one token
(${r.trainTokens.toLocaleString('en-US')} tokens), shuffled per epoch from the seed.

## Training

| | |
|---|---|
| steps | ${r.stepsDone} × batch ${c.batchSize} × ${spec.maxPositions} tokens |
| tokens seen | ${r.tokensSeen.toLocaleString('en-US')} (${epochs.toFixed(2)} epochs) |
| optimizer | AdamW β ${c.beta1}/${c.beta2}, ε 1e-8, weight decay ${c.weightDecay} (not on norm gains), global-norm clipping ${c.clip} |
| schedule | linear warmup ${c.warmupSteps} steps to ${c.lr}, cosine decay to ${c.minLr} |
| initialisation | N(0, 0.02²), residual projections (o_proj, down_proj) N(0, (0.02/√${2 * spec.layers})²), norms 1; seed ${c.seed} |
| time | ${duration(r.trainSeconds)} in train steps${r.resumed ? ' (over more than one session)' : ''}, ${o.threads} threads, ${cpus()[0]?.model ?? 'unknown CPU'} (shared with other work) |
| engine | onnxruntime-node ${onnxruntimeVersion()}, CPU execution provider |

Mean training loss (nats per byte) by step:

| step | loss |
|---|---|
${curve.map((p) => `| ${p.step} | ${p.loss.toFixed(4)} |`).join('\n')}

## Held-out perplexity

Held-out perplexity: **${h.ppl.toFixed(6)}** per byte (nll ${h.nll.toFixed(6)} nats = ${(h.nll / Math.LN2).toFixed(4)} bits per byte),
over ${h.tokens.toLocaleString('en-US')} predicted tokens of the ${h.documents} held-out chapters, each chapter on its own in
rolling windows of ${spec.maxPositions} tokens (${h.windows} windows), as \`offsite eval --metric ppl\` computes it:

\`\`\`
npm run --silent offsite -- eval --model native-models/demo/base --data native-models/demo/tasks/${moby.heldout.file} --metric ppl --seq-len ${spec.maxPositions}
\`\`\`
`;
}

async function writeBase(out: string, o: Parameters<typeof modelCard>[0] & { weights: Record<string, Float32Array> }): Promise<number> {
  const spec = demoSpec(o.config.model);
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  for (const [name, shape] of llamaWeightShapes(spec)) {
    const data = o.weights[name];
    if (!data) throw new Error(`The trained weights lack ${name}.`);
    tensors.set(name, { dtype: 'F32', shape, data });
  }
  let size = 0;
  await writeDirAtomic(
    out,
    async (tmp) => {
      await writeFileAtomic(join(tmp, 'config.json'), Buffer.from(`${JSON.stringify(demoHfConfig(o.config.model), null, 2)}\n`));
      await writeSafetensors(join(tmp, 'model.safetensors'), tensors, { format: 'pt' });
      size = (await readFile(join(tmp, 'model.safetensors'))).byteLength;
      await writeByteLevelTokenizerJson(tmp);
      await writeFileAtomic(join(tmp, 'MODEL_CARD.md'), Buffer.from(modelCard({ ...o, safetensorsBytes: size })));
    },
    true,
  );
  return size;
}

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      log(e.message);
      return 2;
    }
    throw e;
  }
  const manifest = await refreshTasks();
  if (args.tasksOnly) return 0;

  const config: PretrainConfig = { ...DEMO_PRETRAIN, ...(args.steps !== null ? { steps: args.steps } : {}) };
  const moby = manifest.tasks['moby-dick'].splits;
  const input: PretrainInput = {
    config,
    trainFile: join(DEMO_TASKS_DIR, moby.train.file),
    heldoutFile: join(DEMO_TASKS_DIR, moby.heldout.file),
    workDir: args.work,
    resume: !args.fresh,
    threads: args.threads,
    checkpointEvery: args.checkpointEvery,
  };
  const job = startJob<PretrainInput, PretrainProgress, PretrainResult>(new URL('./pretrain-worker.ts', import.meta.url), input, { onProgress: showProgress, name: 'pretrain-demo' });
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      log('Stopping at the next step boundary and saving a checkpoint (Ctrl-C again to stop at once)…');
      job.cancel();
    } else void job.terminate();
  };
  process.on('SIGINT', onSigint);
  const outcome = await job.result;
  process.off('SIGINT', onSigint);

  if (outcome.status === 'failed') {
    log(`Pretraining failed: ${outcome.error.message}`);
    if (outcome.error.stack) log(outcome.error.stack);
    return 1;
  }
  const result = outcome.value;
  if (!result || result.status === 'stopped') {
    log(`Stopped${result ? ` after step ${result.stepsDone} of ${result.totalSteps}` : ''}; the checkpoint is in ${relative(REPO_ROOT, args.work) || args.work}. Run the same command again to resume.`);
    return 130;
  }
  const extra = argv.filter((x) => x !== '--fresh');
  const command = `npm run pretrain-demo${extra.length ? ` -- ${extra.join(' ')}` : ''}`;
  const size = await writeBase(args.out, { config, result, manifest, command, threads: args.threads, safetensorsBytes: 0, weights: result.weights! });
  log(`Wrote ${relative(REPO_ROOT, args.out) || args.out}: ${size.toLocaleString('en-US')} bytes of weights; held-out perplexity ${result.heldout!.ppl.toFixed(4)} after ${result.stepsDone} steps (${duration(result.trainSeconds)} of training).`);
  return 0;
}
