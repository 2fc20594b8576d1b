// llama2.c checkpoints (legacy version 0: 7 int32 header, then float32 arrays, little endian).
// Parsed strictly: header fields in sane ranges and the file size must match the layout exactly
// (shared or unshared classifier, legacy freq_cis arrays included). See
// ../shared/fixtures/llama2c/README.md for the layout.
import { open } from 'node:fs/promises';
import type { Tensor } from './dtypes';
import { FormatError, shortName } from './errors';
import type { LlamaFamilyConfig } from './hf';

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  maxSeqLen: number;
  /** True when the classifier is the token embedding (positive vocab_size in the header). */
  sharedClassifier: boolean;
  headSize: number;
  kvDim: number;
}

export interface Llama2cLayer {
  rmsAtt: Float32Array; // [dim]
  wq: Float32Array; // [dim, dim], llama2.c's adjacent-pair RoPE row order
  wk: Float32Array; // [kvDim, dim], same
  wv: Float32Array; // [kvDim, dim]
  wo: Float32Array; // [dim, dim]
  rmsFfn: Float32Array; // [dim]
  w1: Float32Array; // [hidden, dim] (gate)
  w2: Float32Array; // [dim, hidden] (down)
  w3: Float32Array; // [hidden, dim] (up)
}

export interface Llama2cCheckpoint {
  path: string;
  config: Llama2cConfig;
  /** The same model as a Hugging Face LLaMA config (what the model builder consumes). */
  hfConfig: LlamaFamilyConfig;
  tokenEmbedding: Float32Array; // [vocab, dim]
  layers: Llama2cLayer[];
  rmsFinal: Float32Array; // [dim]
  freqCisReal: Float32Array; // [maxSeqLen, headSize/2], legacy, unused by the model
  freqCisImag: Float32Array;
  /** [vocab, dim]; the very same array as tokenEmbedding when the classifier is shared. */
  wcls: Float32Array;
  parameterCount: number;
}

const HEADER_BYTES = 28;
const MAGIC_V1 = 0x616b3432; // "ak42": llama2.c export versions ≥ 1

function fail(file: string, rule: string, message: string, field?: string): never {
  throw new FormatError(`llama2c.${rule}`, `${shortName(file)}: ${message}`, file, field);
}

/** Whether the first bytes look like a PyTorch pickle (zip container or a raw pickle stream). */
export function looksLikePickle(head: Uint8Array): boolean {
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return true;
  return head.length >= 3 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5 && head[2] !== 0x00;
}

function floatsPerLayout(c: Omit<Llama2cConfig, 'headSize' | 'kvDim'> & { headSize: number; kvDim: number }): number {
  const { dim, hiddenDim: h, nLayers: L, vocabSize: V, maxSeqLen: S, kvDim: kv, headSize: hs } = c;
  return V * dim + L * dim + L * dim * dim + 2 * L * kv * dim + L * dim * dim + L * dim + 3 * L * h * dim + dim + S * hs + (c.sharedClassifier ? 0 : V * dim);
}

/** Validates the 7-field header; returns the config and the exact file size the layout implies. */
export function parseLlama2cHeader(header: Int32Array, fileSize: number, file = 'checkpoint.bin'): { config: Llama2cConfig; expectedSize: number } {
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, maxSeqLen] = Array.from(header) as [number, number, number, number, number, number, number];
  if (dim === MAGIC_V1) {
    fail(file, 'unsupported-version', 'is a llama2.c export of version 1 or later; only the legacy version 0 float32 layout is supported (re-export with "python export.py --version 0").');
  }
  const range = (name: string, v: number, lo: number, hi: number): void => {
    if (!(v >= lo && v <= hi)) fail(file, 'bad-header', `header field ${name} is ${v}, outside the sane range ${lo}..${hi} (rule: header fields in sane ranges).`, name);
  };
  range('dim', dim, 1, 65536);
  range('hidden_dim', hiddenDim, 1, 1 << 20);
  range('n_layers', nLayers, 1, 1024);
  range('n_heads', nHeads, 1, 1024);
  range('n_kv_heads', nKvHeads, 1, nHeads);
  range('|vocab_size|', Math.abs(vocabRaw), 1, 1_000_000);
  range('max_seq_len', maxSeqLen, 1, 1 << 20);
  if (dim % nHeads !== 0) fail(file, 'bad-header', `dim ${dim} is not divisible by n_heads ${nHeads} (rule: heads split dim evenly).`, 'n_heads');
  if (nHeads % nKvHeads !== 0) fail(file, 'bad-header', `n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads} (rule: query heads share key/value heads in equal groups).`, 'n_kv_heads');
  const headSize = dim / nHeads;
  if (headSize % 2 !== 0) fail(file, 'bad-header', `head size ${headSize} is odd (rule: rotary embeddings rotate pairs, so the head size is even).`, 'n_heads');
  const config: Llama2cConfig = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(vocabRaw),
    maxSeqLen,
    sharedClassifier: vocabRaw > 0,
    headSize,
    kvDim: (dim * nKvHeads) / nHeads,
  };
  const expectedSize = HEADER_BYTES + 4 * floatsPerLayout(config);
  if (fileSize !== expectedSize) {
    const other = HEADER_BYTES + 4 * floatsPerLayout({ ...config, sharedClassifier: !config.sharedClassifier });
    const hint = fileSize === other ? ` (that size would fit a ${config.sharedClassifier ? 'separate' : 'shared'} classifier, but the sign of vocab_size says ${config.sharedClassifier ? 'shared' : 'separate'})` : fileSize < expectedSize ? ' (the file is truncated)' : ' (extra bytes follow the weights)';
    fail(file, 'size-mismatch', `is ${fileSize} bytes but its header (dim ${dim}, hidden ${hiddenDim}, ${nLayers} layers, ${nHeads} heads, ${nKvHeads} kv heads, vocab ${config.vocabSize}, seq ${maxSeqLen}, ${config.sharedClassifier ? 'shared' : 'separate'} classifier) implies exactly ${expectedSize}${hint} (rule: exact file size).`);
  }
  return { config, expectedSize };
}

