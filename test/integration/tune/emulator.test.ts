// `offsite tune --emulator PKG`: the package is verified (and imported) before anything trains;
// only the emulator's adapter blocks are tuned (the kept, rank-compressed and harmonizer middle is
// frozen); the adapter is named in the emulator's block numbering, which `offsite plugin` maps
// through the layer map into the full model; `--sign-key` writes an adapter package the data
// owner's key verifies. The emulator is assembled here with writePackage in the format of
// scaleot/emulator.ts: 6 original layers → 5 blocks (0 adapter, 1 kept, 2 harmonizer, 3 dropped,
// 4 kept-compressed, 5 adapter), so the top adapter block 4 stands for original layer 5.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditPath } from '../../../electron/audit/store';
import { readAuditLog } from '../../../electron/services/audit';
import { hashPath } from '../../../electron/services/hashing';
import { writePackage, type LayerMapEntry } from '../../../native-models/formats/package';
import { SafetensorsFile, writeSafetensors } from '../../../native-models/formats/safetensors';
import { writeTinyLlama } from '../../unit/tune/tiny-model';
import { lcg, parseJsonOut, readJson, runCli, writeTokenData } from './helpers';

let dir: string;
let model: string;
let pkg: string;
let data: string;
let manifestSha: string;
let ownerKeyId: string;
const D = 32;
const HIDDEN = 8;
const RANK = 4;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
type T = { dtype: 'F32'; shape: number[]; data: Float32Array };

const LAYER_MAP: LayerMapEntry[] = [
  { layer: 0, role: 'adapter', index: 0 },
  { layer: 1, role: 'kept', index: 1 },
  { layer: 2, role: 'harmonizer', index: 2 },
  { layer: 3, role: 'dropped', index: null },
  { layer: 4, role: 'kept-compressed', index: 3 },
  { layer: 5, role: 'adapter', index: 4 },
];

async function readTensors(path: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const f = await SafetensorsFile.open(path, { whole: true });
  try {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [n, t] of await f.readAll()) out.set(n, { shape: [...t.shape], data: new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength)) });
    return out;
  } finally {
    await f.close();
  }
}

/** The emulator's weights from the original model, renumbered, with a harmonizer and SVD factors. */
async function emulatorWeights(modelDir: string): Promise<Map<string, T>> {
  const orig = await readTensors(join(modelDir, 'model.safetensors'));
  const rnd = lcg(11);
  const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * s);
  const w = new Map<string, T>();
  for (const [n, t] of orig) if (!n.startsWith('model.layers.')) w.set(n, { dtype: 'F32', shape: t.shape, data: t.data });
  for (const e of LAYER_MAP) {
    if (e.index === null) continue;
    const to = `model.layers.${e.index}.`;
    if (e.role === 'harmonizer') {
      w.set(`${to}harmonizer.norm.weight`, { dtype: 'F32', shape: [D], data: new Float32Array(D).fill(1) });
      w.set(`${to}harmonizer.down.weight`, { dtype: 'F32', shape: [HIDDEN, D], data: rand(HIDDEN * D, 0.3) });
      w.set(`${to}harmonizer.up.weight`, { dtype: 'F32', shape: [D, HIDDEN], data: rand(D * HIDDEN, 0.3) });
      continue;
    }
    for (const [n, t] of orig) {
      const from = `model.layers.${e.layer}.`;
      if (!n.startsWith(from)) continue;
      const rest = n.slice(from.length);
      if (e.role === 'kept-compressed' && rest === 'self_attn.q_proj.weight') {
        w.set(`${to}self_attn.q_proj.svd_up.weight`, { dtype: 'F32', shape: [D, RANK], data: rand(D * RANK, 0.3) });
        w.set(`${to}self_attn.q_proj.svd_down.weight`, { dtype: 'F32', shape: [RANK, D], data: rand(RANK * D, 0.3) });
        continue;
      }
      w.set(`${to}${rest}`, { dtype: 'F32', shape: t.shape, data: t.data });
    }
  }
  return w;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-tune-emulator-'));
  model = join(dir, 'full-model');
  await writeTinyLlama(model, { layers: 6, hidden: D, intermediate: 64, heads: 4, kvHeads: 2, vocab: 64, seed: 5 });
  data = join(dir, 'train.jsonl');
  writeTokenData(data, [20, 18, 24, 22, 19, 21, 23, 17], 64, 4);
  for (const who of ['owner', 'data-owner']) {
    const k = await runCli(['keygen', '--out', join(dir, `${who}.key`), '--home', join(dir, `${who}-home`)]);
    expect(k.code, k.stderr).toBe(0);
  }
  const config = readJson<Record<string, unknown>>(join(model, 'config.json'));
  const weights = await emulatorWeights(model);
  const source = await hashPath(model);
  pkg = join(dir, 'emulator-pkg');
  const written = await writePackage(pkg, {
    producer: { app: 'Offsite Studio', version: 'test' },
    signingKey: join(dir, 'owner.key'),
    manifest: {
      kind: 'emulator',
      method: 'scaleot',
      sourceModel: { sha256: source.sha256, name: 'full-model', modelType: 'llama', layers: 6 },
      triplet: { adapterLayers: [1, 1], alpha: 0.5, beta: 0.5 },
      layerMap: LAYER_MAP,
      model: { config: 'config.json', weights: ['model.safetensors'], tokenizer: null },
      recommendedTuning: { rank: RANK, alpha: 8, lr: 0.02, sampler: 'ist', seqLen: 16, fancyNewKnob: true },
      reference: { emuZS: [] },
    },
    fill: async (tmp) => {
      writeFileSync(join(tmp, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 5 }, null, 2));
      await writeSafetensors(join(tmp, 'model.safetensors'), weights, { format: 'pt' });
    },
  });
  manifestSha = written.manifestSha256;
  ownerKeyId = written.signerKeyId!;
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const common = (): string[] => ['--data', data, '--steps', '4', '--batch-size', '2', '--ep', 'cpu', '--threads', '1', '--json'];

