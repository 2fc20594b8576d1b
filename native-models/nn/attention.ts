// Causal self-attention with grouped-query heads, rotary positions, a padding mask and a KV cache.
// Queries are grouped as [B, Hkv, rep, T, Dh] so each kv head serves its `rep` query heads by
// broadcasting in MatMul: keys and values are never copied per query head (and their gradient is
// summed over the group by autodiff's unbroadcast).
import type { Graph, Value } from '../onnx/graph';
import { fusedKernels } from './fused';
import { rope, ropeSource } from './rope';
import { attentionCoreTrainable, rotaryTrainable } from './train-fusions';

export interface AttentionOptions {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Rotary tables for the current positions, [T, Dh] or [B, T, Dh] (see ropeAt/positionIds). */
  rope?: { cos: Value; sin: Value };
  /** [B, S] over past + current positions: 1 for tokens, 0 for padding (any numeric type). */
  attentionMask?: Value;
  /** Cached keys and values [B, Hkv, P, Dh] (keys already rotated). */
  past?: { k: Value; v: Value };
  /** Default true: position i attends to keys at positions ≤ i (counting the past). */
  causal?: boolean;
  /** Score scale; default 1/√headDim. */
  scale?: number;
}

export interface AttentionResult {
  /** [B, T, numHeads·headDim], before the output projection. */
  out: Value;
  /** Keys and values for the cache, [B, Hkv, P+T, Dh]. */
  present: { k: Value; v: Value };
  /**
   * Fused kernels only: the new positions' keys (rotated) and values as projected, [B, T, Hkv·Dh],
   * so a cache step can return them without slicing them back out of `present`.
   */
  added?: { k: Value; v: Value };
}

/** Additive bias for masked scores: finite, so a fully masked row gives a uniform row, not NaN. */
const MASKED = -1e9;

/** q [B, T, H·Dh], k and v [B, T, Hkv·Dh] (already projected). */
export function causalSelfAttention(g: Graph, q: Value, k: Value, v: Value, o: AttentionOptions): AttentionResult {
  const { numHeads: H, numKvHeads: Hkv, headDim: Dh } = o;
  if (H % Hkv !== 0) throw new Error(`attention: ${Hkv} kv heads do not divide ${H} heads`);
  const rep = H / Hkv;
  const [B, T] = [q.shape[0]!, q.shape[1]!];
  if (q.shape[2] !== H * Dh) throw new Error(`attention: queries have width ${q.shape[2]}, expected ${H}·${Dh}`);
  if (k.shape[2] !== Hkv * Dh || v.shape[2] !== Hkv * Dh) throw new Error(`attention: keys/values have width ${k.shape[2]}/${v.shape[2]}, expected ${Hkv}·${Dh}`);
  if (fusedKernels(g) && q.dtype === 'float32' && !o.attentionMask) {
    const rot = o.rope ? ropeSource(o.rope) : undefined;
    if (!o.rope || rot) return fusedAttention(g, q, k, v, o, rot);
  }

  // float32 with positions start + arange(T): one rotary kernel per projection before the head
  // split, with a one-kernel gradient (train-fusions.ts); otherwise rope on the split heads below.
  const rot = o.rope && q.dtype === 'float32' && o.rope.cos.shape.length === 2 ? ropeSource(o.rope) : undefined;
  const qr = rot ? rotaryTrainable(g, q, rot.table, rot.start, H, Dh) : q;
  const kr = rot ? rotaryTrainable(g, k, rot.table, rot.start, Hkv, Dh) : k;
  let qh = g.transpose(g.reshape(qr, [B, T, Hkv, rep, Dh]), [0, 2, 3, 1, 4]); // [B, Hkv, rep, T, Dh]
  let kh = g.transpose(g.reshape(kr, [B, T, Hkv, Dh]), [0, 2, 1, 3]); // [B, Hkv, T, Dh]
  const vh = g.transpose(g.reshape(v, [B, T, Hkv, Dh]), [0, 2, 1, 3]);
  if (o.rope && !rot) {
    const { cos, sin } = o.rope;
    const per = cos.shape.length === 3; // per-row positions [B, T, Dh]
    qh = rope(g, qh, per ? g.unsqueeze(cos, [1, 2]) : cos, per ? g.unsqueeze(sin, [1, 2]) : sin);
    kh = rope(g, kh, per ? g.unsqueeze(cos, [1]) : cos, per ? g.unsqueeze(sin, [1]) : sin);
  }
  const kAll = o.past ? g.concat([o.past.k, kh], 2) : kh; // [B, Hkv, S, Dh]
  const vAll = o.past ? g.concat([o.past.v, vh], 2) : vh;
  const S = kAll.shape[2]!;

  const biases: Value[] = [];
  if (o.causal ?? true) biases.push(shared(g, `causal|${T}|${S}|${q.dtype}`, () => causalBias(g, qh, kAll, T, S)));
  const mask = o.attentionMask;
  if (mask) biases.push(shared(g, `padding|${mask.name}|${S}|${q.dtype}`, () => paddingBias(g, mask, S, q.dtype)));
  // softmax(scale·q·kᵀ + biases)·v with a transpose-free written-out backward (train-fusions.ts).
  const ctx = attentionCoreTrainable(g, qh, kAll, vAll, biases, o.scale ?? 1 / Math.sqrt(Dh)); // [B, Hkv, rep, T, Dh]
  const out = g.reshape(g.transpose(ctx, [0, 3, 1, 2, 4]), [B, T, H * Dh]);
  return { out, present: { k: kAll, v: vAll } };
}

