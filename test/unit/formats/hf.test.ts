import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../../../native-models/formats/errors';
import { findHfWeights, openHfModel, parseHfConfig, pickleConversionSnippet, type Gpt2Config, type LlamaFamilyConfig } from '../../../native-models/formats/hf';
import { encodeSafetensors } from '../../../native-models/formats/safetensors';
import { tempDir } from './helpers';

const tmp = tempDir('offsite-hf-');
afterAll(() => tmp.cleanup());

const llama = { model_type: 'llama', hidden_size: 64, intermediate_size: 172, num_hidden_layers: 5, num_attention_heads: 8, num_key_value_heads: 4, vocab_size: 512 };

const errorOf = (f: () => unknown): FormatError => {
  try {
    f();
  } catch (e) {
    return e as FormatError;
  }
  throw new Error('expected an error');
};

describe('config.json mapping', () => {
  it('fills LLaMA defaults as transformers does', () => {
    const c = parseHfConfig({ ...llama, num_key_value_heads: undefined }) as LlamaFamilyConfig;
    expect(c).toMatchObject({ model_type: 'llama', num_key_value_heads: 8, head_dim: 8, rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 2048, tie_word_embeddings: false, hidden_act: 'silu', attention_bias: false });
  });

  it('reads Mistral and Qwen2 specifics', () => {
    const m = parseHfConfig({ ...llama, model_type: 'mistral', sliding_window: 1024, rope_theta: 1e6 }) as LlamaFamilyConfig;
    expect(m).toMatchObject({ model_type: 'mistral', sliding_window: 1024, rope_theta: 1e6, attention_bias: false });
    const q = parseHfConfig({ ...llama, model_type: 'qwen2', tie_word_embeddings: true, use_sliding_window: false, sliding_window: 4096 }) as LlamaFamilyConfig;
    expect(q).toMatchObject({ model_type: 'qwen2', attention_bias: true, attention_out_bias: false, tie_word_embeddings: true, sliding_window: null });
  });

  it('reads GPT-2 with n_inner defaulting to 4 × n_embd and tied embeddings', () => {
    const g = parseHfConfig({ model_type: 'gpt2', n_embd: 32, n_layer: 2, n_head: 4, vocab_size: 100, n_inner: null, eos_token_id: 50256 }) as Gpt2Config;
    expect(g).toMatchObject({ n_inner: 128, n_positions: 1024, tie_word_embeddings: true, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, eos_token_id: 50256 });
  });

  it('names the supported model types when model_type is unknown or missing', () => {
    for (const mt of ['bert', undefined]) {
      const e = errorOf(() => parseHfConfig({ ...llama, model_type: mt }));
      expect(e.rule).toBe('hf.config.unsupported-model-type');
      expect(e.message).toContain('llama, mistral, qwen2, gpt2');
    }
  });

  it('refuses missing, fractional, out-of-range and inconsistent fields, naming the field', () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ ...llama, hidden_size: undefined }, 'hidden_size', /missing/],
      [{ ...llama, num_hidden_layers: 2.5 }, 'num_hidden_layers', /whole number/],
      [{ ...llama, vocab_size: 0 }, 'vocab_size', /sane range/],
      [{ ...llama, num_key_value_heads: 3 }, 'num_key_value_heads', /multiple of/],
      [{ ...llama, hidden_size: 60 }, 'num_attention_heads', /not divisible/],
      [{ ...llama, rms_norm_eps: -1 }, 'rms_norm_eps', /positive/],
      [{ ...llama, hidden_act: 'tanh' }, 'hidden_act', /not a supported activation/],
      [{ ...llama, tie_word_embeddings: 'yes' }, 'tie_word_embeddings', /true or false/],
      [{ model_type: 'gpt2', n_embd: 30, n_layer: 1, n_head: 4, vocab_size: 9 }, 'n_head', /not divisible/],
    ];
    for (const [cfg, field, msg] of cases) {
      const e = errorOf(() => parseHfConfig(cfg));
      expect(e.rule, field).toBe('hf.config.bad-field');
      expect(e.tensor, field).toBe(field);
      expect(e.message, field).toMatch(msg);
    }
  });
});

describe('model folders', () => {
  const make = (name: string, files: Record<string, string | Uint8Array>): string => {
    const dir = join(tmp.dir, name);
    mkdirSync(dir, { recursive: true });
    for (const [f, c] of Object.entries(files)) writeFileSync(join(dir, f), c);
    return dir;
  };
  const weights = encodeSafetensors({ 'model.embed_tokens.weight': { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } });

  it('opens config, single-file weights and tokenizer location', async () => {
    const dir = make('ok', { 'config.json': JSON.stringify(llama), 'model.safetensors': weights, 'pytorch_model.bin': 'pickle' });
    const m = await openHfModel(dir);
    try {
      expect(m.config.model_type).toBe('llama');
      expect(m.weightsLocation.kind).toBe('single'); // safetensors preferred; the pickle is never touched
      expect(Array.from(await m.weights.readFloat32('model.embed_tokens.weight'))).toEqual([1, 2, 3, 4]);
      expect(m.tokenizerPath).toBeNull();
    } finally {
      await m.weights.close();
    }
  });

  it('refuses pickle-only folders with a conversion one-liner using safetensors.torch.save_file', async () => {
    for (const pickle of ['pytorch_model.bin', 'model.pt', 'weights.pth', 'last.ckpt']) {
      const dir = make(`pickle-${pickle}`, { 'config.json': JSON.stringify(llama), [pickle]: 'x' });
      const e = await findHfWeights(dir).then(() => undefined, (x: FormatError) => x);
      expect(e?.rule, pickle).toBe('hf.pickle-refused');
      expect(e?.message).toContain(pickle);
      expect(e?.message).toContain('from safetensors.torch import save_file');
      expect(e?.message).toContain('weights_only=True');
      expect(e?.message.split('\n')).toHaveLength(1);
    }
    expect(pickleConversionSnippet('pytorch_model.bin')).toContain("'model.safetensors'");
  });

  it('says what is missing when there are no weights at all', async () => {
    const dir = make('empty', { 'config.json': JSON.stringify(llama), 'weights.safetensors': weights });
    const e = await findHfWeights(dir).then(() => undefined, (x: FormatError) => x);
    expect(e?.rule).toBe('hf.no-weights');
    expect(e?.message).toContain('rename a single-file checkpoint to model.safetensors');
  });
});
