// Helpers for the emulator tests: small LLaMA models written as Hugging Face folders, text sampled
// from a model (so the model is the best predictor of its own distillation text), JSONL files.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../../native-models/data/prng';
import { writeSafetensors } from '../../../native-models/formats/safetensors';
import { buildLogitsGraph, type BuildableModel } from '../../../native-models/models/graphs';
import { openGraphSession } from '../../../native-models/models/runner';
import { toOrt } from '../../../native-models/runtime/tensors';

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
export const resultsDir = (name: string): string => {
  const d = resolve(repoRoot, 'test-results', 'scaleot', name);
  mkdirSync(d, { recursive: true });
  return d;
};

export interface TinyConfig {
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
  vocab: number;
  positions: number;
}

export const TINY: TinyConfig = { layers: 8, hidden: 64, heads: 4, intermediate: 128, vocab: 64, positions: 64 };

export function llamaConfig(c: TinyConfig, kvHeads = c.heads): Record<string, unknown> {
  return {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    hidden_size: c.hidden,
    intermediate_size: c.intermediate,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: kvHeads,
    vocab_size: c.vocab,
    max_position_embeddings: c.positions,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
  };
}

/** Random LLaMA weights (uniform, scaled like nn.Linear's default), seeded. */
export function randomLlamaWeights(c: TinyConfig, seed: number, kvHeads = c.heads): Map<string, { shape: number[]; data: Float32Array }> {
  const rng = new Rng(seed);
  const m = new Map<string, { shape: number[]; data: Float32Array }>();
  const mat = (name: string, out: number, inF: number, scale = 1) => {
    const b = (scale * Math.sqrt(3)) / Math.sqrt(inF);
    m.set(name, { shape: [out, inF], data: Float32Array.from({ length: out * inF }, () => (rng.next() * 2 - 1) * b) });
  };
  const ones = (name: string, n: number) => m.set(name, { shape: [n], data: new Float32Array(n).fill(1) });
  m.set('model.embed_tokens.weight', { shape: [c.vocab, c.hidden], data: Float32Array.from({ length: c.vocab * c.hidden }, () => rng.next() * 2 - 1) });
  for (let i = 0; i < c.layers; i++) {
    const p = `model.layers.${i}.`;
    ones(`${p}input_layernorm.weight`, c.hidden);
    ones(`${p}post_attention_layernorm.weight`, c.hidden);
    const kv = (c.hidden / c.heads) * kvHeads;
    mat(`${p}self_attn.q_proj.weight`, c.hidden, c.hidden);
    mat(`${p}self_attn.k_proj.weight`, kv, c.hidden);
    mat(`${p}self_attn.v_proj.weight`, kv, c.hidden);
    mat(`${p}self_attn.o_proj.weight`, c.hidden, c.hidden, 0.5);
    mat(`${p}mlp.gate_proj.weight`, c.intermediate, c.hidden);
    mat(`${p}mlp.up_proj.weight`, c.intermediate, c.hidden);
    mat(`${p}mlp.down_proj.weight`, c.hidden, c.intermediate, 0.5);
  }
  ones('model.norm.weight', c.hidden);
  mat('lm_head.weight', c.vocab, c.hidden, 3);
  return m;
}

export async function writeHfModel(dir: string, c: TinyConfig, weights: Map<string, { shape: number[]; data: Float32Array }>, kvHeads = c.heads): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(llamaConfig(c, kvHeads), null, 2));
  await writeSafetensors(join(dir, 'model.safetensors'), new Map([...weights].map(([n, w]) => [n, { dtype: 'F32' as const, shape: w.shape, data: w.data }])));
  return dir;
}

/** `count` sequences of `length` tokens sampled at temperature 1 from the model, each starting with BOS. */
export async function sampleSequences(model: BuildableModel, count: number, length: number, seed: number): Promise<number[][]> {
  const g = buildLogitsGraph(model, { contextLength: length, fused: false });
  const { session } = await openGraphSession(g, { provider: 'cpu', intraOpThreads: 1 });
  const rng = new Rng(seed);
  const V = model.spec.vocabSize;
  const seqs = Array.from({ length: count }, () => [1]);
  try {
    for (let t = 1; t < length; t++) {
      const ids = BigInt64Array.from(seqs.flat(), BigInt);
      const out = await session.run({ input_ids: toOrt('int64', ids, [count, t]) });
      const logits = out.logits!.data as Float32Array;
      for (let b = 0; b < count; b++) {
        const row = logits.subarray((b * t + t - 1) * V, (b * t + t) * V);
        let max = -Infinity;
        for (const x of row) max = Math.max(max, x);
        const p = Array.from(row, (x) => Math.exp(x - max));
        const total = p.reduce((a, x) => a + x, 0);
        let u = rng.next() * total;
        let pick = V - 1;
        for (let v = 0; v < V; v++) {
          if (u < p[v]!) {
            pick = v;
            break;
          }
          u -= p[v]!;
        }
        seqs[b]!.push(pick);
      }
    }
  } finally {
    await session.release();
  }
  return seqs;
}

