// Shared helpers for the package tests: key pairs, a small signed emulator package built with the
// real writer, and an independent signer (node:crypto) for hand-edited manifests.
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors } from '../../../native-models/formats/safetensors';
import { writePackage, type EmulatorManifestInput, type LayerMapEntry } from '../../../native-models/formats/package';
import { writeKeyPair } from '../../../electron/services/keys';
import { main } from '../../../electron/cli';

export function tempDir(prefix = 'offsite-pkg-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function offsite(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, {
    out: (t) => void (out += t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => void (err += t.endsWith('\n') ? t : `${t}\n`),
    isTTY: false,
    signal: new AbortController().signal,
  });
  return { code, out, err };
}

export const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** A key pair on disk: KEYFILE (private) and KEYFILE.pub. */
export function keyPair(dir: string, name: string): { key: string; pub: string } {
  const key = join(dir, name);
  writeKeyPair(key);
  return { key, pub: `${key}.pub` };
}

/** Signs bytes the way manifest.sig is defined (base64 Ed25519 + newline), independently of the writer. */
export function signWith(keyFile: string, bytes: Uint8Array): string {
  return `${sign(null, bytes, createPrivateKey(readFileSync(keyFile, 'utf8'))).toString('base64')}\n`;
}

/** 2 + 2 adapter layers around a middle of 4: kept-compressed, harmonizer, dropped, kept. */
export const LAYER_MAP: LayerMapEntry[] = [
  { layer: 0, role: 'adapter', index: 0 },
  { layer: 1, role: 'adapter', index: 1 },
  { layer: 2, role: 'kept-compressed', index: 2 },
  { layer: 3, role: 'harmonizer', index: 3 },
  { layer: 4, role: 'dropped', index: null },
  { layer: 5, role: 'kept', index: 4 },
  { layer: 6, role: 'adapter', index: 5 },
  { layer: 7, role: 'adapter', index: 6 },
];

export function emulatorManifest(over: Partial<EmulatorManifestInput> = {}): EmulatorManifestInput {
  return {
    kind: 'emulator',
    method: 'scaleot',
    sourceModel: { sha256: 'ab'.repeat(32), name: 'tiny-llama', modelType: 'llama', layers: 8 },
    triplet: { adapterLayers: [2, 2], alpha: 0.25, beta: 0.5 },
    layerMap: LAYER_MAP,
    model: { config: 'config.json', weights: ['model.safetensors'], tokenizer: 'tokenizer.json' },
    recommendedTuning: { peft: 'lora', rank: 8, lr: 0.0003 },
    reference: { emuZS: [{ task: 'wikitext', metric: 'ppl', value: 41.5 }] },
    ...over,
  };
}

/** The staged files of a small emulator: config, weights (two tensors), tokenizer, a nested file. */
export async function stageEmulatorFiles(dir: string): Promise<void> {
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', num_hidden_layers: 7 }));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'BPE' } }));
  await writeSafetensors(join(dir, 'model.safetensors'), {
    'model.layers.0.self_attn.q_proj.weight': { dtype: 'F32', shape: [4, 4], data: Float32Array.from({ length: 16 }, (_, i) => i / 7) },
    'model.norm.weight': { dtype: 'F32', shape: [4], data: new Float32Array([1, 1, 1, 1]) },
  });
  mkdirSync(join(dir, 'harmonizers'));
  writeFileSync(join(dir, 'harmonizers', 'layer3.bin.txt'), 'harmonizer 3 stand-in\n');
}

/** Writes a signed (or unsigned, key null) emulator package at `out`. */
export async function buildEmulatorPackage(out: string, key: string | null) {
  return writePackage(out, {
    producer: { app: 'Offsite Studio', version: '0.1.0-test' },
    signingKey: key,
    fill: stageEmulatorFiles,
    manifest: emulatorManifest(),
    created: new Date('2025-01-02T03:04:05.000Z'),
  });
}
