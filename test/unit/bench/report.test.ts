// The bench runner's report writing (test/bench/parts.ts): issue 10's five parts always appear,
// sections land under their part, and both files are written. No timing is measured or asserted.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PARTS, writeBenchReport } from '../../bench/parts';
import { machineInfo, type BenchReport } from '../../bench/report';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function synthetic(ids: string[]): BenchReport {
  return {
    generatedAt: '2026-01-01T00:00:00.000Z',
    machine: machineInfo({ 'load average at start (1 / 5 / 15 min)': '1.00 / 1.00 / 1.00' }),
    sections: ids.map((id, i) => ({ id, title: `Synthetic ${id}`, columns: ['model', 'ratio'], rows: [{ model: `m${i}`, ratio: 1.25 + i }, { model: 'a|b', ratio: null }], notes: [`note ${id}`] })),
  };
}

describe('bench report writing', () => {
  it('writes all five part headings, with a synthetic section under its part', () => {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-bench-report-'));
    dirs.push(dir);
    const json = join(dir, 'report.json');
    const md = join(dir, 'report.md');
    writeBenchReport(synthetic(['roofline']), ['headline one'], json, md);
    const text = readFileSync(md, 'utf8');
    const headings = text.split('\n').filter((l) => /^## \d\. /.test(l));
    expect(headings).toEqual([
      '## 1. LoRA train step vs PyTorch',
      '## 2. Roofline: train step FLOP/s vs one large MatMul',
      '## 3. IST (25% of layers) vs all layers',
      '## 4. Forward-only evaluation and generation',
      '## 5. Overheads: audit log, worker messaging, host↔session copies',
    ]);
    // The section sits between part 2's heading and part 3's.
    const at = text.indexOf('### Synthetic roofline');
    expect(at).toBeGreaterThan(text.indexOf('## 2. '));
    expect(at).toBeLessThan(text.indexOf('## 3. '));
    expect(text).toContain('| m0 | 1.25 |');
    expect(text).toContain('| a\\|b | — |');
    expect(text).toContain('- note roofline');
    expect(text).toContain('- headline one');
    // Parts without a section say so instead of disappearing.
    expect(text.split('Not measured in this run').length - 1).toBe(4);
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as { parts: Array<{ n: number; sections: string[] }>; summary: string[]; sections: unknown[] };
    expect(parsed.parts.map((p) => p.n)).toEqual([1, 2, 3, 4, 5]);
    expect(parsed.parts[1]!.sections).toEqual(['roofline']);
    expect(parsed.summary).toEqual(['headline one']);
    expect(parsed.sections).toHaveLength(1);
  });

  it('files every section id the runner produces under the right part, unknown ones under "Other"', () => {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-bench-report-'));
    dirs.push(dir);
    const ids = ['lora-train-step', 'attention-train-step', 'roofline', 'ist', 'forward-eval', 'generation-1t', 'generation-2t', 'overheads-io', 'overheads-worker', 'audit-overhead', 'mystery'];
    const full = writeBenchReport(synthetic(ids), [], join(dir, 'r.json'), join(dir, 'r.md'));
    expect(full.parts.map((p) => p.sections)).toEqual([
      ['lora-train-step', 'attention-train-step'],
      ['roofline'],
      ['ist'],
      ['forward-eval', 'generation-1t', 'generation-2t'],
      ['overheads-io', 'overheads-worker', 'audit-overhead'],
    ]);
    const text = readFileSync(join(dir, 'r.md'), 'utf8');
    expect(text).not.toContain('Not measured in this run');
    expect(text.indexOf('### Synthetic mystery')).toBeGreaterThan(text.indexOf('## Other sections'));
    expect(PARTS).toHaveLength(5);
  });
});
