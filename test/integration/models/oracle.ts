// Helpers for the model tests: the repo root, the PyTorch oracle (Debian's python3-torch) and
// small numeric comparisons.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
export const stories260K = resolve(repoRoot, '../shared/fixtures/llama2c/stories260K.bin');
const oracleScript = resolve(repoRoot, 'test/oracle/models/oracle.py');

/** Python with torch: $OFFSITE_PYTHON, else Debian's interpreter, else python3 on PATH. */
export const python = process.env.OFFSITE_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

export function runOracle(args: string[]): void {
  const r = spawnSync(python, [oracleScript, ...args], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`The PyTorch oracle failed (${python} ${args[0]}): ${r.stderr || r.error?.message}`);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** A fixed pseudo-random token sequence (LCG), starting with BOS = 1. */
export function fixedTokens(n: number, vocab: number, seed = 12345): number[] {
  const out = [1];
  let x = seed;
  while (out.length < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(3 + ((x >>> 8) % (vocab - 3)));
  }
  return out;
}
