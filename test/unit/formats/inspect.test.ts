import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromFloat32, type Tensor } from '../../../native-models/formats/dtypes';
import { detectors } from '../../../native-models/formats/describe';
import { writeSafetensors } from '../../../native-models/formats/safetensors';
import { INDEX_FILE, writeShardedSafetensors } from '../../../native-models/formats/sharded';
import { writeByteLevelTokenizerJson } from '../../../native-models/formats/tokenizer';
import { offsite, tempDir } from './helpers';

const tmp = tempDir('offsite-inspect-');
afterAll(() => tmp.cleanup());

const t = (shape: number[], dtype: 'F32' | 'BF16' = 'BF16'): Tensor => fromFloat32(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5), shape, dtype);

/** A tiny LLaMA (d=8, 2 layers, 2 heads, 1 kv head, ffn 12, vocab 259) in BF16 with the byte-level tokenizer. */
async function tinyLlama(dir: string): Promise<number> {
  mkdirSync(dir, { recursive: true });
  const cfg = { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 259, max_position_embeddings: 64, tie_word_embeddings: true, torch_dtype: 'bfloat16' };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  const w: Record<string, Tensor> = { 'model.embed_tokens.weight': t([259, 8]), 'model.norm.weight': t([8], 'F32') };
  for (let i = 0; i < 2; i++) {
    const p = `model.layers.${i}`;
    Object.assign(w, {
      [`${p}.input_layernorm.weight`]: t([8], 'F32'),
      [`${p}.post_attention_layernorm.weight`]: t([8], 'F32'),
      [`${p}.self_attn.q_proj.weight`]: t([8, 8]),
      [`${p}.self_attn.k_proj.weight`]: t([4, 8]),
      [`${p}.self_attn.v_proj.weight`]: t([4, 8]),
      [`${p}.self_attn.o_proj.weight`]: t([8, 8]),
      [`${p}.mlp.gate_proj.weight`]: t([12, 8]),
      [`${p}.mlp.up_proj.weight`]: t([12, 8]),
      [`${p}.mlp.down_proj.weight`]: t([8, 12]),
    });
  }
  await writeSafetensors(join(dir, 'model.safetensors'), w, { format: 'pt' });
  await writeByteLevelTokenizerJson(dir);
  return 259 * 8 + 8 + 2 * (8 + 8 + 64 + 32 + 32 + 64 + 96 * 3);
}

describe('offsite inspect', () => {
  it('describes a Hugging Face model folder', async () => {
    const dir = join(tmp.dir, 'tiny-llama');
    const params = await tinyLlama(dir);
    const r = await offsite('inspect', dir, '--json');
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(r.out)).toMatchObject({
      kind: 'hf-model',
      modelType: 'llama',
      architecture: 'LlamaForCausalLM',
      layers: 2,
      hiddenSize: 8,
      heads: 2,
      kvHeads: 1,
      headDim: 4,
      intermediateSize: 12,
      vocabSize: 259,
      tiedEmbeddings: true,
      parameterCount: params,
      dtype: 'BF16',
      weights: { kind: 'single', file: 'model.safetensors' },
      tokenizer: { present: true, vocabSize: 259, bosId: 256, eosId: 257 },
    });
    const human = await offsite('inspect', dir);
    expect(human.code).toBe(0);
    expect(human.out).toContain('layers 2, hidden 8, heads 2 (kv 1, head dim 4), intermediate 12');
    expect(human.out).toContain('tokenizer: tokenizer.json, 259 tokens');
  });

  it('describes a sharded GPT-2 folder and its index file', async () => {
    const dir = join(tmp.dir, 'gpt2');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_embd: 8, n_layer: 1, n_head: 2, vocab_size: 10, n_positions: 16 }));
    await writeShardedSafetensors(dir, { 'transformer.wte.weight': t([10, 8], 'F32'), 'transformer.wpe.weight': t([16, 8], 'F32'), 'transformer.h.0.attn.c_attn.weight': t([8, 24], 'F32') }, 400);
    const r = await offsite('inspect', dir, '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ kind: 'hf-model', modelType: 'gpt2', layers: 1, hiddenSize: 8, intermediateSize: 32, parameterCount: 80 + 128 + 192, dtype: 'F32', weights: { kind: 'sharded' }, tokenizer: { present: false } });
    const idx = await offsite('inspect', join(dir, INDEX_FILE), '--json');
    expect(JSON.parse(idx.out)).toMatchObject({ kind: 'safetensors-sharded', tensorCount: 3, parameterCount: 400 });
  });

  it('describes a safetensors file', async () => {
    const path = join(tmp.dir, 'w.safetensors');
    await writeSafetensors(path, { a: t([3, 4], 'F32'), b: { dtype: 'I64', shape: [2], data: new BigInt64Array(2) } });
    const r = await offsite('inspect', path, '--json');
    expect(JSON.parse(r.out)).toMatchObject({ kind: 'safetensors', tensorCount: 2, parameterCount: 14, dtypes: { F32: 12, I64: 2 }, tensors: [{ name: 'a', dtype: 'F32', shape: [3, 4] }, { name: 'b', dtype: 'I64', shape: [2] }] });
    const human = await offsite('inspect', path);
    expect(human.out).toContain('2 tensors, 14 parameters');
    expect(human.out).toContain('a  F32 [3, 4]');
  });

  it('exits 2 with one sentence for usage mistakes and unknown kinds', async () => {
    for (const args of [['inspect'], ['inspect', 'a', 'b'], ['inspect', join(tmp.dir, 'does-not-exist')], ['inspect', tmp.dir]]) {
      const r = await offsite(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    const csv = join(tmp.dir, 'data.csv');
    writeFileSync(csv, 'a,b\n');
    expect((await offsite('inspect', csv)).err).toContain('not a kind offsite can inspect');
  });

  it('keeps one detector per kind, each with a unique name', () => {
    const kinds = detectors.map((d) => d.kind);
    expect(new Set(kinds).size).toBe(kinds.length);
    expect(kinds).toEqual(expect.arrayContaining(['safetensors', 'hf-model', 'llama2c', 'peft-adapter']));
  });
});
