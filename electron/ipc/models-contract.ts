// The Models screen's part of the IPC contract: models.inspect (what `offsite inspect` prints) and
// generate.* (what `offsite generate` does, as a cancellable job). contract.ts spreads these into
// its one channel map. Like contract.ts, this file imports nothing but zod and schemas.ts (the
// renderer imports it type-only, the e2e bridge bundles it).
//
// A generation reports on job.progress with kind "generate": stage "started" once the model is
// loaded (message names the execution provider), then stage "tokens" at most ~10 times a second
// (step = tokens so far, total = maxNewTokens, series.tokens = the token ids so far, text = their
// decoded text when the model has a tokenizer); the end comes as job.finished, and
// generate.status gives the finished result.
import { z } from 'zod';
import { fullPath, wholeNumber } from './schemas';

/** How each side names the prompt inputs in the shared sentences (services/generation.ts). */
export interface PromptWords {
  prompt: string;
  tokens: string;
  maxNewTokens: string;
}

/** The desktop app's words; the CLI uses its flags (--prompt TEXT, --tokens IDS, --max-new-tokens). */
export const APP_PROMPT_WORDS: PromptWords = { prompt: 'a text prompt', tokens: 'token ids', maxNewTokens: 'max new tokens' };

export const exactlyOnePromptSentence = (w: PromptWords): string => `Give exactly one of ${w.prompt} or ${w.tokens}.`;

export const MAX_NEW_TOKENS = 4096;
/** Longest prompt accepted over IPC (characters or token ids); the model's context is checked after. */
const MAX_PROMPT = 1 << 20;

const jobId = z.uuid({ error: 'A generation id is a UUID, as generate.start returned it.' });

const tokenId = z
  .number({ error: 'Each token id must be a whole number ≥ 0.' })
  .int({ error: 'Each token id must be a whole number ≥ 0.' })
  .min(0, { error: 'Each token id must be a whole number ≥ 0.' });

export const generateStartSchema = z
  .object({
    /** A model folder (config.json + safetensors) or a llama2.c .bin file, as `--model`. */
    model: fullPath('path of the model', '/models/tinyllama'),
    /** Text, encoded with the model's tokenizer.json. */
    prompt: z.string({ error: 'The prompt must be text.' }).max(MAX_PROMPT, { error: `The prompt is longer than ${MAX_PROMPT} characters.` }).optional(),
    /** Token ids, for models without a tokenizer. */
    tokens: z
      .array(tokenId, { error: 'The token ids must be a list of whole numbers.' })
      .min(1, { error: 'Give at least one token id (e.g. 1, the BOS token of llama2.c models).' })
      .max(MAX_PROMPT, { error: `Give at most ${MAX_PROMPT} token ids.` })
      .optional(),
    maxNewTokens: wholeNumber('number of new tokens', 1, MAX_NEW_TOKENS),
    /** 0 = greedy. */
    temperature: z
      .number({ error: 'The temperature must be a number ≥ 0 (0 = greedy).' })
      .min(0, { error: 'The temperature must be a number ≥ 0 (0 = greedy).' })
      .refine(Number.isFinite, { error: 'The temperature must be a number ≥ 0 (0 = greedy).' })
      .default(0),
    topP: z
      .number({ error: 'Top-p must be a number above 0 and at most 1.' })
      .gt(0, { error: 'Top-p must be a number above 0 and at most 1.' })
      .max(1, { error: 'Top-p must be a number above 0 and at most 1.' })
      .default(1),
    seed: wholeNumber('seed', 0, Number.MAX_SAFE_INTEGER).default(0),
    useCache: z.boolean({ error: 'Use the key/value cache must be on or off.' }).default(true),
  })
  .strict()
  .refine((r) => (r.prompt === undefined) !== (r.tokens === undefined), { error: exactlyOnePromptSentence(APP_PROMPT_WORDS) });

export type GenerateStartRequestView = z.input<typeof generateStartSchema>;

export const modelsRequests = {
  /** What `offsite inspect PATH` prints: the structured description and its text lines. */
  'models.inspect': z.object({ path: fullPath('path to inspect', '/models/tinyllama') }).strict(),
  /** Starts a generation job; progress on job.progress (kind "generate"), the end on job.finished. */
  'generate.start': generateStartSchema,
  /** Asks a running generation to stop; the tokens so far stay in generate.status. */
  'generate.cancel': z.object({ id: jobId }).strict(),
  /** One generation of this session: its tokens so far, and the result once it finished. */
  'generate.status': z.object({ id: jobId }).strict(),
} as const;

/** `offsite inspect --json`: `kind` says which reader described the path; the other fields follow it. */
export interface InspectDescription {
  kind: string;
  path: string;
  [field: string]: unknown;
}

export interface InspectView {
  description: InspectDescription;
  /** The summary lines `offsite inspect` prints under the path. */
  text: string;
}

export interface GenerationResultView {
  /** The generated tokens (the stop token included when one ended the run). */
  tokens: number[];
  /** Their decoded text (special tokens skipped); null when the model has no tokenizer. */
  text: string | null;
  /** stop: an end-of-sequence token; length: maxNewTokens reached. */
  finish: 'stop' | 'length';
  msPerToken: number;
  /** The prompt pass, in milliseconds. */
  prefillMs: number;
  totalMs: number;
  /** Whether the key/value cache was used. */
  useCache: boolean;
  executionProvider: 'cpu' | 'cuda';
  /** A sentence saying why that provider was chosen. */
  providerReason: string;
}

export interface GenerationView {
  id: string;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  /** The model's file or folder name. */
  model: string;
  /** The prompt's token ids (encoded from the text when a text prompt was given). */
  prompt: number[];
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  useCache: boolean;
  /** Tokens generated so far (all of them once finished). */
  tokens: number[];
  /** Their decoded text; null without a tokenizer. */
  text: string | null;
  /** Known once the model is loaded. */
  executionProvider: 'cpu' | 'cuda' | null;
  providerReason: string | null;
  result: GenerationResultView | null;
  /** The latest status sentence (how it ended, once it has). */
  message: string;
  /** Why it failed, as a sentence. */
  error: string | null;
}

export interface ModelsResponses {
  'models.inspect': InspectView;
  'generate.start': { id: string };
  'generate.cancel': { id: string; cancelled: boolean };
  'generate.status': GenerationView;
}

export const modelsChannelFlags = {
  'models.inspect': { mutates: false },
  // Generation reads a model and writes nothing (no audit event, no file), so auditors may use it.
  'generate.start': { mutates: false },
  'generate.cancel': { mutates: false },
  'generate.status': { mutates: false },
} as const;
