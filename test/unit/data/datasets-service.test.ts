// services/datasets.ts and `offsite dataset …` under plain Node, with a real audit log.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../../electron/cli';
import type { CliIO } from '../../../electron/commands/types';
import { openAudit, type AuditLog } from '../../../electron/services/audit';
import { getDataset, importDataset, inspectDataset, listDatasets, removeDataset } from '../../../electron/services/datasets';
import { ServiceError } from '../../../electron/services/service-error';
import { byteTokenizer, jsonl, tempFolder } from './helpers';

const tmp = tempFolder();
const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
let homeCount = 0;
const opened: AuditLog[] = [];
afterEach(() => {
  for (const a of opened.splice(0)) a.close();
});

function freshHome(): { home: string; audit: AuditLog } {
  const home = join(tmp.dir, `home-${homeCount++}`);
  mkdirSync(home);
  const audit = openAudit(home);
  opened.push(audit);
  return { home, audit };
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`), isTTY: false, signal: new AbortController().signal };
  const code = await main(args, io);
  return { code, out, err };
}

describe('datasets service', () => {
  it('imports a checked copy under datasets/<sha256>/, records dataset.imported, lists and removes it', async () => {
    const { home, audit } = freshHome();
    const content = jsonl([{ text: 'one' }, { text: 'two' }]);
    const src = tmp.file('lm.jsonl', content);
    const r = await importDataset(home, src, { audit });
    expect(r.alreadyImported).toBe(false);
    expect(r.dataset.id).toBe(sha(content));
    expect(r.dataset.path).toBe(join(home, 'datasets', sha(content), 'data.jsonl'));
    expect(readFileSync(r.dataset.path, 'utf8')).toBe(content);
    expect(r.dataset.summary).toMatchObject({ file: 'lm.jsonl', format: 'text', examples: 2, issueCount: 0 });
    expect(readdirSync(join(home, 'datasets'))).toEqual([sha(content)]);

    const events = audit.log({ action: 'dataset.imported' });
    expect(events.map((e) => e.seq)).toEqual([r.auditSeq]);
    expect(events[0]!.payload.outputs).toEqual({ dataset: sha(content) });
    expect(events[0]!.payload.inputs).toEqual({ data: { sha256: sha(content), size: Buffer.byteLength(content) } });

    // The same bytes again: the copy is reused, the import is recorded again.
    const again = await importDataset(home, tmp.file('copy.jsonl', content), { audit });
    expect(again.alreadyImported).toBe(true);
    expect(again.dataset.name).toBe('lm.jsonl');
    expect(audit.log({ action: 'dataset.imported' }).length).toBe(2);

    expect(listDatasets(home).map((d) => d.id)).toEqual([sha(content)]);
    expect(getDataset(home, sha(content)).summary.examples).toBe(2);
    removeDataset(home, sha(content), { audit });
    expect(listDatasets(home)).toEqual([]);
    expect(existsSync(join(home, 'datasets', sha(content)))).toBe(false);
    expect(audit.log({ action: 'dataset.removed' }).length).toBe(1);
  });

  it('refuses a malformed file naming its first bad line, leaving nothing behind and nothing audited', async () => {
    const { home, audit } = freshHome();
    const src = tmp.file('bad.csv', 'context,choices,label\nq,"[""a"",""b""]",0\nq,"[""a"",""b""]",5\n');
    await expect(importDataset(home, src, { audit })).rejects.toThrow(
      new ServiceError('bad.csv was not imported because it has problems. Line 3: "label" is 5, but there are 2 choices (indices 0 to 1); set it to the index of the correct choice.'),
    );
    expect(readdirSync(join(home, 'datasets'))).toEqual([]);
    expect(audit.log({ action: 'dataset.imported' })).toEqual([]);
  });

  it('stores a CSV as data.csv, and refuses folders and symbolic links', async () => {
    const { home, audit } = freshHome();
    const src = tmp.file('mc.csv', 'context,choices,label\nSky is,"[""blue"",""red""]",0\n');
    const r = await importDataset(home, src, { audit });
    expect(r.dataset.path.endsWith(join(r.dataset.id, 'data.csv'))).toBe(true);
    expect(r.dataset.summary.format).toBe('choice');
    await expect(importDataset(home, tmp.dir, { audit })).rejects.toThrow(/is a folder; choose a JSONL or CSV data file/);
    const link = join(tmp.dir, 'link.csv');
    symlinkSync(src, link);
    await expect(importDataset(home, link, { audit })).rejects.toThrow(/is a symbolic link; choose the data file it points to instead/);
  });

  it('inspect with a model counts tokens and checks token ids against its vocabulary', async () => {
    await byteTokenizer(tmp.dir);
    const model = join(tmp.dir, 'tok');
    const s = await inspectDataset(tmp.file('t.jsonl', jsonl([{ text: 'ab' }])), { model });
    expect(s.tokenStats).toMatchObject({ examples: 1, total: 3, lossTokens: 2 }); // BOS + 2 bytes
    const k = await inspectDataset(tmp.file('k.jsonl', jsonl([{ tokens: [1, 300] }])), { model });
    expect(k.issues).toEqual([{ line: 1, message: 'Line 1: "tokens"[1] is 300, outside the tokenizer\'s vocabulary (ids 0 to 258); use ids of the model\'s tokenizer.' }]);
    await expect(inspectDataset(tmp.file('t2.jsonl', jsonl([{ text: 'x' }])), { model: tmp.dir })).rejects.toThrow(/has no tokenizer\.json/);
  });
});

describe('offsite dataset', () => {
  it('inspect: exit 0 with the summary; --json prints one object', async () => {
    const content = jsonl([{ instruction: 'Say hi', output: 'hi' }]);
    const src = tmp.file('ok.jsonl', content);
    const human = await cli(['dataset', 'inspect', src]);
    expect(human.code).toBe(0);
    expect(human.out).toContain(`sha256:   ${sha(content)}`);
    const json = await cli(['dataset', 'inspect', src, '--json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.out) as { format: string; examples: number; sha256: string };
    expect([parsed.format, parsed.examples, parsed.sha256]).toEqual(['instruction', 1, sha(content)]);
  });

  it('inspect: exit 2 naming the first bad line on stderr', async () => {
    const src = tmp.file('broken.jsonl', '{"text":"a"}\n{"text":"b"}\n{"txt":"c"}\n');
    const r = await cli(['dataset', 'inspect', src, '--json']);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe('broken.jsonl: Line 3 has only "txt"; it needs "text", "tokens", "instruction" and "output", or "context", "choices" and "label" (see the data formats in the user guide).');
    expect((JSON.parse(r.out) as { issueCount: number }).issueCount).toBe(1);
  });

  it('import and list go through the same service and audit log', async () => {
    const home = join(tmp.dir, 'cli-home');
    const content = jsonl([{ tokens: [1, 2, 3] }]);
    const src = tmp.file('tok.jsonl', content);
    const imported = await cli(['dataset', 'import', src, '--home', home, '--json']);
    expect(imported.code).toBe(0);
    expect((JSON.parse(imported.out) as { dataset: { id: string } }).dataset.id).toBe(sha(content));
    const list = await cli(['dataset', 'list', '--home', home, '--json']);
    expect((JSON.parse(list.out) as { datasets: Array<{ id: string }> }).datasets.map((d) => d.id)).toEqual([sha(content)]);
    const bad = await cli(['dataset', 'import', tmp.file('e.jsonl', ''), '--home', home]);
    expect(bad.code).toBe(2);
    expect(bad.err.trim()).toBe('e.jsonl was not imported because it has problems. The file is empty; it needs at least one example line.');
  });
});
