// The bench report's layout: issue 10's five parts, each holding the sections that measure it,
// written as bench/report.json and bench/report.md. A part no section of this run filled still
// gets its heading with a line saying so (a --quick run, or a section that failed), so the report
// always shows all five.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BenchReport, BenchSection, Cell } from './report';

export interface BenchPart {
  n: number;
  title: string;
  /** Section ids (exact, or a prefix ending in '*') that belong to this part, in order. */
  sections: string[];
}

export const PARTS: BenchPart[] = [
  { n: 1, title: 'LoRA train step vs PyTorch', sections: ['lora-train-step', 'attention-train-step'] },
  { n: 2, title: 'Roofline: train step FLOP/s vs one large MatMul', sections: ['roofline'] },
  { n: 3, title: 'IST (25% of layers) vs all layers', sections: ['ist'] },
  { n: 4, title: 'Forward-only evaluation and generation', sections: ['forward-eval', 'generation*'] },
  { n: 5, title: 'Overheads: audit log, worker messaging, host↔session copies', sections: ['overheads-io', 'overheads-worker', 'audit-overhead'] },
];

export interface PartedReport extends BenchReport {
  /** Headline figures, one sentence each. */
  summary: string[];
  /** Section ids per part, as laid out in the markdown. */
  parts: Array<{ n: number; title: string; sections: string[] }>;
}

const matches = (pattern: string, id: string) => (pattern.endsWith('*') ? id.startsWith(pattern.slice(0, -1)) : id === pattern);

function partOf(s: BenchSection): BenchPart | undefined {
  return PARTS.find((p) => p.sections.some((pat) => matches(pat, s.id)));
}

/** Sections grouped by part (order of PARTS, then of the patterns, then as given); unknown ids in `other`. */
export function groupSections(sections: BenchSection[]): { parts: Array<{ part: BenchPart; sections: BenchSection[] }>; other: BenchSection[] } {
  const parts = PARTS.map((part) => ({
    part,
    sections: part.sections.flatMap((pat) => sections.filter((s) => matches(pat, s.id) && partOf(s) === part)),
  }));
  return { parts, other: sections.filter((s) => !partOf(s)) };
}

const fmtCell = (c: Cell) => (c === null ? '—' : typeof c === 'number' ? (Number.isInteger(c) ? String(c) : String(Number(c.toPrecision(4)))) : c.replace(/\|/g, '\\|'));

function renderSection(s: BenchSection, level: string, lines: string[]): void {
  lines.push('', `${level} ${s.title}`, '');
  if (s.description) lines.push(s.description, '');
  const cols = s.columns ?? [...new Set(s.rows.flatMap((row) => Object.keys(row)))];
  lines.push(`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`);
  for (const row of s.rows) lines.push(`| ${cols.map((c) => fmtCell(row[c] ?? null)).join(' | ')} |`);
  if (s.notes?.length) lines.push('', ...s.notes.map((n) => `- ${n}`));
}

export function renderBenchMarkdown(r: PartedReport): string {
  const lines = ['# Offsite Studio bench', '', `Generated ${r.generatedAt} by \`npm run bench\`. Every ratio compares figures measured in this same run.`];
  if (r.summary.length) lines.push('', '## Summary', '', ...r.summary.map((s) => `- ${s}`));
  lines.push('', '## Machine', '');
  for (const [k, v] of Object.entries(r.machine)) lines.push(`- ${k}: ${fmtCell(v)}`);
  const { parts, other } = groupSections(r.sections);
  for (const { part, sections } of parts) {
    lines.push('', `## ${part.n}. ${part.title}`);
    if (sections.length === 0) lines.push('', 'Not measured in this run (see the runner\'s flags: `--quick` skips it).');
    for (const s of sections) renderSection(s, '###', lines);
  }
  if (other.length) {
    lines.push('', '## Other sections');
    for (const s of other) renderSection(s, '###', lines);
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

/** Writes the JSON (report + part layout) and the markdown, each atomically. */
export function writeBenchReport(report: BenchReport, summary: string[], jsonPath: string, mdPath: string): PartedReport {
  const { parts } = groupSections(report.sections);
  const full: PartedReport = { ...report, summary, parts: parts.map(({ part, sections }) => ({ n: part.n, title: part.title, sections: sections.map((s) => s.id) })) };
  writeAtomic(jsonPath, `${JSON.stringify(full, null, 2)}\n`);
  writeAtomic(mdPath, renderBenchMarkdown(full));
  return full;
}
