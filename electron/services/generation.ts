/**
 * Text generation from a model, shared by `offsite generate` and the desktop app's Models screen.
 * Plain Node (no Electron import).
 *
 *   const prompt = generationPrompt(model, { prompt: 'Once upon' }, 64, CLI_WORDS);  // the checks
 *
 *   const gen = new GenerationService({ settings, events });   // the app: a worker per generation
 *   const { id } = await gen.start({ model, prompt: 'Once upon', maxNewTokens: 64 });
 *   gen.status(id); gen.cancel(id); await gen.wait(id); await gen.stop();
 *
 * The app checks the request on this thread from the model's config and tokenizer alone (no
 * weights), so a bad request is refused at once with the CLI's sentence; the worker then loads the
 * weights and generates (native-models/generate/worker.ts). Generation writes nothing: no file and
 * no audit event.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { FormatError } from '../../native-models/formats/errors';
import { openHfModel } from '../../native-models/formats/hf';
import { llama2cToHfConfig, readLlama2cHeader } from '../../native-models/formats/llama2c';
import { loadTokenizer } from '../../native-models/formats/tokenizer';
import { UnsupportedModelError } from '../../native-models/models/errors';
import type { LoadedModel } from '../../native-models/models/load';
import { specFromConfig } from '../../native-models/models/registry';
import { startJob, type JobHandle, type JobOutcome } from '../../native-models/runtime/jobs';
import type { SessionSettings } from '../../native-models/runtime/session';
import type { GenerationJobInput, GenerationJobProgress, GenerationJobResult } from '../../native-models/generate/worker';
import { APP_PROMPT_WORDS, exactlyOnePromptSentence, type GenerationView, type PromptWords } from '../ipc/models-contract';
import { ServiceError } from './service-error';
import { jobWorker } from './job-workers';
import { contextOf } from '../../native-models/models/spec';

export type { GenerationView, GenerationResultView, PromptWords } from '../ipc/models-contract';

/** `offsite generate`'s words for the prompt inputs. */
export const CLI_PROMPT_WORDS: PromptWords = { prompt: '--prompt TEXT', tokens: '--tokens IDS', maxNewTokens: '--max-new-tokens' };

/** What the checks read of a model: its spec, its tokenizer and where it came from. */
export type GenerationModelInfo = Pick<LoadedModel, 'source' | 'spec' | 'tokenizer'>;

export interface PromptInput {
  prompt?: string;
  tokens?: number[];
}

/** Exactly one of a text prompt or token ids (the CLI checks this before loading the model). */
export function checkOnePrompt(input: { prompt?: unknown; tokens?: unknown }, words: PromptWords): void {
  if ((input.prompt === undefined) === (input.tokens === undefined)) throw new ServiceError(exactlyOnePromptSentence(words));
}

/**
 * The prompt's token ids, after every check `offsite generate` and the app share: exactly one of
 * text or ids; text needs a tokenizer; ids inside the vocabulary; at least one token; prompt plus
 * new tokens within the model's context. Throws ServiceError with a sentence naming the inputs
 * in `words`.
 */
export function generationPrompt(model: GenerationModelInfo, input: PromptInput, maxNewTokens: number, words: PromptWords): number[] {
  checkOnePrompt(input, words);
  const tok = model.tokenizer;
  let prompt: number[];
  if (input.tokens !== undefined) prompt = input.tokens;
  else if (tok) prompt = tok.encode(input.prompt!);
  else throw new ServiceError(`${basename(model.source.path)} has no tokenizer.json, so ${words.prompt} cannot be encoded; give ${words.tokens} instead.`);
  const V = model.spec.vocabSize;
  const bad = prompt.find((t) => t >= V);
  if (bad !== undefined) throw new ServiceError(`Token ${bad} is outside the model's vocabulary (0..${V - 1}).`);
  if (prompt.length === 0) throw new ServiceError(`The prompt encodes to no tokens; give a longer prompt or ${words.tokens}.`);
  const limit = contextOf(model.spec);
  if (prompt.length + maxNewTokens > limit) {
    throw new ServiceError(`The prompt (${prompt.length} tokens) plus ${words.maxNewTokens} ${maxNewTokens} exceed the model's context of ${limit} positions.`);
  }
  return prompt;
}

