// `offsite eval` end to end through the real CLI entry point: the three metrics, malformed files
// (exit 2 naming the line), adapters (zero LoRA B = the base model exactly; a non-zero delta = the
// merged weights computed here), emulator packages (verified first: exit 3 when not trusted) and the
// evaluation.finished audit event with its hashes.
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAudit } from '../../../electron/services/audit';
import { hashPath } from '../../../electron/services/hashing';
import { writeKeyPair } from '../../../electron/services/keys';
import { writePackage } from '../../../native-models/formats/package';
import { writePeftAdapter } from '../../../native-models/formats/peft';
import { SafetensorsFile, writeSafetensors } from '../../../native-models/formats/safetensors';
import { toFloat32 } from '../../../native-models/formats/dtypes';
import { jsonl, mcItems, offsite, rng, tinyModels } from './helpers';

let dir: string;
let models: Awaited<ReturnType<typeof tinyModels>>;
let home: string;
const data: Record<string, string> = {};

function write(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-eval-cli-'));
  models = await tinyModels(join(dir, 'models'));
  home = join(dir, 'home');
  data.mc = write('mc.jsonl', jsonl(mcItems(12, 7)));
  data.lm = write('lm.jsonl', jsonl([{ text: 'the cat sat on the mat and looked at the moon' }, { text: 'red sky at noon' }]));
  data.em = write('em.jsonl', jsonl([{ instruction: 'Say hi', output: 'hi' }, { instruction: 'Add', input: '1 and 2', output: '3' }]));
  data.tokens = write('tokens.jsonl', jsonl([{ tokens: [0, 5, 9, 11, 40, 2, 7, 7, 30, 12, 1, 3] }, { tokens: [4, 8, 15, 16, 23, 42] }]));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const json = (r: { code: number | null; stdout: string; stderr: string }) => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, number | string>;
};

describe('offsite eval: metrics and the audit log', () => {
  it('detects the metric from the format and prints the documented JSON', () => {
    const mc = json(offsite(home, 'eval', '--model', models.bytes, '--data', data.mc!, '--json'));
    expect(mc).toMatchObject({ metric: 'mc', n: 12 });
    expect(mc.acc).toBeGreaterThanOrEqual(0);
    expect(mc.acc_norm).toBeLessThanOrEqual(1);
    const ppl = json(offsite(home, 'eval', '--model', models.bytes, '--data', data.lm!, '--seq-len', '16', '--batch-size', '3', '--json'));
    expect(ppl).toMatchObject({ metric: 'ppl', tokens: 45 + 15 });
    expect(ppl.ppl).toBeCloseTo(Math.exp(ppl.nll as number), 6);
    const em = json(offsite(home, 'eval', '--model', models.bytes, '--data', data.em!, '--max-new-tokens', '6', '--json'));
    expect(em).toMatchObject({ metric: 'em', n: 2, maxNewTokens: 6 });
  });

  it('records evaluation.finished with the hashes of the model and the data, and the scores', async () => {
    const h = join(dir, 'home-audit');
    const out = json(offsite(h, 'eval', '--model', models.bytes, '--data', data.mc!, '--json'));
    const audit = openAudit(h);
    try {
      const events = audit.log({ action: 'evaluation.finished' });
      expect(events.length).toBe(1);
      const e = events[0]!;
      expect(e.seq).toBe(out.auditSeq);
      expect(e.payload.inputs.data).toEqual({ sha256: createHash('sha256').update(readFileSync(data.mc!)).digest('hex'), size: readFileSync(data.mc!).length });
      expect(e.payload.inputs.model).toEqual(await hashPath(models.bytes));
      expect(e.payload.execution_provider).toBe('cpu');
      expect(e.payload.details).toMatchObject({ evaluation_id: out.evaluationId, metric: 'mc', value: out.acc, result: { acc: out.acc, acc_norm: out.acc_norm, n: 12, column: 'fullZS', task: { name: 'mc.jsonl' } } });
      expect(audit.verify().ok).toBe(true);
    } finally {
      audit.close();
    }
  });
});

