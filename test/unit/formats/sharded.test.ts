import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toFloat32 } from '../../../native-models/formats/dtypes';
import { encodeSafetensors } from '../../../native-models/formats/safetensors';
import { INDEX_FILE, ShardedSafetensors, writeShardedSafetensors } from '../../../native-models/formats/sharded';
import { tempDir } from './helpers';

const tmp = tempDir('offsite-sharded-');
afterAll(() => tmp.cleanup());

const f32 = (...xs: number[]) => ({ dtype: 'F32' as const, shape: [xs.length], data: new Float32Array(xs) });

/** A folder with hand-written shards and an index (JSON written here, not by the writer). */
function folder(name: string, shards: Record<string, Record<string, ReturnType<typeof f32>>>, weightMap: Record<string, string>): string {
  const dir = join(tmp.dir, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, tensors] of Object.entries(shards)) writeFileSync(join(dir, file), encodeSafetensors(tensors));
  writeFileSync(join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  return join(dir, INDEX_FILE);
}

const ruleOf = (p: Promise<unknown>) => p.then(() => 'accepted', (e: { rule?: string; message: string }) => e.rule ?? e.message);

describe('sharded safetensors', () => {
  it('serves every tensor from its shard', async () => {
    const index = folder('ok', { 's1.safetensors': { a: f32(1, 2), b: f32(3) }, 's2.safetensors': { c: f32(4, 5, 6) } }, { a: 's1.safetensors', b: 's1.safetensors', c: 's2.safetensors' });
    const src = await ShardedSafetensors.open(index);
    try {
      expect(src.names()).toEqual(['a', 'b', 'c']);
      expect(src.shardNames()).toEqual(['s1.safetensors', 's2.safetensors']);
      expect(Array.from(await src.readFloat32('c'))).toEqual([4, 5, 6]);
      expect(Array.from(await src.readFloat32('a'))).toEqual([1, 2]);
    } finally {
      await src.close();
    }
  });

  it('writes HF-style shards and an index that read back the same', async () => {
    const dir = join(tmp.dir, 'written');
    mkdirSync(dir);
    const tensors = { 'x.0': f32(1, 2, 3, 4), 'x.1': f32(5, 6, 7, 8), 'x.2': f32(9) };
    const names = await writeShardedSafetensors(dir, tensors, 20);
    expect(names).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    const index = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8'));
    expect(index.weight_map).toEqual({ 'x.0': names[0], 'x.1': names[1], 'x.2': names[1] });
    expect(index.metadata.total_size).toBe(36);
    const src = await ShardedSafetensors.open(join(dir, INDEX_FILE));
    try {
      for (const [k, t] of Object.entries(tensors)) expect(Array.from(toFloat32(await src.read(k)))).toEqual(Array.from(t.data));
    } finally {
      await src.close();
    }
  });

  it('refuses a tensor stored in two shards', async () => {
    const index = folder('dup', { 's1.safetensors': { a: f32(1) }, 's2.safetensors': { a: f32(2) } }, { a: 's1.safetensors', b: 's2.safetensors' });
    expect(await ruleOf(ShardedSafetensors.open(index))).toBe('sharded.duplicate-tensor');
  });

  it('refuses a duplicate key in the weight_map', async () => {
    const index = folder('dupkey', { 's1.safetensors': { a: f32(1) }, 's2.safetensors': { b: f32(2) } }, {});
    writeFileSync(index, '{"weight_map":{"a":"s1.safetensors","a":"s2.safetensors","b":"s2.safetensors"}}');
    expect(await ruleOf(ShardedSafetensors.open(index))).toBe('sharded.index.duplicate-key');
  });

  it('refuses tensors missing from, or not listed for, their shard', async () => {
    expect(await ruleOf(ShardedSafetensors.open(folder('missing', { 's1.safetensors': { a: f32(1) } }, { a: 's1.safetensors', z: 's1.safetensors' })))).toBe('sharded.missing-tensor');
    expect(await ruleOf(ShardedSafetensors.open(folder('unlisted', { 's1.safetensors': { a: f32(1), b: f32(2) } }, { a: 's1.safetensors' })))).toBe('sharded.unlisted-tensor');
    expect(await ruleOf(ShardedSafetensors.open(folder('wrong', { 's1.safetensors': { a: f32(1) }, 's2.safetensors': { b: f32(2) } }, { a: 's2.safetensors', b: 's1.safetensors' })))).toBe(
      'sharded.wrong-shard',
    );
  });

  it('refuses shard names that leave the folder or do not exist', async () => {
    const outside = join(tmp.dir, 'outside.safetensors');
    writeFileSync(outside, encodeSafetensors({ a: f32(1) }));
    for (const bad of ['../outside.safetensors', outside, 'sub/../s1.safetensors', 'sub\\s1.safetensors', 'nope.safetensors']) {
      const index = folder(`escape-${Math.random().toString(36).slice(2)}`, { 's1.safetensors': { a: f32(1) } }, { a: bad });
      expect(await ruleOf(ShardedSafetensors.open(index)), bad).toBe('sharded.bad-shard-path');
    }
    const dir = join(tmp.dir, 'symlinked');
    mkdirSync(dir);
    symlinkSync(outside, join(dir, 'link.safetensors'));
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify({ weight_map: { a: 'link.safetensors' } }));
    expect(await ruleOf(ShardedSafetensors.open(join(dir, INDEX_FILE)))).toBe('sharded.bad-shard-path');
  });

  it('accepts a shard in a subfolder inside the model folder', async () => {
    const index = folder('subdir', {}, { a: 'weights/s1.safetensors' });
    mkdirSync(join(tmp.dir, 'subdir', 'weights'));
    writeFileSync(join(tmp.dir, 'subdir', 'weights', 's1.safetensors'), encodeSafetensors({ a: f32(7) }));
    const src = await ShardedSafetensors.open(index);
    expect(Array.from(await src.readFloat32('a'))).toEqual([7]);
    await src.close();
  });
});
