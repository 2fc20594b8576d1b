// `offsite eval`: perplexity, multiple-choice accuracy or exact match of a model or an emulator
// (optionally with an adapter) on a local data file, recorded as evaluation.finished in the audit
// log (CLI.md). The shared flag helpers below are used by other commands too.
import { EvalInputError, modelContext, runEvaluation, type EvaluationResult } from '../../native-models/eval/evaluate';
import { EVAL_METRICS, isEvalMetric } from '../../native-models/eval/tasks';
import { FormatError } from '../../native-models/formats/errors';
import type { TrustedKeyLike } from '../../native-models/formats/package';
import { UnsupportedModelError } from '../../native-models/models/errors';
import { loadModel, type LoadedModel } from '../../native-models/models/load';
import type { ProviderRequest } from '../../native-models/runtime/providers';
import type { SessionSettings } from '../../native-models/runtime/session';
import { openAudit } from '../services/audit';
import { EvaluationVerificationError, prepareEvaluation, recordEvaluationResult, summary, type PreparedEvaluation } from '../services/evaluations';
import { trustedKeysFor } from '../services/emulator-trust';
import { ServiceError } from '../services/service-error';
import { RESULT_COLUMNS, type ResultColumn } from '../ipc/eval-contract';
import { intFlag, list } from './flags';
import { CancelledError, UsageError, VerificationError, type CliIO, type Command, type ParsedCommand } from './types';

/** Turns an abort (SIGINT) into exit 130 with `message`. */
export async function cancellable<T>(p: Promise<T>, message: string): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if ((e as Error)?.name === 'AbortError') throw new CancelledError(message);
    throw e;
  }
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
export const contextLimit: (m: LoadedModel) => number = modelContext;

export const engineOptions = {
  model: { type: 'string' },
  ep: { type: 'string' },
  threads: { type: 'string' },
} as const;

const USAGE = [
  '  offsite eval (--model MODEL | --emulator PKG) [--adapter DIR] --data FILE [--metric ppl|mc|em] [--seq-len n] [--batch-size n] [--json]',
  '',
  '  --model MODEL            Hugging Face model folder or llama2.c .bin file',
  '  --emulator PKG           emulator package folder (verified first: hashes and a trusted signer)',
  '  --trust PUBKEY           trust this signer for --emulator (repeatable; the data folder\'s trusted keys count too)',
  '  --allow-unsigned --reason TEXT   accept an intact but unsigned or untrusted emulator (recorded in the audit log)',
  '  --adapter DIR            PEFT LoRA folder (deltas merged into the weights) or full-layer adapter folder',
  '  --data FILE              JSONL or CSV: {"text"}/{"tokens"} → ppl, {"context","choices","label"} → mc,',
  '                           {"instruction","input"?,"output"} → em (the metric follows the format unless --metric is given)',
  '  --seq-len n              window length (default: the model\'s context)',
  '  --batch-size n           windows, choices or prompts per forward pass (default 8)',
  '  --max-new-tokens n       exact match: most tokens generated per answer (default 32)',
  '  --column fullZS|emuZS|emuFT|plugin|fullFT   the results-table column this fills (default: inferred when clear)',
  '  --ep auto|cpu|cuda, --threads N, --json, --home DIR',
  '  --json: ppl → {metric:"ppl", ppl, nll, tokens}; mc → {metric:"mc", acc, acc_norm, n}; em → {metric:"em", em, n}',
].join('\n');

function stringFlag(cmd: ParsedCommand, name: string): string | undefined {
  const v = cmd.values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.trim() === '') throw new UsageError(`--${name} needs a value.`);
  return v;
}


/** --trust keys plus the data folder's trusted keys (a folder without an audit log has none). */
function trustedKeys(cmd: ParsedCommand): TrustedKeyLike[] {
  return trustedKeysFor(cmd.home, list(cmd.values.trust));
}

function jsonOf(r: EvaluationResult, evaluationId: string, auditSeq: number): Record<string, unknown> {
  const common = { seqLen: r.seqLen, batchSize: r.batchSize, executionProvider: r.executionProvider, evaluationId, auditSeq };
  if (r.metric === 'ppl') return { metric: 'ppl', ppl: r.ppl, nll: r.nll, tokens: r.tokens, documents: r.documents, ...common };
  if (r.metric === 'mc') return { metric: 'mc', acc: r.acc, acc_norm: r.acc_norm, n: r.n, ...common };
  return { metric: 'em', em: r.em, n: r.n, maxNewTokens: r.maxNewTokens, ...common };
}