describe('offsite eval: malformed task files exit 2 naming the line', () => {
  it.each([
    ['ppl', ['{"text": "fine"}', '', '{"text": "also fine"}', '{"text": 12}'], /bad-ppl\.jsonl: Line 4: "text" must be text/],
    ['mc', ['{"context": "a", "choices": ["b", "c"], "label": 0}', '{"context": "a", "choices": ["b", "c"], "label": 5}'], /bad-mc\.jsonl: Line 2: "label" is 5/],
    ['em', ['{"instruction": "x", "output": "y"}', '{"instruction": "x", "output": "y"', '{"instruction": "z", "output": "w"}'], /bad-em\.jsonl: Line 2 is not valid JSON/],
  ])('%s', (metric, lines, message) => {
    const h = join(dir, `home-bad-${metric}`);
    const r = offsite(h, 'eval', '--model', models.bytes, '--data', write(`bad-${metric}.jsonl`, lines.join('\n')), '--metric', metric, '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // one sentence, no stack trace
    expect(r.stdout).toBe('');
  });

  it('exits 2 when the metric does not fit the file, or neither --model nor --emulator is given', () => {
    const r = offsite(home, 'eval', '--model', models.bytes, '--data', data.lm!, '--metric', 'mc');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/lm\.jsonl holds text .* lines, but multiple-choice accuracy \(mc\) needs multiple-choice lines/);
    const none = offsite(home, 'eval', '--data', data.lm!);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/Give either --model MODEL or --emulator PKG/);
  });
});

/** LoRA factors for every q_proj and v_proj of a model (B zero when `zero`). */
async function loraFactors(modelDir: string, family: 'llama' | 'gpt2', r: number, zero: boolean, seed: number) {
  const f = await SafetensorsFile.open(join(modelDir, 'model.safetensors'), { whole: true });
  const weights = await f.readAll();
  await f.close();
  const rand = rng(seed);
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  const modules: { module: string; out: number; in: number }[] = [];
  for (const [name, t] of weights) {
    const m = family === 'llama' ? /^(model\.layers\.\d+\.self_attn\.(q_proj|v_proj))\.weight$/.exec(name) : /^(transformer\.h\.\d+\.attn\.c_attn)\.weight$/.exec(name);
    if (!m) continue;
    const [out, inF] = family === 'llama' ? [t.shape[0]!, t.shape[1]!] : [t.shape[1]!, t.shape[0]!];
    modules.push({ module: m[1]!, out, in: inF });
    tensors[`base_model.model.${m[1]}.lora_A.weight`] = { dtype: 'F32', shape: [r, inF], data: Float32Array.from({ length: r * inF }, () => (rand() - 0.5) * 0.6) };
    tensors[`base_model.model.${m[1]}.lora_B.weight`] = { dtype: 'F32', shape: [out, r], data: Float32Array.from({ length: out * r }, () => (zero ? 0 : (rand() - 0.5) * 0.6)) };
  }
  return { weights, tensors, modules };
}

/** The merged model, computed here with plain loops: W + (alpha/r)·B·A (GPT-2 Conv1D: transposed). */
async function writeMergedModel(base: string, out: string, family: 'llama' | 'gpt2', lora: Awaited<ReturnType<typeof loraFactors>>, alpha: number, r: number): Promise<void> {
  cpSync(base, out, { recursive: true });
  const merged: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of lora.weights) merged[name] = { dtype: 'F32', shape: t.shape, data: toFloat32(t) };
  for (const m of lora.modules) {
    const A = lora.tensors[`base_model.model.${m.module}.lora_A.weight`]!.data;
    const B = lora.tensors[`base_model.model.${m.module}.lora_B.weight`]!.data;
    const W = merged[`${m.module}.weight`]!.data;
    for (let o = 0; o < m.out; o++) {
      for (let i = 0; i < m.in; i++) {
        let d = 0;
        for (let k = 0; k < r; k++) d += B[o * r + k]! * A[k * m.in + i]!;
        const at = family === 'llama' ? o * m.in + i : i * m.out + o;
        W[at] = W[at]! + (alpha / r) * d;
      }
    }
  }
  await writeSafetensors(join(out, 'model.safetensors'), merged, { format: 'pt' });
}