export function writeTokensJsonl(path: string, seqs: number[][]): string {
  writeFileSync(path, seqs.map((s) => JSON.stringify({ tokens: s })).join('\n') + '\n');
  return path;
}

// ── A small trained model for the quality comparisons ──────────────────────────────────────────

const SUBJECTS = ['the cat', 'the dog', 'a bird', 'the old man', 'a small girl', 'the robot', 'my friend', 'the teacher'];
const VERBS = ['sees', 'likes', 'finds', 'follows', 'helps', 'paints', 'hears', 'watches'];
const OBJECTS = ['the red ball', 'a green tree', 'the big house', 'a blue boat', 'the little fish', 'a yellow kite', 'the tall tower', 'a quiet river'];
const PLACES = ['in the park', 'at home', 'near the sea', 'on the hill', 'after school', 'in the morning'];

/** A sentence of the synthetic corpus (English-like, byte-level), seeded. */
function sentence(rng: Rng, task: boolean): string {
  const pick = <T>(a: readonly T[]) => a[rng.int(a.length)]!;
  if (task) {
    // The downstream "task": a template the base corpus never has (two clauses joined by "then it").
    return `the robot ${pick(VERBS)} ${pick(OBJECTS)} ${pick(PLACES)}, then it ${pick(VERBS)} ${pick(OBJECTS)}.`;
  }
  const s = `${pick(SUBJECTS)} ${pick(VERBS)} ${pick(OBJECTS)}`;
  return rng.next() < 0.5 ? `${s} ${pick(PLACES)}.` : `${s}.`;
}

/** Documents of about `chars` bytes: BOS (1) then the UTF-8 bytes (all < 128). */
export function corpus(count: number, chars: number, seed: number, task = false): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => {
    let text = '';
    while (text.length < chars) text += `${sentence(rng, task)} `;
    return [1, ...Array.from(text.slice(0, chars), (c) => c.charCodeAt(0))];
  });
}

/**
 * The trained 8-layer test model (d 64, GQA 4/2, byte-level vocabulary 128), trained here with the
 * engine's own train step (all weights, AdamW, cosine schedule) on the synthetic corpus and cached
 * under test-results/ keyed by the recipe, so later runs reuse it.
 */
export const TRAINED: TinyConfig & { kvHeads: number } = { layers: 8, hidden: 64, heads: 4, kvHeads: 2, intermediate: 128, vocab: 128, positions: 128 };
const RECIPE = { steps: 500, batch: 16, seqLen: 48, lr: 3e-3, seed: 0, corpus: 'v2' };

export async function trainedTinyModel(): Promise<string> {
  const { createHash } = await import('node:crypto');
  const { existsSync } = await import('node:fs');
  const { loadModel } = await import('../../../native-models/models/load');
  const { compileTrainStep } = await import('../../../native-models/train/train-step');
  const { crossEntropy } = await import('../../../native-models/nn/loss');
  const { Batcher } = await import('../../../native-models/data/batches');
  const key = createHash('sha256').update(JSON.stringify({ RECIPE, TRAINED })).digest('hex').slice(0, 16);
  const dir = resultsDir(`tiny-trained-${key}`);
  const modelDir = join(dir, 'model');
  if (existsSync(join(modelDir, 'model.safetensors'))) return modelDir;
  const init = join(dir, 'init');
  const cfg = { ...TRAINED };
  const w = randomLlamaWeights(cfg, 99, cfg.kvHeads);
  await writeHfModel(init, cfg, w, cfg.kvHeads);
  const m = await loadModel(init);
  const docs = [...corpus(2000, RECIPE.seqLen, 11), ...corpus(40, RECIPE.seqLen, 12, true)];
  const examples = docs.map((t, i) => ({ tokens: Int32Array.from(t), lossMask: Uint8Array.from(t, (_, k) => (k === 0 ? 0 : 1)), line: i + 1 }));
  const trainable = Object.fromEntries([...m.weights].map(([n, x]) => [n, { data: x.data, shape: x.shape }]));
  const ts = await compileTrainStep(
    (g, params) => {
      const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
      const targets = g.input('targets', 'int64', ['batch', 'seq']);
      const mask = g.input('mask', 'float32', ['batch', 'seq']);
      const out = m.family.forward(g, m.spec, m.weights, { inputIds: ids, contextLength: RECIPE.seqLen }, { param: (n) => params[n] });
      return { loss: crossEntropy(g, out.logits!, targets, mask) };
    },
    { trainable, optimizer: { type: 'adamw', weightDecay: 0 }, schedule: { lr: RECIPE.lr, warmupSteps: 20, totalSteps: RECIPE.steps, decay: 'cosine' }, clip: 1.0, session: { provider: 'cpu', intraOpThreads: 2 } },
  );
  const batcher = new Batcher(examples, { batchSize: RECIPE.batch, seqLen: RECIPE.seqLen, padId: 0, seed: RECIPE.seed });
  let state = ts.initState();
  for (let s = 0; s < RECIPE.steps; s++) {
    const b = batcher.next();
    state = (await ts.step({ input_ids: { data: b.inputIds, dims: b.dims }, targets: { data: b.targets, dims: b.dims }, mask: { data: b.mask, dims: b.dims } }, state)).state;
  }
  await ts.dispose();
  const trained = new Map([...m.weights].map(([n, x]) => [n, { shape: x.shape, data: Float32Array.from(state.params[n]!) }]));
  await writeHfModel(modelDir, cfg, trained, cfg.kvHeads);
  return modelDir;
}

