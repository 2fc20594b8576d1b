// Multiple choice on a real (tiny, random) model: (1) the scorer's sums equal log-probabilities
// summed by hand in this test from the model's own logits; (2) acc and acc_norm on 50 items are
// identical to the PyTorch oracle's (reference LLaMA forward in float64, one request at a time)
// and every per-choice sum agrees within 1e-4.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeChoiceItem, scoreMultipleChoice, type ChoiceItem } from '../../../native-models/eval/multiple-choice';
import { buildLogitsGraph } from '../../../native-models/models/graphs';
import { loadModel, type LoadedModel } from '../../../native-models/models/load';
import { ModelRunner, openGraphSession } from '../../../native-models/models/runner';
import { toOrt } from '../../../native-models/runtime/tensors';
import { mcItems, runPythonJson, tinyModels } from './helpers';

const settings = { provider: 'cpu' as const, intraOpThreads: 1 };
let dir: string;
let modelDir: string;
let model: LoadedModel;
let runner: ModelRunner;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-eval-mc-'));
  modelDir = (await tinyModels(dir)).bytes;
  model = await loadModel(modelDir);
  runner = new ModelRunner(model, { settings });
});
afterAll(async () => {
  await runner?.release();
  rmSync(dir, { recursive: true, force: true });
});

function items(lines: ReturnType<typeof mcItems>): ChoiceItem[] {
  return lines.map((l, i) => encodeChoiceItem({ format: 'choice', line: i + 1, ...l }, model.tokenizer!));
}

describe('multiple choice, hand-computed', () => {
  it('sums the per-token log-probabilities of each continuation and takes the argmaxes', async () => {
    const lines = [
      { context: 'the cat sat on the', choices: ['mat', 'moon', 'über tea'], label: 0 },
      { context: 'red sky at ', choices: ['noon', 'x'], label: 1 },
    ];
    const its = items(lines);
    // Byte tokenizer with BOS: the context is BOS + bytes; the continuation " " + choice as bytes.
    expect(its[0]!.context).toEqual([256, ...Buffer.from('the cat sat on the')]);
    expect(its[0]!.continuations[2]).toEqual([...Buffer.from(' über tea')]);
    // Trailing space of the context moves into the continuation.
    expect(its[1]!.context).toEqual([256, ...Buffer.from('red sky at')]);
    expect(its[1]!.continuations[0]).toEqual([...Buffer.from('  noon')]);

    // By hand: logits of the whole sequence, log-softmax in float64, the continuation's entries summed.
    const { session } = await openGraphSession(buildLogitsGraph(model), settings);
    const V = model.spec.vocabSize;
    const hand: number[][] = [];
    try {
      for (const it of its) {
        const row: number[] = [];
        for (const cont of it.continuations) {
          const seq = [...it.context, ...cont];
          const res = await session.run({ input_ids: toOrt('int64', BigInt64Array.from(seq, BigInt), [1, seq.length]) });
          const logits = res.logits!.data as Float32Array;
          let sum = 0;
          cont.forEach((tok, j) => {
            const pos = it.context.length - 1 + j;
            const lg = logits.subarray(pos * V, (pos + 1) * V);
            let max = -Infinity;
            for (const x of lg) max = Math.max(max, x);
            let z = 0;
            for (const x of lg) z += Math.exp(x - max);
            sum += lg[tok]! - max - Math.log(z);
          });
          row.push(sum);
        }
        hand.push(row);
      }
    } finally {
      await session.release();
    }
    const r = await scoreMultipleChoice(runner, its, { seqLen: model.spec.maxPositions, batchSize: 3 });
    r.items.forEach((s, i) => s.loglikelihoods.forEach((ll, c) => expect(Math.abs(ll - hand[i]![c]!)).toBeLessThan(1e-4)));
    const bytes = [[3, 4, 9], [4, 1]];
    const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));
    expect(r.items.map((s) => s.pred)).toEqual(hand.map(argmax));
    expect(r.items.map((s) => s.predNorm)).toEqual(hand.map((row, i) => argmax(row.map((x, c) => x / bytes[i]![c]!))));
    const expectedAcc = hand.filter((row, i) => argmax(row) === lines[i]!.label).length / 2;
    expect(r.acc).toBe(expectedAcc);
  });
});

describe('multiple choice against the PyTorch oracle', () => {
  it('gives identical acc and acc_norm on 50 items and per-choice sums within 1e-4', async () => {
    const lines = mcItems(50, 2024);
    const its = items(lines);
    const ours = await scoreMultipleChoice(runner, its, { seqLen: model.spec.maxPositions, batchSize: 16 });
    const oracle = runPythonJson<{ sums: number[][]; pred: number[]; pred_norm: number[]; acc: number; acc_norm: number }>('test/oracle/eval/mc_oracle.py', {
      model_dir: modelDir,
      items: its.map((it) => ({ context: it.context, continuations: it.continuations, choice_bytes: it.choiceBytes, label: it.label })),
    });
    let worst = 0;
    ours.items.forEach((s, i) => s.loglikelihoods.forEach((ll, c) => (worst = Math.max(worst, Math.abs(ll - oracle.sums[i]![c]!)))));
    expect(worst).toBeLessThan(1e-4);
    expect(ours.items.map((s) => s.pred)).toEqual(oracle.pred);
    expect(ours.items.map((s) => s.predNorm)).toEqual(oracle.pred_norm);
    expect(ours.acc).toBe(oracle.acc);
    expect(ours.acc_norm).toBe(oracle.acc_norm);
    expect(ours.n).toBe(50);
    // The set exercises both rules: acc and acc_norm disagree on some items.
    expect(ours.items.some((s) => s.pred !== s.predNorm)).toBe(true);
  });
});