describe('offsite eval --adapter', () => {
  it('with a zero LoRA B gives exactly the base result; with a non-zero delta the merged-weights result (LLaMA)', async () => {
    const rank = 4;
    const zero = await loraFactors(models.bytes, 'llama', rank, true, 1);
    const zeroDir = join(dir, 'lora-zero');
    await writePeftAdapter(zeroDir, { r: rank, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] }, zero.tensors);
    const base = json(offsite(home, 'eval', '--model', models.bytes, '--data', data.mc!, '--json'));
    const withZero = json(offsite(home, 'eval', '--model', models.bytes, '--adapter', zeroDir, '--data', data.mc!, '--json'));
    expect(withZero.acc).toBe(base.acc);
    expect(withZero.acc_norm).toBe(base.acc_norm);
    const basePpl = json(offsite(home, 'eval', '--model', models.bytes, '--data', data.lm!, '--json'));
    const zeroPpl = json(offsite(home, 'eval', '--model', models.bytes, '--adapter', zeroDir, '--data', data.lm!, '--json'));
    expect(zeroPpl.nll).toBe(basePpl.nll);

    const delta = await loraFactors(models.bytes, 'llama', rank, false, 2);
    const deltaDir = join(dir, 'lora-delta');
    await writePeftAdapter(deltaDir, { r: rank, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] }, delta.tensors);
    const adapted = json(offsite(home, 'eval', '--model', models.bytes, '--adapter', deltaDir, '--data', data.lm!, '--json'));
    expect(Math.abs((adapted.nll as number) - (basePpl.nll as number))).toBeGreaterThan(1e-3);
    const mergedDir = join(dir, 'merged-llama');
    await writeMergedModel(models.bytes, mergedDir, 'llama', delta, 8, rank);
    const merged = json(offsite(home, 'eval', '--model', mergedDir, '--data', data.lm!, '--json'));
    expect(Math.abs((adapted.nll as number) - (merged.nll as number))).toBeLessThan(1e-6);
  });

  it('merges GPT-2 Conv1D weights transposed, matching the merged-weights model', async () => {
    const rank = 2;
    const delta = await loraFactors(models.gpt2, 'gpt2', rank, false, 3);
    const deltaDir = join(dir, 'lora-gpt2');
    await writePeftAdapter(deltaDir, { r: rank, lora_alpha: 4, target_modules: ['c_attn'], fan_in_fan_out: true }, delta.tensors);
    const base = json(offsite(home, 'eval', '--model', models.gpt2, '--data', data.tokens!, '--json'));
    const adapted = json(offsite(home, 'eval', '--model', models.gpt2, '--adapter', deltaDir, '--data', data.tokens!, '--json'));
    expect(Math.abs((adapted.nll as number) - (base.nll as number))).toBeGreaterThan(1e-3);
    const mergedDir = join(dir, 'merged-gpt2');
    await writeMergedModel(models.gpt2, mergedDir, 'gpt2', delta, 4, rank);
    const merged = json(offsite(home, 'eval', '--model', mergedDir, '--data', data.tokens!, '--json'));
    expect(Math.abs((adapted.nll as number) - (merged.nll as number))).toBeLessThan(1e-6);
  });

  it('exits 2 for an adapter tuned on another model', async () => {
    const other = await loraFactors(models.llama, 'llama', 2, false, 4);
    const otherDir = join(dir, 'lora-other');
    await writePeftAdapter(otherDir, { r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj'] }, other.tensors);
    // llama_gqa has 2 kv heads: its v_proj is 16×32, the byte model's 32×32.
    const r = offsite(home, 'eval', '--model', models.bytes, '--adapter', otherDir, '--data', data.lm!);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/lora-other: "model\.layers\.0\.self_attn\.v_proj" is 32×32 in this model, but the adapter's factors are for 16×32/);
  });
});

