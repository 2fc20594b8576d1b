// Resume (SECURITY.md, Jobs): on the CPU with one thread, 20 updates straight and 10 + resume + 10
// give byte-identical adapters — with IST (importance updates before and after the break),
// shuffling and LoRA dropout, so every saved random stream matters. Through the runs service
// (worker threads), and through the CLI with a real SIGINT (exit 130, checkpoint, audit event).
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAudit } from '../../../electron/services/audit';
import { openRuns } from '../../../electron/services/runs';
import { TUNE_DEFAULTS, type TuneConfig } from '../../../native-models/tune';
import { periodicData, writeTinyLlama } from '../../unit/tune/tiny-model';
import { parseJsonOut, runCli } from './helpers';

let dir: string;
let model: string;
let data: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-resume-'));
  model = join(dir, 'llama4');
  await writeTinyLlama(model, { layers: 4 });
  data = join(dir, 'data.jsonl');
  periodicData(data, 18, 20, 3, 64, 4);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const files = (out: string) => ['adapter/adapter_model.safetensors', 'adapter/adapter_config.json'].map((f) => readFileSync(join(out, f)));

describe('resume gives the same adapter as an uninterrupted run', () => {
  it('20 updates straight = 10 + resume + 10 (runs service, worker threads)', async () => {
    const home = join(dir, 'home');
    const runs = openRuns(home);
    try {
      const config = (out: string): TuneConfig => ({ ...TUNE_DEFAULTS, model, data, out, steps: 20, seqLen: 16, batchSize: 3, rank: 4, alpha: 8, dropout: 0.1, lr: 1e-2, sampler: 'ist', ist: { ...TUNE_DEFAULTS.ist, interval: 4 }, seed: 7, provider: 'cpu', threads: 1, checkpointEvery: 3 });
      const straight = await (await runs.start(config(join(dir, 'straight')))).done;
      expect(straight.status).toBe('finished');
      const first = await runs.start(config(join(dir, 'split')), { stopAfterSteps: 10 });
      const half = await first.done;
      expect(half.status).toBe('cancelled');
      expect(half.status === 'cancelled' && half.result?.stepsDone).toBe(10);
      expect(existsSync(join(dir, 'split', 'adapter'))).toBe(false);
      const second = await runs.resume(join(dir, 'split'));
      expect(second.runId).toBe(first.runId);
      const rest = await second.done;
      expect(rest.status).toBe('finished');
      if (straight.status !== 'finished' || rest.status !== 'finished') throw new Error('unreachable');
      expect(rest.result.steps).toEqual(straight.result.steps);
      expect(rest.result.importance).toEqual(straight.result.importance);
      const [a, b] = [files(join(dir, 'straight')), files(join(dir, 'split'))];
      expect(Buffer.compare(a[0]!, b[0]!)).toBe(0);
      expect(Buffer.compare(a[1]!, b[1]!)).toBe(0);
      // The split run's audit trail: started, cancelled (resumable), started again, finished.
      const actions = openAudit(home).log({ runId: first.runId }).map((e) => e.action);
      expect(actions).toEqual(['run.started', 'run.cancelled', 'run.started', 'run.finished']);
    } finally {
      runs.close();
    }
  }, 240_000);

  it('Ctrl-C stops `offsite tune` with exit 130 and a checkpoint; --resume finishes with the same adapter', async () => {
    const home = join(dir, 'cli-home');
    const args = (out: string) => ['tune', '--model', model, '--data', data, '--out', out, '--steps', '30', '--seq-len', '16', '--batch-size', '3', '--rank', '4', '--alpha', '8', '--lr', '1e-2', '--seed', '3', '--ist-interval', '4', '--ep', 'cpu', '--threads', '1', '--home', home];
    const straight = parseJsonOut<{ adapter: string }>(await runCli([...args(join(dir, 'cli-straight')), '--json']));
    let sent = false;
    const stopped = await runCli(args(join(dir, 'cli-split')), {
      onStderr: (chunk, child) => {
        if (!sent && /step 3\/30/.test(chunk)) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/offsite tune --resume /);
    expect(existsSync(join(dir, 'cli-split', 'checkpoint', 'checkpoint.json'))).toBe(true);
    const cancelled = openAudit(home).log({ action: 'run.cancelled' });
    expect(cancelled).toHaveLength(1);
    expect(cancelled[0]!.payload.outputs.checkpoint).toBeDefined();
    const resumed = parseJsonOut<{ adapter: string; steps: unknown[] }>(await runCli(['tune', '--resume', join(dir, 'cli-split'), '--home', home, '--json']));
    expect(resumed.steps).toHaveLength(30);
    expect(Buffer.compare(readFileSync(join(resumed.adapter, 'adapter_model.safetensors')), readFileSync(join(straight.adapter, 'adapter_model.safetensors')))).toBe(0);
  }, 240_000);
});
