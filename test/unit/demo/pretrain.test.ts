// The pretraining code of `npm run pretrain-demo` on a tiny configuration: the loss falls, an
// interrupted and resumed run ends with the same weights bit for bit as an uninterrupted one, and
// the job worker runs the same loop off the main thread.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_TASKS_DIR } from '../../../native-models/demo/paths';
import { runPretraining, streamWindows, type PretrainConfig, type PretrainInput, type PretrainProgress, type PretrainResult } from '../../../native-models/demo/pretrain';
import { startJob } from '../../../native-models/runtime/jobs';

const tiny: PretrainConfig = {
  model: { hiddenSize: 32, layers: 2, heads: 2, kvHeads: 1, intermediateSize: 64, contextLength: 32 },
  seed: 3,
  batchSize: 4,
  steps: 12,
  lr: 1e-2,
  minLr: 1e-3,
  warmupSteps: 2,
  beta1: 0.9,
  beta2: 0.95,
  weightDecay: 0.1,
  clip: 1.0,
};

let dir: string;
let trainFile: string;
let heldoutFile: string;
let heldoutBytes: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'demo-pretrain-'));
  // The first chapters of the real corpus, shortened: real text, tiny run.
  const lines = (await readFile(join(DEMO_TASKS_DIR, 'moby-dick-train.jsonl'), 'utf8')).split('\n').slice(0, 4);
  const texts = lines.map((l) => (JSON.parse(l) as { text: string }).text.slice(0, 1200));
  trainFile = join(dir, 'train.jsonl');
  heldoutFile = join(dir, 'heldout.jsonl');
  await writeFile(trainFile, texts.slice(0, 3).map((text) => `${JSON.stringify({ text })}\n`).join(''));
  const held = texts[3]!.slice(0, 300);
  heldoutBytes = Buffer.byteLength(held);
  await writeFile(heldoutFile, `${JSON.stringify({ text: held })}\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function input(work: string, extra: Partial<PretrainInput> = {}): PretrainInput {
  return { config: tiny, trainFile, heldoutFile, workDir: join(dir, work), resume: true, threads: 1, checkpointEvery: 4, ...extra };
}

async function run(work: string, extra: Partial<PretrainInput> = {}): Promise<{ result: PretrainResult; losses: number[] }> {
  const losses: number[] = [];
  const result = await runPretraining(input(work, extra), { progress: (p) => p.kind === 'step' && losses.push(p.loss) });
  return { result, losses };
}

describe('demo pretraining', () => {
  it('cuts the token stream into windows that overlap by one token', () => {
    const w = streamWindows([[256, 1, 2, 3], [256, 4, 5, 6, 7]], 4);
    // Stream 256 1 2 3 256 4 5 6 7: windows start at 0 and 3; one starting at 6 would run past the end.
    expect(w.map((e) => [...e.tokens])).toEqual([[256, 1, 2, 3], [3, 256, 4, 5]]);
    expect([...w[0]!.lossMask]).toEqual([0, 1, 1, 1]);
  });

  it('lowers the training loss and reports a held-out perplexity', { timeout: 300_000 }, async () => {
    const { result, losses } = await run('falls');
    expect(result.status).toBe('finished');
    expect(losses.length).toBe(12);
    // Starts near ln(259) ≈ 5.56 (uniform over the byte vocabulary); 12 AdamW steps at 1e-2 must cut it by more than 1 nat.
    expect(losses[0]!).toBeGreaterThan(5);
    expect((losses[10]! + losses[11]!) / 2).toBeLessThan(losses[0]! - 1);
    // <s> + bytes: every byte is predicted once.
    expect(result.heldout!.tokens).toBe(heldoutBytes);
    expect(result.heldout!.ppl).toBeLessThan(259);
    expect(Object.keys(result.weights!).length).toBe(1 + 2 * 9 + 2);
  });

  it('resumes an interrupted run to the same weights, bit for bit', { timeout: 300_000 }, async () => {
    const straight = await run('straight', { skipHeldout: true });
    const first = await run('resumed', { skipHeldout: true, stopAfterSteps: 5 });
    expect(first.result.status).toBe('stopped');
    expect(first.result.stepsDone).toBe(5);
    const second = await run('resumed', { skipHeldout: true });
    expect(second.result.resumed).toBe(true);
    expect(second.losses.length).toBe(7);
    expect([...first.losses, ...second.losses]).toEqual(straight.losses);
    for (const [name, w] of Object.entries(straight.result.weights!)) {
      expect(Buffer.from(second.result.weights![name]!.buffer).equals(Buffer.from(w.buffer)), name).toBe(true);
    }
    expect(second.result.tokensSeen).toBe(straight.result.tokensSeen);
  });

  it('runs in a job worker with progress and returns the trained weights', { timeout: 300_000 }, async () => {
    const seen: PretrainProgress[] = [];
    const job = startJob<PretrainInput, PretrainProgress, PretrainResult>(
      new URL('../../../native-models/demo/pretrain-worker.ts', import.meta.url),
      input('worker', { config: { ...tiny, steps: 3 }, skipHeldout: true }),
      { onProgress: (p) => seen.push(p) },
    );
    const out = await job.result;
    expect(out.status).toBe('done');
    if (out.status !== 'done') return;
    expect(out.value.stepsDone).toBe(3);
    expect(seen.filter((p) => p.kind === 'step').map((p) => (p as { step: number }).step)).toEqual([1, 2, 3]);
    const started = seen.find((p) => p.kind === 'started') as Extract<PretrainProgress, { kind: 'started' }>;
    expect(started.threads).toBe(1);
    expect(out.value.weights!['model.embed_tokens.weight']!.length).toBe(259 * 32);
  });
});
