// The model owner's and data owner's commands end to end through the real CLI: keygen → emulator
// build (signed) → emulator verify → [data owner tunes the adapter blocks] → adapter sign →
// adapter verify → plugin, with every step in the audit log: once with the data owner's tuning
// through the engine (full-parameter tuning of the emulator's adapter blocks, adapter sign), once
// entirely through the CLI (`offsite tune --emulator`, LoRA, signed adapter package, plugin --merge)
// on a uniform LayerDrop emulator whose top adapter blocks sit at lower indices than in the model.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../../native-models/models/load';
import { writeFullLayersAdapter } from '../../../native-models/peft/full';
import { loadEmulator } from '../../../native-models/scaleot/emulator';
import { corpus, randomLlamaWeights, repoRoot, TINY, tuneBlocks, writeHfModel, writeTokensJsonl } from './helpers';

const bin = resolve(repoRoot, 'bin/offsite.mjs');
let dir: string;
let ownerHome: string;
let dataHome: string;

function offsite(home: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args, '--home', home], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'offsite-scaleot-cli-'));
  ownerHome = join(dir, 'owner-home');
  dataHome = join(dir, 'data-home');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('offsite emulator build → verify → adapter sign → verify → plugin', () => {
  it('runs every step and records each in the audit log', async () => {
    const model = await writeHfModel(join(dir, 'model'), { ...TINY, vocab: 128, positions: 64 }, randomLlamaWeights({ ...TINY, vocab: 128, positions: 64 }, 4));
    const distill = writeTokensJsonl(join(dir, 'distill.jsonl'), corpus(40, 32, 5));
    expect(offsite(ownerHome, 'keygen', '--out', join(dir, 'owner.key')).code).toBe(0);
    expect(offsite(dataHome, 'keygen', '--out', join(dir, 'data.key')).code).toBe(0);

    // Bad input is a sentence and exit 2.
    const bad = offsite(ownerHome, 'emulator', 'build', '--model', model, '--out', join(dir, 'x'), '--distill-data', distill, '--replace-ratio', '2');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--replace-ratio must be a number from 0 to 1/);

    const pkg = join(dir, 'emulator');
    const built = offsite(ownerHome, 'emulator', 'build', '--model', model, '--out', pkg, '--distill-data', distill, '--steps', '20', '--seq-len', '32', '--batch-size', '4', '--sign-key', join(dir, 'owner.key'), '--ep', 'cpu', '--json');
    expect(built.stderr).toMatch(/replaceability/);
    expect(built.code).toBe(0);
    const b = JSON.parse(built.stdout);
    expect(b.signerKeyId).toMatch(/^[0-9a-f]{16}$/);
    expect(b.replaced).toHaveLength(2);
    expect(b.src.keptAttentionAfter).toBeLessThanOrEqual(b.src.keptAttentionBefore);
    expect(b.layerMap.filter((e: { role: string }) => e.role === 'harmonizer')).toHaveLength(2);
    expect(b.emuZsPpl).toBeGreaterThan(1);

    // The data owner verifies the emulator with the owner's public key.
    const verified = offsite(dataHome, 'emulator', 'verify', pkg, '--trust', join(dir, 'owner.key.pub'), '--json');
    expect(verified.code).toBe(0);
    const unverified = offsite(dataHome, 'emulator', 'verify', pkg);
    expect(unverified.code).toBe(3);

    // Tuning the adapter blocks on the emulator (engine), exported as a full-layer adapter.
    const emu = await loadEmulator(pkg);
    const tuned = await tuneBlocks(emu, emu.emulator.adapterBlocks, corpus(24, 32, 6, true), { steps: 5, lr: 1e-3, batch: 4, seqLen: 32, seed: 0 });
    const adapterDir = join(dir, 'adapter');
    await writeFullLayersAdapter(adapterDir, { format: 'full-layers', model_type: 'llama', base_model_name_or_path: null, layers: emu.emulator.adapterBlocks }, tuned);

    const adapterPkg = join(dir, 'adapter-pkg');
    const signed = offsite(dataHome, 'adapter', 'sign', '--adapter', adapterDir, '--emulator', pkg, '--out', adapterPkg, '--sign-key', join(dir, 'data.key'), '--json');
    expect(signed.code).toBe(0);
    expect(offsite(ownerHome, 'adapter', 'verify', adapterPkg, '--trust', join(dir, 'data.key.pub')).code).toBe(0);

    // Plug-in refuses an untrusted adapter package (exit 3), then works with the data owner's key.
    const refused = offsite(ownerHome, 'plugin', '--model', model, '--adapter', adapterPkg, '--emulator', pkg, '--out', join(dir, 'tuned-refused'));
    expect(refused.code).toBe(3);
    const out = join(dir, 'tuned');
    const plugged = offsite(ownerHome, 'plugin', '--model', model, '--adapter', adapterPkg, '--emulator', pkg, '--out', out, '--trust', join(dir, 'data.key.pub'), '--json');
    expect(plugged.stderr).toBe('');
    expect(plugged.code).toBe(0);
    const p = JSON.parse(plugged.stdout);
    expect(p.layerMapping).toEqual([0, 1, 6, 7].map((l) => ({ adapterLayer: l, modelLayer: l })));
    const tunedModel = await loadModel(out);
    expect(tunedModel.weights.get('model.layers.7.mlp.up_proj.weight')!.data).toEqual(tuned.get('model.layers.7.mlp.up_proj.weight')!.data);

    const ownerLog = JSON.parse(offsite(ownerHome, 'audit', 'log', '--json').stdout);
    const dataLog = JSON.parse(offsite(dataHome, 'audit', 'log', '--json').stdout);
    const actions = (log: { events: { action: string }[] }) => log.events.map((e) => e.action);
    expect(actions(ownerLog)).toEqual(expect.arrayContaining(['key.generated', 'emulator.built', 'plugin.finished']));
    expect(actions(dataLog)).toEqual(expect.arrayContaining(['key.generated', 'adapter.exported']));
    const builtEvent = ownerLog.events.find((e: { action: string }) => e.action === 'emulator.built');
    expect(builtEvent.payload.outputs.emulator).toBe(b.manifestSha256);
    expect(builtEvent.payload.inputs.model.sha256).toBe(b.sourceSha256);
    const pluginEvent = ownerLog.events.find((e: { action: string }) => e.action === 'plugin.finished');
    expect(pluginEvent.payload.inputs.emulator).toBe(b.manifestSha256);
    expect(offsite(ownerHome, 'audit', 'verify').code).toBe(0);
  }, 300_000);

  it('works entirely from the CLI with offsite tune --emulator and a uniform LayerDrop emulator', async () => {
    const cfg = { ...TINY, vocab: 128, positions: 64 };
    const model = await writeHfModel(join(dir, 'model2'), cfg, randomLlamaWeights(cfg, 5));
    const distill = writeTokensJsonl(join(dir, 'distill2.jsonl'), corpus(40, 32, 7));
    const task = writeTokensJsonl(join(dir, 'task2.jsonl'), corpus(24, 32, 8, true));
    const owner = join(dir, 'owner2-home');
    const data = join(dir, 'data2-home');
    expect(offsite(owner, 'keygen', '--out', join(dir, 'o2.key')).code).toBe(0);
    expect(offsite(data, 'keygen', '--out', join(dir, 'd2.key')).code).toBe(0);
    const pkg = join(dir, 'emulator2');
    const built = offsite(owner, 'emulator', 'build', '--model', model, '--out', pkg, '--distill-data', distill, '--method', 'uniform', '--seq-len', '32', '--sign-key', join(dir, 'o2.key'), '--ep', 'cpu', '--json');
    expect(built.code).toBe(0);
    const b = JSON.parse(built.stdout);
    expect(b.dropped).toEqual([3, 4]);
    expect(offsite(data, 'emulator', 'verify', pkg, '--trust', join(dir, 'o2.key.pub')).code).toBe(0);
    const run = join(dir, 'run2');
    const tuned = offsite(data, 'tune', '--emulator', pkg, '--trust', join(dir, 'o2.key.pub'), '--data', task, '--out', run, '--peft', 'lora', '--steps', '4', '--seq-len', '32', '--sign-key', join(dir, 'd2.key'), '--json');
    expect(tuned.code).toBe(0);
    const adapterPkg = join(run, 'adapter-package');
    expect(offsite(owner, 'adapter', 'verify', adapterPkg, '--trust', join(dir, 'd2.key.pub')).code).toBe(0);
    const out = join(dir, 'tuned2');
    const plugged = offsite(owner, 'plugin', '--model', model, '--adapter', adapterPkg, '--emulator', pkg, '--out', out, '--merge', '--trust', join(dir, 'd2.key.pub'), '--json');
    expect(plugged.code).toBe(0);
    const p = JSON.parse(plugged.stdout);
    // Emulator blocks 4, 5 (top adapters of the 6-block emulator) are model layers 6, 7.
    expect(p.layerMapping).toEqual([{ adapterLayer: 0, modelLayer: 0 }, { adapterLayer: 1, modelLayer: 1 }, { adapterLayer: 4, modelLayer: 6 }, { adapterLayer: 5, modelLayer: 7 }]);
    expect(p.merged).toBe(true);
    const ownerActions = JSON.parse(offsite(owner, 'audit', 'log', '--json').stdout).events.map((e: { action: string }) => e.action);
    const dataActions = JSON.parse(offsite(data, 'audit', 'log', '--json').stdout).events.map((e: { action: string }) => e.action);
    expect(ownerActions).toEqual(expect.arrayContaining(['emulator.built', 'plugin.finished']));
    expect(dataActions).toEqual(expect.arrayContaining(['run.started', 'run.finished', 'adapter.exported']));
    expect(offsite(owner, 'audit', 'verify').code).toBe(0);
    expect(offsite(data, 'audit', 'verify').code).toBe(0);
  }, 300_000);
});
