// A tuning run from the CLI leaves run.started (config, model / data hashes, app version, machine,
// execution provider) and run.finished whose output hashes match the files on disk, recomputed
// here independently with node:crypto; the log verifies and holds one metrics row per update.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditPath } from '../../../electron/audit/store';
import { readAuditLog, verifyAuditDatabase } from '../../../electron/services/audit';
import { appVersion } from '../../../electron/services/version';
import { parseJsonOut, runCli, stories260K, writeTokenData } from './helpers';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-tune-audit-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every file below `folder` with its SHA-256, sorted by relative path. */
function listing(folder: string): Array<{ path: string; sha256: string; size: number }> {
  const out: Array<{ path: string; sha256: string; size: number }> = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ path: relative(folder, p).split('\\').join('/'), sha256: sha256(readFileSync(p)), size: statSync(p).size });
    }
  };
  walk(folder);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

describe('audit trail of `offsite tune`', () => {
  it('records hashes that match the model, data, adapter and checkpoint on disk', async () => {
    const home = join(dir, 'home');
    const data = join(dir, 'train.jsonl');
    writeTokenData(data, [30, 25, 40, 33, 28, 36], 512, 3);
    const out = join(dir, 'run');
    const res = parseJsonOut<{ runId: string; adapter: string; steps: unknown[] }>(
      await runCli(['tune', '--model', stories260K, '--data', data, '--out', out, '--steps', '6', '--seq-len', '32', '--batch-size', '2', '--ep', 'cpu', '--threads', '1', '--home', home, '--json']),
    );
    const events = readAuditLog(auditPath(home), { runId: res.runId });
    expect(events.map((e) => e.action)).toEqual(['run.started', 'run.finished']);
    const [started, finished] = events as [typeof events[0], typeof events[0]];

    // run.started: configuration, input hashes, and where it ran.
    const p = started.payload;
    expect(p.run_id).toBe(res.runId);
    expect(p.app_version).toBe(appVersion());
    expect(p.machine_id).toMatch(/\S/);
    expect(p.execution_provider).toBe('cpu');
    const cfg = (p.details.config ?? {}) as Record<string, unknown>;
    expect(cfg.steps).toBe(6);
    expect(cfg.sampler).toBe('ist');
    expect(cfg.data).toBe(data);
    const digest = (v: unknown) => (typeof v === 'string' ? v : (v as { sha256: string }).sha256);
    expect(digest(p.inputs.model)).toBe(sha256(readFileSync(stories260K)));
    expect(digest(p.inputs.data)).toBe(sha256(readFileSync(data)));

    // run.finished: the adapter and checkpoint folders as they are on disk now.
    const f = finished.payload;
    expect(f.details.metric_rows).toBe(6);
    for (const [name, folder] of [['adapter', res.adapter], ['checkpoint', join(out, 'checkpoint')]] as const) {
      const entries = listing(folder);
      expect(entries.length).toBeGreaterThan(0);
      const recorded = f.outputs[name] as { sha256: string; size: number; files?: number };
      expect(recorded.size).toBe(entries.reduce((s, e) => s + e.size, 0));
      expect(recorded.files).toBe(entries.length);
      // The folder digest (services/hashing): SHA-256 over lines "path\tsize\tsha256\n".
      expect(recorded.sha256).toBe(sha256(Buffer.from(entries.map((e) => `${e.path}\t${e.size}\t${e.sha256}\n`).join(''))));
    }
    expect(f.outputs.metrics).toBeDefined();
    expect(verifyAuditDatabase(auditPath(home)).ok).toBe(true);
  }, 240_000);
});
