// Evaluation data: the same strict readers as tuning (native-models/data), so a file that tunes
// also evaluates and a bad line is reported the same way (exit 2 naming the line). The metric
// follows from the file's format unless the caller names one; a mismatch is a sentence, not a guess.
import { basename } from 'node:path';
import { FORMAT_LABELS, readDataFile, type DataFormat, type DataRecord } from '../data';
import type { DataTokenizer } from '../data/tokenize';
import { FormatError } from '../formats/errors';

export const EVAL_METRICS = ['ppl', 'mc', 'em'] as const;
export type EvalMetric = (typeof EVAL_METRICS)[number];

/** The metric each data format is scored with. */
export const METRIC_OF_FORMAT: Record<DataFormat, EvalMetric> = { text: 'ppl', tokens: 'ppl', choice: 'mc', instruction: 'em' };

export const METRIC_LABELS: Record<EvalMetric, string> = {
  ppl: 'perplexity',
  mc: 'multiple-choice accuracy',
  em: 'exact match',
};

const NEEDS: Record<EvalMetric, string> = {
  ppl: 'language-modelling lines ({"text"} or {"tokens"})',
  mc: 'multiple-choice lines ({"context", "choices", "label"})',
  em: 'instruction lines ({"instruction", "input"?, "output"})',
};

export function isEvalMetric(s: unknown): s is EvalMetric {
  return typeof s === 'string' && (EVAL_METRICS as readonly string[]).includes(s);
}

export interface EvalTask {
  /** The file's name (no folders). */
  file: string;
  /** SHA-256 and size of the exact bytes read. */
  sha256: string;
  bytes: number;
  format: DataFormat;
  metric: EvalMetric;
  records: DataRecord[];
}

/**
 * Reads an evaluation file strictly. Throws a FormatError (DataFileError, naming the first bad line)
 * for a malformed file, and a FormatError (rule eval.metric-format) when `metric` does not fit.
 */
export async function readEvalTask(path: string, options: { metric?: EvalMetric; vocabSize?: number } = {}): Promise<EvalTask> {
  const { scan, records } = await readDataFile(path, options.vocabSize !== undefined ? { vocabSize: options.vocabSize } : {});
  const file = basename(path);
  const format = scan.format!;
  const metric = options.metric ?? METRIC_OF_FORMAT[format];
  if (METRIC_OF_FORMAT[format] !== metric) {
    throw new FormatError(
      'eval.metric-format',
      `${file} holds ${FORMAT_LABELS[format]} lines, but ${METRIC_LABELS[metric]} (${metric}) needs ${NEEDS[metric]}; choose the ${METRIC_OF_FORMAT[format]} metric or another file.`,
      path,
    );
  }
  return { file, sha256: scan.sha256, bytes: scan.bytes, format, metric, records };
}

function badLine(file: string, line: number, why: string): never {
  throw new FormatError('data.bad-line', `${file}: Line ${line} ${why}`, file, `line ${line}`);
}

/**
 * Token ids of each LM document: {"tokens"} exactly as given (no BOS/EOS), {"text"} through the
 * tokenizer with its own special tokens (e.g. BOS), as tuning does.
 */
export function lmDocuments(task: EvalTask, tokenizer: DataTokenizer | null, vocabSize: number): { line: number; tokens: number[] }[] {
  return task.records.map((r) => {
    let tokens: number[];
    if (r.format === 'tokens') tokens = r.tokens;
    else if (r.format === 'text') {
      if (!tokenizer) badLine(task.file, r.line, 'has "text", but the model has no tokenizer.json; give {"tokens": [...]} lines or add the tokenizer to the model folder.');
      tokens = tokenizer.encode(r.text, { addSpecialTokens: true });
    } else badLine(task.file, r.line, `is ${r.format} data, not language-modelling data.`);
    const bad = tokens.find((t) => t >= vocabSize);
    if (bad !== undefined) badLine(task.file, r.line, `has token id ${bad}, outside the model's vocabulary (ids 0 to ${vocabSize - 1}).`);
    return { line: r.line, tokens };
  });
}
