// Emulator quality at equal size on a small trained model (8 layers, d 64; trained once by the
// engine and cached under test-results/): ScaleOT (α = 0.5, harmonizers trained with Dynamic
// LayerReplace) against uniform LayerDrop without harmonizers, then the data owner's tuning of the
// adapter blocks on a downstream task, plug-in and perplexities; and SRC β = 0.5 against no SRC.
// The numbers are written to test-results/scaleot/quality.json and printed.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../../native-models/models/load';
import { writeFullLayersAdapter } from '../../../native-models/peft/full';
import { buildEmulator, BUILD_DEFAULTS, type BuildMethod } from '../../../native-models/scaleot/build';
import { loadEmulator } from '../../../native-models/scaleot/emulator';
import { plugIn } from '../../../native-models/scaleot/plugin';
import { corpus, pplOf, resultsDir, trainedTinyModel, tuneBlocks, writeTokensJsonl } from './helpers';

interface Row {
  method: BuildMethod;
  beta: number;
  replaced: number[];
  dropped: number[];
  scores: Record<number, number>;
  emuZS: number;
  emuZsTask: number;
  emuFT: number;
  plugin: number;
  parameters: number;
}

const dir = resultsDir('quality');
const SEQ = 48;
let modelDir: string;
let distill: string;
const task = corpus(120, SEQ, 31, true);
const taskEval = corpus(30, SEQ, 32, true);
const rows: Record<string, Row> = {};
let fullTaskZS = 0;

async function variant(name: string, method: BuildMethod, beta: number): Promise<Row> {
  const out = join(dir, name);
  const r = await buildEmulator({
    ...BUILD_DEFAULTS,
    model: modelDir,
    distillData: distill,
    out,
    method,
    alpha: 0.5,
    beta,
    steps: method === 'scaleot' ? 150 : 0,
    seqLen: SEQ,
    batchSize: 8,
    signingKey: null,
    producer: { app: 'Offsite Studio', version: 'test' },
    provider: 'cpu',
    threads: 2,
    overwrite: true,
  });
  const e = await loadEmulator(out);
  // The data owner: full-parameter tuning of the emulator's adapter blocks on the task.
  const tuned = await tuneBlocks(e, e.emulator.adapterBlocks, task, { steps: 60, lr: 1e-3, batch: 8, seqLen: SEQ, seed: 1 });
  const adapter = join(dir, `${name}-adapter`);
  await writeFullLayersAdapter(adapter, { format: 'full-layers', model_type: 'llama', base_model_name_or_path: null, layers: e.emulator.adapterBlocks }, tuned, true);
  const plugged = join(dir, `${name}-plugin`);
  rmSync(plugged, { recursive: true, force: true });
  await plugIn({ model: modelDir, adapter, out: plugged, layerMap: e.emulator.manifest.layerMap, merge: true });
  const emuTuned = { spec: e.spec, family: e.family, weights: new Map([...e.weights, ...tuned]) };
  return {
    method,
    beta,
    replaced: r.replaced,
    dropped: r.dropped,
    scores: r.scores,
    emuZS: r.emuZsPpl,
    emuZsTask: await pplOf(e, taskEval, SEQ),
    emuFT: await pplOf(emuTuned, taskEval, SEQ),
    plugin: await pplOf(await loadModel(plugged), taskEval, SEQ),
    parameters: r.parameterCount,
  };
}

beforeAll(async () => {
  modelDir = await trainedTinyModel();
  distill = writeTokensJsonl(join(dir, 'distill.jsonl'), corpus(300, SEQ, 21));
  fullTaskZS = await pplOf(await loadModel(modelDir), taskEval, SEQ);
  rows.scaleot = await variant('scaleot', 'scaleot', 1);
  rows.uniform = await variant('uniform', 'uniform', 1);
  rows.scaleotSrc = await variant('scaleot-src', 'scaleot', 0.5);
  const report = { fullTaskZS, ...rows };
  writeFileSync(join(dir, 'quality.json'), JSON.stringify(report, null, 2));
  console.log(`emulator quality (perplexity): ${JSON.stringify(report, null, 1)}`);
}, 600_000);

describe('ScaleOT against uniform LayerDrop at equal size', () => {
  it('has the same number of original blocks in the stack', () => {
    expect(rows.scaleot!.replaced).toHaveLength(2);
    expect(rows.uniform!.dropped).toHaveLength(2);
  });

  it('gives a lower Emu ZS perplexity on the held-out distillation text', () => {
    expect(rows.scaleot!.emuZS).toBeLessThan(rows.uniform!.emuZS);
  });

  it('plugs in at least as well after tuning the adapter blocks on the task', () => {
    expect(rows.scaleot!.plugin).toBeLessThanOrEqual(rows.uniform!.plugin);
    // Tuning worked: the plug-in beats the untuned full model on the task.
    expect(rows.scaleot!.plugin).toBeLessThan(fullTaskZS);
  });
});

describe('Selective Rank Compression (β = 0.5)', () => {
  it('raises Emu ZS perplexity (privacy) and moves Plug-in perplexity by less than 1%', () => {
    expect(rows.scaleotSrc!.replaced).toEqual(rows.scaleot!.replaced);
    expect(rows.scaleotSrc!.emuZS).toBeGreaterThan(rows.scaleot!.emuZS);
    expect(rows.scaleotSrc!.emuZsTask).toBeGreaterThan(rows.scaleot!.emuZsTask);
    expect(Math.abs(rows.scaleotSrc!.plugin - rows.scaleot!.plugin) / rows.scaleot!.plugin).toBeLessThan(0.01);
  });
});
