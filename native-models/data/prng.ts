// A small seeded PRNG whose whole state is one uint32, so data order and IST layer choices can be
// saved in a checkpoint and resumed bit for bit. mulberry32 (Tommy Ettinger, public domain):
// period 2^32, passes the statistical tests that matter for shuffling and sampling; it is not
// cryptographic and nothing here needs it to be.

/** splitmix32-style mixing of a user seed (any integer) into a well-spread uint32 state. */
export function seedState(seed: number): number {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`The seed must be a whole number, not ${seed}.`);
  // Fold the high bits in so seeds above 2^32 still differ.
  let z = ((seed >>> 0) ^ Math.floor(seed / 0x1_0000_0000)) >>> 0;
  z = (z + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private s: number;

  /** Starts from `seedState(seed)`; use `Rng.fromState` to resume. */
  constructor(seed: number) {
    this.s = seedState(seed);
  }

  static fromState(state: number): Rng {
    if (!Number.isInteger(state) || state < 0 || state > 0xffff_ffff) throw new RangeError(`A saved random state must be a uint32, not ${state}.`);
    const r = new Rng(0);
    r.s = state;
    return r;
  }

  /** The whole state (a uint32): save it, and `Rng.fromState` continues the same stream. */
  get state(): number {
    return this.s;
  }

  /** Next uint32 (mulberry32). */
  nextUint32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /** Uniform whole number in [0, n), without modulo bias (rejection sampling). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 0x1_0000_0000) throw new RangeError(`Rng.int needs a whole number from 1 to 2^32, not ${n}.`);
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Fisher–Yates shuffle in place (from the end, j uniform in [0, i]). */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i]!;
      items[i] = items[j]!;
      items[j] = t;
    }
    return items;
  }

  /** 0..n−1 in a random order. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }
}

/**
 * Draws `k` distinct indices, one at a time, each with probability proportional to its weight
 * among those not yet drawn (as torch.multinomial(weights, k, replacement=False)). Weights must be
 * finite and ≥ 0 with at least k of them > 0.
 */
export function sampleWithoutReplacement(rng: Rng, weights: ArrayLike<number>, k: number): number[] {
  const n = weights.length;
  if (!Number.isInteger(k) || k < 0 || k > n) throw new RangeError(`Cannot draw ${k} distinct items from ${n}.`);
  const w = Float64Array.from(weights as ArrayLike<number>);
  let positive = 0;
  for (const x of w) {
    if (!Number.isFinite(x) || x < 0) throw new RangeError(`Sampling weights must be finite and ≥ 0; got ${x}.`);
    if (x > 0) positive++;
  }
  if (positive < k) throw new RangeError(`Cannot draw ${k} distinct items when only ${positive} have a weight above 0.`);
  const out: number[] = [];
  for (let d = 0; d < k; d++) {
    let total = 0;
    for (const x of w) total += x;
    let u = rng.next() * total;
    let pick = -1;
    for (let i = 0; i < n; i++) {
      if (w[i]! <= 0) continue;
      pick = i; // the last positive index absorbs rounding at the top end
      if (u < w[i]!) break;
      u -= w[i]!;
    }
    out.push(pick);
    w[pick] = 0;
  }
  return out;
}
