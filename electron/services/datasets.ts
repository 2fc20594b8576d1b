// Imported datasets: a data file is copied into <data folder>/datasets/<sha256>/ and checked THERE
// (the copy is what tuning reads, so there is no gap between checking and using), then moved into
// place with one rename, and the import is recorded as a dataset.imported audit event with the
// file's SHA-256. Inspection reads a file where it is and copies nothing.
//
//   inspectDataset(path, { model })        → DatasetSummary (problems listed with line numbers)
//   importDataset(home, path, { audit })   → { dataset, alreadyImported, auditSeq }
//   listDatasets(home) / getDataset(home, id) / removeDataset(home, id, { audit })
//
// Layout: datasets/<sha256>/data.jsonl|data.csv (the copy) + dataset.json (the Dataset record).
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { copyFile, lstat, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { containerOfPath } from '../../native-models/data/read';
import { summarizeDataFile, type DataSummary } from '../../native-models/data/summary';
import type { DataTokenizer } from '../../native-models/data/tokenize';
import { FormatError } from '../../native-models/formats/errors';
import { loadTokenizer } from '../../native-models/formats/tokenizer';
import type { Dataset, DatasetImportResult, DatasetSummary } from '../ipc/datasets-contract';
import { writeFileAtomic } from './atomic-write';
import type { AuditLog } from './audit';
import { ServiceError } from './service-error';

export type { Dataset, DatasetImportResult, DatasetSummary } from '../ipc/datasets-contract';

const ID = /^[0-9a-f]{64}$/;
const RECORD = 'dataset.json';

export function datasetsFolder(home: string): string {
  return join(home, 'datasets');
}

/** The folder's summary shape must stay what the IPC contract promises. */
function toContract(s: DataSummary): DatasetSummary {
  return s;
}

async function checkSource(path: string): Promise<void> {
  let info;
  try {
    info = await lstat(path);
  } catch {
    throw new ServiceError(`There is no file at ${path}; check the path and try again.`);
  }
  if (info.isSymbolicLink()) throw new ServiceError(`${path} is a symbolic link; choose the data file it points to instead.`);
  if (!info.isFile()) throw new ServiceError(`${path} is ${info.isDirectory() ? 'a folder' : 'not a regular file'}; choose a JSONL or CSV data file.`);
}

/** A model folder (with tokenizer.json) or a tokenizer.json file, for token counts. */
export async function tokenizerForModel(model: string): Promise<DataTokenizer> {
  let info;
  try {
    info = await stat(model);
  } catch {
    throw new ServiceError(`There is no model folder or tokenizer file at ${model}.`);
  }
  const file = info.isDirectory() ? join(model, 'tokenizer.json') : model;
  if (info.isDirectory() && !existsSync(file)) {
    throw new ServiceError(`${model} has no tokenizer.json, so tokens cannot be counted; choose a model folder that has one (or its tokenizer.json).`);
  }
  try {
    return await loadTokenizer(file);
  } catch (e) {
    if (e instanceof FormatError) throw new ServiceError(e.message);
    throw e;
  }
}

export interface InspectOptions {
  /** Model folder or tokenizer.json: adds token statistics and checks token ids against its vocabulary. */
  model?: string;
  seqLen?: number;
  previewRows?: number;
}

/** Reads and checks a data file where it is; problems come back in the summary, not as errors. */
export async function inspectDataset(path: string, options: InspectOptions = {}): Promise<DatasetSummary> {
  const file = resolve(path);
  await checkSource(file);
  const tokenizer = options.model ? await tokenizerForModel(resolve(options.model)) : null;
  return toContract(await summarizeDataFile(file, { tokenizer, seqLen: options.seqLen, previewRows: options.previewRows ?? 5 }));
}

/** One sentence for a file that cannot be imported: the first problem and how many more there are. */
export function problemsSentence(name: string, s: DatasetSummary): string {
  const first = s.issues[0]!;
  const more = s.issueCount > 1 ? ` There ${s.issueCount === 2 ? 'is 1 more problem' : `are ${s.issueCount - 1} more problems`}; inspect the file to see them all.` : '';
  return `${name} was not imported because it has problems. ${first.message}${more}`;
}

function syncFolder(folder: string): void {
  if (process.platform === 'win32') return;
  const fd = openSync(folder, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readRecord(folder: string): Dataset | undefined {
  try {
    const d = JSON.parse(readFileSync(join(folder, RECORD), 'utf8')) as Dataset;
    return ID.test(d.id) && typeof d.path === 'string' && d.summary && typeof d.summary.sha256 === 'string' ? d : undefined;
  } catch {
    return undefined;
  }
}

export interface ImportOptions {
  /** Where the import is recorded; required, since logging cannot be turned off. */
  audit: AuditLog;
  /** Token-id checks against a tokenizer's vocabulary (optional). */
  model?: string;
}

/**
 * Copies `path` into the data folder, checks the copy fully, and records dataset.imported with its
 * SHA-256. A file with any problem is not imported (ServiceError naming the first bad line).
 */
export async function importDataset(home: string, path: string, options: ImportOptions): Promise<DatasetImportResult> {
  const source = resolve(path);
  await checkSource(source);
  const root = datasetsFolder(home);
  const staging = join(root, `.staging-${process.pid}-${randomBytes(6).toString('hex')}`);
  mkdirSync(staging, { recursive: true });
  try {
    // Copy first, then read only the copy: the file on removable media may change under us.
    const container = containerOfPath(source);
    const staged = join(staging, 'data');
    await copyFile(source, staged);
    syncFile(staged);
    const tokenizer = options.model ? await tokenizerForModel(resolve(options.model)) : null;
    const summary = toContract(await summarizeDataFile(staged, { tokenizer, container, previewRows: 5 }));
    summary.file = basename(source);
    if (summary.issueCount > 0) throw new ServiceError(problemsSentence(basename(source), summary));

    const id = summary.sha256;
    const fileName = `data.${summary.container}`;
    const final = join(root, id);
    let alreadyImported = existsSync(join(final, RECORD));
    let dataset: Dataset;
    if (alreadyImported) {
      dataset = readRecord(final) ?? fail(`The imported copy in ${final} is damaged; remove that folder and import the file again.`);
    } else {
      renameSync(staged, join(staging, fileName));
      dataset = { id, name: basename(source), source, path: join(final, fileName), importedAt: new Date().toISOString(), summary };
      writeFileAtomic(join(staging, RECORD), `${JSON.stringify(dataset, null, 2)}\n`);
      syncFolder(staging);
      try {
        renameSync(staging, final);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // Another import of the same bytes won the race: use its copy.
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && readRecord(final)) {
          alreadyImported = true;
          dataset = readRecord(final)!;
        } else throw e;
      }
      syncFolder(root);
    }
    const event = options.audit.recordDataset({
      id,
      name: dataset.name,
      path: dataset.path,
      sha256: id,
      rows: summary.examples,
      format: summary.format ?? 'unknown',
      inputs: { data: { sha256: id, size: summary.bytes } },
    });
    return { dataset, alreadyImported, auditSeq: event.seq };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function fail(message: string): never {
  throw new ServiceError(message);
}

/** Imported datasets, newest first. Folders without a readable dataset.json are not datasets. */
export function listDatasets(home: string): Dataset[] {
  const root = datasetsFolder(home);
  if (!existsSync(root)) return [];
  const out: Dataset[] = [];
  for (const name of readdirSync(root)) {
    if (!ID.test(name)) continue;
    const d = readRecord(join(root, name));
    if (d && d.id === name) out.push(d);
  }
  return out.sort((a, b) => (a.importedAt < b.importedAt ? 1 : a.importedAt > b.importedAt ? -1 : 0));
}

export function getDataset(home: string, id: string): Dataset {
  if (!ID.test(id)) throw new ServiceError('A dataset id is the 64-character SHA-256 of its file.');
  return readRecord(join(datasetsFolder(home), id)) ?? fail(`No imported dataset has the id ${id}; see the list of imported datasets.`);
}

/** Deletes the imported copy; the audit trail keeps the import and records the removal. */
export function removeDataset(home: string, id: string, options: { audit: AuditLog }): { removed: string; auditSeq: number } {
  const d = getDataset(home, id);
  // Rename first so a half-deleted folder never looks like a dataset.
  const trash = join(datasetsFolder(home), `.removing-${id}-${randomBytes(4).toString('hex')}`);
  renameSync(join(datasetsFolder(home), id), trash);
  rmSync(trash, { recursive: true, force: true });
  const event = options.audit.append('dataset.removed', { inputs: { dataset: d.id }, details: { dataset_id: d.id, name: d.name } });
  return { removed: id, auditSeq: event.seq };
}
