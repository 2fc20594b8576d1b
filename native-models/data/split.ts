// A deterministic validation split: which examples are held out depends only on the seed and the
// number of examples, and both parts keep file order.
import { Rng, seedState } from './prng';

/** Mixed into the seed so the split and the shuffling of batches use different random streams. */
const SPLIT_SALT = 0x5b1d_c0de;

export interface Split<T> {
  train: T[];
  validation: T[];
  /** Indices (into the input) of the validation examples, ascending. */
  validationIndices: number[];
}

/**
 * Holds out round(fraction · n) examples (at least 1, and at least 1 left for training) chosen by
 * a seeded shuffle. fraction 0 returns everything as training data.
 */
export function splitValidation<T>(items: readonly T[], options: { fraction: number; seed: number }): Split<T> {
  const { fraction, seed } = options;
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`The validation fraction must be at least 0 and below 1, not ${fraction}.`);
  const n = items.length;
  if (fraction === 0) return { train: [...items], validation: [], validationIndices: [] };
  if (n < 2) throw new RangeError(`A validation split needs at least 2 examples; the data has ${n}. Use a separate evaluation file instead.`);
  const k = Math.min(n - 1, Math.max(1, Math.round(fraction * n)));
  const rng = Rng.fromState((seedState(seed) ^ SPLIT_SALT) >>> 0);
  const held = rng.permutation(n).slice(0, k).sort((a, b) => a - b);
  const isHeld = new Uint8Array(n);
  for (const i of held) isHeld[i] = 1;
  return {
    train: items.filter((_, i) => !isHeld[i]),
    validation: held.map((i) => items[i]!),
    validationIndices: held,
  };
}