/** Trainable parameters (the legacy freq_cis tables are not parameters). */
export function llama2cParameterCount(c: Llama2cConfig): number {
  const { dim, hiddenDim: h, nLayers: L, vocabSize: V, kvDim: kv } = c;
  return V * dim + L * (2 * dim + 2 * dim * dim + 2 * kv * dim + 3 * h * dim) + dim + (c.sharedClassifier ? 0 : V * dim);
}

/** Reads and validates only the header and the file size (no weights are read). */
export async function readLlama2cHeader(path: string): Promise<{ config: Llama2cConfig; fileSize: number }> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) fail(path, 'not-file', 'is not a regular file.');
    const head = new Uint8Array(HEADER_BYTES);
    const { bytesRead } = await fh.read(head, 0, HEADER_BYTES, 0);
    checkHead(path, head.subarray(0, bytesRead), st.size);
    return { config: parseLlama2cHeader(new Int32Array(head.buffer, 0, 7), st.size, path).config, fileSize: st.size };
  } finally {
    await fh.close();
  }
}

function checkHead(path: string, head: Uint8Array, size: number): void {
  if (looksLikePickle(head)) {
    fail(path, 'pickle-refused', 'is a PyTorch pickle file, not a llama2.c checkpoint; pickle files can run arbitrary code when loaded and are refused. Convert it to safetensors on a machine with PyTorch (torch.load(..., weights_only=True), then safetensors.torch.save_file).');
  }
  if (head.length < HEADER_BYTES) fail(path, 'too-short', `is ${size} bytes, shorter than the 28-byte llama2.c header (rule: exact file size).`);
}

/** The llama2.c model as a Hugging Face LLaMA config (rms eps 1e-5 and RoPE θ 10000 as llama2.c uses). */
export function llama2cToHfConfig(c: Llama2cConfig): LlamaFamilyConfig {
  return {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: c.headSize,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    hidden_act: 'silu',
    tie_word_embeddings: c.sharedClassifier,
    attention_bias: false,
    attention_out_bias: false,
    mlp_bias: false,
    sliding_window: null,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: null,
    torch_dtype: 'float32',
  };
}

/** Reads and validates a llama2.c checkpoint; all arrays are views into one aligned buffer. */
export async function readLlama2c(path: string): Promise<Llama2cCheckpoint> {
  const fh = await open(path, 'r');
  let buf: ArrayBuffer;
  let config: Llama2cConfig;
  try {
    const st = await fh.stat();
    if (!st.isFile()) fail(path, 'not-file', 'is not a regular file.');
    const head = new Uint8Array(HEADER_BYTES);
    const { bytesRead } = await fh.read(head, 0, HEADER_BYTES, 0);
    checkHead(path, head.subarray(0, bytesRead), st.size);
    ({ config } = parseLlama2cHeader(new Int32Array(head.buffer, 0, 7), st.size, path));
    buf = new ArrayBuffer(st.size);
    const all = new Uint8Array(buf);
    let got = 0;
    while (got < st.size) {
      const r = await fh.read(all, got, st.size - got, got);
      if (r.bytesRead === 0) fail(path, 'size-mismatch', 'shrank while it was being read (rule: exact file size).');
      got += r.bytesRead;
    }
  } finally {
    await fh.close();
  }
  const { dim, hiddenDim: h, nLayers: L, vocabSize: V, kvDim: kv, maxSeqLen: S, headSize: hs } = config;
  let off = HEADER_BYTES / 4;
  const all = new Float32Array(buf, 0, buf.byteLength / 4);
  const take = (n: number): Float32Array => {
    const v = all.subarray(off, off + n);
    off += n;
    return v;
  };
  const tokenEmbedding = take(V * dim);
  const rmsAtt = take(L * dim);
  const wq = take(L * dim * dim);
  const wk = take(L * kv * dim);
  const wv = take(L * kv * dim);
  const wo = take(L * dim * dim);
  const rmsFfn = take(L * dim);
  const w1 = take(L * h * dim);
  const w2 = take(L * dim * h);
  const w3 = take(L * h * dim);
  const rmsFinal = take(dim);
  const freqCisReal = take((S * hs) / 2);
  const freqCisImag = take((S * hs) / 2);
  const wcls = config.sharedClassifier ? tokenEmbedding : take(V * dim);
  const layer = (a: Float32Array, i: number, n: number): Float32Array => a.subarray(i * n, (i + 1) * n);
  const layers: Llama2cLayer[] = [];
  for (let i = 0; i < L; i++) {
    layers.push({
      rmsAtt: layer(rmsAtt, i, dim),
      wq: layer(wq, i, dim * dim),
      wk: layer(wk, i, kv * dim),
      wv: layer(wv, i, kv * dim),
      wo: layer(wo, i, dim * dim),
      rmsFfn: layer(rmsFfn, i, dim),
      w1: layer(w1, i, h * dim),
      w2: layer(w2, i, dim * h),
      w3: layer(w3, i, h * dim),
    });
  }
  return { path, config, hfConfig: llama2cToHfConfig(config), tokenEmbedding, layers, rmsFinal, freqCisReal, freqCisImag, wcls, parameterCount: llama2cParameterCount(config) };
}

