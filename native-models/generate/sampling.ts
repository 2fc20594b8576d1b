// Host-side token choice: greedy, temperature and nucleus (top-p) sampling with a seeded PRNG, so
// a run with the same seed picks the same tokens on every machine.

/** A seeded pseudo-random generator: splitmix32 seeding, xoshiro128** stream, floats in [0, 1). */
export class Rng {
  private s = new Uint32Array(4);
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new Error(`The seed must be a whole number, not ${seed}.`);
    // Fold the (possibly > 32-bit) seed into splitmix32's state.
    let x = (seed >>> 0) ^ Math.floor(seed / 2 ** 32);
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  private nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    return (this.nextU32() * 2 ** 21 + (this.nextU32() >>> 11)) / 2 ** 53;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export interface SamplingOptions {
  /** 0 = greedy (argmax). */
  temperature: number;
  /** Nucleus: keep the most likely tokens whose probabilities add up to at least topP (1 = all). */
  topP: number;
}

export function checkSampling(o: SamplingOptions): void {
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature)) throw new Error(`The temperature must be a number ≥ 0, not ${o.temperature}.`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new Error(`top-p must be in (0, 1], not ${o.topP}.`);
}

/** Index of the largest value (the first one on ties). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Probabilities softmax(logits / temperature), in float64. */
export function softmaxWithTemperature(logits: ArrayLike<number>, temperature: number): Float64Array {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp((logits[i]! - max) / temperature);
    p[i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) p[i] /= sum;
  return p;
}

/** The nucleus: token ids in descending probability whose mass first reaches topP (at least one). */
export function nucleus(p: Float64Array, topP: number): number[] {
  const order = Array.from(p.keys()).sort((a, b) => p[b]! - p[a]! || a - b);
  if (topP >= 1) return order;
  const kept: number[] = [];
  let mass = 0;
  for (const id of order) {
    kept.push(id);
    mass += p[id]!;
    if (mass >= topP) break;
  }
  return kept;
}

/** Chooses the next token from one row of logits. */
export function sampleToken(logits: ArrayLike<number>, opts: SamplingOptions, rng: Rng): number {
  if (opts.temperature === 0) return argmax(logits);
  const p = softmaxWithTemperature(logits, opts.temperature);
  // The draw walks the nucleus in token-id order, not in probability order: two tokens of almost
  // equal probability can swap places in the sort under float rounding (a cached step and a full
  // recompute differ in the last bits), and that must not move u onto a different token.
  const kept = nucleus(p, opts.topP).sort((a, b) => a - b);
  let mass = 0;
  for (const id of kept) mass += p[id]!;
  let u = rng.next() * mass;
  for (const id of kept) {
    u -= p[id]!;
    if (u < 0) return id;
  }
  return kept[kept.length - 1]!;
}
