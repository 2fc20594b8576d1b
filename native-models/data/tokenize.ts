// From records to token examples. Every example carries a loss mask over its own tokens:
// lossMask[i] = 1 when predicting tokens[i] from tokens[0..i-1] counts in the loss (so lossMask[0]
// is always 0: nothing predicts the first token). Batching turns this into the target mask.
import type { DataRecord } from './records';

/** What tokenisation needs from a tokenizer (formats/tokenizer.ts's LoadedTokenizer fits). */
export interface DataTokenizer {
  vocabSize: number;
  bosId: number | null;
  eosId: number | null;
  padId: number | null;
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
}

export interface Example {
  tokens: Int32Array;
  /** 1 where the token is a target that counts in the loss (index 0 is always 0). */
  lossMask: Uint8Array;
  /** The line of the data file it came from. */
  line: number;
}

export interface TokenizeOptions {
  /** Instruction format: also train on the prompt tokens (default false: response only). */
  lossOnPrompt?: boolean;
  /** Instruction format: end the response with the tokenizer's EOS, so the model learns to stop (default true). */
  eosAfterResponse?: boolean;
  /** Multiple choice: put between the context and a choice (default " ", as lm-evaluation-harness). */
  choiceDelimiter?: string;
}

/**
 * The Alpaca prompt template (tatsu-lab/stanford_alpaca), used verbatim; the response follows
 * "### Response:\n" directly.
 */
export const ALPACA_PROMPT_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n';
export const ALPACA_PROMPT_NO_INPUT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Response:\n';

export function alpacaPrompt(instruction: string, input: string | null): string {
  // Function replacers: "$&" and friends in user text must stay literal.
  return input === null
    ? ALPACA_PROMPT_NO_INPUT.replace('{instruction}', () => instruction)
    : ALPACA_PROMPT_WITH_INPUT.replace('{instruction}', () => instruction).replace('{input}', () => input);
}

function build(prompt: number[], response: number[], lossOnPrompt: boolean, line: number): Example {
  const tokens = Int32Array.from([...prompt, ...response]);
  const lossMask = new Uint8Array(tokens.length);
  for (let i = lossOnPrompt ? 1 : prompt.length; i < tokens.length; i++) lossMask[i] = 1;
  lossMask[0] = 0;
  return { tokens, lossMask, line };
}

/**
 * Tokenises one record:
 * - text: `encode(text)` with the tokenizer's own special tokens (e.g. BOS), no EOS; loss on all.
 * - tokens: the ids exactly as given; loss on all.
 * - instruction: `encode(alpacaPrompt(…))` (with specials) + `encode(output)` (without) + EOS;
 *   loss on the response (and EOS) only, unless lossOnPrompt.
 * - choice: `encode(context)` (with specials) + `encode(delimiter + correct choice)` (without);
 *   loss on the correct choice's tokens only, unless lossOnPrompt.
 * Prompt and response are encoded separately, so the boundary between them is exact.
 */
export function tokenizeRecord(record: DataRecord, tokenizer: DataTokenizer | null, options: TokenizeOptions = {}): Example {
  if (record.format === 'tokens') return build([], record.tokens, true, record.line);
  if (!tokenizer) throw new Error(`Line ${record.line} is ${record.format} data, which needs a tokenizer; choose a model that has a tokenizer.json.`);
  const lossOnPrompt = options.lossOnPrompt ?? false;
  switch (record.format) {
    case 'text':
      return build([], tokenizer.encode(record.text, { addSpecialTokens: true }), true, record.line);
    case 'instruction': {
      const prompt = tokenizer.encode(alpacaPrompt(record.instruction, record.input), { addSpecialTokens: true });
      const response = tokenizer.encode(record.output, { addSpecialTokens: false });
      if ((options.eosAfterResponse ?? true) && tokenizer.eosId !== null) response.push(tokenizer.eosId);
      return build(prompt, response, lossOnPrompt, record.line);
    }
    case 'choice': {
      const { context, continuations } = tokenizeChoices(record, tokenizer, options);
      return build(context, continuations[record.label]!, lossOnPrompt, record.line);
    }
  }
}

/** Multiple choice for scoring: the context's tokens and each choice's continuation tokens. */
export function tokenizeChoices(
  record: Extract<DataRecord, { format: 'choice' }>,
  tokenizer: DataTokenizer,
  options: Pick<TokenizeOptions, 'choiceDelimiter'> = {},
): { context: number[]; continuations: number[][] } {
  const delimiter = options.choiceDelimiter ?? ' ';
  return {
    context: tokenizer.encode(record.context, { addSpecialTokens: true }),
    continuations: record.choices.map((c) => tokenizer.encode(delimiter + c, { addSpecialTokens: false })),
  };
}

/** The id used for padding: the tokenizer's pad token, else EOS, else 0 (padding is always masked). */
export function padIdOf(tokenizer: DataTokenizer | null): number {
  return tokenizer?.padId ?? tokenizer?.eosId ?? 0;
}
