import { describe, expect, it } from 'vitest';
import { loadExamples, summarizeDataFile } from '../../../native-models/data/summary';
import { makeBatch } from '../../../native-models/data/batches';
import { ALPACA_PROMPT_NO_INPUT, alpacaPrompt, padIdOf, tokenizeChoices, tokenizeRecord } from '../../../native-models/data/tokenize';
import { DataFileError } from '../../../native-models/data/read';
import { byteTokenizer, bytes, jsonl, tempFolder } from './helpers';

const tmp = tempFolder();
const BOS = 256;
const EOS = 257;

describe('tokenisation with the byte-level tokenizer (ids = UTF-8 bytes, BOS 256, EOS 257, PAD 258)', () => {
  it('text: the tokenizer adds BOS; no EOS; loss on every target', async () => {
    const tok = await byteTokenizer(tmp.dir);
    const e = tokenizeRecord({ format: 'text', line: 1, text: 'hi!' }, tok);
    expect(Array.from(e.tokens)).toEqual([BOS, ...bytes('hi!')]);
    expect(Array.from(e.lossMask)).toEqual([0, 1, 1, 1]);
  });

  it('tokens: used exactly as given, no BOS or EOS', () => {
    const e = tokenizeRecord({ format: 'tokens', line: 4, tokens: [7, 8, 9] }, null);
    expect(Array.from(e.tokens)).toEqual([7, 8, 9]);
    expect(Array.from(e.lossMask)).toEqual([0, 1, 1]);
    expect(e.line).toBe(4);
  });

  it('instruction: the Alpaca prompt, then the response and EOS; loss on the response only unless lossOnPrompt', async () => {
    const tok = await byteTokenizer(tmp.dir);
    const record = { format: 'instruction' as const, line: 1, instruction: 'Say $& hi', input: null, output: 'hi' };
    const prompt = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay $& hi\n\n### Response:\n';
    expect(alpacaPrompt(record.instruction, null)).toBe(prompt);
    expect(ALPACA_PROMPT_NO_INPUT.includes('{instruction}')).toBe(true);
    const e = tokenizeRecord(record, tok);
    const promptIds = [BOS, ...bytes(prompt)];
    expect(Array.from(e.tokens)).toEqual([...promptIds, ...bytes('hi'), EOS]);
    expect(Array.from(e.lossMask)).toEqual([...promptIds.map(() => 0), 1, 1, 1]);
    const all = tokenizeRecord(record, tok, { lossOnPrompt: true });
    expect(Array.from(all.lossMask)).toEqual([0, ...promptIds.slice(1).map(() => 1), 1, 1, 1]);
    const withInput = alpacaPrompt('Add', '2 2');
    expect(withInput).toBe(
      'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nAdd\n\n### Input:\n2 2\n\n### Response:\n',
    );
  });

  it('multiple choice: context, then " " and the correct choice; loss on the choice only', async () => {
    const tok = await byteTokenizer(tmp.dir);
    const record = { format: 'choice' as const, line: 1, context: 'Sky:', choices: ['red', 'blue'], label: 1 };
    const e = tokenizeRecord(record, tok);
    expect(Array.from(e.tokens)).toEqual([BOS, ...bytes('Sky:'), ...bytes(' blue')]);
    expect(Array.from(e.lossMask)).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    expect(tokenizeChoices(record, tok)).toEqual({ context: [BOS, ...bytes('Sky:')], continuations: [bytes(' red'), bytes(' blue')] });
  });

  it('the pad id is the tokenizer’s pad token', async () => {
    expect(padIdOf(await byteTokenizer(tmp.dir))).toBe(258);
    expect(padIdOf(null)).toBe(0);
  });

  it('an instruction batch masks the prompt and the padding', async () => {
    const tok = await byteTokenizer(tmp.dir);
    const path = tmp.file('sft.jsonl', jsonl([{ instruction: 'A', output: 'xy' }]));
    const { examples } = await loadExamples(path, { tokenizer: tok });
    const n = examples[0]!.tokens.length;
    const b = makeBatch(examples, [0], { seqLen: n + 3, padId: padIdOf(tok) });
    // Targets: prompt (n−4 of them masked), then 'x', 'y', EOS, then three pads.
    expect(Array.from(b.mask)).toEqual([...new Array(n - 4).fill(0), 1, 1, 1, 0, 0, 0]);
    expect(Array.from(b.targets, Number).slice(n - 4)).toEqual([...bytes('xy'), EOS, 258, 258, 258]);
  });
});

describe('loading and summarising a file', () => {
  it('loadExamples tokenises every record and throws naming the line of an out-of-vocabulary id', async () => {
    const tok = await byteTokenizer(tmp.dir);
    const ok = await loadExamples(tmp.file('k.jsonl', jsonl([{ tokens: [1, 2] }, { tokens: [258] }])), { tokenizer: tok });
    expect(ok.examples.map((e) => Array.from(e.tokens))).toEqual([[1, 2], [258]]);
    await expect(loadExamples(tmp.file('k2.jsonl', jsonl([{ tokens: [1, 2] }, { tokens: [259] }])), { tokenizer: tok })).rejects.toThrow(DataFileError);
    await expect(loadExamples(tmp.file('k3.jsonl', jsonl([{ tokens: [1, 2] }, { tokens: [259] }])), { tokenizer: tok })).rejects.toThrow(/Line 2: "tokens"\[0\] is 259/);
  });

  it('the summary has format, count, token statistics, hash and preview rows', async () => {
    const tok = await byteTokenizer(tmp.dir);
    const path = tmp.file('sum.jsonl', jsonl([{ text: 'abc' }, { text: 'abcdefg' }, { text: 'a' }]));
    const s = await summarizeDataFile(path, { tokenizer: tok, seqLen: 5, previewRows: 2 });
    expect(s.format).toBe('text');
    expect(s.examples).toBe(3);
    // With BOS: lengths 4, 8, 2.
    expect(s.tokenStats).toEqual({ examples: 3, total: 14, min: 2, max: 8, mean: 14 / 3, lossTokens: 11, longerThanSeqLen: 1, seqLen: 5 });
    expect(s.columns).toEqual(['text']);
    expect(s.preview).toEqual([
      { line: 1, cells: { text: 'abc' } },
      { line: 2, cells: { text: 'abcdefg' } },
    ]);
    const noTok = await summarizeDataFile(path);
    expect(noTok.tokenStats).toBeNull();
    expect(noTok.sha256).toBe(s.sha256);
  });
});
