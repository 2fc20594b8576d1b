// Job worker entry for a generation (started by electron/services/generation.ts with startJob):
// loading the model and every session.run block this thread, not the app's. The prompt arrives
// already checked (services/generation.ts generationPrompt, shared with `offsite generate`).
// Tokens stream back as progress at most every STREAM_MS; cancel is seen after each token (greedy
// decoding with the cache picks several per run, each run sized at ~100 ms).
import { basename } from 'node:path';
import { loadModel } from '../models/load';
import { ModelRunner } from '../models/runner';
import { JobCancelled, runJob } from '../runtime/job-worker';
import type { ProviderName } from '../runtime/providers';
import type { SessionSettings } from '../runtime/session';
import { generate, type GenerateResult } from './generate';

export interface GenerationJobInput {
  /** A model folder or llama2.c file (absolute). */
  model: string;
  prompt: number[];
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  useCache: boolean;
  settings: SessionSettings;
}

export type GenerationJobProgress =
  | { kind: 'started'; model: string; executionProvider: ProviderName; providerReason: string; hasTokenizer: boolean }
  | { kind: 'tokens'; tokens: number[]; text: string | null };

export interface GenerationJobResult extends Omit<GenerateResult, 'prompt'> {
  text: string | null;
  executionProvider: ProviderName;
  providerReason: string;
}

/** At most ~10 token reports a second: enough to watch text appear, little cost to the run. */
const STREAM_MS = 100;

runJob<GenerationJobInput, GenerationJobProgress, GenerationJobResult>(async (input, ctx) => {
  const model = await loadModel(input.model);
  ctx.throwIfCancelled();
  const tok = model.tokenizer;
  const decode = (ids: number[]): string | null => (tok ? tok.decode(ids, { skipSpecialTokens: true }) : null);
  // The same runner the CLI builds: sessions sized to prompt + new tokens.
  const runner = new ModelRunner(model, { settings: input.settings, contextLength: input.prompt.length + input.maxNewTokens });
  try {
    const provider = await runner.provider();
    ctx.throwIfCancelled();
    ctx.progress({ kind: 'started', model: basename(model.source.path), executionProvider: provider.chosen, providerReason: provider.reason, hasTokenizer: tok !== null });
    const out: number[] = [];
    let sentAt = -Infinity;
    let sentCount = 0;
    const send = (): void => {
      sentAt = performance.now();
      sentCount = out.length;
      ctx.progress({ kind: 'tokens', tokens: [...out], text: decode(out) });
    };
    // The cancel flag lives in shared memory; an abort makes generate() stop before its next run.
    const abort = new AbortController();
    let res: GenerateResult;
    try {
      res = await generate(runner, input.prompt, {
        maxNewTokens: input.maxNewTokens,
        temperature: input.temperature,
        topP: input.topP,
        seed: input.seed,
        useCache: input.useCache,
        signal: abort.signal,
        onToken: (t) => {
          out.push(t);
          if (ctx.cancelled) abort.abort();
          else if (performance.now() - sentAt >= STREAM_MS) send();
        },
      });
    } catch (e) {
      if (ctx.cancelled || (e as Error)?.name === 'AbortError') {
        // What was generated before the cancel stays visible.
        if (out.length > sentCount) send();
        throw new JobCancelled();
      }
      throw e;
    }
    if (out.length > sentCount) send();
    return {
      tokens: res.tokens,
      text: decode(res.tokens),
      finish: res.finish,
      useCache: res.useCache,
      prefillMs: res.prefillMs,
      msPerToken: res.msPerToken,
      totalMs: res.totalMs,
      executionProvider: provider.chosen,
      providerReason: provider.reason,
    };
  } finally {
    await runner.release();
  }
});
