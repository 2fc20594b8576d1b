// `offsite tune` flags: --help documents every flag the command accepts, and bad input is a
// usage error (exit 2, one sentence) before anything runs.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../electron/cli';
import { tuneCommand } from '../../../electron/commands/tune';
import type { CliIO } from '../../../electron/commands/types';
import { stories260K } from '../../integration/tune/helpers';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-tune-cli-'));
  writeFileSync(join(dir, 'd.jsonl'), '{"tokens": [1, 5, 9, 12]}\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`), isTTY: false, signal: new AbortController().signal };
  const code = await main(args, io);
  return { code, out, err };
}

describe('offsite tune', () => {
  it('--help documents every flag', async () => {
    const { code, out } = await cli(['tune', '--help']);
    expect(code).toBe(0);
    for (const name of Object.keys(tuneCommand.options)) expect(out).toContain(`--${name}`);
    for (const contract of ['--json', '--home', '--resume DIR', '--init-adapter DIR', '--sampler all|ist|uniform', '--ist-ratio']) expect(out).toContain(contract);
  });

  it.each([
    [['tune', '--data', 'x.jsonl', '--out', 'o'], /--model MODEL .* is required/],
    [['tune', '--model', stories260K, '--data', 'x', '--out', 'o', '--sampler', 'lisa'], /--sampler must be all, ist, uniform, not "lisa"/],
    [['tune', '--model', stories260K, '--data', 'x', '--out', 'o', '--steps', '0'], /--steps must be a whole number ≥ 1/],
    [['tune', '--model', stories260K, '--data', 'x', '--out', 'o', '--steps', '3', '--epochs', '1'], /--steps or --epochs, not both/],
    [['tune', '--model', stories260K, '--data', 'x', '--out', 'o', '--layers', '0,x'], /--layers takes layer indices/],
    [['tune', '--resume', 'somewhere', '--lr', '1'], /--resume continues with the run's saved settings; leave out --lr/],
    [['tune', '--model', stories260K, '--data', 'x', '--out', 'o', '--peft', 'full'], /Full-parameter tuning needs the layers/],
  ])('rejects %j with a sentence (exit 2)', async (args, message) => {
    const r = await cli([...args, '--home', join(dir, 'home')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('refuses a non-empty output folder and a folder that is not a run', async () => {
    const out = join(dir, 'used');
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'x');
    const r = await cli(['tune', '--model', stories260K, '--data', join(dir, 'd.jsonl'), '--out', out, '--home', join(dir, 'home')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/already exists and is not empty/);
    const r2 = await cli(['tune', '--resume', out, '--home', join(dir, 'home')]);
    expect(r2.code).toBe(2);
    expect(r2.err).toMatch(/is not a tuning run folder/);
  });

  it('reports a data line outside the vocabulary as bad input from the worker (exit 2)', async () => {
    writeFileSync(join(dir, 'bad.jsonl'), '{"tokens": [1, 5, 9999]}\n');
    const r = await cli(['tune', '--model', stories260K, '--data', join(dir, 'bad.jsonl'), '--out', join(dir, 'bad-run'), '--steps', '1', '--ep', 'cpu', '--home', join(dir, 'home')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/bad\.jsonl line 1: token id 9999 is outside the model's vocabulary \(0\.\.511\)/);
  });
});
