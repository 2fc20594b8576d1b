// The committed demo base model (native-models/demo/base): small enough to ship, its config and
// tokenizer agree, and its held-out perplexity is the model card's number and far below what a
// byte unigram model (computed here from the training text) achieves.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL } from '../../../native-models/demo/model';
import { DEMO_BASE_DIR, DEMO_TASKS_DIR } from '../../../native-models/demo/paths';
import { heldoutPerplexity, readTextDocs } from '../../../native-models/demo/pretrain';
import { readSafetensorsHeader } from '../../../native-models/formats/safetensors';
import { loadTokenizer } from '../../../native-models/formats/tokenizer';
import { loadModel } from '../../../native-models/models/load';

const texts = async (file: string): Promise<string[]> =>
  (await readFile(join(DEMO_TASKS_DIR, file), 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { text: string }).text);

describe('demo base model', () => {
  it('is a Hugging Face folder of at most 8 MB of float32 weights', async () => {
    expect((await readdir(DEMO_BASE_DIR)).sort()).toEqual(['MODEL_CARD.md', 'config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const size = (await stat(join(DEMO_BASE_DIR, 'model.safetensors'))).size;
    expect(size).toBeLessThanOrEqual(8_000_000);
    const header = await readSafetensorsHeader(join(DEMO_BASE_DIR, 'model.safetensors'));
    const infos = header.tensors;
    expect(infos.every((t) => t.dtype === 'F32')).toBe(true);
    const params = infos.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    const card = await readFile(join(DEMO_BASE_DIR, 'MODEL_CARD.md'), 'utf8');
    expect(card).toContain(`| parameters | ${params.toLocaleString('en-US')} |`);
    expect(card).toContain('npm run pretrain-demo');
  });

  it('has the demo shape, and a byte-level tokenizer that agrees with config.json', async () => {
    const m = await loadModel(DEMO_BASE_DIR);
    const s = m.spec;
    expect(s.family).toBe('llama');
    expect([s.hiddenSize, s.layers, s.heads, s.kvHeads, s.intermediateSize, s.maxPositions]).toEqual([
      DEMO_MODEL.hiddenSize, DEMO_MODEL.layers, DEMO_MODEL.heads, DEMO_MODEL.kvHeads, DEMO_MODEL.intermediateSize, DEMO_MODEL.contextLength,
    ]);
    const config = JSON.parse(await readFile(join(DEMO_BASE_DIR, 'config.json'), 'utf8')) as Record<string, number>;
    const tok = await loadTokenizer(DEMO_BASE_DIR);
    expect(tok.vocabSize).toBe(config.vocab_size);
    expect([tok.bosId, tok.eosId, tok.padId]).toEqual([config.bos_token_id, config.eos_token_id, config.pad_token_id]);
    // <s>, then the UTF-8 bytes themselves.
    expect(tok.encode('Ahab é')).toEqual([256, 65, 104, 97, 98, 32, 0xc3, 0xa9]);
    expect(tok.decode(tok.encode('Call me Ishmael.'), { skipSpecialTokens: true })).toBe('Call me Ishmael.');
  });

  it('scores the held-out chapters at the model card perplexity, far below a byte unigram model', { timeout: 600_000 }, async () => {
    const train = await texts('moby-dick-train.jsonl');
    const held = await texts('moby-dick-heldout.jsonl');
    // Byte unigram model with add-one smoothing, fitted on the training chapters.
    const counts = new Float64Array(256);
    let total = 0;
    for (const t of train) for (const b of Buffer.from(t, 'utf8')) counts[b]!++, total++;
    let nll = 0;
    let n = 0;
    for (const t of held) for (const b of Buffer.from(t, 'utf8')) nll -= Math.log((counts[b]! + 1) / (total + 256)), n++;
    const unigramPpl = Math.exp(nll / n);

    const m = await loadModel(DEMO_BASE_DIR);
    const docs = await readTextDocs(join(DEMO_TASKS_DIR, 'moby-dick-heldout.jsonl'), m.tokenizer!);
    const r = await heldoutPerplexity(m, docs, 2);
    expect(r.tokens).toBe(n);
    const card = await readFile(join(DEMO_BASE_DIR, 'MODEL_CARD.md'), 'utf8');
    const stated = Number(/Held-out perplexity: \*\*([0-9.]+)\*\*/.exec(card)?.[1]);
    expect(Math.abs(r.ppl - stated) / stated).toBeLessThan(1e-3);
    // A clear margin: at most half the unigram perplexity (English bytes: unigram ≈ 20 per byte).
    expect(r.ppl).toBeLessThan(0.5 * unigramPpl);
  });
});
