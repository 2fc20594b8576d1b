// `offsite demo --quick --json` end to end through the real CLI (a child process, as a user runs
// it): one JSON object with all five columns for both demo tasks, a verified audit trail holding
// every stage's event, and the output folders on disk. Then `offsite table` on the demo's own
// emulator with a tiny budget, and its refusals. No assertion on the quality ordering: the quick
// budget is far too small for that (the full demo's table is reported by the pipeline's author).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditPath } from '../../../electron/audit/store';
import { readAuditLog, verifyAuditDatabase } from '../../../electron/services/audit';
import { DEMO_BUDGETS } from '../../../native-models/demo/pipeline-config';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const COLUMNS = ['fullZS', 'emuZS', 'emuFT', 'plugin', 'fullFT'] as const;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function offsite(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolveP, reject) => {
    const childEnv = { ...process.env, ...env };
    delete childEnv.OFFSITE_HOME;
    const child = spawn(process.execPath, [join(repoRoot, 'bin/offsite.mjs'), ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolveP({ code, stdout, stderr }));
  });
}

interface TaskJson {
  task: string;
  metric: string;
  table: Record<string, number>;
  gaps: { utility: number; privacy: number };
  scores: Record<string, Record<string, number>>;
  testExamples: number;
  runs: Array<{ role: string; runId: string; out: string; adapter: string; adapterPackage: { path: string } | null; tunedLayers: number[]; steps: number }>;
  plugin: { out: string };
}

interface DemoJson {
  table: Record<string, number>;
  metric: string;
  task: string;
  tasks: TaskJson[];
  emulator: { path: string; importedPath: string; manifestSha256: string; signerKeyId: string; layerMap: Array<{ layer: number; role: string; index: number | null }> };
  runs: Array<{ task: string; role: string; runId: string }>;
  auditVerified: boolean;
  out: string;
  home: string;
  resultsFile: string;
  keys: { modelOwner: { keyId: string }; dataOwner: { keyId: string } };
  audit: { export: string; report: string };
}