describe('offsite tune --emulator', () => {
  it('tunes only the adapter blocks with IST LoRA, names them in emulator numbering, and signs the adapter package', async () => {
    const home = join(dir, 'home-lora');
    const out = join(dir, 'run-lora');
    const pkgBefore = readFileSync(join(pkg, 'model.safetensors'));
    const res = parseJsonOut<{
      runId: string;
      adapter: string;
      tunableLayers: number[];
      steps: Array<{ step: number; selected: number[] }>;
      importance: number[];
      peft: string;
      emulator: { manifestSha256: string; signerKeyId: string; path: string };
      layerMapping: Array<{ adapterLayer: number; modelLayer: number }>;
      adapterPackage: { path: string; manifestSha256: string; signerKeyId: string };
    }>(
      await runCli(['tune', '--emulator', pkg, '--trust', join(dir, 'owner.key.pub'), '--out', out, '--peft', 'lora', '--dropout', '0', '--targets', 'q_proj,v_proj', '--ist-interval', '2', '--sign-key', join(dir, 'data-owner.key'), '--home', home, ...common()]),
    );
    // Adapter blocks only: IST over L_t = 2 adapter layers, one chosen per step.
    expect(res.peft).toBe('lora');
    expect(res.tunableLayers).toEqual([0, 4]);
    // Importance updates (every 2 steps here) suppress adapter blocks through the emulator's frozen middle.
    expect(res.importance).toHaveLength(2);
    expect(res.importance.some((s) => s !== 0)).toBe(true);
    expect(res.steps).toHaveLength(4);
    for (const s of res.steps) {
      expect(s.selected).toHaveLength(1);
      expect([0, 4]).toContain(s.selected[0]);
    }
    expect(res.layerMapping).toEqual([{ adapterLayer: 0, modelLayer: 0 }, { adapterLayer: 4, modelLayer: 5 }]);
    expect(res.emulator.manifestSha256).toBe(manifestSha);
    expect(res.emulator.signerKeyId).toBe(ownerKeyId);
    // The run used the imported copy (<home>/emulators/<manifest sha>), not the removable-media folder.
    expect(res.emulator.path).toBe(join(home, 'emulators', manifestSha));

    // The PEFT export: layers_to_transform and keys in the emulator's block numbering, from the recommended rank.
    const cfg = readJson<{ r: number; lora_alpha: number; layers_to_transform: number[]; target_modules: string[]; base_model_name_or_path: string }>(join(res.adapter, 'adapter_config.json'));
    expect(cfg.layers_to_transform).toEqual([0, 4]);
    expect(cfg.r).toBe(RANK);
    expect(cfg.lora_alpha).toBe(8);
    expect(cfg.base_model_name_or_path).toBe('full-model');
    const tensors = await readTensors(join(res.adapter, 'adapter_model.safetensors'));
    const keys = [...tensors.keys()].sort();
    expect(keys).toEqual(
      [0, 4].flatMap((l) => ['q_proj', 'v_proj'].flatMap((m) => ['A', 'B'].map((ab) => `base_model.model.model.layers.${l}.self_attn.${m}.lora_${ab}.weight`))).sort(),
    );
    // Something was learned (LoRA B starts at zero), and only in adapter blocks.
    expect([...tensors].some(([k, t]) => k.includes('lora_B') && t.data.some((v) => v !== 0))).toBe(true);

    // Middle weights untouched: the checkpoint's trainable state holds adapter-block LoRA factors only,
    // and the package's weights on disk are byte-identical after the run.
    const state = await readTensors(join(out, 'checkpoint', 'state.safetensors'));
    const paramNames = [...state.keys()].filter((n) => n.startsWith('param/')).map((n) => n.slice('param/'.length)).sort();
    expect(paramNames).toEqual(keys);
    for (const n of state.keys()) expect(n).not.toMatch(/layers\.[123]\.|harmonizer|svd_/);
    expect(sha256(readFileSync(join(res.emulator.path, 'model.safetensors')))).toBe(sha256(pkgBefore));
    expect(sha256(readFileSync(join(pkg, 'model.safetensors')))).toBe(sha256(pkgBefore));

    // The audit log: the import, then run.started with the emulator's manifest hash and signer.
    const events = readAuditLog(auditPath(home));
    expect(events.map((e) => e.action)).toEqual(expect.arrayContaining(['emulator.imported', 'run.started', 'run.finished', 'adapter.exported']));
    expect(events.findIndex((e) => e.action === 'emulator.imported')).toBeLessThan(events.findIndex((e) => e.action === 'run.started'));
    const started = events.find((e) => e.action === 'run.started')!;
    expect(started.payload.inputs.emulator).toBe(manifestSha);
    expect(started.payload.details.emulator).toMatchObject({ manifest_sha256: manifestSha, signer_key_id: ownerKeyId, override: null, adapter_blocks: [0, 4] });

    // --sign-key: an adapter package beside the PEFT folder, referencing the emulator, that the data owner's key verifies.
    expect(res.adapterPackage.path).toBe(join(out, 'adapter-package'));
    const am = readJson<{ kind: string; emulator: { manifestSha256: string }; adapter: { format: string; layers: number[] } }>(join(res.adapterPackage.path, 'manifest.json'));
    expect(am.kind).toBe('adapter');
    expect(am.emulator.manifestSha256).toBe(manifestSha);
    expect(am.adapter).toMatchObject({ format: 'peft-lora', layers: [0, 4] });
    const verified = await runCli(['adapter', 'verify', res.adapterPackage.path, '--trust', join(dir, 'data-owner.key.pub'), '--home', join(dir, 'verifier-home')]);
    expect(verified.code, verified.stderr).toBe(0);
    const untrusted = await runCli(['adapter', 'verify', res.adapterPackage.path, '--trust', join(dir, 'owner.key.pub'), '--home', join(dir, 'verifier-home')]);
    expect(untrusted.code).toBe(3);

    // The model owner plugs it in: emulator block 4 lands on original layer 5 through the layer map.
    const plugged = parseJsonOut<{ layerMapping: Array<{ adapterLayer: number; modelLayer: number }>; changedWeights: string[] }>(
      await runCli(['plugin', '--model', model, '--adapter', res.adapterPackage.path, '--emulator', pkg, '--trust', join(dir, 'data-owner.key.pub'), '--out', join(dir, 'plugged'), '--merge', '--home', join(dir, 'owner-home'), '--json']),
    );
    expect(plugged.layerMapping).toEqual([{ adapterLayer: 0, modelLayer: 0 }, { adapterLayer: 4, modelLayer: 5 }]);
    expect([...plugged.changedWeights].sort()).toEqual(['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.v_proj.weight', 'model.layers.5.self_attn.q_proj.weight', 'model.layers.5.self_attn.v_proj.weight']);
  }, 300_000);

  it('defaults to full-layer tuning of the adapter blocks and records an unsigned-package override', async () => {
    const home = join(dir, 'home-full');
    const out = join(dir, 'run-full');
    const res = parseJsonOut<{ adapter: string; tunableLayers: number[]; peft: string; emulator: { override: string } }>(
      await runCli(['tune', '--emulator', pkg, '--allow-unsigned', '--reason', 'owner key not yet exchanged', '--out', out, '--sampler', 'all', '--lr', '0.01', '--home', home, ...common()]),
    );
    expect(res.peft).toBe('full');
    expect(res.tunableLayers).toEqual([0, 4]);
    expect(res.emulator.override).toBe('owner key not yet exchanged');
    expect(readJson<{ layers: number[] }>(join(res.adapter, 'adapter_layers.json')).layers).toEqual([0, 4]);
    const tuned = await readTensors(join(res.adapter, 'adapter_model.safetensors'));
    const emu = await readTensors(join(home, 'emulators', manifestSha, 'model.safetensors'));
    const blocks = new Set([...tuned.keys()].map((k) => /^model\.layers\.(\d+)\./.exec(k)?.[1]));
    expect([...blocks].sort()).toEqual(['0', '4']);
    // Every weight of both adapter blocks is exported, and training moved them away from the emulator's copy.
    const expected = [...emu.keys()].filter((k) => /^model\.layers\.[04]\./.test(k)).sort();
    expect([...tuned.keys()].sort()).toEqual(expected);
    const moved = (k: string) => tuned.get(k)!.data.some((v, i) => v !== emu.get(k)!.data[i]);
    expect(moved('model.layers.0.self_attn.q_proj.weight')).toBe(true);
    expect(moved('model.layers.4.mlp.down_proj.weight')).toBe(true);
    const started = readAuditLog(auditPath(home)).find((e) => e.action === 'run.started')!;
    expect(started.reason).toBe('owner key not yet exchanged');
    expect(started.payload.details.emulator).toMatchObject({ override: 'owner key not yet exchanged', signer_key_id: ownerKeyId });
  }, 300_000);

  it('refuses a tampered or untrusted package with exit 3 and trains nothing', async () => {
    const tampered = join(dir, 'tampered-pkg');
    cpSync(pkg, tampered, { recursive: true });
    const st = readFileSync(join(tampered, 'model.safetensors'));
    st[st.length - 3] ^= 0x40;
    writeFileSync(join(tampered, 'model.safetensors'), st);
    const home = join(dir, 'home-tampered');
    const out = join(dir, 'run-tampered');
    const r = await runCli(['tune', '--emulator', tampered, '--trust', join(dir, 'owner.key.pub'), '--out', out, '--home', home, ...common()]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/hashes|SHA-256/i);
    expect(r.stderr).toContain('Nothing was tuned');
    expect(existsSync(out)).toBe(false);
    expect(existsSync(join(home, 'emulators'))).toBe(false);
    const actions = readAuditLog(auditPath(home)).map((e) => e.action);
    expect(actions).toContain('emulator.import_rejected');
    expect(actions).not.toContain('run.started');

    // Intact but signed by a key nobody trusted here.
    const home2 = join(dir, 'home-untrusted');
    const r2 = await runCli(['tune', '--emulator', pkg, '--out', join(dir, 'run-untrusted'), '--home', home2, ...common()]);
    expect(r2.code).toBe(3);
    expect(r2.stderr).toMatch(/signer|trusted/i);
    expect(existsSync(join(dir, 'run-untrusted'))).toBe(false);
  }, 120_000);

  it('refuses middle blocks and emulator-only flags as usage errors', async () => {
    const home = join(dir, 'home-usage');
    const r = await runCli(['tune', '--emulator', pkg, '--trust', join(dir, 'owner.key.pub'), '--layers', '2', '--out', join(dir, 'run-usage'), '--home', home, ...common()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Emulator block 2 is a harmonizer block standing in for original layer 2');
    const r2 = await runCli(['tune', '--model', model, '--sign-key', join(dir, 'data-owner.key'), '--out', join(dir, 'run-usage2'), '--home', home, ...common()]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('--sign-key applies to --emulator only');
    const r3 = await runCli(['tune', '--model', model, '--emulator', pkg, '--out', join(dir, 'run-usage3'), '--home', home, ...common()]);
    expect(r3.code).toBe(2);
    expect(existsSync(join(dir, 'run-usage'))).toBe(false);
  }, 120_000);
});