/**
 * The model's spec and tokenizer without its weights (config.json or the llama2.c header, and
 * tokenizer.json), validated by the same readers as loadModel; a malformed or unsupported model
 * is a ServiceError with the reader's sentence.
 */
export async function readGenerationModelInfo(path: string): Promise<GenerationModelInfo> {
  const full = resolve(path);
  if (!existsSync(full)) throw new ServiceError(`There is no model at ${path}; give a model folder (config.json + model.safetensors) or a llama2.c .bin file.`);
  try {
    if ((await stat(full)).isFile()) {
      const { config } = await readLlama2cHeader(full);
      return { source: { kind: 'llama2c', path: full }, spec: specFromConfig(llama2cToHfConfig(config)), tokenizer: null };
    }
    const hf = await openHfModel(full);
    await hf.weights.close();
    const spec = specFromConfig(hf.config);
    // The same hints as loadModel, so the prompt encodes to the ids the worker's model expects.
    const tokenizer = hf.tokenizerPath ? await loadTokenizer(hf.tokenizerPath, { bosId: spec.bosId, eosId: spec.eosIds.length ? spec.eosIds : null }) : null;
    return { source: { kind: 'hf', path: full }, spec, tokenizer };
  } catch (e) {
    if (e instanceof FormatError || e instanceof UnsupportedModelError) throw new ServiceError(e.message);
    throw e;
  }
}

// ── The app's service: one worker thread per generation ───────────────────────────────────────

export interface GenerationRequest extends PromptInput {
  model: string;
  maxNewTokens: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  useCache?: boolean;
}

export interface GenerationEvents {
  /** The model is loaded and its sessions open: which execution provider runs it, and why. */
  started(view: GenerationView): void;
  /** New tokens (at most ~10 reports a second). */
  tokens(view: GenerationView): void;
  finished(view: GenerationView, outcome: 'done' | 'failed' | 'cancelled'): void;
}

export interface GenerationServiceOptions {
  /** Session settings from the app's settings (execution provider, threads); read at each start. */
  settings?: () => SessionSettings;
  events?: Partial<GenerationEvents>;
  workerModule?: URL;
}

/** Finished generations kept for generate.status (the screen reads the latest). */
const KEEP_FINISHED = 20;
/** How long stop() waits for a cancelled generation before ending its thread. */
const STOP_GRACE_MS = 5000;

interface LiveGeneration {
  view: GenerationView;
  handle: JobHandle<GenerationJobResult>;
  done: Promise<GenerationView>;
}

/** A sentence for a failed generation: input problems as they are, anything else as a bug report. */
function failureSentence(name: string | undefined, message: string): string {
  if (name === 'FormatError' || name === 'UnsupportedModelError' || name === 'ServiceError') return message;
  return `The generation failed unexpectedly: ${message.replace(/\.$/, '')}. Please report this.`;
}

const tokenCount = (n: number): string => `${n} token${n === 1 ? '' : 's'}`;

export function finishSentence(v: GenerationView): string {
  const r = v.result;
  if (v.status === 'done' && r) {
    const why = r.finish === 'stop' ? 'stopped at the end-of-sequence token' : 'reached the length limit';
    return `Generated ${tokenCount(r.tokens.length)} (${why}), ${r.msPerToken.toFixed(2)} ms per token on ${r.executionProvider.toUpperCase()}.`;
  }
  if (v.status === 'cancelled') return `The generation was cancelled after ${tokenCount(v.tokens.length)}.`;
  return v.error ?? 'The generation failed.';
}

export class GenerationService {
  private readonly live = new Map<string, LiveGeneration>();

  constructor(private readonly options: GenerationServiceOptions = {}) {}

