// A model whose weights exceed 100 MB is written with its initializers in an external data file
// and loads both from a path (files resolve beside the model) and from memory (externalData bytes).
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Graph, serialize } from '../../../native-models/onnx';
import { openSession, readModelWithExternalData } from '../../../native-models/runtime/session';
import { float32, toNumbers } from '../../../native-models/runtime/tensors';

const repoRoot = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const dir = join(repoRoot, 'test-results', 'external-data');
const ROWS = 2560;
const COLS = 10400; // 2560 × 10400 float32 = 106.5 MB (over 100 MiB)

const weight = (i: number, j: number) => (((i * 7 + j * 3) % 11) - 5) / 8;

function build() {
  const w = new Float32Array(ROWS * COLS);
  for (let i = 0; i < ROWS; i++) for (let j = 0; j < COLS; j++) w[i * COLS + j] = weight(i, j);
  const g = new Graph('big');
  const x = g.input('x', 'float32', [1, ROWS]);
  const bias = g.initializer('bias', Float32Array.from({ length: COLS }, (_, j) => j / COLS), [COLS]);
  g.output(g.add(g.matmul(x, g.initializer('w', w, [ROWS, COLS])), bias), 'y');
  return serialize(g, { externalThreshold: 1 << 20, externalName: 'big.weights' });
}

const xs = Float32Array.from({ length: ROWS }, (_, i) => ((i % 5) - 2) / 4);

function expected(): Float64Array {
  const y = new Float64Array(COLS);
  for (let j = 0; j < COLS; j++) {
    let s = j / COLS;
    for (let i = 0; i < ROWS; i++) s += xs[i]! * weight(i, j);
    y[j] = s;
  }
  return y;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('external data', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes initializers over 100 MB to a data file and loads it from a path and from memory', async () => {
    const { model, external } = build();
    expect(external).toBeDefined();
    mkdirSync(dir, { recursive: true });
    const modelPath = join(dir, 'big.onnx');
    writeFileSync(modelPath, model);
    writeFileSync(join(dir, external!.name), external!.data);
    expect(statSync(modelPath).size).toBeLessThan(64 * 1024);
    expect(statSync(join(dir, 'big.weights')).size).toBeGreaterThan(100 * 1024 * 1024);

    const want = expected();
    const x = float32(xs, [1, ROWS]);

    const fromPath = await openSession({ path: modelPath }, { intraOpThreads: 1 });
    expect(fromPath.provider.chosen).toBe('cpu');
    expect(fromPath.provider.reason.length).toBeGreaterThan(0);
    const y1 = toNumbers((await fromPath.session.run({ x })).y!);
    expect(y1.length).toBe(COLS);
    expect(maxAbsDiff(y1, want)).toBeLessThan(1e-3);
    await fromPath.session.release();

    const mem = readModelWithExternalData(modelPath, ['big.weights']);
    const fromMemory = await openSession({ bytes: mem.bytes, externalData: mem.externalData }, { intraOpThreads: 1 });
    const y2 = toNumbers((await fromMemory.session.run({ x })).y!);
    expect(maxAbsDiff(y2, want)).toBeLessThan(1e-3);
    await fromMemory.session.release();

    await expect(openSession({ bytes: mem.bytes }, { intraOpThreads: 1 })).rejects.toThrow(/external data/);
    expect(() => readModelWithExternalData(modelPath, ['../big.weights'])).toThrow(/plain file name/);
  });
});
