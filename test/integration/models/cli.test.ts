// `offsite eval --metric ppl` and `offsite generate` end to end through the real CLI entry point.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BYTE_LEVEL_IDS, writeByteLevelTokenizerJson } from '../../../native-models/formats/tokenizer';
import { fixedTokens, repoRoot, runOracle, stories260K } from './oracle';

const bin = resolve(repoRoot, 'bin/offsite.mjs');
let dir: string;
let expected: { greedy: number[]; rolling: { nll: number; tokens: number } };
const sequence = fixedTokens(60, 512, 99);

function offsite(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args, '--home', join(dir, 'home')], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-cli-models-'));
  runOracle(['llama2c', stories260K, join(dir, 'expected.json'), '--steps', '16', '--tokens', sequence.join(','), '--window', '16']);
  expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
  runOracle(['hf', join(dir, 'hf')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('offsite eval --metric ppl', () => {
  it('exits 2 naming the malformed line', () => {
    const data = join(dir, 'bad.jsonl');
    writeFileSync(data, ['{"tokens": [1, 5, 6, 7]}', '', '{"tokens": [1, 2, 3]}', '{"tokens": [1, 2, oops]}', '{"tokens": [4, 5]}'].join('\n'));
    const r = offsite('eval', '--model', stories260K, '--data', data, '--metric', 'ppl', '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.jsonl: Line 4\b/);
    expect(r.stdout).toBe('');
  });

  it('exits 2 for a line that is not a language-modelling line', () => {
    const data = join(dir, 'mc.jsonl');
    writeFileSync(data, '{"tokens": [1, 5]}\n{"context": "a", "choices": ["b"], "label": 0}\n');
    const r = offsite('eval', '--model', stories260K, '--data', data, '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/mc\.jsonl: Line 2 is in the multiple choice .* format, but line 1 is in the pre-tokenized .* format/);
  });

  it('scores {"tokens"} documents in rolling windows like the PyTorch reference', () => {
    const data = join(dir, 'doc.jsonl');
    writeFileSync(data, `${JSON.stringify({ tokens: sequence })}\n`);
    const r = offsite('eval', '--model', stories260K, '--data', data, '--metric', 'ppl', '--seq-len', '16', '--batch-size', '2', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.metric).toBe('ppl');
    expect(out.tokens).toBe(expected.rolling.tokens);
    expect(Math.abs(out.nll - expected.rolling.nll)).toBeLessThan(1e-5);
    expect(out.ppl / Math.exp(expected.rolling.nll)).toBeCloseTo(1, 4);
  });

  it('tokenizes {"text"} lines with the folder\'s tokenizer.json, BOS included', async () => {
    const model = join(dir, 'hf', 'llama_bytes');
    await writeByteLevelTokenizerJson(model);
    const text = 'Once upon a time';
    const asText = join(dir, 'text.jsonl');
    const asTokens = join(dir, 'tokens.jsonl');
    writeFileSync(asText, `${JSON.stringify({ text })}\n`);
    writeFileSync(asTokens, `${JSON.stringify({ tokens: [BYTE_LEVEL_IDS.bos, ...Buffer.from(text)] })}\n`);
    const a = offsite('eval', '--model', model, '--data', asText, '--json');
    const b = offsite('eval', '--model', model, '--data', asTokens, '--json');
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const ra = JSON.parse(a.stdout);
    expect(ra.tokens).toBe(text.length);
    expect(ra.nll).toBe(JSON.parse(b.stdout).nll);
  });

  it('exits 2 when a {"text"} line meets a model without a tokenizer', () => {
    const data = join(dir, 'text-only.jsonl');
    writeFileSync(data, '{"text": "hello"}\n');
    const r = offsite('eval', '--model', stories260K, '--data', data);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Line 1 has "text", but the model has no tokenizer\.json/);
  });
});

describe('offsite generate', () => {
  it('continues BOS greedily like the reference, with and without the cache', () => {
    for (const extra of [[], ['--no-cache']]) {
      const r = offsite('generate', '--model', stories260K, '--tokens', '1', '--max-new-tokens', '16', '--json', ...extra);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect([1, ...out.tokens]).toEqual(expected.greedy);
      expect(out.cache).toBe(extra.length === 0);
    }
  });

  it('samples reproducibly for a seed', () => {
    const run = (seed: string) => JSON.parse(offsite('generate', '--model', stories260K, '--tokens', '1,461', '--max-new-tokens', '12', '--temperature', '0.8', '--top-p', '0.9', '--seed', seed, '--json').stdout).tokens;
    expect(run('5')).toEqual(run('5'));
  });

  it('refuses a prompt that does not fit the context, and a --prompt without tokenizer', () => {
    const long = offsite('generate', '--model', stories260K, '--tokens', '1', '--max-new-tokens', '600');
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/exceed the model's context of 512 positions/);
    const text = offsite('generate', '--model', stories260K, '--prompt', 'hi', '--max-new-tokens', '3');
    expect(text.code).toBe(2);
    expect(text.stderr).toMatch(/no tokenizer\.json/);
  });

  it('decodes text with a tokenizer folder', async () => {
    const copy = join(dir, 'bytes-model');
    cpSync(join(dir, 'hf', 'llama_bytes'), copy, { recursive: true });
    await writeByteLevelTokenizerJson(copy);
    const r = offsite('generate', '--model', copy, '--prompt', 'ab', '--max-new-tokens', '5', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.prompt).toEqual([BYTE_LEVEL_IDS.bos, 97, 98]);
    expect(typeof out.text).toBe('string');
    expect(out.tokens.length).toBeGreaterThan(0);
  });
});
