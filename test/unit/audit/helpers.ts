// Shared test helpers for the audit tests: temp data folders and an in-process CLI runner.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../electron/cli';

export function tempHome(label = 'audit'): { home: string; cleanup: () => void } {
  const home = mkdtempSync(join(tmpdir(), `offsite-${label}-`));
  return { home, cleanup: () => rmSync(home, { recursive: true, force: true }) };
}

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function cli(args: string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await main(args, {
    out: (t) => {
      out += t.endsWith('\n') ? t : `${t}\n`;
    },
    err: (t) => {
      err += t.endsWith('\n') ? t : `${t}\n`;
    },
    isTTY: false,
    signal: new AbortController().signal,
  });
  return { code, out, err };
}
