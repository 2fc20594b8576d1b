// Fixtures shared by the build/plug-in channel tests and the build-plugin e2e test: a tiny random
// LLaMA written as a Hugging Face folder, distillation text, and a full-layer adapter made from a
// built emulator's adapter blocks (each weight shifted by a known amount), signed as an adapter
// package by a data owner's key, the way `offsite adapter sign` writes it.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadEmulator } from '../../../native-models/scaleot/emulator';
import { planFullLayers, writeFullLayersAdapter } from '../../../native-models/peft/full';
import { buildAdapterPackage } from '../../../electron/services/packages';
import { writeKeyPair } from '../../../electron/services/keys';
import { corpus, randomLlamaWeights, TINY, writeHfModel, writeTokensJsonl } from '../../integration/scaleot/helpers';

export const TINY_MODEL = { ...TINY, vocab: 128, positions: 64 };
/** What the adapter adds to every weight of the adapter blocks. */
export const ADAPTER_SHIFT = 0.25;

/** The model owner's inputs: an 8-layer model folder and a distillation JSONL file. */
export async function ownerInputs(dir: string): Promise<{ model: string; distill: string }> {
  mkdirSync(dir, { recursive: true });
  const model = await writeHfModel(join(dir, 'model'), TINY_MODEL, randomLlamaWeights(TINY_MODEL, 4));
  const distill = writeTokensJsonl(join(dir, 'distill.jsonl'), corpus(40, 32, 5));
  return { model, distill };
}

export interface SignedAdapter {
  /** The adapter package folder. */
  pkg: string;
  /** The data owner's key pair. */
  key: string;
  pub: string;
  /** Emulator block indices the adapter covers. */
  blocks: number[];
}

/** A full-layer adapter over the emulator's adapter blocks (weights + ADAPTER_SHIFT), signed. */
export async function signedAdapter(dir: string, emulatorPkg: string, home: string): Promise<SignedAdapter> {
  mkdirSync(dir, { recursive: true });
  const emu = await loadEmulator(emulatorPkg);
  const blocks = emu.emulator.adapterBlocks;
  const plan = planFullLayers(new Map([...emu.weights].map(([n, w]) => [n, w.shape])), emu.spec.layers, blocks);
  const tensors = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const n of plan.names) {
    const w = emu.weights.get(n)!;
    tensors.set(n, { shape: [...w.shape], data: Float32Array.from(w.data, (x) => x + ADAPTER_SHIFT) });
  }
  const adapterDir = join(dir, 'adapter');
  await writeFullLayersAdapter(adapterDir, { format: 'full-layers', model_type: 'llama', base_model_name_or_path: null, layers: blocks }, tensors);
  const key = join(dir, 'data-owner.key');
  writeKeyPair(key);
  const pkg = join(dir, 'adapter-pkg');
  await buildAdapterPackage(home, { adapterDir, emulatorDir: emulatorPkg, out: pkg, signingKey: key });
  return { pkg, key, pub: `${key}.pub`, blocks };
}
