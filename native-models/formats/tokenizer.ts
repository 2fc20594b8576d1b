// Tokenizers: a local `tokenizer.json` (+ optional `tokenizer_config.json`) loaded with
// @huggingface/tokenizers, which is pure JS and never touches the network when given the parsed
// files. Also a built-in byte-level tokenizer (ids 0..255 are the bytes, then specials), written as
// a real HF tokenizer.json so that every tool that reads tokenizer.json can use it.
import { Tokenizer } from '@huggingface/tokenizers';
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from './atomic';
import { FormatError, shortName } from './errors';
import { readStrictJsonFile } from './json';

export interface LoadedTokenizer {
  /** Embedding rows needed: the largest id (vocabulary or added token) + 1. */
  vocabSize: number;
  bosId: number | null;
  eosId: number | null;
  padId: number | null;
  /** Token ids of `text`; special tokens (e.g. BOS) are added as the tokenizer's post-processor says, unless addSpecialTokens is false. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

export interface TokenizerHints {
  /** Fallback ids from config.json (bos_token_id / eos_token_id / pad_token_id). */
  bosId?: number | null;
  eosId?: number | number[] | null;
  padId?: number | null;
}

/**
 * Loads a tokenizer from a folder (tokenizer.json, optional tokenizer_config.json) or a
 * tokenizer.json path. BOS/EOS come from tokenizer_config.json, else from `hints` (config.json).
 */
export async function loadTokenizer(pathOrDir: string, hints: TokenizerHints = {}): Promise<LoadedTokenizer> {
  const st = await stat(pathOrDir);
  const file = st.isDirectory() ? join(pathOrDir, 'tokenizer.json') : pathOrDir;
  const json = await readStrictJsonFile(file, { what: shortName(file), rulePrefix: 'tokenizer', maxBytes: 256 * 1024 * 1024, maxDepth: 64 });
  const model = json.model as Record<string, unknown> | undefined;
  if (!model || typeof model !== 'object' || typeof model.type !== 'string') {
    throw new FormatError('tokenizer.bad-model', `${shortName(file)} has no "model" with a "type" (rule: a tokenizer.json describes its model).`, file);
  }
  const configPath = join(dirname(file), 'tokenizer_config.json');
  const hasConfig = await stat(configPath).then((s) => s.isFile(), () => false);
  const config = hasConfig ? await readStrictJsonFile(configPath, { what: 'tokenizer_config.json', rulePrefix: 'tokenizer.config', maxBytes: 16 * 1024 * 1024 }) : {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    throw new FormatError('tokenizer.unsupported', `${shortName(file)} could not be loaded: ${(e as Error).message.replace(/\.$/, '')}.`, file);
  }
  const vocab = tok.get_vocab(true);
  let maxId = -1;
  for (const id of vocab.values()) if (id > maxId) maxId = id;
  const idOf = (name: string, hint: number | number[] | null | undefined): number | null => {
    const s = tokenString(config[name]);
    const id = s === undefined ? undefined : tok.token_to_id(s);
    if (id !== undefined) return id;
    if (typeof hint === 'number') return hint;
    if (Array.isArray(hint) && hint.length > 0) return hint[0]!;
    return null;
  };
  return {
    vocabSize: maxId + 1,
    bosId: idOf('bos_token', hints.bosId),
    eosId: idOf('eos_token', hints.eosId),
    padId: idOf('pad_token', hints.padId),
    encode: (text, opts = {}) => tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids,
    // The library throws on an empty list; an empty sequence is simply the empty text.
    decode: (ids, opts = {}) => (ids.length === 0 ? '' : tok.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false })),
    tokenToId: (t) => tok.token_to_id(t),
    idToToken: (id) => tok.id_to_token(id),
  };
}

/** GPT-2's reversible byte → printable character map, used by ByteLevel pre-tokenizers. */
export function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const map: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) map[b] = keep.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++);
  return map;
}

export const BYTE_LEVEL_SPECIALS = { bos: '<s>', eos: '</s>', pad: '<pad>' } as const;
/** Ids of the byte-level tokenizer's specials (after the 256 byte ids). */
export const BYTE_LEVEL_IDS = { bos: 256, eos: 257, pad: 258, vocabSize: 259 } as const;

/** The byte-level tokenizer as a tokenizer.json object: BPE over the 256 byte symbols, no merges, BOS prepended. */
export function byteLevelTokenizerJson(opts: { addBos?: boolean } = {}): Record<string, unknown> {
  const addBos = opts.addBos ?? true;
  const symbols = bytesToUnicode();
  const vocab: Record<string, number> = {};
  symbols.forEach((s, b) => (vocab[s] = b));
  const specials = [
    { id: BYTE_LEVEL_IDS.bos, content: BYTE_LEVEL_SPECIALS.bos },
    { id: BYTE_LEVEL_IDS.eos, content: BYTE_LEVEL_SPECIALS.eos },
    { id: BYTE_LEVEL_IDS.pad, content: BYTE_LEVEL_SPECIALS.pad },
  ];
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
  const bos = BYTE_LEVEL_SPECIALS.bos;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((s) => ({ ...s, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: addBos
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
          special_tokens: { [bos]: { id: bos, ids: [BYTE_LEVEL_IDS.bos], tokens: [bos] } },
        }
      : byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
}

/** Writes the byte-level tokenizer (tokenizer.json + tokenizer_config.json) into `dir`, atomically. */
export async function writeByteLevelTokenizerJson(dir: string, opts: { addBos?: boolean } = {}): Promise<{ tokenizerJson: string; tokenizerConfig: string }> {
  const tokenizerJson = join(dir, 'tokenizer.json');
  const tokenizerConfig = join(dir, 'tokenizer_config.json');
  const config = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: BYTE_LEVEL_SPECIALS.bos,
    eos_token: BYTE_LEVEL_SPECIALS.eos,
    pad_token: BYTE_LEVEL_SPECIALS.pad,
    add_bos_token: opts.addBos ?? true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 1_000_000,
  };
  const enc = new TextEncoder();
  await writeFileAtomic(tokenizerJson, enc.encode(`${JSON.stringify(byteLevelTokenizerJson(opts), null, 1)}\n`));
  await writeFileAtomic(tokenizerConfig, enc.encode(`${JSON.stringify(config, null, 2)}\n`));
  return { tokenizerJson, tokenizerConfig };
}
