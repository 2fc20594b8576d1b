// The demo task files: regenerated from the npm data packages they must match the committed files
// byte for byte; splits are disjoint, balanced and fit the demo model's context; tasks.json's
// counts and hashes describe the files as they are.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_TASKS_DIR } from '../../../native-models/demo/paths';
import { buildDemoTasks, writeDemoTasks, type DemoTasksManifest, type SplitFile } from '../../../native-models/demo/tasks';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const rows = async <T>(file: string): Promise<T[]> =>
  (await readFile(join(DEMO_TASKS_DIR, file), 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);

let manifest: DemoTasksManifest;
let tmp: string;

beforeAll(async () => {
  manifest = JSON.parse(await readFile(join(DEMO_TASKS_DIR, 'tasks.json'), 'utf8')) as DemoTasksManifest;
  tmp = await mkdtemp(join(tmpdir(), 'demo-tasks-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('demo task files', () => {
  it('regenerate byte for byte from the data packages', async () => {
    const out = join(tmp, 'tasks');
    await writeDemoTasks(out, await buildDemoTasks());
    const committed = (await readdir(DEMO_TASKS_DIR)).sort();
    expect((await readdir(out)).sort()).toEqual(committed);
    for (const f of committed) {
      const a = await readFile(join(out, f));
      const b = await readFile(join(DEMO_TASKS_DIR, f));
      expect(sha256(a), f).toBe(sha256(b));
    }
  });

  it('tasks.json gives each split file its true line count, size and SHA-256', async () => {
    const splits: SplitFile[] = Object.values(manifest.tasks).flatMap((t) => Object.values(t.splits) as SplitFile[]);
    expect(splits.length).toBe(8);
    for (const s of splits) {
      const bytes = await readFile(join(DEMO_TASKS_DIR, s.file));
      expect(sha256(bytes), s.file).toBe(s.sha256);
      expect(bytes.byteLength, s.file).toBe(s.bytes);
      expect(bytes.toString('utf8').split('\n').filter((l) => l !== '').length, s.file).toBe(s.count);
    }
    // The whole set stays small enough to ship in the repository.
    const total = splits.reduce((n, s) => n + s.bytes, 0);
    expect(total).toBeLessThan(4 * 1024 * 1024);
  });

  it('ham-spam: balanced classes, the two choices, disjoint splits, contexts that fit 256 bytes with the answer', async () => {
    const t = manifest.tasks['ham-spam'];
    const seen = new Map<string, string>();
    for (const [split, s] of Object.entries(t.splits)) {
      const r = await rows<{ context: string; choices: string[]; label: number }>(s.file);
      expect(r.filter((x) => x.label === 0).length, split).toBe(r.length / 2);
      expect(r.filter((x) => x.label === 1).length, split).toBe(r.length / 2);
      expect(s.labels).toEqual({ ham: r.length / 2, spam: r.length / 2 });
      for (const x of r) {
        expect(x.choices).toEqual(['ham', 'spam']);
        expect(x.context.endsWith('\n\nQuestion: is this email ham or spam?\nAnswer:')).toBe(true);
        expect(/^[\n\x20-\x7e]*$/.test(x.context)).toBe(true);
        // <s> + context + " spam" within the model's 256 positions.
        expect(1 + Buffer.byteLength(x.context) + 5).toBeLessThanOrEqual(256);
        expect(seen.has(x.context), `${split} repeats a context of ${seen.get(x.context)}`).toBe(false);
        seen.set(x.context, split);
      }
    }
    expect(Object.fromEntries(Object.entries(t.splits).map(([k, s]) => [k, s.count]))).toEqual({ train: 1000, validation: 100, test: 200 });
  });

  it('email-lm: ASCII email text, no document in two splits, none that begins like a ham-spam email', async () => {
    const t = manifest.tasks['email-lm'];
    const hamSpamEmails: string[] = [];
    for (const s of Object.values(manifest.tasks['ham-spam'].splits)) {
      for (const x of await rows<{ context: string }>(s.file)) hamSpamEmails.push(x.context.slice(0, x.context.indexOf('\n\nQuestion:')));
    }
    const bPrefixes = new Set(hamSpamEmails);
    const seen = new Set<string>();
    for (const s of Object.values(t.splits)) {
      for (const { text } of await rows<{ text: string }>(s.file)) {
        expect(/^[\n\x20-\x7e]+$/.test(text)).toBe(true);
        expect(text.length).toBeLessThanOrEqual(t.maxChars);
        expect(text.startsWith('Subject: ') || !text.includes('\nReceived: ')).toBe(true);
        expect(seen.has(text)).toBe(false);
        seen.add(text);
        expect(bPrefixes.has(text.slice(0, 200)), 'an email-lm document is also a ham-spam email').toBe(false);
      }
    }
    expect(seen.size).toBe(1300);
  });

  it('moby-dick: the held-out chapters are not in the training file', async () => {
    const s = manifest.tasks['moby-dick'].splits;
    const train = await rows<{ text: string }>(s.train.file);
    const held = await rows<{ text: string }>(s.heldout.file);
    expect(held.length).toBe(10);
    expect(train.length + held.length).toBe(139);
    const headings = new Set(train.map((r) => r.text.split('\n')[0]));
    for (const h of held) {
      expect(h.text.startsWith('CHAPTER ')).toBe(true);
      expect(headings.has(h.text.split('\n')[0])).toBe(false);
    }
    expect(s.heldout.chapters!.map((c) => `CHAPTER ${c.slice('chapter_'.length)}.`)).toEqual(held.map((r) => r.text.slice(0, r.text.indexOf('.') + 1)));
  });
});