  /** Checks the request here (a bad one is refused at once), then generates in a worker. */
  async start(req: GenerationRequest): Promise<{ id: string }> {
    const running = [...this.live.values()].find((g) => g.view.status === 'running');
    // One at a time: a generation already keeps the engine's threads busy.
    if (running) throw new ServiceError(`A generation with ${running.view.model} is still running; wait for it to finish or cancel it first.`);
    const info = await readGenerationModelInfo(req.model);
    const prompt = generationPrompt(info, req, req.maxNewTokens, APP_PROMPT_WORDS);
    const id = randomUUID();
    const input: GenerationJobInput = {
      model: info.source.path,
      prompt,
      maxNewTokens: req.maxNewTokens,
      temperature: req.temperature ?? 0,
      topP: req.topP ?? 1,
      seed: req.seed ?? 0,
      useCache: req.useCache ?? true,
      settings: this.options.settings?.() ?? {},
    };
    const view: GenerationView = {
      id,
      status: 'running',
      model: basename(info.source.path),
      prompt,
      maxNewTokens: input.maxNewTokens,
      temperature: input.temperature,
      topP: input.topP,
      seed: input.seed,
      useCache: input.useCache,
      tokens: [],
      text: info.tokenizer ? '' : null,
      executionProvider: null,
      providerReason: null,
      result: null,
      message: `Loading ${basename(info.source.path)}…`,
      error: null,
    };
    const ev = this.options.events ?? {};
    const handle = startJob<GenerationJobInput, GenerationJobProgress, GenerationJobResult>(this.options.workerModule ?? jobWorker('generate'), input, {
      name: `offsite-generate-${id.slice(0, 8)}`,
      onProgress: (p) => {
        if (p.kind === 'started') {
          view.executionProvider = p.executionProvider;
          view.providerReason = p.providerReason;
          view.message = `Generating with ${p.model} on ${p.executionProvider.toUpperCase()}: ${p.providerReason}`;
          ev.started?.({ ...view });
        } else {
          view.tokens = p.tokens;
          view.text = p.text;
          ev.tokens?.({ ...view });
        }
      },
    });
    const done = handle.result.then((outcome) => this.settle(view, outcome));
    this.live.set(id, { view, handle, done });
    this.forgetOld();
    return { id };
  }

  private settle(view: GenerationView, outcome: JobOutcome<GenerationJobResult>): GenerationView {
    let status: 'done' | 'failed' | 'cancelled';
    if (outcome.status === 'done') {
      const r = outcome.value;
      status = 'done';
      view.tokens = r.tokens;
      view.text = r.text;
      view.result = {
        tokens: r.tokens,
        text: r.text,
        finish: r.finish,
        msPerToken: r.msPerToken,
        prefillMs: r.prefillMs,
        totalMs: r.totalMs,
        useCache: r.useCache,
        executionProvider: r.executionProvider,
        providerReason: r.providerReason,
      };
    } else if (outcome.status === 'cancelled') {
      status = 'cancelled';
    } else {
      status = 'failed';
      view.error = failureSentence(outcome.error.name, outcome.error.message);
    }
    view.status = status;
    view.message = finishSentence(view);
    this.options.events?.finished?.({ ...view }, status);
    return { ...view };
  }

  private forgetOld(): void {
    const finished = [...this.live.entries()].filter(([, g]) => g.view.status !== 'running');
    for (const [id] of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.live.delete(id);
  }

  private get(id: string): LiveGeneration {
    const g = this.live.get(id);
    if (!g) throw new ServiceError(`No generation with the id ${id} was started in this session; start a new one.`);
    return g;
  }

  cancel(id: string): { id: string; cancelled: boolean } {
    const g = this.get(id);
    if (g.view.status !== 'running') return { id, cancelled: false };
    g.handle.cancel();
    return { id, cancelled: true };
  }

  status(id: string): GenerationView {
    return { ...this.get(id).view };
  }

  /** Resolves with the generation's final view. */
  wait(id: string): Promise<GenerationView> {
    return this.get(id).done;
  }

  /** Cancels every running generation and waits for them to end (app quit, end of a test). */
  async stop(): Promise<void> {
    const running = [...this.live.values()].filter((g) => g.view.status === 'running');
    for (const g of running) g.handle.cancel();
    // Cancel lands after the current run; a worker still loading a large model is stopped outright.
    const stopped = Promise.allSettled(running.map((g) => g.done));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), STOP_GRACE_MS)));
    if ((await Promise.race([stopped, late])) === 'late') await Promise.allSettled(running.map((g) => g.handle.terminate()));
    clearTimeout(timer);
    await stopped;
  }
}