let dir: string;
let demo: CliResult;
let json: DemoJson;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-demo-'));
  demo = await offsite(['demo', '--quick', '--json', '--out', join(dir, 'demo')]);
  if (demo.code === 0) json = JSON.parse(demo.stdout) as DemoJson;
}, 1_200_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('offsite demo --quick --json', () => {
  it('exits 0 and prints exactly one JSON object on stdout, with the stage lines on stderr', () => {
    expect(demo.stderr).toMatch(/\[1\/14\] keys for the model owner and the data owner/);
    expect(demo.stderr).toMatch(/\[14\/14\] done in [\d.]+ s/);
    expect(demo.code, demo.stderr.slice(-3000)).toBe(0);
    expect(demo.stdout.trim().split('\n')).toHaveLength(1);
    expect(json.out).toBe(join(dir, 'demo'));
    expect(json.home).toBe(join(dir, 'demo', 'home'));
  });

  it('has all five columns as numbers for both tasks, task A first', () => {
    expect(json.tasks.map((t) => t.task)).toEqual(['email-lm', 'ham-spam']);
    expect(json.task).toBe('email-lm');
    expect(json.metric).toBe('ppl');
    expect(json.table).toEqual(json.tasks[0]!.table);
    expect(json.tasks[1]!.metric).toBe('acc');
    for (const t of json.tasks) {
      expect(Object.keys(t.table).sort()).toEqual([...COLUMNS].sort());
      for (const c of COLUMNS) {
        expect(typeof t.table[c]).toBe('number');
        expect(Number.isFinite(t.table[c])).toBe(true);
      }
      expect(t.gaps.utility).toBeCloseTo(t.table.fullFT! - t.table.plugin!, 10);
      expect(t.gaps.privacy).toBeCloseTo(t.table.plugin! - t.table.emuFT!, 10);
      expect(t.testExamples).toBe(32);
    }
    for (const c of COLUMNS) {
      expect(json.tasks[0]!.table[c]).toBeGreaterThan(1); // a perplexity
      expect(json.tasks[1]!.table[c]).toBeGreaterThanOrEqual(0); // an accuracy
      expect(json.tasks[1]!.table[c]).toBeLessThanOrEqual(1);
      expect(json.tasks[1]!.scores[c]!.n).toBe(32);
    }
  });

  it('verifies the audit trail and it holds every stage of the pipeline', () => {
    expect(json.auditVerified).toBe(true);
    const db = auditPath(json.home);
    // As `offsite audit verify --home` does: the folder's own trusted keys sign its checkpoints.
    expect(verifyAuditDatabase(db, { trustLocalKeys: true }).ok).toBe(true);
    const events = readAuditLog(db);
    const actions = events.map((e) => e.action);
    const count = (a: string) => actions.filter((x) => x === a).length;
    expect(count('key.generated')).toBeGreaterThanOrEqual(2);
    expect(count('key.trusted')).toBeGreaterThanOrEqual(2);
    expect(count('emulator.built')).toBe(1);
    expect(count('emulator.imported')).toBe(1);
    // Two tasks × (tuning on the emulator + Full FT baseline).
    expect(count('run.started')).toBe(4);
    expect(count('run.finished')).toBe(4);
    expect(count('adapter.exported')).toBe(2);
    expect(count('plugin.finished')).toBe(2);
    expect(count('evaluation.finished')).toBe(10);
    // The build precedes the import, which precedes every run.
    expect(actions.indexOf('emulator.built')).toBeLessThan(actions.indexOf('emulator.imported'));
    expect(actions.indexOf('emulator.imported')).toBeLessThan(actions.indexOf('run.started'));
    // Each run the JSON names started and finished in the log; the emulator runs name the emulator.
    for (const r of json.runs) {
      const mine = events.filter((e) => e.payload.run_id === r.runId).map((e) => e.action);
      expect(mine).toEqual(expect.arrayContaining(['run.started', 'run.finished']));
      const started = events.find((e) => e.payload.run_id === r.runId && e.action === 'run.started')!;
      if (r.role === 'emulator') expect(started.payload.inputs.emulator).toBe(json.emulator.manifestSha256);
      else expect(started.payload.inputs.emulator).toBeUndefined();
    }
    expect(json.runs.map((r) => `${r.task}/${r.role}`).sort()).toEqual(['email-lm/emulator', 'email-lm/full', 'ham-spam/emulator', 'ham-spam/full']);
    // Evaluations fill each column once per task.
    const columns = events.filter((e) => e.action === 'evaluation.finished').map((e) => ((e.payload.details as { result: { column: string } }).result.column));
    for (const c of COLUMNS) expect(columns.filter((x) => x === c)).toHaveLength(2);
  });

  it('leaves the emulator package, runs, adapter packages, plugged-in models, keys and results on disk', () => {
    expect(existsSync(join(json.emulator.path, 'manifest.json'))).toBe(true);
    expect(existsSync(join(json.emulator.importedPath, 'manifest.json'))).toBe(true);
    // The quick budget's emulator: bottom + top adapter layers as configured, the rest the middle.
    const [bottom, top] = DEMO_BUDGETS.quick.emulator.adapterLayers;
    const adapters = json.emulator.layerMap.filter((l) => l.role === 'adapter').map((l) => l.layer);
    expect(adapters).toEqual([...Array.from({ length: bottom }, (_, i) => i), ...Array.from({ length: top }, (_, i) => json.emulator.layerMap.length - top + i)]);
    expect(json.emulator.layerMap.filter((l) => l.role === 'harmonizer').length).toBeGreaterThan(0);
    expect(json.emulator.signerKeyId).toBe(json.keys.modelOwner.keyId);
    for (const t of json.tasks) {
      for (const r of t.runs) {
        expect(existsSync(join(r.adapter, 'adapter_config.json'))).toBe(true);
        expect(existsSync(join(r.out, 'run.json'))).toBe(true);
      }
      const emuRun = t.runs.find((r) => r.role === 'emulator')!;
      expect(existsSync(join(emuRun.adapterPackage!.path, 'manifest.json'))).toBe(true);
      expect(existsSync(join(t.plugin.out, 'config.json'))).toBe(true);
    }
    for (const k of ['model-owner.key', 'model-owner.key.pub', 'data-owner.key', 'data-owner.key.pub']) expect(existsSync(join(json.out, 'keys', k))).toBe(true);
    expect(existsSync(json.audit.export)).toBe(true);
    expect(existsSync(json.audit.report)).toBe(true);
    const saved = JSON.parse(readFileSync(json.resultsFile, 'utf8')) as DemoJson;
    expect(saved.tasks[0]!.table).toEqual(json.tasks[0]!.table);
  });

  it('tunes the emulator adapter blocks on the emulator, every layer for Full FT, each for the same number of updates', () => {
    // The emulator run names its blocks in the emulator's numbering, Full FT the full model's layers.
    const adapters = json.emulator.layerMap.filter((l) => l.role === 'adapter').map((l) => l.index);
    const all = json.emulator.layerMap.map((l) => l.layer);
    for (const [k, t] of json.tasks.entries()) {
      const emu = t.runs.find((r) => r.role === 'emulator')!;
      const full = t.runs.find((r) => r.role === 'full')!;
      expect(emu.tunedLayers).toEqual(adapters);
      expect(full.tunedLayers).toEqual(all);
      expect(emu.steps).toBe(DEMO_BUDGETS.quick.tasks[k]!.tuning.steps);
      expect(full.steps).toBe(emu.steps);
    }
  });

  it('refuses an output folder that is not empty (exit 2, one sentence)', async () => {
    const r = await offsite(['demo', '--quick', '--out', json.out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already exists and is not empty/);
  });
});

describe('offsite table', () => {
  it('computes the five columns for one task from the demo emulator, with a tiny budget', async () => {
    const evalFile = join(dir, 'eval.jsonl');
    const lines = readFileSync(join(repoRoot, 'native-models/demo/tasks/email-lm-test.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 6);
    writeFileSync(evalFile, `${lines.join('\n')}\n`);
    const out = join(dir, 'table');
    const r = await offsite([
      'table', '--model', join(repoRoot, 'native-models/demo/base'), '--emulator', json.emulator.path, '--trust', join(json.out, 'keys', 'model-owner.key.pub'),
      '--data', join(repoRoot, 'native-models/demo/tasks/email-lm-train.jsonl'), '--eval', evalFile, '--out', out,
      '--steps', '2', '--batch-size', '2', '--seq-len', '64', '--home', join(dir, 'table-home'), '--json',
    ]);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const t = JSON.parse(r.stdout) as TaskJson & { emulator: { manifestSha256: string } };
    expect(t.metric).toBe('ppl');
    for (const c of COLUMNS) expect(t.table[c]).toBeGreaterThan(1);
    expect(t.emulator.manifestSha256).toBe(json.emulator.manifestSha256);
    expect(t.runs.map((x) => x.role)).toEqual(['emulator', 'full']);
    const actions = readAuditLog(auditPath(join(dir, 'table-home'))).map((e) => e.action);
    expect(actions.filter((a) => a === 'evaluation.finished')).toHaveLength(5);
    expect(actions).toEqual(expect.arrayContaining(['emulator.imported', 'run.started', 'run.finished', 'plugin.finished']));
  });

  it('refuses an emulator whose signer is not trusted (exit 3) before tuning anything', async () => {
    const home = join(dir, 'untrusted-home');
    const r = await offsite([
      'table', '--model', join(repoRoot, 'native-models/demo/base'), '--emulator', json.emulator.path,
      '--data', join(repoRoot, 'native-models/demo/tasks/email-lm-train.jsonl'), '--eval', join(repoRoot, 'native-models/demo/tasks/email-lm-test.jsonl'),
      '--out', join(dir, 'table-untrusted'), '--home', home,
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/Nothing was tuned or evaluated/);
    const actions = readAuditLog(auditPath(home)).map((e) => e.action);
    expect(actions).toContain('emulator.import_rejected');
    expect(actions).not.toContain('run.started');
  });

  it('names a missing flag (exit 2)', async () => {
    const r = await offsite(['table', '--model', join(repoRoot, 'native-models/demo/base')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/offsite table needs --emulator/);
  });
});
