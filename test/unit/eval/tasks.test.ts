// Evaluation data: the data module's strict readers, the metric chosen by format, and the LM line
// parser kept for callers that hold a file's content.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lmDocuments, readEvalTask } from '../../../native-models/eval/tasks';
import { parseLmJsonl } from '../../../native-models/eval/perplexity';

const dir = mkdtempSync(join(tmpdir(), 'offsite-eval-tasks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};

describe('readEvalTask', () => {
  it('chooses the metric from the format', async () => {
    expect((await readEvalTask(file('a.jsonl', '{"text": "hi"}\n\n{"text": "yo"}\n'))).metric).toBe('ppl');
    expect((await readEvalTask(file('b.jsonl', '{"tokens": [1, 2]}\n'))).metric).toBe('ppl');
    expect((await readEvalTask(file('c.jsonl', '{"context": "a", "choices": ["b", "c"], "label": 1}\n'))).metric).toBe('mc');
    const em = await readEvalTask(file('d.csv', 'instruction,input,output\nSay hi,,hi\n'));
    expect(em.metric).toBe('em');
    expect(em.records).toEqual([{ format: 'instruction', line: 2, instruction: 'Say hi', input: null, output: 'hi' }]);
    expect(em.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a metric that does not fit the format, in a sentence', async () => {
    const p = file('e.jsonl', '{"text": "hi"}\n');
    await expect(readEvalTask(p, { metric: 'mc' })).rejects.toThrow(/e\.jsonl holds text .* lines, but multiple-choice accuracy \(mc\) needs multiple-choice lines/);
  });

  it.each([
    ['ppl', '{"text": "ok"}\n{"text": 5}\n', /bad-ppl\.jsonl: Line 2: "text" must be text/],
    ['mc', '{"context": "a", "choices": ["b", "c"], "label": 0}\n\n{"context": "a", "choices": ["b", "c"], "label": 2}\n', /bad-mc\.jsonl: Line 3: "label" is 2, but there are 2 choices/],
    ['em', '{"instruction": "x", "output": "y"}\n{"instruction": "x"}\n', /bad-em\.jsonl: Line 2 has no "output" field/],
  ])('names the first bad line of a malformed %s file', async (metric, content, message) => {
    await expect(readEvalTask(file(`bad-${metric}.jsonl`, content))).rejects.toThrow(message);
  });

  it('tokenises LM documents: tokens as given, text with the tokenizer, ids checked', async () => {
    const tok = { vocabSize: 300, bosId: 256, eosId: 257, padId: null, encode: (s: string) => [256, ...Buffer.from(s)] };
    const text = await readEvalTask(file('t.jsonl', '{"text": "ab"}\n'));
    expect(lmDocuments(text, tok, 300)).toEqual([{ line: 1, tokens: [256, 97, 98] }]);
    expect(() => lmDocuments(text, null, 300)).toThrow(/t\.jsonl: Line 1 has "text", but the model has no tokenizer\.json/);
    const ids = await readEvalTask(file('i.jsonl', '{"tokens": [1, 2]}\n{"tokens": [1, 9]}\n'));
    expect(() => lmDocuments(ids, null, 9)).toThrow(/i\.jsonl: Line 2 has token id 9, outside the model's vocabulary \(ids 0 to 8\)/);
  });
});

describe('parseLmJsonl', () => {
  it('accepts text or tokens lines and skips blank lines', () => {
    expect(parseLmJsonl('{"text": "a b"}\n\n{"text": "c"}\r\n', 'd.jsonl')).toEqual([{ line: 1, text: 'a b' }, { line: 3, text: 'c' }]);
    expect(parseLmJsonl('{"tokens": [1, 2, 3]}', 'd.jsonl')).toEqual([{ line: 1, tokens: [1, 2, 3] }]);
  });

  it.each([
    ['{"text": "ok"}\n{"text": 5}', /d\.jsonl: Line 2: "text" must be text/],
    ['{"tokens": [1, -2]}', /Line 1: "tokens"\[1\] is -2/],
    ['{"text": "a"}\n\n[1, 2]', /Line 3 is a JSON array/],
    ['{"text": "a"', /Line 1 is not valid JSON/],
    ['{"context": "a", "choices": ["b", "c"], "label": 0}', /Line 1 is multiple choice .* data; perplexity needs/],
    ['{"text": "a"}\n{"tokens": [1]}', /Line 2 is in the pre-tokenized .* format, but line 1 is in the text/],
  ])('names the line of a malformed file (%#)', (content, message) => {
    expect(() => parseLmJsonl(content, 'd.jsonl')).toThrow(message);
  });
});