describe('offsite eval --emulator', () => {
  let pkg: string;
  let key: string;
  beforeAll(async () => {
    key = join(dir, 'owner.key');
    writeKeyPair(key);
    const staged = join(dir, 'staged');
    mkdirSync(staged);
    cpSync(models.bytes, join(staged, 'model'), { recursive: true });
    rmSync(join(staged, 'model', 'expected.json'));
    pkg = join(dir, 'emulator-pkg');
    await writePackage(pkg, {
      producer: { app: 'Offsite Studio', version: '0.0.0-test' },
      signingKey: key,
      from: staged,
      manifest: {
        kind: 'emulator',
        method: 'uniform',
        sourceModel: { sha256: 'cd'.repeat(32), name: 'tiny', modelType: 'llama', layers: 4 },
        triplet: { adapterLayers: [1, 1], alpha: 0.5, beta: 1 },
        layerMap: [
          { layer: 0, role: 'adapter', index: 0 },
          { layer: 1, role: 'dropped', index: null },
          { layer: 2, role: 'dropped', index: null },
          { layer: 3, role: 'adapter', index: 1 },
        ],
        model: { config: 'model/config.json', weights: ['model/model.safetensors'], tokenizer: 'model/tokenizer.json' },
        recommendedTuning: {},
        reference: { emuZS: [] },
      },
    });
  });

  it('evaluates a trusted emulator and records its manifest hash; the result equals the model inside', () => {
    const h = join(dir, 'home-emu');
    const out = json(offsite(h, 'eval', '--emulator', pkg, '--trust', `${key}.pub`, '--data', data.mc!, '--json'));
    const plain = json(offsite(h, 'eval', '--model', join(pkg, 'model'), '--data', data.mc!, '--json'));
    expect([out.acc, out.acc_norm]).toEqual([plain.acc, plain.acc_norm]);
    const audit = openAudit(h);
    try {
      const e = audit.log({ action: 'evaluation.finished' })[0]!;
      expect(e.payload.inputs.emulator).toBe(createHash('sha256').update(readFileSync(join(pkg, 'manifest.json'))).digest('hex'));
      expect(e.payload.details).toMatchObject({ result: { column: 'emuZS', source: { kind: 'emulator', name: 'emulator-pkg' } } });
    } finally {
      audit.close();
    }
  });

  it('exits 3 for an untrusted or tampered emulator, and accepts an untrusted one only with a reason', () => {
    const h = join(dir, 'home-emu-untrusted');
    const untrusted = offsite(h, 'eval', '--emulator', pkg, '--data', data.mc!);
    expect(untrusted.code).toBe(3);
    expect(untrusted.stderr).toMatch(/Package verification failed/);
    expect(offsite(h, 'eval', '--emulator', pkg, '--allow-unsigned', '--data', data.mc!).code).toBe(2);
    const allowed = offsite(h, 'eval', '--emulator', pkg, '--allow-unsigned', '--reason', 'test fixture', '--data', data.mc!, '--json');
    expect(allowed.code, allowed.stderr).toBe(0);
    const tampered = join(dir, 'emulator-tampered');
    cpSync(pkg, tampered, { recursive: true });
    writeFileSync(join(tampered, 'model', 'tokenizer_config.json'), '{}\n');
    const bad = offsite(h, 'eval', '--emulator', tampered, '--trust', `${key}.pub`, '--data', data.mc!);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/tokenizer_config\.json/);
  });
});
