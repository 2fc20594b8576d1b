// Helpers for the tuning tests: the CLI as a child process, tiny models, token data files and
// LoRA adapters with chosen values.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writePeftAdapter } from '../../../native-models/formats/peft';
import { loadModel } from '../../../native-models/models/load';
import { planLora } from '../../../native-models/peft/lora';

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
export const stories260K = resolve(repoRoot, '../shared/fixtures/llama2c/stories260K.bin');
export const python = process.env.OFFSITE_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `offsite …` (bin/offsite.mjs) to completion. */
export function runCli(args: string[], opts: { onStderr?: (chunk: string, child: ReturnType<typeof spawn>) => void; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolveP, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin/offsite.mjs'), ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 240_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => {
      const s = d.toString('utf8');
      stderr += s;
      opts.onStderr?.(s, child);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveP({ code, stdout, stderr });
    });
  });
}

/** Tiny random Hugging Face models written by the models' PyTorch oracle (llama_gqa, gpt2, …). */
export function writeTinyHfModels(dir: string): void {
  const r = spawnSync(python, [join(repoRoot, 'test/oracle/models/oracle.py'), 'hf', dir], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`The PyTorch oracle could not write the tiny models: ${r.stderr || r.error?.message}`);
}

/** A deterministic pseudo-random stream (LCG) for test data. */
export function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

/** A JSONL file of {"tokens"} lines with the given lengths, ids in [1, vocab). */
export function writeTokenData(path: string, lengths: number[], vocab: number, seed = 1): number[][] {
  const rnd = lcg(seed);
  const rows = lengths.map((n) => Array.from({ length: n }, () => 1 + Math.floor(rnd() * (vocab - 1))));
  writeFileSync(path, `${rows.map((t) => JSON.stringify({ tokens: t })).join('\n')}\n`);
  return rows;
}

/** A PEFT LoRA adapter for `modelPath` with A and B drawn uniformly from ±scale (B non-zero, so both get gradients). */
export async function writeRandomAdapter(dir: string, modelPath: string, o: { rank: number; alpha: number; targets: string[]; layers?: number[]; seed: number; scale: number; zeroLayers?: number[] }): Promise<void> {
  const model = await loadModel(modelPath);
  const shapes = new Map([...model.weights].map(([n, w]) => [n, w.shape]));
  const plan = planLora(model.spec, shapes, { rank: o.rank, alpha: o.alpha, dropout: 0, targets: o.targets, layers: o.layers ?? null });
  const rnd = lcg(o.seed);
  const draw = (n: number) => Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * o.scale);
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  for (const m of plan.modules) {
    tensors.set(m.keyA, { dtype: 'F32', shape: [o.rank, m.inFeatures], data: draw(o.rank * m.inFeatures) });
    const b = draw(m.outFeatures * o.rank);
    if (o.zeroLayers?.includes(m.layer)) b.fill(0);
    tensors.set(m.keyB, { dtype: 'F32', shape: [m.outFeatures, o.rank], data: b });
  }
  await writePeftAdapter(dir, { r: o.rank, lora_alpha: o.alpha, target_modules: o.targets, layers_to_transform: o.layers ?? null, fan_in_fan_out: model.spec.family === 'gpt2' }, tensors);
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** The JSON object a --json command printed (its only stdout line). */
export function parseJsonOut<T>(r: CliResult): T {
  if (r.code !== 0) throw new Error(`offsite exited ${r.code}: ${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout) as T;
}