/**
 * Reorders the rows of a q or k projection [nHeads·headDim, cols] from the adjacent-pair RoPE layout
 * (llama2.c, Meta's original checkpoints: head rows 2i and 2i+1 form rotation pair i) to Hugging
 * Face's half-split layout (pair i is rows i and i + headDim/2). This is the `permute` of
 * transformers' convert_llama_weights_to_hf.py: w.view(h, d/2, 2, cols).transpose(1, 2).
 */
export function permuteRopeRows(w: Float32Array, nHeads: number, cols: number): Float32Array {
  return ropeRowShuffle(w, nHeads, cols, false);
}

/** The inverse of permuteRopeRows: Hugging Face half-split rows → adjacent-pair rows. */
export function unpermuteRopeRows(w: Float32Array, nHeads: number, cols: number): Float32Array {
  return ropeRowShuffle(w, nHeads, cols, true);
}

function ropeRowShuffle(w: Float32Array, nHeads: number, cols: number, inverse: boolean): Float32Array {
  const rows = w.length / cols;
  if (!Number.isInteger(rows) || rows % nHeads !== 0 || (rows / nHeads) % 2 !== 0) {
    throw new RangeError(`Cannot permute RoPE rows: ${w.length} values are not ${nHeads} heads of an even number of rows of ${cols} columns.`);
  }
  const headDim = rows / nHeads;
  const half = headDim / 2;
  const out = new Float32Array(w.length);
  for (let hd = 0; hd < nHeads; hd++) {
    const base = hd * headDim;
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const adjacent = base + 2 * i + j; // llama2.c row
        const split = base + j * half + i; // Hugging Face row
        const [from, to] = inverse ? [split, adjacent] : [adjacent, split];
        out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/**
 * The checkpoint's weights under Hugging Face LLaMA names (float32), with wq/wk rows permuted to
 * the half-split RoPE layout, so llama2.c models load through the same path as HF folders.
 * lm_head.weight is present only when the classifier is not shared.
 */
export function llama2cToHfTensors(ck: Llama2cCheckpoint): Map<string, Tensor> {
  const { dim, hiddenDim: h, kvDim: kv, vocabSize: V, nHeads, nKvHeads } = ck.config;
  const out = new Map<string, Tensor>();
  const put = (name: string, shape: number[], data: Float32Array): void => void out.set(name, { dtype: 'F32', shape, data });
  put('model.embed_tokens.weight', [V, dim], ck.tokenEmbedding);
  ck.layers.forEach((l, i) => {
    const p = `model.layers.${i}`;
    put(`${p}.input_layernorm.weight`, [dim], l.rmsAtt);
    put(`${p}.self_attn.q_proj.weight`, [dim, dim], permuteRopeRows(l.wq, nHeads, dim));
    put(`${p}.self_attn.k_proj.weight`, [kv, dim], permuteRopeRows(l.wk, nKvHeads, dim));
    put(`${p}.self_attn.v_proj.weight`, [kv, dim], l.wv);
    put(`${p}.self_attn.o_proj.weight`, [dim, dim], l.wo);
    put(`${p}.post_attention_layernorm.weight`, [dim], l.rmsFfn);
    put(`${p}.mlp.gate_proj.weight`, [h, dim], l.w1);
    put(`${p}.mlp.down_proj.weight`, [dim, h], l.w2);
    put(`${p}.mlp.up_proj.weight`, [h, dim], l.w3);
  });
  put('model.norm.weight', [dim], ck.rmsFinal);
  if (!ck.config.sharedClassifier) put('lm_head.weight', [V, dim], ck.wcls);
  return out;
}