/**
 * The same attention as one ONNX Attention kernel (opset 23: grouped-query heads, the cache
 * concatenated inside, causal masking offset by the cached length) after two com.microsoft
 * RotaryEmbedding kernels that read the full cos/sin tables from the first position on.
 * Inference only (see fused.ts).
 */
function fusedAttention(g: Graph, q: Value, k: Value, v: Value, o: AttentionOptions, rot: ReturnType<typeof ropeSource>): AttentionResult {
  const { numHeads: H, numKvHeads: Hkv, headDim: Dh } = o;
  const [B, T] = [q.shape[0]!, q.shape[1]!];
  let qr = q;
  let kr = k;
  if (rot) {
    // The kernel's tables hold each frequency once ([positions, Dh/2]); ropeTables repeats them over both halves.
    const cos = g.slice(rot.table.cos, [1], [0], [Dh / 2]);
    const sin = g.slice(rot.table.sin, [1], [0], [Dh / 2]);
    // position_ids of shape [1]: every row starts there. A start read off a shape as [1] and
    // squeezed to a scalar (graphs.ts: the cache length) is used before the squeeze.
    const src = rot.start.producer;
    const start = src?.op === 'Squeeze' && src.inputs[0]?.shape.length === 1 ? src.inputs[0] : g.reshape(rot.start, [1]);
    const rotary = (x: Value, heads: number) => g.emit('RotaryEmbedding', [x, start, cos, sin], { num_heads: heads, interleaved: 0 }, [{ dtype: x.dtype, shape: x.shape }], 'com.microsoft')[0]!;
    qr = rotary(q, H);
    kr = rotary(k, Hkv);
  }
  const P = o.past?.k.shape[2];
  const S = P === undefined ? T : typeof P === 'number' && typeof T === 'number' ? P + T : `${P === 0 ? '' : `${P}+`}${T}`;
  const kv = { dtype: q.dtype, shape: [B, Hkv, S, Dh] };
  const [out, presentK, presentV] = g.emit(
    'Attention',
    [qr, kr, v, null, o.past?.k ?? null, o.past?.v ?? null],
    { q_num_heads: H, kv_num_heads: Hkv, scale: { f: o.scale ?? 1 / Math.sqrt(Dh) }, is_causal: (o.causal ?? true) ? 1 : 0 },
    [{ dtype: q.dtype, shape: [B, T, H * Dh] }, kv, kv],
    '',
    undefined,
    // Present keys and values: left out where no cache is kept (the kernel wants them with a past).
    o.past ? undefined : [1, 2],
  );
  return { out: out!, present: { k: presentK!, v: presentV! }, added: { k: kr, v } };
}

/**
 * Masks built once per forward pass instead of once per layer: every layer of a pass has the same
 * query and key lengths (equal symbolic dimensions are equal sizes), so they share one bias. Kept
 * per root graph; a layer in a subgraph that cannot see an earlier bias builds its own.
 */
const biases = new WeakMap<Graph, Map<string, Value>>();

function shared(g: Graph, key: string, make: () => Value): Value {
  let root = g;
  while (root.parent) root = root.parent;
  let m = biases.get(root);
  if (!m) biases.set(root, (m = new Map()));
  const v = m.get(key);
  if (v && g.sees(v)) return v;
  const made = make();
  m.set(key, made);
  return made;
}

/** [T, S]: 0 where key position ≤ query position (queries sit at the last T of S positions), else MASKED. */
function causalBias(g: Graph, qh: Value, kAll: Value, T: string | number, S: string | number): Value {
  const t = g.dim(qh, 3);
  const s = g.dim(kAll, 2);
  const one = g.scalar(1, 'int64');
  const queryPos = g.range(g.sub(s, t), s, one, T);
  const keyPos = g.range(g.scalar(0, 'int64'), s, one, S);
  const allowed = g.binary('LessOrEqual', g.unsqueeze(keyPos, [0]), g.unsqueeze(queryPos, [1]));
  return g.where(allowed, g.scalar(0, qh.dtype), g.scalar(MASKED, qh.dtype));
}

/** [B, 1, 1, 1, S]: 0 for tokens, MASKED for padding. */
function paddingBias(g: Graph, mask: Value, S: string | number, dtype: Value['dtype']): Value {
  if (mask.shape.length !== 2) throw new Error(`attention: the attention mask must be [batch, positions], not rank ${mask.shape.length}`);
  // The mask spans past + current positions; its declared length may be named differently.
  const m = mask.shape[1] === S ? mask : g.emit('Reshape', [mask, g.shapeOf(mask)], {}, [{ dtype: mask.dtype, shape: [mask.shape[0]!, S] }])[0]!;
  const pad = g.sub(g.scalar(1, dtype), g.cast(m, dtype));
  return g.unsqueeze(g.mul(pad, g.scalar(MASKED, dtype)), [1, 2, 3]);
}
