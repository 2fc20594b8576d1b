// The bench report: a list of sections, each a table of rows, written as bench/report.json and
// bench/report.md. New benchmarks add a section; nothing here knows what a section measures.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { cpus, totalmem, availableParallelism } from 'node:os';
import { dirname } from 'node:path';

export type Cell = string | number | null;

export interface BenchSection {
  id: string;
  title: string;
  /** What was measured and how, one or two sentences. */
  description?: string;
  /** Column order for the table (default: keys of the rows in first-seen order). */
  columns?: string[];
  rows: Record<string, Cell>[];
  notes?: string[];
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  platform: string;
  node: string;
  [k: string]: Cell;
}

export interface BenchReport {
  generatedAt: string;
  machine: MachineInfo;
  sections: BenchSection[];
}

export function machineInfo(extra: Record<string, Cell> = {}): MachineInfo {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${process.platform} ${process.arch}`,
    node: process.version,
    ...extra,
  };
}

export interface Stats { median: number; min: number; max: number; n: number }

export function stats(xs: number[]): Stats {
  if (xs.length === 0) throw new Error('stats: no samples');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

const fmtCell = (c: Cell) => (c === null ? '—' : typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toPrecision(4)) : c.replace(/\|/g, '\\|'));

export function renderMarkdown(r: BenchReport): string {
  const lines = ['# Offsite Studio bench', '', `Generated ${r.generatedAt}.`, '', '## Machine', ''];
  for (const [k, v] of Object.entries(r.machine)) lines.push(`- ${k}: ${fmtCell(v)}`);
  for (const s of r.sections) {
    lines.push('', `## ${s.title}`, '');
    if (s.description) lines.push(s.description, '');
    const cols = s.columns ?? [...new Set(s.rows.flatMap((row) => Object.keys(row)))];
    lines.push(`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`);
    for (const row of s.rows) lines.push(`| ${cols.map((c) => fmtCell(row[c] ?? null)).join(' | ')} |`);
    if (s.notes?.length) lines.push('', ...s.notes.map((n) => `- ${n}`));
  }
  return `${lines.join('\n')}\n`;
}

function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function writeReport(r: BenchReport, jsonPath: string, mdPath: string): void {
  writeAtomic(jsonPath, `${JSON.stringify(r, null, 2)}\n`);
  writeAtomic(mdPath, renderMarkdown(r));
}
