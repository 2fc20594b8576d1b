import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { BYTE_LEVEL_IDS, loadTokenizer, writeByteLevelTokenizerJson } from '../../../native-models/formats/tokenizer';
import { tempDir } from './helpers';

const tmp = tempDir('offsite-tokenizer-');
afterAll(() => tmp.cleanup());

const texts = ['Hello world', '  two  spaces\n\ttab and newline', 'héllo wörld — ünïcode', '日本語 and emoji 😀👍🏽', '', 'a'.repeat(1000)];

describe('built-in byte-level tokenizer', () => {
  it('is a tokenizer.json that @huggingface/tokenizers itself loads and round-trips', async () => {
    const { tokenizerJson, tokenizerConfig } = await writeByteLevelTokenizerJson(tmp.dir);
    const tok = new Tokenizer(JSON.parse(readFileSync(tokenizerJson, 'utf8')), JSON.parse(readFileSync(tokenizerConfig, 'utf8')));
    // "hé": BOS, then the UTF-8 bytes 0x68 0xC3 0xA9 as ids.
    expect(tok.encode('hé').ids).toEqual([256, 0x68, 0xc3, 0xa9]);
    for (const t of texts) {
      const ids = tok.encode(t, { add_special_tokens: false }).ids;
      expect(ids).toEqual(Array.from(new TextEncoder().encode(t)));
      expect(ids.length === 0 ? '' : tok.decode(ids)).toBe(t); // the library refuses to decode []
    }
  });

  it('loads through loadTokenizer with BOS/EOS/PAD ids and vocabulary size', async () => {
    await writeByteLevelTokenizerJson(tmp.dir);
    const t = await loadTokenizer(tmp.dir);
    expect(t.vocabSize).toBe(259);
    expect([t.bosId, t.eosId, t.padId]).toEqual([BYTE_LEVEL_IDS.bos, BYTE_LEVEL_IDS.eos, BYTE_LEVEL_IDS.pad]);
    expect(t.encode('ok')).toEqual([256, 111, 107]);
    expect(t.encode('ok', { addSpecialTokens: false })).toEqual([111, 107]);
    for (const s of texts) expect(t.decode(t.encode(s), { skipSpecialTokens: true })).toBe(s);
    expect(t.decode([])).toBe('');
    expect(t.decode([256, 104, 105, 257])).toBe('<s>hi</s>');
    expect(t.idToToken(257)).toBe('</s>');
  });

  it('can be written without BOS', async () => {
    const { dir, cleanup } = tempDir('offsite-tok-nobos-');
    await writeByteLevelTokenizerJson(dir, { addBos: false });
    const t = await loadTokenizer(join(dir, 'tokenizer.json'));
    expect(t.encode('ab')).toEqual([97, 98]);
    cleanup();
  });
});

describe('loading tokenizer.json strictly', () => {
  it('refuses duplicate keys and a missing model', async () => {
    const { dir, cleanup } = tempDir('offsite-tok-bad-');
    writeFileSync(join(dir, 'tokenizer.json'), '{"model":{"type":"BPE","vocab":{"a":0,"a":1},"merges":[]}}');
    await expect(loadTokenizer(dir)).rejects.toMatchObject({ rule: 'tokenizer.duplicate-key' });
    writeFileSync(join(dir, 'tokenizer.json'), '{"version":"1.0"}');
    await expect(loadTokenizer(dir)).rejects.toMatchObject({ rule: 'tokenizer.bad-model' });
    cleanup();
  });
});