async function prepare(cmd: ParsedCommand): Promise<PreparedEvaluation> {
  const model = stringFlag(cmd, 'model');
  const emulator = stringFlag(cmd, 'emulator');
  if ((model === undefined) === (emulator === undefined)) throw new UsageError('Give either --model MODEL or --emulator PKG (one of them).');
  const data = stringFlag(cmd, 'data');
  if (data === undefined) throw new UsageError('--data FILE is required (JSONL or CSV with {"text"}, {"tokens"}, {"context","choices","label"} or {"instruction","input","output"} lines).');
  const metric = cmd.values.metric;
  if (metric !== undefined && !isEvalMetric(metric)) throw new UsageError(`--metric must be ${EVAL_METRICS.join(', ')}, not "${String(metric)}".`);
  const column = cmd.values.column;
  if (column !== undefined && !(RESULT_COLUMNS as readonly unknown[]).includes(column)) throw new UsageError(`--column must be one of ${RESULT_COLUMNS.join(', ')}, not "${String(column)}".`);
  const allow = cmd.values['allow-unsigned'] === true;
  const reason = typeof cmd.values.reason === 'string' ? cmd.values.reason.trim() : undefined;
  if (allow && !reason) throw new UsageError('--allow-unsigned needs --reason TEXT saying why this emulator is accepted without a trusted signature (it goes into the audit log).');
  if (!allow && cmd.values.reason !== undefined) throw new UsageError('--reason is only used with --allow-unsigned.');
  if ((allow || cmd.values.trust !== undefined) && emulator === undefined) throw new UsageError('--trust and --allow-unsigned apply to --emulator only.');
  const seqLen = intFlag(cmd, 'seq-len', undefined, 2);
  const batchSize = intFlag(cmd, 'batch-size', undefined);
  const maxNewTokens = intFlag(cmd, 'max-new-tokens', undefined);
  const settings = sessionSettings(cmd);
  const adapter = stringFlag(cmd, 'adapter');
  try {
    return await prepareEvaluation(
      {
        ...(model !== undefined ? { model } : { emulator: emulator! }),
        adapter: adapter ?? null,
        data,
        ...(metric !== undefined ? { metric } : {}),
        ...(seqLen !== undefined ? { seqLen } : {}),
        ...(batchSize !== undefined ? { batchSize } : {}),
        ...(maxNewTokens !== undefined ? { maxNewTokens } : {}),
        ...(column !== undefined ? { column: column as ResultColumn } : {}),
        settings,
      },
      { ...(emulator !== undefined ? { trustedKeys: trustedKeys(cmd) } : {}), ...(allow ? { allowUnsigned: { reason: reason! } } : {}), home: cmd.home },
    );
  } catch (e) {
    if (e instanceof EvaluationVerificationError) throw new VerificationError(e.message);
    if (e instanceof ServiceError) throw new UsageError(e.message);
    throw e;
  }
}

async function evaluate(p: PreparedEvaluation, io: CliIO): Promise<EvaluationResult> {
  let last = '';
  try {
    return await runEvaluation(p.spec, {
      signal: io.signal,
      progress: (e) => {
        // One line per phase change and per batch; a TTY shows the same lines (they are short).
        const line = e.phase === 'scoring' ? e.message : `${e.message}…`;
        if (line !== last) io.err(line);
        last = line;
      },
    });
  } catch (e) {
    if ((e as Error)?.name === 'AbortError') throw new CancelledError('Evaluation cancelled; nothing was recorded.');
    if (e instanceof FormatError || e instanceof UnsupportedModelError || e instanceof EvalInputError) throw new UsageError(e.message);
    throw e;
  }
}

export const evalCommand: Command = {
  name: 'eval',
  summary: 'evaluate a model or emulator (with an optional adapter) on local data: perplexity, multiple choice or exact match',
  usage: USAGE,
  options: {
    ...engineOptions,
    emulator: { type: 'string' },
    adapter: { type: 'string' },
    trust: { type: 'string', multiple: true },
    'allow-unsigned': { type: 'boolean' },
    reason: { type: 'string' },
    data: { type: 'string' },
    metric: { type: 'string' },
    'seq-len': { type: 'string' },
    'batch-size': { type: 'string' },
    'max-new-tokens': { type: 'string' },
    column: { type: 'string' },
  },
  async run(cmd, io) {
    const prepared = await prepare(cmd);
    io.err(`Evaluating ${prepared.source.kind === 'emulator' ? 'the emulator ' : ''}${prepared.source.name}${prepared.adapterName ? ` with the adapter ${prepared.adapterName}` : ''} on ${prepared.taskName}`);
    const result = await evaluate(prepared, io);
    io.err(`Ran on ${result.executionProvider.toUpperCase()}: ${result.providerReason}`);
    const audit = openAudit(cmd.home);
    let rec: { id: string; seq: number };
    try {
      rec = recordEvaluationResult(audit, prepared, result);
    } finally {
      audit.close();
    }
    if (cmd.json) io.out(JSON.stringify(jsonOf(result, rec.id, rec.seq)));
    else {
      const extra =
        result.metric === 'ppl'
          ? ` (mean NLL ${result.nll.toFixed(5)} nats over ${result.tokens} predicted tokens in ${result.documents} documents, windows of ${result.seqLen})`
          : '';
      io.out(`${summary(result)}${extra}; recorded as audit event #${rec.seq}.`);
    }
    return 0;
  },
};
