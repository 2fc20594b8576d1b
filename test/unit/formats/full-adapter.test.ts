// `offsite inspect` on full-layer adapter folders (adapter_layers.json + adapter_model.safetensors):
// described with layers, tensor and parameter counts; malformed folders exit 2 naming the rule.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../../native-models/formats/safetensors';
import { offsite, tempDir } from './helpers';

const tmp = tempDir('offsite-full-adapter-');
afterAll(() => tmp.cleanup());

type T = { dtype: 'F32'; shape: number[]; data: Float32Array };
const t = (...shape: number[]): T => ({ dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.25) });

/** Two LLaMA blocks (layers 0 and 3), d = 8: norms [8], q/o [8, 8], k/v [4, 8]. */
function blockTensors(layer: number): Record<string, T> {
  const p = `model.layers.${layer}`;
  return {
    [`${p}.input_layernorm.weight`]: t(8),
    [`${p}.self_attn.q_proj.weight`]: t(8, 8),
    [`${p}.self_attn.k_proj.weight`]: t(4, 8),
    [`${p}.self_attn.v_proj.weight`]: t(4, 8),
    [`${p}.self_attn.o_proj.weight`]: t(8, 8),
  };
}
const PER_BLOCK = 8 + 64 + 32 + 32 + 64;

async function folder(name: string, config: Record<string, unknown>, tensors: Record<string, T> | null): Promise<string> {
  const dir = join(tmp.dir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_layers.json'), JSON.stringify(config));
  if (tensors) await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  return dir;
}

const goodConfig = { format: 'full-layers', model_type: 'llama', base_model_name_or_path: 'tiny-llama', layers: [0, 3] };

describe('offsite inspect: full-layer adapter folders', () => {
  it('describes the layers, tensors and parameters', async () => {
    const dir = await folder('good', goodConfig, { ...blockTensors(0), ...blockTensors(3) });
    const r = await offsite('inspect', dir, '--json');
    expect(r.code, r.err).toBe(0);
    const d = JSON.parse(r.out) as Record<string, unknown>;
    expect(d).toMatchObject({
      kind: 'full-layer-adapter',
      modelType: 'llama',
      baseModel: 'tiny-llama',
      layers: [0, 3],
      tensorsPerLayer: { '0': 5, '3': 5 },
      tensorCount: 10,
      parameterCount: 2 * PER_BLOCK,
      dataBytes: 2 * PER_BLOCK * 4,
      dtypes: { F32: 2 * PER_BLOCK },
    });
    const human = await offsite('inspect', dir);
    expect(human.code).toBe(0);
    expect(human.out).toContain('full-layer adapter (model_type llama): layers 0, 3, 10 tensors');
  });

  it('accepts GPT-2 block names', async () => {
    const dir = await folder('gpt2', { ...goodConfig, model_type: 'gpt2', layers: [1] }, { 'transformer.h.1.attn.c_attn.weight': t(8, 24), 'transformer.h.1.ln_1.weight': t(8) });
    const r = await offsite('inspect', dir, '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ kind: 'full-layer-adapter', layers: [1], tensorCount: 2, parameterCount: 8 * 24 + 8 });
  });

  const malformed: Array<[string, Record<string, unknown>, Record<string, T> | null, RegExp]> = [
    ['a tensor of an unlisted layer', goodConfig, { ...blockTensors(0), ...blockTensors(3), 'model.layers.2.self_attn.q_proj.weight': t(8, 8) }, /tensor "model\.layers\.2\.self_attn\.q_proj\.weight" is not a weight of the adapter's layers \[0, 3\]/],
    ['a tensor outside the blocks', goodConfig, { ...blockTensors(0), ...blockTensors(3), 'lm_head.weight': t(4, 8) }, /tensor "lm_head\.weight" is not a weight/],
    ['a listed layer without weights', goodConfig, blockTensors(0), /holds no weights of layer 3/],
    ['no weights file', goodConfig, null, /adapter_model\.safetensors is missing/],
    ['an unknown config field', { ...goodConfig, lora_alpha: 16 }, blockTensors(0), /"lora_alpha" is not a field/],
    ['a wrong format', { ...goodConfig, format: 'lora' }, blockTensors(0), /"format" must be "full-layers"/],
    ['a layer listed twice', { ...goodConfig, layers: [0, 0] }, blockTensors(0), /lists a layer twice/],
    ['layers that are not indices', { ...goodConfig, layers: [0, -1] }, blockTensors(0), /"layers" must be a non-empty list of layer indices/],
    ['a missing field', { format: 'full-layers', model_type: 'llama', layers: [0] }, blockTensors(0), /"base_model_name_or_path" is missing/],
  ];
  for (const [what, config, tensors, message] of malformed) {
    it(`refuses ${what} with exit 2`, async () => {
      const dir = await folder(what.replace(/\W+/g, '-'), config, tensors);
      const r = await offsite('inspect', dir, '--json');
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(message);
    });
  }
});
