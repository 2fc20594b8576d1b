// The offsite results table: columns from finished evaluations (latest wins), gaps as defined in
// ALGORITHMS.md §1 (utility = Full FT − Plug-in, privacy = Plug-in − Emu FT).
import { describe, expect, it } from 'vitest';
import type { EvaluationView } from '../../../electron/ipc/eval-contract';
import { inferColumn, resultsTable } from '../../../electron/services/evaluations';

let seq = 0;
function view(column: EvaluationView['column'], metric: 'ppl' | 'mc' | 'em', scores: EvaluationView['scores'], task = 'a'.repeat(64)): EvaluationView {
  seq++;
  return {
    id: `id-${seq}`, status: 'finished', startedAt: null, finishedAt: null, metric, task: { name: 'piqa.jsonl', sha256: task },
    source: { kind: 'model', name: 'm' }, adapter: null, column, scores, progress: null, error: null, executionProvider: 'cpu', auditSeq: seq,
  };
}

describe('inferColumn', () => {
  it('places what is unambiguous and leaves a full model with an adapter to the user', () => {
    expect(inferColumn('emulator', false)).toBe('emuZS');
    expect(inferColumn('emulator', true)).toBe('emuFT');
    expect(inferColumn('model', false)).toBe('fullZS');
    expect(inferColumn('model', true)).toBeNull();
  });
});

describe('resultsTable', () => {
  it('fills one row per task and metric with the latest value per column and both gaps', () => {
    const views = [
      view('fullZS', 'mc', { acc: 0.6, acc_norm: 0.62, n: 50 }),
      view('emuZS', 'mc', { acc: 0.5, acc_norm: 0.52, n: 50 }),
      view('emuFT', 'mc', { acc: 0.55, acc_norm: 0.57, n: 50 }),
      view('plugin', 'mc', { acc: 0.7, acc_norm: 0.71, n: 50 }),
      view('fullFT', 'mc', { acc: 0.74, acc_norm: 0.75, n: 50 }),
      view('plugin', 'mc', { acc: 0.72, acc_norm: 0.73, n: 50 }), // a later Plug-in replaces the first
      view(null, 'mc', { acc: 0.99, acc_norm: 0.99, n: 50 }), // no column: not in the table
      view('fullZS', 'ppl', { ppl: 12.5, nll: Math.log(12.5), tokens: 100 }, 'b'.repeat(64)),
    ];
    const rows = resultsTable(views);
    expect(rows.map((r) => [r.task.sha256[0], r.metric])).toEqual([['a', 'acc'], ['a', 'acc_norm'], ['b', 'ppl']]);
    const acc = rows[0]!;
    expect(acc.columns).toEqual({ fullZS: 0.6, emuZS: 0.5, emuFT: 0.55, plugin: 0.72, fullFT: 0.74 });
    expect(acc.gaps.utility).toBeCloseTo(0.74 - 0.72, 12);
    expect(acc.gaps.privacy).toBeCloseTo(0.72 - 0.55, 12);
    expect(acc.higherIsBetter).toBe(true);
    expect(rows[2]).toEqual({ task: { name: 'piqa.jsonl', sha256: 'b'.repeat(64) }, metric: 'ppl', higherIsBetter: false, columns: { fullZS: 12.5 }, gaps: { utility: null, privacy: null } });
  });

  it('ignores evaluations that did not finish', () => {
    const v = { ...view('emuZS', 'em', { em: 0.1, n: 3 }), status: 'failed' as const };
    expect(resultsTable([v])).toEqual([]);
  });
});