/**
 * Full-parameter tuning of the given blocks of a (possibly emulator) model, as the data owner
 * would do (AdamW, constant LR): returns the tuned tensors under the model's own (emulator) names.
 */
export async function tuneBlocks(
  m: { spec: import('../../../native-models/models/spec').ModelSpec; family: import('../../../native-models/models/spec').ModelFamily; weights: import('../../../native-models/models/spec').WeightMap },
  blocks: number[],
  docs: number[][],
  o: { steps: number; lr: number; batch: number; seqLen: number; seed: number },
): Promise<Map<string, { data: Float32Array; shape: number[] }>> {
  const { compileTrainStep } = await import('../../../native-models/train/train-step');
  const { crossEntropy } = await import('../../../native-models/nn/loss');
  const { Batcher } = await import('../../../native-models/data/batches');
  const { planFullLayers } = await import('../../../native-models/peft/full');
  const plan = planFullLayers(new Map([...m.weights].map(([n, w]) => [n, w.shape])), m.spec.layers, blocks);
  const trainable = Object.fromEntries(plan.names.map((n) => [n, { data: m.weights.get(n)!.data, shape: m.weights.get(n)!.shape }]));
  const frozen = Object.fromEntries([...m.weights].filter(([n]) => !(n in trainable)).map(([n, w]) => [n, { data: w.data, shape: w.shape }]));
  const ts = await compileTrainStep(
    (g, params) => {
      const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
      const targets = g.input('targets', 'int64', ['batch', 'seq']);
      const mask = g.input('mask', 'float32', ['batch', 'seq']);
      const out = m.family.forward(g, m.spec, m.weights, { inputIds: ids, contextLength: o.seqLen }, { param: (n) => params[n] });
      return { loss: crossEntropy(g, out.logits!, targets, mask) };
    },
    { trainable, frozen, optimizer: { type: 'adamw', weightDecay: 0 }, schedule: { lr: o.lr, decay: 'constant' }, clip: 1.0, session: { provider: 'cpu', intraOpThreads: 2 } },
  );
  const examples = docs.map((t, i) => ({ tokens: Int32Array.from(t), lossMask: Uint8Array.from(t, (_, k) => (k === 0 ? 0 : 1)), line: i + 1 }));
  const batcher = new Batcher(examples, { batchSize: o.batch, seqLen: o.seqLen, padId: 0, seed: o.seed });
  let state = ts.initState();
  for (let s = 0; s < o.steps; s++) {
    const b = batcher.next();
    state = (await ts.step({ input_ids: { data: b.inputIds, dims: b.dims }, targets: { data: b.targets, dims: b.dims }, mask: { data: b.mask, dims: b.dims } }, state)).state;
  }
  await ts.dispose();
  return new Map(plan.names.map((n) => [n, { data: Float32Array.from(state.params[n]!), shape: m.weights.get(n)!.shape }]));
}

/** Perplexity of a model on token documents (CLI.md rules: per document, rolling windows). */
export async function pplOf(m: import('../../../native-models/models/graphs').BuildableModel, docs: number[][], seqLen: number): Promise<number> {
  const { ModelRunner } = await import('../../../native-models/models/runner');
  const { perplexity } = await import('../../../native-models/eval/perplexity');
  const runner = new ModelRunner(m, { contextLength: seqLen, settings: { provider: 'cpu', intraOpThreads: 2 } });
  try {
    return (await perplexity(runner, docs, { seqLen, batchSize: 16 })).ppl;
  } finally {
    await runner.release();
  }
}
