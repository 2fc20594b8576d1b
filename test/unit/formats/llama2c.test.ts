import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { llama2cToHfTensors, permuteRopeRows, readLlama2c, unpermuteRopeRows } from '../../../native-models/formats/llama2c';
import { llama2cFloats } from '../../fixtures/formats/make-malformed';
import { offsite, stories260K, tempDir } from './helpers';

const tmp = tempDir('offsite-llama2c-');
afterAll(() => tmp.cleanup());

describe('stories260K.bin (expected numbers from the fixture README)', () => {
  it('is the published file', () => {
    const bytes = readFileSync(stories260K);
    expect(bytes.length).toBe(1_056_540);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe('9414d5a285453a7eab631713d171753232c978f6f97654211469aff8be93c8d6');
  });

  it('loads with the architecture of its training recipe', async () => {
    const ck = await readLlama2c(stories260K);
    // SwiGLU hidden size per llama2.c's model.py: 4·dim → int(2/3 ·) → round up to multiple_of = 4.
    const recipeHidden = 4 * Math.ceil(Math.floor((2 * 4 * 64) / 3) / 4);
    expect(recipeHidden).toBe(172);
    expect(ck.config).toMatchObject({ dim: 64, hiddenDim: recipeHidden, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, maxSeqLen: 512, sharedClassifier: true, headSize: 8, kvDim: 32 });
    expect(ck.layers).toHaveLength(5);
    expect(ck.wcls).toBe(ck.tokenEmbedding);
    expect(ck.hfConfig).toMatchObject({ model_type: 'llama', hidden_size: 64, intermediate_size: 172, num_hidden_layers: 5, num_attention_heads: 8, num_key_value_heads: 4, vocab_size: 512, rms_norm_eps: 1e-5, tie_word_embeddings: true, bos_token_id: 1 });
  });

  it('puts every named tensor at the offset the README layout gives', async () => {
    const ck = await readLlama2c(stories260K);
    const file = readFileSync(stories260K);
    const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
    const [dim, h, L, V, kv, S, hs] = [64, 172, 5, 512, 32, 512, 8];
    const at = (floatIndex: number): number => dv.getFloat32(28 + 4 * floatIndex, true);
    const offs = {
      emb: 0,
      rmsAtt: V * dim,
      wq: V * dim + L * dim,
      wk: V * dim + L * dim + L * dim * dim,
      wv: V * dim + L * dim + L * dim * dim + L * kv * dim,
      wo: V * dim + L * dim + L * dim * dim + 2 * L * kv * dim,
      rmsFfn: V * dim + L * dim + 2 * L * dim * dim + 2 * L * kv * dim,
      w1: V * dim + 2 * L * dim + 2 * L * dim * dim + 2 * L * kv * dim,
      w2: V * dim + 2 * L * dim + 2 * L * dim * dim + 2 * L * kv * dim + L * h * dim,
      w3: V * dim + 2 * L * dim + 2 * L * dim * dim + 2 * L * kv * dim + 2 * L * h * dim,
      rmsFinal: V * dim + 2 * L * dim + 2 * L * dim * dim + 2 * L * kv * dim + 3 * L * h * dim,
    };
    expect(offs.rmsFinal + dim + S * hs).toBe((1_056_540 - 28) / 4); // layout accounts for every byte
    expect(ck.tokenEmbedding[dim * 3 + 5]).toBe(at(offs.emb + dim * 3 + 5));
    expect(ck.layers[2]!.rmsAtt[7]).toBe(at(offs.rmsAtt + 2 * dim + 7));
    expect(ck.layers[4]!.wq[100]).toBe(at(offs.wq + 4 * dim * dim + 100));
    expect(ck.layers[1]!.wk[kv * dim - 1]).toBe(at(offs.wk + 2 * kv * dim - 1));
    expect(ck.layers[3]!.wv[0]).toBe(at(offs.wv + 3 * kv * dim));
    expect(ck.layers[0]!.wo[5]).toBe(at(offs.wo + 5));
    expect(ck.layers[4]!.rmsFfn[63]).toBe(at(offs.rmsFfn + 4 * dim + 63));
    expect(ck.layers[1]!.w1[9]).toBe(at(offs.w1 + h * dim + 9));
    expect(ck.layers[2]!.w2[10]).toBe(at(offs.w2 + 2 * dim * h + 10));
    expect(ck.layers[3]!.w3[11]).toBe(at(offs.w3 + 3 * h * dim + 11));
    expect(Array.from(ck.rmsFinal.subarray(0, 3))).toEqual([at(offs.rmsFinal), at(offs.rmsFinal + 1), at(offs.rmsFinal + 2)]);
    // RMSNorm gains of a trained model sit around 1, weights do not: a misplaced view would show.
    const mean = ck.rmsFinal.reduce((s, x) => s + x, 0) / dim;
    expect(mean).toBeGreaterThan(0.2);
    // The legacy freq_cis_real table holds cos(pos · θ_i): position 0 is all ones.
    expect(Array.from(ck.freqCisReal.subarray(0, hs / 2))).toEqual([1, 1, 1, 1]);
    expect(ck.parameterCount).toBe(offs.rmsFinal + dim);
  });

  it('is described by offsite inspect --json', async () => {
    const r = await offsite('inspect', stories260K, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ kind: 'llama2c', layers: 5, hiddenSize: 64, heads: 8, kvHeads: 4, vocabSize: 512, sharedClassifier: true, dtype: 'F32', fileSize: 1_056_540 });
  });
});

