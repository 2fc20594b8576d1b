// The datasets part of the IPC contract: request schemas and response types of the datasets.*
// channels. contract.ts spreads these into its one channel map. Like contract.ts, this file
// imports nothing but zod and schemas.ts (the renderer imports it type-only, the e2e bridge bundles it).
// The shapes mirror native-models/data (DataSummary); services/datasets.ts assigns one to the
// other, so the compiler notices when they drift apart.
import { z } from 'zod';
import { noRequest, fullPath } from './schemas';

const dataFile = () => fullPath('path of the data file', '/media/usb/train.jsonl');

export const datasetRequests = {
  /** Reads and checks a data file where it is (nothing is copied): format, count, first rows, problems by line. */
  'datasets.inspect': z
    .object({
      path: dataFile(),
      /** A model folder (or its tokenizer.json) for token counts and token-id checks. */
      model: fullPath('path of the model folder', '/models/tinyllama').optional(),
    })
    .strict(),
  /** Copies a data file into the data folder, checks the copy, records dataset.imported. */
  'datasets.import': z.object({ path: dataFile() }).strict(),
  /** The imported datasets, newest first. */
  'datasets.list': noRequest,
  /** Deletes an imported copy (the audit trail keeps its import event). */
  'datasets.remove': z
    .object({
      id: z.string({ error: 'A dataset id must be text.' }).regex(/^[0-9a-f]{64}$/, { error: 'A dataset id is the 64-character SHA-256 of its file.' }),
    })
    .strict(),
} as const;

export type DatasetFormat = 'text' | 'tokens' | 'instruction' | 'choice';

export interface DatasetIssue {
  /** 1-based line of the data file (a CSV record: the line it starts on). */
  line: number;
  /** A sentence naming the line and what to change. */
  message: string;
}

export interface DatasetTokenStats {
  examples: number;
  total: number;
  min: number;
  max: number;
  mean: number;
  /** Tokens that count in the loss. */
  lossTokens: number;
  longerThanSeqLen: number | null;
  seqLen: number | null;
}

/** What a data file holds (native-models/data summarizeDataFile). */
export interface DatasetSummary {
  file: string;
  container: 'jsonl' | 'csv';
  format: DatasetFormat | null;
  /** e.g. 'instruction ({"instruction", "input"?, "output"})'. */
  formatLabel: string | null;
  examples: number;
  lines: number;
  blankLines: number;
  firstBlankLine: number | null;
  extraFields: string[];
  sha256: string;
  bytes: number;
  /** The first problems (up to 100), in file order. */
  issues: DatasetIssue[];
  /** All problems found. */
  issueCount: number;
  columns: string[];
  preview: Array<{ line: number; cells: Record<string, string> }>;
  /** Null when the format needs a tokenizer and no model was given. */
  tokenStats: DatasetTokenStats | null;
}

/** An imported dataset: a checked copy in <data folder>/datasets/<sha256>/. */
export interface Dataset {
  /** The SHA-256 of the file (also its folder name). */
  id: string;
  /** The name of the file the user imported. */
  name: string;
  /** Where it was imported from. */
  source: string;
  /** The stored copy: the only file tuning and evaluation read. */
  path: string;
  importedAt: string;
  summary: DatasetSummary;
}

export interface DatasetImportResult {
  dataset: Dataset;
  /** True when the same bytes were imported before (the copy is reused; the import is still audited). */
  alreadyImported: boolean;
  /** The dataset.imported audit event's sequence number. */
  auditSeq: number;
}

export interface DatasetResponses {
  'datasets.inspect': DatasetSummary;
  'datasets.import': DatasetImportResult;
  'datasets.list': Dataset[];
  'datasets.remove': { removed: string; auditSeq: number };
}

export const datasetChannelFlags = {
  'datasets.inspect': { mutates: false },
  'datasets.list': { mutates: false },
  // Copies into the data folder and appends dataset.imported.
  'datasets.import': { mutates: true },
  'datasets.remove': { mutates: true },
} as const;
