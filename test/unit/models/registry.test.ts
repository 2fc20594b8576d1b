import { describe, expect, it } from 'vitest';
import { parseHfConfig } from '../../../native-models/formats/hf';
import { UnsupportedModelError } from '../../../native-models/models/errors';
import { familyFor, MODEL_TYPES, specFromConfig } from '../../../native-models/models/registry';

const llama = { model_type: 'llama', hidden_size: 64, intermediate_size: 96, num_hidden_layers: 3, num_attention_heads: 8, num_key_value_heads: 2, vocab_size: 100, rope_theta: 500000, tie_word_embeddings: false };

describe('model registry', () => {
  it('maps every supported model_type to a family', () => {
    expect([...MODEL_TYPES].sort()).toEqual(['gpt2', 'llama', 'mistral', 'qwen2']);
    expect(familyFor('llama').name).toBe('llama');
    expect(familyFor('mistral').name).toBe('llama');
    expect(familyFor('qwen2').name).toBe('llama');
    expect(familyFor('gpt2').name).toBe('gpt2');
  });

  it('refuses an unknown model_type with a sentence listing the supported ones', () => {
    expect(() => familyFor('falcon')).toThrow(UnsupportedModelError);
    expect(() => familyFor('falcon')).toThrow(/model_type "falcon" is not supported; supported model types are llama, mistral, qwen2, gpt2\./);
    expect(() => familyFor('constructor')).toThrow(/not supported/);
  });

  it('reads a LLaMA spec with GQA, rope_theta and an untied head', () => {
    const s = specFromConfig(parseHfConfig(llama));
    expect(s).toMatchObject({ family: 'llama', modelType: 'llama', heads: 8, kvHeads: 2, headDim: 8, ropeTheta: 500000, tiedEmbeddings: false, qkvBias: false, oBias: false });
    const names = [...familyFor('llama').weightShapes(s).keys()];
    expect(names).toContain('lm_head.weight');
    expect(names).not.toContain('model.layers.0.self_attn.q_proj.bias');
  });

  it('gives Qwen2 q/k/v biases but no o_proj bias', () => {
    const s = specFromConfig(parseHfConfig({ ...llama, model_type: 'qwen2', tie_word_embeddings: true }));
    expect(s).toMatchObject({ qkvBias: true, oBias: false, tiedEmbeddings: true });
    const shapes = familyFor('qwen2').weightShapes(s);
    expect(shapes.get('model.layers.2.self_attn.k_proj.bias')).toEqual([16]);
    expect(shapes.has('model.layers.0.self_attn.o_proj.bias')).toBe(false);
    expect(shapes.has('lm_head.weight')).toBe(false);
  });

  it('refuses RoPE scaling it does not implement', () => {
    const c = parseHfConfig({ ...llama, rope_scaling: { rope_type: 'llama3', factor: 8 } });
    expect(() => specFromConfig(c)).toThrow(/RoPE scaling of type "llama3"/);
  });

  it('reads GPT-2 with Conv1D [in, out] weight shapes and the tanh GELU', () => {
    const s = specFromConfig(parseHfConfig({ model_type: 'gpt2', n_embd: 32, n_head: 4, n_layer: 2, vocab_size: 50, n_positions: 16 }));
    expect(s).toMatchObject({ family: 'gpt2', headDim: 8, intermediateSize: 128, gelu: 'tanh', maxPositions: 16 });
    const shapes = familyFor('gpt2').weightShapes(s);
    expect(shapes.get('transformer.h.1.attn.c_attn.weight')).toEqual([32, 96]);
    expect(shapes.get('transformer.h.0.mlp.c_proj.weight')).toEqual([128, 32]);
  });
});
