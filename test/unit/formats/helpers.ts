// Shared helpers for the format tests: temp folders, an in-process `offsite` runner, repo paths.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../../electron/cli';

export const repoRoot = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const stories260K = resolve(repoRoot, '../shared/fixtures/llama2c/stories260K.bin');

export function tempDir(prefix = 'offsite-formats-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs `offsite ARGS` in-process and captures its output. */
export async function offsite(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, {
    out: (t) => void (out += t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => void (err += t.endsWith('\n') ? t : `${t}\n`),
    isTTY: false,
    signal: new AbortController().signal,
  });
  return { code, out, err };
}
