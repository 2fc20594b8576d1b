// `offsite eval`: perplexity of a model on a local LM data file (CLI.md, "Perplexity is per document").
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { FormatError } from '../../native-models/formats/errors';
import { UnsupportedModelError } from '../../native-models/models/errors';
import { loadModel, type LoadedModel } from '../../native-models/models/load';
import { ModelRunner } from '../../native-models/models/runner';
import { parseLmJsonl, perplexity, tokenizeLmLines } from '../../native-models/eval/perplexity';
import type { ProviderRequest } from '../../native-models/runtime/providers';
import type { SessionSettings } from '../../native-models/runtime/session';
import { CancelledError, UsageError, type Command, type ParsedCommand } from './types';

/** Turns an abort (SIGINT) into exit 130 with `message`. */
export async function cancellable<T>(p: Promise<T>, message: string): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if ((e as Error)?.name === 'AbortError') throw new CancelledError(message);
    throw e;
  }
}

/** A whole number ≥ min from flag `name`, or `def` when absent; anything else is a usage error. */
export function intFlag(cmd: ParsedCommand, name: string, def: number | undefined, min = 1): number | undefined {
  const v = cmd.values[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number ≥ ${min}, not "${String(v)}".`);
  return n;
}

export function numberFlag(cmd: ParsedCommand, name: string, def: number, ok: (n: number) => boolean, rule: string): number {
  const v = cmd.values[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new UsageError(`--${name} must be ${rule}, not "${String(v)}".`);
  return n;
}

/** --ep and --threads → session settings. */
export function sessionSettings(cmd: ParsedCommand): SessionSettings {
  const ep = (cmd.values.ep as string | undefined) ?? 'auto';
  if (!['auto', 'cpu', 'cuda'].includes(ep)) throw new UsageError(`--ep must be auto, cpu or cuda, not "${ep}".`);
  const threads = intFlag(cmd, 'threads', undefined);
  return { provider: ep as ProviderRequest, ...(threads !== undefined ? { intraOpThreads: threads } : {}) };
}

/** Loads --model; a malformed or unsupported model is bad input (exit 2). */
export async function loadModelFlag(cmd: ParsedCommand): Promise<LoadedModel> {
  const path = cmd.values.model;
  if (typeof path !== 'string' || path === '') throw new UsageError('--model MODEL is required (a Hugging Face model folder or a llama2.c .bin file).');
  try {
    return await loadModel(path);
  } catch (e) {
    if (e instanceof FormatError || e instanceof UnsupportedModelError) throw new UsageError(e.message);
    throw e;
  }
}

/** The longest context the model may attend over (Mistral's sliding window caps it). */
export function contextLimit(m: LoadedModel): number {
  const s = m.spec;
  return s.family === 'llama' && s.slidingWindow !== null ? Math.min(s.maxPositions, s.slidingWindow) : s.maxPositions;
}

export const engineOptions = {
  model: { type: 'string' },
  ep: { type: 'string' },
  threads: { type: 'string' },
} as const;

export const evalCommand: Command = {
  name: 'eval',
  summary: 'evaluate a model on local data (perplexity)',
  usage: '  offsite eval --model MODEL --data FILE [--metric ppl] [--seq-len n] [--batch-size n] [--json] [--ep auto|cpu|cuda] [--threads N]',
  options: { ...engineOptions, data: { type: 'string' }, metric: { type: 'string' }, 'seq-len': { type: 'string' }, 'batch-size': { type: 'string' } },
  async run(cmd, io) {
    const metric = (cmd.values.metric as string | undefined) ?? 'ppl';
    if (metric !== 'ppl') throw new UsageError(`--metric ${metric} is not available in this build; use --metric ppl.`);
    const dataPath = cmd.values.data;
    if (typeof dataPath !== 'string' || dataPath === '') throw new UsageError('--data FILE is required (JSONL with {"text"} or {"tokens"} lines).');
    const settings = sessionSettings(cmd);
    const batchSize = intFlag(cmd, 'batch-size', 8)!;
    const requestedSeqLen = intFlag(cmd, 'seq-len', undefined, 2);
    const content = await readFile(dataPath, 'utf8');
    const model = await loadModelFlag(cmd);
    const limit = contextLimit(model);
    if (requestedSeqLen !== undefined && requestedSeqLen > limit) throw new UsageError(`--seq-len ${requestedSeqLen} exceeds the model's context of ${limit} positions.`);
    const seqLen = requestedSeqLen ?? limit;
    const file = basename(dataPath);
    let docs;
    try {
      const tok = model.tokenizer;
      docs = tokenizeLmLines(parseLmJsonl(content, file), file, model.spec.vocabSize, tok ? (t) => tok.encode(t) : null);
    } catch (e) {
      if (e instanceof FormatError) throw new UsageError(e.message);
      throw e;
    }
    if (docs.length === 0) throw new UsageError(`${file} has no data lines.`);
    if (docs.every((d) => d.tokens.length < 2)) throw new UsageError(`${file}: every document has fewer than two tokens, so there is nothing to predict.`);
    const runner = new ModelRunner(model, { settings, contextLength: seqLen });
    try {
      const provider = await runner.provider();
      io.err(`Evaluating perplexity of ${basename(model.source.path)} on ${docs.length} documents (windows of ${seqLen} tokens, batch ${batchSize}) on ${provider.chosen.toUpperCase()}: ${provider.reason}`);
      const result = await cancellable(
        perplexity(runner, docs.map((d) => d.tokens), { seqLen, batchSize, signal: io.signal, onProgress: (done, total) => io.err(`windows ${done}/${total}`) }),
        'Evaluation cancelled; nothing was written.',
      );
      if (cmd.json) io.out(JSON.stringify({ metric: 'ppl', ppl: result.ppl, nll: result.nll, tokens: result.tokens, documents: result.documents, seqLen, executionProvider: provider.chosen }));
      else io.out(`perplexity ${result.ppl.toFixed(4)} (mean NLL ${result.nll.toFixed(5)} nats over ${result.tokens} predicted tokens in ${result.documents} documents, windows of ${seqLen})`);
      return 0;
    } finally {
      await runner.release();
    }
  },
};
