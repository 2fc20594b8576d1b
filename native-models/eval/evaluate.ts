// One evaluation from start to finish, shared by `offsite eval` (in the CLI's thread) and the app
// (in a job worker, worker.ts): read the data file strictly, load the model or the emulator's model,
// apply the adapter, then perplexity, multiple choice or exact match with progress after every
// batch. Verifying an emulator package (hashes, signer) is the caller's job: it needs the trusted
// keys of the data folder, which the engine does not see.
import { basename } from 'node:path';
import type { LoadedTokenizer } from '../formats/tokenizer';
import { loadModel, type LoadedModel } from '../models/load';
import { loadEmulator } from '../scaleot/emulator';
import { ModelRunner } from '../models/runner';
import type { ProviderName } from '../runtime/providers';
import type { SessionSettings } from '../runtime/session';
import { applyAdapter, type AppliedAdapter } from './adapter';
import { encodeInstructionItem, scoreExactMatch, type GenerationScore } from './exact-match';
import { encodeChoiceItem, scoreMultipleChoice, type ChoiceScore } from './multiple-choice';
import { perplexity } from './perplexity';
import { lmDocuments, METRIC_LABELS, readEvalTask, type EvalMetric } from './tasks';
import { contextOf } from '../models/spec';

/** Bad input that is not a file format problem (a window longer than the model's context, …). */
export class EvalInputError extends Error {
  override name = 'EvalInputError';
}

export interface EvaluationSpec {
  /** A model folder or llama2.c file; or an emulator package folder (verified by the caller). */
  source: { kind: 'model' | 'emulator'; path: string };
  /** A PEFT LoRA or full-layer adapter folder. */
  adapter?: string | null;
  data: string;
  /** Default: from the data file's format (text/tokens → ppl, choice → mc, instruction → em). */
  metric?: EvalMetric;
  /** Window length (default: the model's context). */
  seqLen?: number;
  /** Windows (ppl), choice requests (mc) or prompts (em) per forward pass (default 8). */
  batchSize?: number;
  /** Exact match: most tokens generated per answer (default 32). */
  maxNewTokens?: number;
  settings?: SessionSettings;
}

export interface EvalProgress {
  phase: 'loading' | 'scoring';
  done: number;
  total: number | null;
  message: string;
}

export interface EvaluationCommon {
  data: { file: string; sha256: string; bytes: number; format: string; examples: number };
  model: { name: string; modelType: string; layers: number; kind: 'model' | 'emulator' };
  adapter: AppliedAdapter | null;
  seqLen: number;
  batchSize: number;
  executionProvider: ProviderName;
  providerReason: string;
}

export type EvaluationScores =
  | { metric: 'ppl'; ppl: number; nll: number; tokens: number; documents: number; windows: number }
  | { metric: 'mc'; acc: number; acc_norm: number; n: number; items: ChoiceScore[] }
  | { metric: 'em'; em: number; n: number; maxNewTokens: number; items: GenerationScore[] };

export type EvaluationResult = EvaluationCommon & EvaluationScores;

export interface EvaluationHooks {
  progress?: (p: EvalProgress) => void;
  signal?: AbortSignal;
}

export const DEFAULT_EVAL_BATCH = 8;
export const DEFAULT_MAX_NEW_TOKENS = 32;

/** The longest context the model may attend over (Mistral's sliding window caps it). */
export function modelContext(m: LoadedModel): number {
  return contextOf(m.spec);
}

function needTokenizer(m: LoadedModel, metric: EvalMetric): LoadedTokenizer {
  if (!m.tokenizer) throw new EvalInputError(`${METRIC_LABELS[metric]} needs the model's tokenizer.json, and ${basename(m.source.path)} has none; add it to the model folder.`);
  return m.tokenizer;
}

