// The app's evaluation service: each evaluation runs in a worker thread with progress events, is
// recorded as evaluation.finished, listed, placed in the results table, and can be cancelled.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAudit, type AuditLog } from '../../../electron/services/audit';
import { EvaluationsService } from '../../../electron/services/evaluations';
import { jsonl, mcItems, tinyModels } from './helpers';

let dir: string;
let model: string;
let audit: AuditLog;
const events: { kind: 'progress' | 'finished'; id: string; value: unknown }[] = [];
let evals: EvaluationsService;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-eval-service-'));
  model = (await tinyModels(join(dir, 'models'))).bytes;
  audit = openAudit(join(dir, 'home'));
  evals = new EvaluationsService(join(dir, 'home'), {
    audit: () => audit,
    settings: () => ({ provider: 'cpu', intraOpThreads: 1 }),
    events: {
      progress: (id, p) => events.push({ kind: 'progress', id, value: p }),
      finished: (id, outcome, message) => events.push({ kind: 'finished', id, value: { outcome, message } }),
    },
  });
});
afterAll(() => {
  audit?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('EvaluationsService', () => {
  it('runs in a worker, reports progress, records the result and fills the results table', async () => {
    const data = join(dir, 'mc.jsonl');
    writeFileSync(data, jsonl(mcItems(10, 3)));
    const { id } = await evals.start({ model, data, taskName: 'tiny-mc', batchSize: 4 });
    expect(evals.list()[0]).toMatchObject({ id, status: 'running', task: { name: 'tiny-mc' }, column: 'fullZS' });
    const view = await evals.wait(id);
    expect(view).toMatchObject({ id, status: 'finished', metric: 'mc', executionProvider: 'cpu' });
    expect(view.scores!.n).toBe(10);
    const mine = events.filter((e) => e.id === id);
    const scoring = mine.filter((e) => e.kind === 'progress' && (e.value as { phase: string }).phase === 'scoring');
    expect(scoring.length).toBeGreaterThan(1);
    const last = scoring.at(-1)!.value as { done: number; total: number };
    expect(last.total).toBeGreaterThanOrEqual(20); // 10 items × 2–4 choices
    expect(last.done).toBe(last.total);
    expect(mine.at(-1)).toMatchObject({ kind: 'finished', value: { outcome: 'done' } });
    const recorded = audit.log({ action: 'evaluation.finished' });
    expect(recorded.length).toBe(1);
    expect(recorded[0]!.seq).toBe(view.auditSeq);
    // The list now comes from the audit trail, and the table has a Full ZS cell for the task.
    expect(evals.list().filter((v) => v.id === id)).toHaveLength(1);
    const rows = evals.table();
    expect(rows.map((r) => r.metric)).toEqual(['acc', 'acc_norm']);
    expect(rows[0]!.columns).toEqual({ fullZS: view.scores!.acc });
  });

  it('reports a malformed file as a failed job naming the line, and records nothing', async () => {
    const data = join(dir, 'bad.jsonl');
    writeFileSync(data, '{"text": "ok"}\n{"text": ""}\n');
    const before = audit.log({ action: 'evaluation.finished' }).length;
    const { id } = await evals.start({ model, data });
    const view = await evals.wait(id);
    expect(view.status).toBe('failed');
    expect(view.error).toMatch(/bad\.jsonl: Line 2: "text" is empty/);
    expect(audit.log({ action: 'evaluation.finished' }).length).toBe(before);
  });

  it('cancels a running evaluation', async () => {
    const data = join(dir, 'long.jsonl');
    writeFileSync(data, jsonl(Array.from({ length: 60 }, (_, i) => ({ text: `document ${i}: the cat sat on the mat and looked at the moon at noon` }))));
    const { id } = await evals.start({ model, data, batchSize: 1, seqLen: 8 });
    // Cancel once scoring has begun.
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (events.some((e) => e.id === id && e.kind === 'progress' && (e.value as { phase: string }).phase === 'scoring')) {
          clearInterval(t);
          resolve();
        }
      }, 20);
    });
    expect(evals.cancel(id)).toEqual({ id, cancelled: true });
    const view = await evals.wait(id);
    expect(view.status).toBe('cancelled');
    expect(events.filter((e) => e.id === id).at(-1)).toMatchObject({ kind: 'finished', value: { outcome: 'cancelled' } });
  });

  it('refuses inputs that do not exist before starting a job', async () => {
    await expect(evals.start({ model: join(dir, 'nope'), data: join(dir, 'mc.jsonl') })).rejects.toThrow(/The model .*nope does not exist/);
    await expect(evals.start({ data: join(dir, 'mc.jsonl') })).rejects.toThrow(/Give either a model or an emulator package/);
  });
});
