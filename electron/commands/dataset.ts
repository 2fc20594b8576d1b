// `offsite dataset inspect|import|list|remove`: the Datasets screen on the command line.
// inspect reads a data file where it is and exits 2 naming the first bad line; import copies it
// into the data folder, checks the copy and records dataset.imported in the audit log.
import { openAudit } from '../services/audit';
import { importDataset, inspectDataset, listDatasets, removeDataset, type DatasetSummary } from '../services/datasets';
import { EXIT, UsageError, type Command, type ParsedCommand } from './types';

function onePath(cmd: ParsedCommand, usage: string, what = 'FILE'): string {
  if (cmd.positionals.length !== 1) throw new UsageError(`This command takes exactly one ${what}, got ${cmd.positionals.length} (${usage.trim()}).`);
  return cmd.positionals[0]!;
}

function seqLenOf(cmd: ParsedCommand): number | undefined {
  const v = cmd.values['seq-len'];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || n < 2) throw new UsageError(`--seq-len must be a whole number ≥ 2, not "${String(v)}".`);
  return n;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The human-readable summary (also what the Datasets screen shows, as text). */
export function summaryText(s: DatasetSummary): string {
  const lines: string[] = [];
  lines.push(`${s.file}: ${s.formatLabel ?? 'format not recognised'}, ${s.container.toUpperCase()}`);
  const blank = s.blankLines > 0 ? `; ${plural(s.blankLines, 'blank line')} ignored, the first at line ${s.firstBlankLine}` : '';
  lines.push(`examples: ${s.examples} (${plural(s.lines, 'line')}${blank})`);
  lines.push(`sha256:   ${s.sha256}`);
  lines.push(`size:     ${s.bytes} bytes`);
  if (s.tokenStats) {
    const t = s.tokenStats;
    const over = t.longerThanSeqLen !== null ? `; ${t.longerThanSeqLen} longer than --seq-len ${t.seqLen} (truncated in training)` : '';
    lines.push(`tokens:   ${t.total} in all, ${t.min} to ${t.max} per example (mean ${t.mean.toFixed(1)}), ${t.lossTokens} counted in the loss${over}`);
  } else if (s.format && s.format !== 'tokens' && s.issueCount === 0) lines.push('tokens:   pass --model M to count them with the model’s tokenizer');
  if (s.extraFields.length > 0) lines.push(`ignored fields: ${s.extraFields.join(', ')}`);
  if (s.preview.length > 0) {
    lines.push('first rows:');
    for (const row of s.preview) {
      const cells = s.columns.map((c) => `${c}: ${JSON.stringify(row.cells[c] ?? '')}`).join('  ');
      lines.push(`  line ${row.line}  ${cells}`);
    }
  }
  if (s.issueCount > 0) {
    lines.push(`problems: ${s.issueCount}${s.issueCount > s.issues.length ? ` (the first ${s.issues.length} shown)` : ''}`);
    for (const i of s.issues) lines.push(`  ${i.message}`);
  }
  return lines.join('\n');
}

const INSPECT_USAGE = '  offsite dataset inspect FILE [--model M] [--seq-len n] [--json]';

export const datasetInspectCommand: Command = {
  name: 'dataset inspect',
  summary: 'check a JSONL or CSV data file: format, examples, tokens, SHA-256, first rows; malformed → exit 2',
  usage: INSPECT_USAGE,
  options: { model: { type: 'string' }, 'seq-len': { type: 'string' } },
  async run(cmd, io) {
    const file = onePath(cmd, INSPECT_USAGE);
    const seqLen = seqLenOf(cmd);
    const model = cmd.values.model as string | undefined;
    const summary = await inspectDataset(file, { model, seqLen });
    io.out(cmd.json ? JSON.stringify(summary) : summaryText(summary));
    if (summary.issueCount > 0) {
      const first = summary.issues[0]!;
      const more = summary.issueCount > 1 ? ` (${plural(summary.issueCount - 1, 'more problem')} listed above)` : '';
      throw new UsageError(`${summary.file}: ${first.message}${more}`);
    }
    return EXIT.ok;
  },
};

const IMPORT_USAGE = '  offsite dataset import FILE [--model M] [--json]';

export const datasetImportCommand: Command = {
  name: 'dataset import',
  summary: 'copy a data file into the data folder, check the copy and record its SHA-256 in the audit log',
  usage: IMPORT_USAGE,
  options: { model: { type: 'string' } },
  async run(cmd, io) {
    const file = onePath(cmd, IMPORT_USAGE);
    const audit = openAudit(cmd.home);
    try {
      const r = await importDataset(cmd.home, file, { audit, model: cmd.values.model as string | undefined });
      if (cmd.json) io.out(JSON.stringify(r));
      else {
        io.out(
          [
            `${r.alreadyImported ? 'Already imported (the import is recorded again)' : 'Imported'}: ${r.dataset.name}`,
            `id (sha256): ${r.dataset.id}`,
            `stored at:   ${r.dataset.path}`,
            `examples:    ${r.dataset.summary.examples} (${r.dataset.summary.formatLabel})`,
            `audit event: #${r.auditSeq} dataset.imported`,
          ].join('\n'),
        );
      }
    } finally {
      audit.close();
    }
    return EXIT.ok;
  },
};

export const datasetListCommand: Command = {
  name: 'dataset list',
  summary: 'list the imported datasets',
  usage: '  offsite dataset list [--json]',
  options: {},
  async run(cmd, io) {
    if (cmd.positionals.length > 0) throw new UsageError('offsite dataset list takes no arguments.');
    const list = listDatasets(cmd.home);
    if (cmd.json) io.out(JSON.stringify({ datasets: list }));
    else if (list.length === 0) io.out('No datasets imported yet; use offsite dataset import FILE.');
    else for (const d of list) io.out(`${d.id}  ${d.name}  ${d.summary.format}  ${d.summary.examples} examples  ${d.importedAt}`);
    return EXIT.ok;
  },
};

const REMOVE_USAGE = '  offsite dataset remove ID [--json]';

export const datasetRemoveCommand: Command = {
  name: 'dataset remove',
  summary: 'delete an imported dataset’s copy (the audit log keeps its import and records the removal)',
  usage: REMOVE_USAGE,
  options: {},
  async run(cmd, io) {
    const id = onePath(cmd, REMOVE_USAGE, 'ID');
    const audit = openAudit(cmd.home);
    try {
      const r = removeDataset(cmd.home, id, { audit });
      io.out(cmd.json ? JSON.stringify(r) : `Removed dataset ${r.removed} (audit event #${r.auditSeq}).`);
    } finally {
      audit.close();
    }
    return EXIT.ok;
  },
};

export const datasetCommands: Command[] = [datasetInspectCommand, datasetImportCommand, datasetListCommand, datasetRemoveCommand];
