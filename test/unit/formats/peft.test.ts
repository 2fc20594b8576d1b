import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../../../native-models/formats/dtypes';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loraKey, readPeftAdapter, writePeftAdapter } from '../../../native-models/formats/peft';
import { encodeSafetensors } from '../../../native-models/formats/safetensors';
import { offsite, tempDir } from './helpers';

const tmp = tempDir('offsite-peft-');
afterAll(() => tmp.cleanup());

const r = 4;
const mat = (rows: number, cols: number, seed: number): Tensor => ({ dtype: 'F32', shape: [rows, cols], data: Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(seed + i) / 3) });

/** An offsite adapter: LoRA on q and v of layers 0 and 3 of a d=16 model. */
function loraTensors(): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  let seed = 0;
  for (const layer of [0, 3])
    for (const proj of ['q_proj', 'v_proj']) {
      const mod = `model.layers.${layer}.self_attn.${proj}`;
      m.set(loraKey(mod, 'A'), mat(r, 16, seed++));
      m.set(loraKey(mod, 'B'), mat(proj === 'q_proj' ? 16 : 8, r, seed++));
    }
  return m;
}
const config = { r, lora_alpha: 8, lora_dropout: 0.05, target_modules: ['q_proj', 'v_proj'], layers_to_transform: [0, 3], base_model_name_or_path: 'stories260K' };
const bytes = (t: Tensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

describe('PEFT LoRA adapter folders', () => {
  it('round-trips bit for bit and writes PEFT key names and config fields', async () => {
    const dir = join(tmp.dir, 'adapter');
    const tensors = loraTensors();
    await writePeftAdapter(dir, config, tensors);
    expect(readdirSync(dir).sort()).toEqual([ADAPTER_CONFIG, ADAPTER_WEIGHTS]);
    const cfg = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, lora_dropout: 0.05, target_modules: ['q_proj', 'v_proj'], layers_to_transform: [0, 3], bias: 'none', base_model_name_or_path: 'stories260K' });
    const a = await readPeftAdapter(dir);
    expect(a.config).toMatchObject(config);
    expect([...a.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    expect([...a.tensors.keys()]).toContain('base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight');
    for (const [k, t] of tensors) {
      expect(a.tensors.get(k)!.shape).toEqual(t.shape);
      expect(bytes(a.tensors.get(k)!).equals(bytes(t)), k).toBe(true);
    }
    expect(a.modules.map((m) => [m.layer, m.target, m.inFeatures, m.outFeatures])).toEqual([
      [0, 'q_proj', 16, 16],
      [0, 'v_proj', 16, 8],
      [3, 'q_proj', 16, 16],
      [3, 'v_proj', 16, 8],
    ]);
    expect(a.parameterCount).toBe(2 * (r * 16 + 16 * r) + 2 * (r * 16 + 8 * r));
  });

  it('writes identical bytes for identical adapters and refuses to clobber a folder unless asked', async () => {
    const d1 = join(tmp.dir, 'same1');
    const d2 = join(tmp.dir, 'same2');
    await writePeftAdapter(d1, config, loraTensors());
    await writePeftAdapter(d2, config, new Map([...loraTensors()].reverse()));
    for (const f of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) expect(readFileSync(join(d1, f)).equals(readFileSync(join(d2, f))), f).toBe(true);
    await expect(writePeftAdapter(d1, config, loraTensors())).rejects.toThrow(/already exists/);
    await writePeftAdapter(d1, { ...config, lora_alpha: 16 }, loraTensors(), { overwrite: true });
    expect((await readPeftAdapter(d1)).config.lora_alpha).toBe(16);
    expect(readdirSync(tmp.dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('handles GPT-2 Conv1D module names (transformer.h.N.attn.c_attn)', async () => {
    const dir = join(tmp.dir, 'gpt2-adapter');
    const mod = 'transformer.h.1.attn.c_attn';
    await writePeftAdapter(dir, { r: 2, lora_alpha: 4, target_modules: ['c_attn'], layers_to_transform: [1], fan_in_fan_out: true }, { [loraKey(mod, 'A')]: mat(2, 8, 1), [loraKey(mod, 'B')]: mat(24, 2, 2) });
    const a = await readPeftAdapter(dir);
    expect(loraKey(mod, 'A')).toBe('base_model.model.transformer.h.1.attn.c_attn.lora_A.weight');
    expect(a.config.fan_in_fan_out).toBe(true);
    expect(a.modules).toEqual([{ module: mod, target: 'c_attn', layer: 1, inFeatures: 8, outFeatures: 24, keyA: loraKey(mod, 'A'), keyB: loraKey(mod, 'B') }]);
  });

  it('refuses to write an adapter it would not read', async () => {
    const t = loraTensors();
    t.delete(loraKey('model.layers.0.self_attn.q_proj', 'B'));
    await expect(writePeftAdapter(join(tmp.dir, 'bad-write'), config, t)).rejects.toMatchObject({ rule: 'peft.unpaired' });
    expect(existsSync(join(tmp.dir, 'bad-write'))).toBe(false);
  });

  const folder = (name: string, cfg: Record<string, unknown>, tensors: Map<string, Tensor> | null): string => {
    const dir = join(tmp.dir, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, ADAPTER_CONFIG), JSON.stringify({ peft_type: 'LORA', task_type: 'CAUSAL_LM', ...cfg }));
    if (tensors) writeFileSync(join(dir, ADAPTER_WEIGHTS), encodeSafetensors(tensors));
    return dir;
  };

  it('names the rule an adapter breaks', async () => {
    const withoutB = loraTensors();
    withoutB.delete(loraKey('model.layers.3.self_attn.v_proj', 'B'));
    const wrongR = loraTensors();
    wrongR.set(loraKey('model.layers.0.self_attn.q_proj', 'A'), mat(r + 1, 16, 0));
    const cases: [string, Record<string, unknown>, Map<string, Tensor> | null, string][] = [
      ['unpaired', config, withoutB, 'peft.unpaired'],
      ['wrong-r', config, wrongR, 'peft.bad-shape'],
      ['not-target', { ...config, target_modules: ['q_proj'] }, loraTensors(), 'peft.not-a-target'],
      ['not-layer', { ...config, layers_to_transform: [0] }, loraTensors(), 'peft.not-a-layer'],
      ['dora', { ...config, use_dora: true }, loraTensors(), 'peft.unsupported'],
      ['regex', { ...config, target_modules: '.*proj' }, loraTensors(), 'peft.unsupported'],
      ['prefix', { ...config, peft_type: 'PREFIX_TUNING' }, loraTensors(), 'peft.unsupported'],
      ['r-zero', { ...config, r: 0 }, loraTensors(), 'peft.bad-config'],
      ['bad-key', config, new Map([...loraTensors(), ['model.layers.0.mlp.up_proj.weight', mat(2, 2, 0)]]), 'peft.bad-key'],
      ['no-weights', config, null, 'peft.no-weights'],
    ];
    for (const [name, cfg, t, rule] of cases) {
      await expect(readPeftAdapter(folder(name, cfg, t)), name).rejects.toMatchObject({ rule });
    }
  });

  it('refuses a pickled adapter_model.bin with a conversion hint', async () => {
    const dir = folder('pickled', config, null);
    writeFileSync(join(dir, 'adapter_model.bin'), 'PK\u0003\u0004');
    const r2 = await offsite('inspect', dir);
    expect(r2.code).toBe(2);
    expect(r2.err).toContain('safetensors.torch import save_file');
  });

  it('is described by offsite inspect', async () => {
    const dir = join(tmp.dir, 'adapter');
    const r1 = await offsite('inspect', dir, '--json');
    expect(r1.code).toBe(0);
    expect(JSON.parse(r1.out)).toMatchObject({ kind: 'peft-adapter', peftType: 'LORA', r: 4, alpha: 8, targets: ['q_proj', 'v_proj'], layersToTransform: [0, 3], moduleCount: 4, parameterCount: 448 });
    const r2 = await offsite('inspect', dir);
    expect(r2.out).toContain('PEFT LORA adapter');
    expect(r2.out).toContain('targets q_proj, v_proj; layers 0, 3');
  });
});