export async function runEvaluation(spec: EvaluationSpec, hooks: EvaluationHooks = {}): Promise<EvaluationResult> {
  const say = (phase: EvalProgress['phase'], done: number, total: number | null, message: string) => hooks.progress?.({ phase, done, total, message });
  const batchSize = spec.batchSize ?? DEFAULT_EVAL_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new EvalInputError(`The batch size must be a whole number ≥ 1, not ${batchSize}.`);
  say('loading', 0, null, `Reading ${basename(spec.data)}`);
  const task = await readEvalTask(spec.data, spec.metric ? { metric: spec.metric } : {});
  hooks.signal?.throwIfAborted();
  say('loading', 0, null, `Loading ${basename(spec.source.path)}`);
  // An emulator runs through its own loader: harmonizer and rank-compressed blocks are not plain
  // LLaMA blocks, and its family wrapper builds them.
  let model: LoadedModel = spec.source.kind === 'emulator' ? await loadEmulator(spec.source.path) : await loadModel(spec.source.path);
  let applied: AppliedAdapter | null = null;
  if (spec.adapter) {
    say('loading', 0, null, `Applying the adapter ${basename(spec.adapter)}`);
    ({ model, applied } = await applyAdapter(model, spec.adapter));
  }
  hooks.signal?.throwIfAborted();
  const limit = modelContext(model);
  if (spec.seqLen !== undefined && (!Number.isInteger(spec.seqLen) || spec.seqLen < 2)) throw new EvalInputError(`The window length must be a whole number ≥ 2, not ${spec.seqLen}.`);
  if (spec.seqLen !== undefined && spec.seqLen > limit) throw new EvalInputError(`A window of ${spec.seqLen} tokens exceeds the model's context of ${limit} positions.`);
  const seqLen = spec.seqLen ?? limit;
  const runner = new ModelRunner(model, { ...(spec.settings ? { settings: spec.settings } : {}), contextLength: seqLen });
  const progress = (done: number, total: number) => say('scoring', done, total, `${METRIC_LABELS[task.metric]}: ${done} of ${total}`);
  try {
    let scores: EvaluationScores;
    if (task.metric === 'ppl') {
      const docs = lmDocuments(task, model.tokenizer, model.spec.vocabSize);
      if (docs.every((d) => d.tokens.length < 2)) throw new EvalInputError(`${task.file}: every document has fewer than two tokens, so there is nothing to predict.`);
      const r = await perplexity(runner, docs.map((d) => d.tokens), { seqLen, batchSize, onProgress: progress, ...(hooks.signal ? { signal: hooks.signal } : {}) });
      scores = { metric: 'ppl', ppl: r.ppl, nll: r.nll, tokens: r.tokens, documents: r.documents, windows: r.windows };
    } else if (task.metric === 'mc') {
      const tok = needTokenizer(model, 'mc');
      const items = task.records.map((r) => {
        if (r.format !== 'choice') throw new EvalInputError(`${task.file}: Line ${r.line} is not a multiple-choice line.`);
        return encodeChoiceItem(r, tok, {}, task.file);
      });
      try {
        scores = await scoreMultipleChoice(runner, items, { seqLen, batchSize, onProgress: progress, ...(hooks.signal ? { signal: hooks.signal } : {}) });
      } catch (e) {
        if (e instanceof RangeError) throw new EvalInputError(`${task.file}: ${e.message}`);
        throw e;
      }
    } else {
      const tok = needTokenizer(model, 'em');
      const items = task.records.map((r) => {
        if (r.format !== 'instruction') throw new EvalInputError(`${task.file}: Line ${r.line} is not an instruction line.`);
        return encodeInstructionItem(r, tok);
      });
      const maxNewTokens = spec.maxNewTokens ?? Math.min(DEFAULT_MAX_NEW_TOKENS, Math.floor(seqLen / 2));
      const stopTokens = model.spec.eosIds.length ? model.spec.eosIds : tok.eosId !== null ? [tok.eosId] : [];
      try {
        const r = await scoreExactMatch(runner, items, {
          batchSize,
          maxNewTokens,
          stopTokens,
          decode: (ids) => tok.decode(ids, { skipSpecialTokens: true }),
          onProgress: progress,
          ...(hooks.signal ? { signal: hooks.signal } : {}),
        });
        scores = { ...r, maxNewTokens };
      } catch (e) {
        if (e instanceof RangeError) throw new EvalInputError(`${task.file}: ${e.message}`);
        throw e;
      }
    }
    const provider = await runner.provider();
    return {
      ...scores,
      data: { file: task.file, sha256: task.sha256, bytes: task.bytes, format: task.format, examples: task.records.length },
      model: { name: basename(spec.source.path), modelType: model.spec.modelType, layers: model.spec.layers, kind: spec.source.kind },
      adapter: applied,
      seqLen,
      batchSize,
      executionProvider: provider.chosen,
      providerReason: provider.reason,
    };
  } finally {
    await runner.release();
  }
}

/** The one number a result is summarised by: ppl, acc or em. */
export function headlineValue(r: EvaluationScores): number {
  return r.metric === 'ppl' ? r.ppl : r.metric === 'mc' ? r.acc : r.em;
}