describe('RoPE row permutation (llama2.c adjacent pairs → Hugging Face half split)', () => {
  it('reorders each head as transformers\' convert script does, on a hand-made example', () => {
    // 2 heads × head dim 4, one column whose value is the row number.
    const w = Float32Array.from({ length: 8 }, (_, i) => i);
    // per head: pairs (0,1),(2,3) → rows [0, 2 | 1, 3]
    expect(Array.from(permuteRopeRows(w, 2, 1))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    // two columns: rows move whole
    const w2 = Float32Array.from({ length: 8 }, (_, i) => 10 * Math.floor(i / 2) + (i % 2));
    expect(Array.from(permuteRopeRows(w2, 1, 2))).toEqual([0, 1, 20, 21, 10, 11, 30, 31]);
    expect(Array.from(unpermuteRopeRows(permuteRopeRows(w, 2, 1), 2, 1))).toEqual(Array.from(w));
    expect(() => permuteRopeRows(new Float32Array(6), 2, 1)).toThrow(/heads/); // head dim 3 is odd
  });

  it('matches transformers\' permute() run in PyTorch on the stories260K q and k weights', async () => {
    const ck = await readLlama2c(stories260K);
    const script = [
      'import sys, torch',
      'raw = sys.stdin.buffer.read()',
      'wq = torch.frombuffer(bytearray(raw[:64*64*4]), dtype=torch.float32).view(64, 64)',
      'wk = torch.frombuffer(bytearray(raw[64*64*4:]), dtype=torch.float32).view(32, 64)',
      '# from transformers/models/llama/convert_llama_weights_to_hf.py',
      'def permute(w, n_heads, dim1, dim2): return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)',
      'sys.stdout.buffer.write(permute(wq, 8, 64, 64).contiguous().numpy().tobytes() + permute(wk, 4, 32, 64).contiguous().numpy().tobytes())',
    ].join('\n');
    const input = Buffer.concat([Buffer.from(ck.layers[3]!.wq.slice().buffer), Buffer.from(ck.layers[3]!.wk.slice().buffer)]);
    const py = spawnSync('/usr/bin/python3', ['-c', script], { input, maxBuffer: 1 << 22 });
    expect(py.status, String(py.stderr)).toBe(0);
    const out = new Float32Array(new Uint8Array(py.stdout).buffer);
    expect(Array.from(permuteRopeRows(ck.layers[3]!.wq, 8, 64))).toEqual(Array.from(out.subarray(0, 64 * 64)));
    expect(Array.from(permuteRopeRows(ck.layers[3]!.wk, 4, 64))).toEqual(Array.from(out.subarray(64 * 64)));
  });

  it('makes HF rotate-half RoPE on permuted rows equal llama2.c adjacent-pair RoPE', () => {
    const heads = 2;
    const hd = 6;
    const cols = 3;
    const w = Float32Array.from({ length: heads * hd * cols }, (_, i) => Math.sin(i * 1.7) + 0.1 * i);
    const x = [0.3, -1.2, 0.7];
    const pos = 5;
    const theta = (i: number) => pos * 10000 ** (-(2 * i) / hd);
    const matvec = (m: Float32Array) => Array.from({ length: m.length / cols }, (_, r) => x.reduce((s, xv, c) => s + m[r * cols + c]! * xv, 0));
    // llama2.c: rotate pairs (2i, 2i+1) of each head.
    const q = matvec(w);
    const ref = [...q];
    for (let hh = 0; hh < heads; hh++)
      for (let i = 0; i < hd / 2; i++) {
        const [a, b] = [q[hh * hd + 2 * i]!, q[hh * hd + 2 * i + 1]!];
        ref[hh * hd + 2 * i] = a * Math.cos(theta(i)) - b * Math.sin(theta(i));
        ref[hh * hd + 2 * i + 1] = a * Math.sin(theta(i)) + b * Math.cos(theta(i));
      }
    // HF: q·cos + rotate_half(q)·sin with the half-split layout.
    const qh = matvec(permuteRopeRows(w, heads, cols));
    const hf = [...qh];
    for (let hh = 0; hh < heads; hh++)
      for (let j = 0; j < hd; j++) {
        const i = j % (hd / 2);
        const rot = j < hd / 2 ? -qh[hh * hd + j + hd / 2]! : qh[hh * hd + j - hd / 2]!;
        hf[hh * hd + j] = qh[hh * hd + j]! * Math.cos(theta(i)) + rot * Math.sin(theta(i));
      }
    // Same rotated vector, up to the same row reordering.
    const hfBack = unpermuteRopeRows(Float32Array.from(hf), heads, 1);
    for (let r = 0; r < ref.length; r++) expect(hfBack[r]).toBeCloseTo(ref[r]!, 5);
  });

  it('gives the checkpoint under HF names with permuted q/k and no lm_head when shared', async () => {
    const ck = await readLlama2c(stories260K);
    const t = llama2cToHfTensors(ck);
    expect(t.get('model.layers.0.self_attn.q_proj.weight')!.shape).toEqual([64, 64]);
    expect(t.get('model.layers.4.self_attn.k_proj.weight')!.shape).toEqual([32, 64]);
    expect(t.get('model.layers.2.mlp.down_proj.weight')!.shape).toEqual([64, 172]);
    expect(t.has('lm_head.weight')).toBe(false);
    expect(t.size).toBe(1 + 5 * 9 + 1);
    const k = t.get('model.layers.4.self_attn.k_proj.weight')!.data as Float32Array;
    // head 0 of k: HF row 1 is llama2.c row 2 (pair 1's first element)
    expect(Array.from(k.subarray(64, 128))).toEqual(Array.from(ck.layers[4]!.wk.subarray(128, 192)));
    expect(t.get('model.layers.4.self_attn.v_proj.weight')!.data).toBe(ck.layers[4]!.wv);
  });
});

describe('other llama2.c files', () => {
  it('reads a separate classifier (negative vocab_size)', async () => {
    const n = llama2cFloats(8, 16, 1, 2, 1, 10, 4, false);
    const buf = new ArrayBuffer(28 + 4 * n);
    new Int32Array(buf, 0, 7).set([8, 16, 1, 2, 1, -10, 4]);
    const f = new Float32Array(buf, 28, n);
    f.forEach((_, i) => (f[i] = i));
    const path = join(tmp.dir, 'unshared.bin');
    writeFileSync(path, new Uint8Array(buf));
    const ck = await readLlama2c(path);
    expect(ck.config.sharedClassifier).toBe(false);
    expect(ck.wcls).not.toBe(ck.tokenEmbedding);
    expect(ck.wcls[0]).toBe(n - 80); // the last vocab × dim floats
    expect(llama2cToHfTensors(ck).get('lm_head.weight')!.shape).toEqual([10, 8]);
  });

  it('refuses version 1+ exports by their magic', async () => {
    const buf = new ArrayBuffer(256);
    new Uint32Array(buf, 0, 2).set([0x616b3432, 1]);
    const path = join(tmp.dir, 'v1.bin');
    writeFileSync(path, new Uint8Array(buf));
    await expect(readLlama2c(path)).rejects.toMatchObject({ rule: 'llama2c.unsupported-version' });
  });
});
