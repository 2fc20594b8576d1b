// `offsite generate`: text (or token ids) from a model, greedy or sampled, with or without the
// key/value cache.
import { basename } from 'node:path';
import { generate } from '../../native-models/generate/generate';
import { ModelRunner } from '../../native-models/models/runner';
import { checkOnePrompt, CLI_PROMPT_WORDS, generationPrompt, type PromptInput } from '../services/generation';
import { ServiceError } from '../services/service-error';
import { cancellable, engineOptions, loadModelFlag, sessionSettings } from './eval';
import { intFlag, numberFlag } from './flags';
import { UsageError, type Command } from './types';

function parseTokenList(s: string): number[] {
  const parts = s.split(/[\s,]+/).filter((p) => p !== '');
  if (parts.length === 0) throw new UsageError('--tokens is empty; give comma-separated token ids, e.g. --tokens 1,450,3');
  return parts.map((p) => {
    const n = Number(p);
    if (!/^\d+$/.test(p) || !Number.isSafeInteger(n)) throw new UsageError(`--tokens: "${p}" is not a token id (a whole number ≥ 0).`);
    return n;
  });
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'generate text or token ids from a model (greedy, temperature, top-p)',
  usage:
    '  offsite generate --model MODEL (--prompt TEXT | --tokens IDS) --max-new-tokens N [--temperature t] [--top-p p] [--seed s] [--no-cache] [--json] [--ep auto|cpu|cuda] [--threads N]',
  options: {
    ...engineOptions,
    prompt: { type: 'string' },
    tokens: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    'no-cache': { type: 'boolean' },
  },
  async run(cmd, io) {
    const promptText = cmd.values.prompt as string | undefined;
    const tokenFlag = cmd.values.tokens as string | undefined;
    // The request checks are shared with the desktop app (services/generation.ts); their sentences are usage errors here.
    const usage = <T>(check: () => T): T => {
      try {
        return check();
      } catch (e) {
        if (e instanceof ServiceError) throw new UsageError(e.message);
        throw e;
      }
    };
    usage(() => checkOnePrompt({ prompt: promptText, tokens: tokenFlag }, CLI_PROMPT_WORDS));
    const input: PromptInput = tokenFlag !== undefined ? { tokens: parseTokenList(tokenFlag) } : { prompt: promptText! };
    const maxNewTokens = intFlag(cmd, 'max-new-tokens', undefined);
    if (maxNewTokens === undefined) throw new UsageError('--max-new-tokens N is required.');
    const temperature = numberFlag(cmd, 'temperature', 0, (n) => n >= 0, 'a number ≥ 0 (0 = greedy)');
    const topP = numberFlag(cmd, 'top-p', 1, (n) => n > 0 && n <= 1, 'a number in (0, 1]');
    const seed = intFlag(cmd, 'seed', 0, 0)!;
    const useCache = cmd.values['no-cache'] !== true;
    const settings = sessionSettings(cmd);
    const model = await loadModelFlag(cmd);
    const tok = model.tokenizer;
    const prompt = usage(() => generationPrompt(model, input, maxNewTokens, CLI_PROMPT_WORDS));
    const runner = new ModelRunner(model, { settings, contextLength: prompt.length + maxNewTokens });
    try {
      const provider = await runner.provider();
      io.err(`Generating up to ${maxNewTokens} tokens with ${basename(model.source.path)} (${useCache ? 'key/value cache' : 'no cache'}, ${temperature === 0 ? 'greedy' : `temperature ${temperature}, top-p ${topP}, seed ${seed}`}) on ${provider.chosen.toUpperCase()}: ${provider.reason}`);
      const res = await cancellable(generate(runner, prompt, { maxNewTokens, temperature, topP, seed, useCache, signal: io.signal }), 'Generation cancelled.');
      const text = tok ? tok.decode(res.tokens, { skipSpecialTokens: true }) : null;
      if (cmd.json) {
        io.out(JSON.stringify({ prompt: res.prompt, tokens: res.tokens, text, finish: res.finish, cache: res.useCache, temperature, topP, seed, prefillMs: res.prefillMs, msPerToken: res.msPerToken, executionProvider: provider.chosen }));
      } else {
        io.out(text ?? res.tokens.join(' '));
        io.err(`${res.tokens.length} tokens (${res.finish === 'stop' ? 'stopped at end of sequence' : 'length limit'}), ${res.msPerToken.toFixed(2)} ms/token`);
      }
      return 0;
    } finally {
      await runner.release();
    }
  },
};
