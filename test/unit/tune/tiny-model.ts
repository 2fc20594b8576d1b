// A tiny random LLaMA-style Hugging Face folder (config.json + model.safetensors) written from
// TypeScript, for tests that need more layers than the oracle's fixtures.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensors } from '../../../native-models/formats/safetensors';
import { lcg } from '../../integration/tune/helpers';

export interface TinyLlama {
  layers: number;
  hidden?: number;
  intermediate?: number;
  heads?: number;
  kvHeads?: number;
  vocab?: number;
  positions?: number;
  seed?: number;
  /** Every block gets the same weights (so no layer differs from another but by its depth). */
  sameLayers?: boolean;
  /** Scale of the block weights (default 0.3). */
  blockScale?: number;
}

export async function writeTinyLlama(dir: string, o: TinyLlama): Promise<void> {
  const d = o.hidden ?? 32;
  const I = o.intermediate ?? 64;
  const H = o.heads ?? 4;
  const Hkv = o.kvHeads ?? 2;
  const V = o.vocab ?? 64;
  const hd = d / H;
  const rnd = lcg(o.seed ?? 3);
  const rand = (n: number, scale: number, offset = 0) => Float32Array.from({ length: n }, () => offset + (rnd() * 2 - 1) * scale);
  const t: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  const put = (name: string, shape: number[], scale: number, offset = 0) => (t[name] = { dtype: 'F32', shape, data: rand(shape.reduce((a, b) => a * b, 1), scale, offset) });
  put('model.embed_tokens.weight', [V, d], 0.5);
  put('model.norm.weight', [d], 0.1, 1);
  put('lm_head.weight', [V, d], 0.3);
  const s = o.blockScale ?? 0.3;
  for (let i = 0; i < o.layers; i++) {
    const p = `model.layers.${i}`;
    if (o.sameLayers && i > 0) {
      for (const [name, v] of Object.entries(t)) if (name.startsWith('model.layers.0.')) t[name.replace('model.layers.0.', `${p}.`)] = { ...v, data: v.data.slice() };
      continue;
    }
    put(`${p}.input_layernorm.weight`, [d], 0.1, 1);
    put(`${p}.post_attention_layernorm.weight`, [d], 0.1, 1);
    put(`${p}.self_attn.q_proj.weight`, [H * hd, d], s);
    put(`${p}.self_attn.k_proj.weight`, [Hkv * hd, d], s);
    put(`${p}.self_attn.v_proj.weight`, [Hkv * hd, d], s);
    put(`${p}.self_attn.o_proj.weight`, [d, H * hd], s);
    put(`${p}.mlp.gate_proj.weight`, [I, d], s);
    put(`${p}.mlp.up_proj.weight`, [I, d], s);
    put(`${p}.mlp.down_proj.weight`, [d, I], s);
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: d, intermediate_size: I, num_hidden_layers: o.layers,
    num_attention_heads: H, num_key_value_heads: Hkv, vocab_size: V, max_position_embeddings: o.positions ?? 128, rms_norm_eps: 1e-5,
    rope_theta: 10000.0, tie_word_embeddings: false, hidden_act: 'silu', torch_dtype: 'float32', bos_token_id: 1, eos_token_id: 2,
  }, null, 2));
  await writeSafetensors(join(dir, 'model.safetensors'), t, { format: 'pt' });
}

/** {"tokens"} lines that repeat a random motif of `period` tokens: learnable by copying. */
export function periodicData(path: string, lines: number, length: number, period: number, vocab: number, seed: number): void {
  const rnd = lcg(seed);
  const rows: string[] = [];
  for (let l = 0; l < lines; l++) {
    const motif = Array.from({ length: period }, () => 3 + Math.floor(rnd() * (vocab - 3)));
    rows.push(JSON.stringify({ tokens: [1, ...Array.from({ length: length - 1 }, (_, i) => motif[i % period]!)] }));
  }
  writeFileSync(path, `${rows.join('\n')}\n`);
}
