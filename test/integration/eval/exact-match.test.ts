// Exact match on a real (tiny, random) model: batched greedy generation through the key/value
// cache gives, item by item, the text that plain greedy generation without a cache gives
// (native-models/generate), and answers match their references trimmed and lower-cased.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeInstructionItem, scoreExactMatch } from '../../../native-models/eval/exact-match';
import { runEvaluation } from '../../../native-models/eval/evaluate';
import { generate } from '../../../native-models/generate/generate';
import { loadModel, type LoadedModel } from '../../../native-models/models/load';
import { ModelRunner } from '../../../native-models/models/runner';
import { jsonl, tinyModels } from './helpers';

const settings = { provider: 'cpu' as const, intraOpThreads: 1 };
let dir: string;
let modelDir: string;
let model: LoadedModel;
let runner: ModelRunner;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-eval-em-'));
  modelDir = (await tinyModels(dir)).bytes;
  model = await loadModel(modelDir);
  runner = new ModelRunner(model, { settings });
});
afterAll(async () => {
  await runner?.release();
  rmSync(dir, { recursive: true, force: true });
});

const INSTRUCTIONS = ['Say hi', 'Add', 'Name a colour', 'Say no', 'Count'];

describe('exact match with greedy generation', () => {
  it('generates, in batches with the cache, what plain greedy generation gives', async () => {
    // Short prompts: the Alpaca template alone is ~120 bytes, over this model's 64 positions, so
    // the prompt keeps its last tokens (harness-style left truncation) — the same for both paths.
    const tok = model.tokenizer!;
    const maxNewTokens = 6;
    const room = model.spec.maxPositions - maxNewTokens;
    const items = INSTRUCTIONS.map((instruction, i) => encodeInstructionItem({ format: 'instruction', line: i + 1, instruction, input: null, output: 'x' }, tok));
    const r = await scoreExactMatch(runner, items, { batchSize: 4, maxNewTokens, stopTokens: model.spec.eosIds, decode: (ids) => tok.decode(ids, { skipSpecialTokens: true }) });
    for (const [i, it] of items.entries()) {
      const g = await generate(runner, it.prompt.slice(-room), { maxNewTokens, useCache: false });
      const ids = g.tokens.filter((t) => !model.spec.eosIds.includes(t));
      let text = tok.decode(ids, { skipSpecialTokens: true });
      const nl = text.indexOf('\n');
      // Generation without a cache runs to the budget; exact match stops at the first newline.
      if (nl !== -1) text = text.slice(0, nl);
      expect(r.items[i]!.prediction).toBe(text);
    }
  });

  it('scores a file end to end: an answer equal to the greedy one (case and spaces aside) matches', async () => {
    const tok = model.tokenizer!;
    const maxNewTokens = 6;
    const first = encodeInstructionItem({ format: 'instruction', line: 1, instruction: 'Say hi', input: null, output: 'x' }, tok);
    const probe = await scoreExactMatch(runner, [first], { batchSize: 1, maxNewTokens, stopTokens: model.spec.eosIds, decode: (ids) => tok.decode(ids, { skipSpecialTokens: true }) });
    const greedy = probe.items[0]!.prediction;
    expect(greedy.trim().length).toBeGreaterThan(0);
    const file = join(dir, 'em.jsonl');
    writeFileSync(file, jsonl([{ instruction: 'Say hi', output: `  ${greedy.trim().toUpperCase()} ` }, { instruction: 'Say hi', output: `${greedy.trim()}?!` }]));
    const res = await runEvaluation({ source: { kind: 'model', path: modelDir }, data: file, maxNewTokens, batchSize: 2, settings });
    expect(res.metric).toBe('em');
    if (res.metric !== 'em') return;
    expect(res.items.map((s) => s.match)).toEqual([true, false]);
    expect(res.em).toBe(0.5);
  });
});
