// Deterministic batching (CLI.md "Batching is deterministic and documented"):
//
// - Order: without shuffling, examples in file order; with shuffling, each epoch is a Fisher–Yates
//   permutation drawn from a seeded mulberry32 stream (prng.ts). The stream carries on from epoch
//   to epoch, so every epoch has a different, reproducible order.
// - `batchSize` examples at a time; the last batch of an epoch is smaller unless dropLast.
// - Each example is truncated to its first `seqLen` tokens. Its inputs are tokens[0..len−2] and its
//   targets tokens[1..len−1] (targets are tokens[1:]), so T = seqLen − 1 positions per row.
// - Shorter rows are right-padded with `padId` (inputs and targets) and the padding is masked.
// - mask[b,t] = 1 when target (b,t) counts: not padding and lossMask of that target token is 1
//   (instruction data: response tokens only, unless loss on the prompt).
// - The loss of a batch is the mean next-token cross-entropy over the positions with mask 1:
//   sum(mask · CE) / sum(mask). A batch may have no counted position (e.g. an instruction whose
//   response was cut off by truncation): the loss graph must then divide by max(1, sum(mask)).
import { Rng } from './prng';
import type { Example } from './tokenize';

export interface Batch {
  /** [B, T] int64, row-major. */
  inputIds: BigInt64Array;
  /** [B, T] int64: the token each position must predict (padding: padId). */
  targets: BigInt64Array;
  /** [B, T] float32: 1 where the target counts in the loss, 0 for padding and masked tokens. */
  mask: Float32Array;
  /** [B, T]. */
  dims: [number, number];
  /** Indices of the examples in this batch (into the array given to the batcher). */
  examples: number[];
  /** Data-file lines of those examples. */
  lines: number[];
  /** Number of positions with mask 1 (the loss's denominator). */
  targetTokens: number;
  /** The epoch this batch belongs to (0-based). */
  epoch: number;
}

export interface BatchShape {
  seqLen: number;
  padId: number;
  /** 'seqLen' (default): every batch is [B, seqLen − 1]; 'longest': T = the longest row of the batch. */
  padTo?: 'seqLen' | 'longest';
}

export interface BatcherOptions extends BatchShape {
  batchSize: number;
  /** Default true. */
  shuffle?: boolean;
  /** Seed of the shuffling stream (default 0). */
  seed?: number;
  /** Drop an epoch's last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
}

/**
 * Where the batcher stands, for checkpoints: the next batch starts at position `index` of epoch
 * `epoch`'s order, and that order is the permutation drawn from `rngState` (the PRNG state at the
 * start of the epoch). JSON-serialisable; restoring it gives the same batches bit for bit.
 */
export interface DataCursor {
  epoch: number;
  index: number;
  rngState: number;
}

function checkShape(shape: BatchShape): void {
  if (!Number.isInteger(shape.seqLen) || shape.seqLen < 2) throw new RangeError(`The sequence length must be a whole number ≥ 2 (one input and one target), not ${shape.seqLen}.`);
  if (!Number.isInteger(shape.padId) || shape.padId < 0) throw new RangeError(`The padding id must be a whole number ≥ 0, not ${shape.padId}.`);
}

/** Builds one batch from the given examples, in the given order (see the rules at the top). */
export function makeBatch(examples: readonly Example[], indices: readonly number[], shape: BatchShape, epoch = 0): Batch {
  checkShape(shape);
  if (indices.length === 0) throw new RangeError('A batch needs at least one example.');
  const B = indices.length;
  const lens = indices.map((i) => Math.min(examples[i]!.tokens.length, shape.seqLen));
  const T = shape.padTo === 'longest' ? Math.max(1, ...lens.map((l) => l - 1)) : shape.seqLen - 1;
  const inputIds = new BigInt64Array(B * T).fill(BigInt(shape.padId));
  const targets = new BigInt64Array(B * T).fill(BigInt(shape.padId));
  const mask = new Float32Array(B * T);
  let targetTokens = 0;
  for (let b = 0; b < B; b++) {
    const ex = examples[indices[b]!]!;
    const n = lens[b]! - 1; // positions with a real target
    for (let t = 0; t < n; t++) {
      inputIds[b * T + t] = BigInt(ex.tokens[t]!);
      targets[b * T + t] = BigInt(ex.tokens[t + 1]!);
      if (ex.lossMask[t + 1]) {
        mask[b * T + t] = 1;
        targetTokens++;
      }
    }
  }
  return { inputIds, targets, mask, dims: [B, T], examples: [...indices], lines: indices.map((i) => examples[i]!.line), targetTokens, epoch };
}

export class Batcher {
  private readonly options: Required<Omit<BatcherOptions, 'padTo'>> & Pick<BatcherOptions, 'padTo'>;
  private rng: Rng;
  /** The PRNG state the current epoch's order was drawn from. */
  private epochState = 0;
  private order: number[] = [];
  private epoch = 0;
  private index = 0;

  constructor(
    private readonly examples: readonly Example[],
    options: BatcherOptions,
    cursor?: DataCursor,
  ) {
    checkShape(options);
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new RangeError(`The batch size must be a whole number ≥ 1, not ${options.batchSize}.`);
    if (examples.length === 0) throw new RangeError('There are no examples to make batches from.');
    this.options = { shuffle: true, seed: 0, dropLast: false, ...options };
    if (this.options.dropLast && examples.length < options.batchSize) {
      throw new RangeError(`With dropLast, ${examples.length} examples make no batch of ${options.batchSize}; lower the batch size.`);
    }
    if (cursor) {
      if (!Number.isInteger(cursor.epoch) || cursor.epoch < 0 || !Number.isInteger(cursor.index) || cursor.index < 0 || cursor.index > examples.length) {
        throw new RangeError(`The saved data position (epoch ${cursor.epoch}, example ${cursor.index}) does not fit a dataset of ${examples.length} examples; resume with the same data file.`);
      }
      this.rng = Rng.fromState(cursor.rngState);
      this.epoch = cursor.epoch;
      this.startEpoch();
      this.index = cursor.index;
    } else {
      this.rng = new Rng(this.options.seed);
      this.startEpoch();
    }
  }

  private startEpoch(): void {
    this.epochState = this.rng.state;
    const n = this.examples.length;
    this.order = this.options.shuffle ? this.rng.permutation(n) : Array.from({ length: n }, (_, i) => i);
    this.index = 0;
  }

  /** Batches in one epoch. */
  get batchesPerEpoch(): number {
    const n = this.examples.length;
    return this.options.dropLast ? Math.floor(n / this.options.batchSize) : Math.ceil(n / this.options.batchSize);
  }

  /** The position of the next batch (save it with a checkpoint). */
  get cursor(): DataCursor {
    return { epoch: this.epoch, index: this.index, rngState: this.epochState };
  }

  /** The next batch; moves to the next epoch (a new order) when this one is used up. */
  next(): Batch {
    const n = this.examples.length;
    const left = n - this.index;
    if (left === 0 || (this.options.dropLast && left < this.options.batchSize)) {
      this.epoch++;
      this.startEpoch();
    }
    const take = Math.min(this.options.batchSize, n - this.index);
    const indices = this.order.slice(this.index, this.index + take);
    this.index += take;
    return makeBatch(this.examples, indices, this.options, this.epoch);
  }
}
