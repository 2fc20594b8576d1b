// Checkpoints of a tuning run: everything needed to continue bit for bit (CPU, same threads):
// trainable parameters and optimizer slots (state.safetensors, float32 or float64 as trained),
// and checkpoint.json with the update count, the layer sampler (scores, RNG), the data positions of
// the training and importance loaders, the dropout RNG and the per-step history. Written as a whole
// folder atomically, so a checkpoint on disk is always complete.
import { join } from 'node:path';
import { writeDirAtomic, writeFileAtomic } from '../formats/atomic';
import { readStrictJsonFile } from '../formats/json';
import { SafetensorsFile, writeSafetensors } from '../formats/safetensors';
import type { DataCursor } from '../data/batches';
import type { SamplerState } from '../train/ist';
import type { ParamArray, TrainState } from '../train/train-step';

export const CHECKPOINT_FORMAT = 'offsite-tune-checkpoint';
export const CHECKPOINT_STATE = 'state.safetensors';
export const CHECKPOINT_META = 'checkpoint.json';

export interface StepRecord {
  /** 0-based update index. */
  step: number;
  /** Batch loss before this step's update. */
  loss: number;
  lr: number;
  gradNorm: number;
  /** Model layer indices trained by this update. */
  selected: number[];
  tokens: number;
}

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: 1;
  /** Updates done. */
  step: number;
  sampler: SamplerState;
  cursor: DataCursor;
  istCursor: DataCursor | null;
  dropoutRng: number;
  history: StepRecord[];
  /** Training time so far (for tokens/s and ETA across resumes). */
  elapsedMs: number;
  tokens: number;
  /** Held-out loss measured before the first update (kept so a resumed run reports it). */
  evalLossBefore: number | null;
}

const paramKey = (n: string) => `param/${n}`;
const slotKey = (s: string, n: string) => `slot/${s}/${n}`;

function tensorOf(a: ParamArray, shape: number[]) {
  return { dtype: a instanceof Float64Array ? ('F64' as const) : ('F32' as const), shape, data: a };
}

export async function writeCheckpoint(dir: string, state: TrainState, shapes: Map<string, number[]>, meta: Omit<CheckpointMeta, 'format' | 'version' | 'step'>): Promise<void> {
  const tensors = new Map<string, ReturnType<typeof tensorOf>>();
  for (const [n, a] of Object.entries(state.params)) tensors.set(paramKey(n), tensorOf(a, shapes.get(n)!));
  for (const [s, byName] of Object.entries(state.slots)) for (const [n, a] of Object.entries(byName)) tensors.set(slotKey(s, n), tensorOf(a, shapes.get(n)!));
  const full: CheckpointMeta = { format: CHECKPOINT_FORMAT, version: 1, step: state.step, ...meta };
  await writeDirAtomic(
    dir,
    async (tmp) => {
      await writeSafetensors(join(tmp, CHECKPOINT_STATE), tensors, { format: 'pt' });
      await writeFileAtomic(join(tmp, CHECKPOINT_META), new TextEncoder().encode(`${JSON.stringify(full)}\n`));
    },
    true,
  );
}

/** Reads a checkpoint back into a TrainState shaped like `template` (from the compiled step). */
export async function readCheckpoint(dir: string, template: TrainState): Promise<{ state: TrainState; meta: CheckpointMeta }> {
  const raw = await readStrictJsonFile(join(dir, CHECKPOINT_META), { what: 'checkpoint.json', rulePrefix: 'checkpoint', maxBytes: 512 * 1024 * 1024 });
  if (raw.format !== CHECKPOINT_FORMAT || raw.version !== 1) throw new Error(`${join(dir, CHECKPOINT_META)} is not a tuning checkpoint this version can read.`);
  const meta = raw as unknown as CheckpointMeta;
  const f = await SafetensorsFile.open(join(dir, CHECKPOINT_STATE), { whole: true });
  let stored;
  try {
    stored = await f.readAll();
  } finally {
    await f.close();
  }
  const take = (key: string, like: ParamArray): ParamArray => {
    const t = stored.get(key);
    if (!t) throw new Error(`The checkpoint has no ${key}; it was written for different tuning settings.`);
    const want = like instanceof Float64Array ? 'F64' : 'F32';
    const n = like.length;
    if (t.dtype !== want || t.shape.reduce((a, b) => a * b, 1) !== n) throw new Error(`The checkpoint's ${key} does not match this run (${t.dtype} [${t.shape.join(', ')}]).`);
    const v = t.data as ArrayBufferView;
    // Copy the bytes first: a tensor inside a file buffer need not be aligned for a typed view.
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice().buffer;
    return want === 'F64' ? new Float64Array(bytes) : new Float32Array(bytes);
  };
  const state: TrainState = {
    step: meta.step,
    params: Object.fromEntries(Object.entries(template.params).map(([n, a]) => [n, take(paramKey(n), a)])),
    slots: Object.fromEntries(Object.entries(template.slots).map(([s, byName]) => [s, Object.fromEntries(Object.entries(byName).map(([n, a]) => [n, take(slotKey(s, n), a)]))])),
  };
  return { state, meta };
}
