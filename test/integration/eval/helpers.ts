// Shared fixtures of the evaluation tests: tiny random models written by the PyTorch oracle script
// (test/oracle/models/oracle.py hf), the byte-level tokenizer added to the 259-token LLaMA, and
// seeded multiple-choice items.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { writeByteLevelTokenizerJson } from '../../../native-models/formats/tokenizer';
import { python, repoRoot, runOracle } from '../models/oracle';

export { repoRoot, python };
export const bin = resolve(repoRoot, 'bin/offsite.mjs');

/** Writes the oracle's tiny models into `dir`; returns the byte-level LLaMA folder (with tokenizer). */
export async function tinyModels(dir: string): Promise<{ bytes: string; gpt2: string; llama: string }> {
  runOracle(['hf', dir]);
  const bytes = join(dir, 'llama_bytes');
  await writeByteLevelTokenizerJson(bytes);
  return { bytes, gpt2: join(dir, 'gpt2'), llama: join(dir, 'llama_gqa') };
}

/** Runs the real CLI entry point. */
export function offsite(home: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args, '--home', home], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** mulberry32. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'red', 'sky', 'café', 'runs', 'blue', 'über', 'tea', 'x', 'jump', 'sun', 'moon', 'at', 'noon', 'zebra'];

export interface McLine {
  context: string;
  choices: string[];
  label: number;
}

/** `n` multiple-choice lines with short contexts (≤ ~30 bytes) and 2–4 choices, some non-ASCII. */
export function mcItems(n: number, seed: number): McLine[] {
  const r = rng(seed);
  const pick = () => WORDS[Math.floor(r() * WORDS.length)]!;
  const out: McLine[] = [];
  for (let i = 0; i < n; i++) {
    const words = 2 + Math.floor(r() * 4);
    let context = Array.from({ length: words }, pick).join(' ');
    if (r() < 0.15) context += ' '; // trailing space: moved into the continuation
    const k = 2 + Math.floor(r() * 3);
    const choices = Array.from({ length: k }, (_, j) => (r() < 0.5 ? pick() : `${pick()} ${pick()}`) + (j === 0 && r() < 0.2 ? '!' : ''));
    out.push({ context, choices, label: Math.floor(r() * k) });
  }
  return out;
}

export const jsonl = (rows: readonly object[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** Runs a Python script with JSON on stdin; parses its JSON stdout. */
export function runPythonJson<T>(script: string, input: unknown): T {
  const r = spawnSync(python, [resolve(repoRoot, script)], { input: JSON.stringify(input), encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout) as T;
}
