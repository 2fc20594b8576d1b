// PyTorch oracle for LoRA tuning through `offsite tune`: a tiny LLaMA with grouped-query attention
// (LoRA on q_proj, v_proj) and a tiny GPT-2 (LoRA on the fused c_attn), r = 4, from the same
// --init-adapter, five plain AdamW steps (no dropout, clipping, decay or warmup; constant rate),
// file-order batches with a short last batch and right padding. Every step's loss must be within
// 1e-4 relative of torch's, and the final adapter within 1e-4 (max |Δ| / max |torch|).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPeftAdapter } from '../../../native-models/formats/peft';
import { toFloat32 } from '../../../native-models/formats/dtypes';
import { parseJsonOut, runCli, writeRandomAdapter, writeTinyHfModels, writeTokenData } from '../../integration/tune/helpers';
import { decodeTensor, runPython, type WireTensor } from '../run-python';

const ORACLE = new URL('./lora_oracle.py', import.meta.url);
const STEPS = 5;
const LR = 1e-2;
const SEQ = 12;
const BATCH = 2;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-lora-oracle-'));
  writeTinyHfModels(dir);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let scale = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
  }
  return m / scale;
}

describe.each([
  ['llama_gqa', ['q_proj', 'v_proj'], 97],
  ['gpt2', ['c_attn'], 83],
])('%s: LoRA r=4 against torch', (name, targets, vocab) => {
  it(`matches ${STEPS} AdamW steps`, async () => {
    const model = join(dir, name);
    const data = join(dir, `${name}.jsonl`);
    // Five examples, batches of two: [0,1] [2,3] [4] [0,1] [2,3]; lengths below, at and above seq-len.
    writeTokenData(data, [9, 12, 15, 5, 11], vocab, 17);
    const init = join(dir, `${name}-init`);
    await writeRandomAdapter(init, model, { rank: 4, alpha: 8, targets, seed: 5, scale: 0.2 });
    const r = await runCli([
      'tune', '--model', model, '--data', data, '--out', join(dir, `${name}-run`), '--init-adapter', init,
      '--steps', String(STEPS), '--no-shuffle', '--sampler', 'all', '--dropout', '0', '--clip', '0', '--weight-decay', '0',
      '--warmup', '0', '--schedule', 'constant', '--lr', String(LR), '--batch-size', String(BATCH), '--seq-len', String(SEQ),
      '--ep', 'cpu', '--threads', '1', '--home', join(dir, 'home'), '--json',
    ]);
    const ours = parseJsonOut<{ adapter: string; steps: { step: number; loss: number; lr: number }[] }>(r);
    const torch = await runPython<{ losses: number[]; adapter: Record<string, WireTensor> }>(ORACLE, {
      model_dir: model, adapter_dir: init, data, seq_len: SEQ, batch_size: BATCH, steps: STEPS, lr: LR, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0,
    });
    expect(ours.steps.map((s) => s.step)).toEqual([0, 1, 2, 3, 4]);
    const lossErr = ours.steps.map((s, i) => Math.abs(s.loss - torch.losses[i]!) / Math.abs(torch.losses[i]!));
    console.log(`${name}: per-step loss relative errors ${lossErr.map((e) => e.toExponential(2)).join(', ')}`);
    for (const e of lossErr) expect(e).toBeLessThan(1e-4);
    // Training moved the adapter (the comparison below is not of two unchanged copies).
    expect(torch.losses[STEPS - 1]).not.toBeCloseTo(torch.losses[0]!, 3);
    const got = await readPeftAdapter(ours.adapter);
    const keys = Object.keys(torch.adapter).sort();
    expect([...got.tensors.keys()].sort()).toEqual(keys);
    let worst = 0;
    for (const k of keys) {
      const want = decodeTensor(torch.adapter[k]!).data as Float64Array;
      worst = Math.max(worst, relErr(toFloat32(got.tensors.get(k)!), want));
    }
    console.log(`${name}: final adapter max relative error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
  }, 300_000);
});
