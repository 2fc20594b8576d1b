// Sharded safetensors checkpoints: `model.safetensors.index.json` maps each tensor name to the
// shard file holding it. Every shard must be a plain file inside the folder, every listed tensor
// must be in its shard, and no tensor may appear in two shards (or in a shard without being listed).
import { dirname, join } from 'node:path';
import { writeFileAtomic } from './atomic';
import { FormatError, shortName } from './errors';
import { readStrictJsonFile } from './json';
import { resolveInside } from './paths';
import { SafetensorsFile, quoteName, writeSafetensors, type TensorInfo, type TensorMap, type TensorSource } from './safetensors';
import type { Tensor } from './dtypes';

export const INDEX_FILE = 'model.safetensors.index.json';

export interface ShardIndex {
  metadata: Record<string, unknown>;
  weightMap: Record<string, string>;
}

function fail(rule: string, file: string, message: string, tensor?: string): never {
  throw new FormatError(`sharded.${rule}`, `${shortName(file)}: ${message}`, file, tensor);
}

/** Reads and validates the index JSON itself (no shard is opened). */
export async function readShardIndex(indexPath: string): Promise<ShardIndex> {
  const obj = await readStrictJsonFile(indexPath, { what: shortName(indexPath), rulePrefix: 'sharded.index', maxDepth: 8, maxBytes: 64 * 1024 * 1024 });
  const wm = obj.weight_map;
  if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) fail('bad-index', indexPath, 'has no "weight_map" object (rule: the index maps tensor names to shard files).');
  const weightMap = wm as Record<string, unknown>;
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string') fail('bad-index', indexPath, `weight_map entry ${quoteName(name)} is not a file name (rule: the index maps tensor names to shard files).`, name);
  }
  const md = obj.metadata ?? {};
  if (md === null || typeof md !== 'object' || Array.isArray(md)) fail('bad-index', indexPath, '"metadata" is not an object.');
  return { metadata: md as Record<string, unknown>, weightMap: weightMap as Record<string, string> };
}

/** A sharded checkpoint, opened shard by shard (headers only); tensors are read on demand. */
export class ShardedSafetensors implements TensorSource {
  private constructor(
    readonly indexPath: string,
    readonly index: ShardIndex,
    private readonly shards: Map<string, SafetensorsFile>,
    private readonly where: Map<string, SafetensorsFile>,
  ) {}

  static async open(indexPath: string): Promise<ShardedSafetensors> {
    const dir = dirname(indexPath);
    const index = await readShardIndex(indexPath);
    const shardNames = [...new Set(Object.values(index.weightMap))].sort();
    const shards = new Map<string, SafetensorsFile>();
    try {
      for (const name of shardNames) {
        const path = await resolveInside(dir, name, 'sharded.bad-shard-path', `${shortName(indexPath)} weight_map`);
        shards.set(name, await SafetensorsFile.open(path));
      }
      const where = new Map<string, SafetensorsFile>();
      const foundIn = new Map<string, string>();
      for (const [shardName, file] of shards) {
        for (const t of file.names()) {
          const other = foundIn.get(t);
          if (other !== undefined) {
            fail('duplicate-tensor', indexPath, `tensor ${quoteName(t)} is stored in both ${other} and ${shardName} (rule: each tensor lives in exactly one shard).`, t);
          }
          foundIn.set(t, shardName);
          const listed = index.weightMap[t];
          if (listed === undefined) fail('unlisted-tensor', indexPath, `shard ${shardName} holds tensor ${quoteName(t)}, which the weight_map does not list (rule: the index lists every tensor).`, t);
          if (listed !== shardName) fail('wrong-shard', indexPath, `tensor ${quoteName(t)} is listed in ${listed} but stored in ${shardName} (rule: each tensor is in the shard the index names).`, t);
          where.set(t, file);
        }
      }
      for (const [t, shardName] of Object.entries(index.weightMap)) {
        if (!where.has(t)) fail('missing-tensor', indexPath, `weight_map lists tensor ${quoteName(t)} in ${shardName}, but that shard does not hold it (rule: each tensor is in the shard the index names).`, t);
      }
      return new ShardedSafetensors(indexPath, index, shards, where);
    } catch (e) {
      for (const f of shards.values()) await f.close().catch(() => undefined);
      throw e;
    }
  }

  /** Shard file names, sorted. */
  shardNames(): string[] {
    return [...this.shards.keys()];
  }

  names(): string[] {
    return [...this.where.keys()].sort();
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  private fileOf(name: string): SafetensorsFile {
    const f = this.where.get(name);
    if (!f) throw new FormatError('sharded.missing-tensor', `${shortName(this.indexPath)} lists no tensor ${quoteName(name)}.`, this.indexPath, name);
    return f;
  }

  info(name: string): TensorInfo {
    return this.fileOf(name).info(name);
  }

  read(name: string): Promise<Tensor> {
    return this.fileOf(name).read(name);
  }

  readFloat32(name: string): Promise<Float32Array> {
    return this.fileOf(name).readFloat32(name);
  }

  async close(): Promise<void> {
    for (const f of this.shards.values()) await f.close();
  }
}

/**
 * Writes `tensors` as HF-style shards (`model-00001-of-00003.safetensors`, …) of at most
 * `maxShardBytes` of data each (a larger single tensor gets a shard of its own), plus the index.
 * Tensors are assigned in name order, so the same input gives the same files.
 */
export async function writeShardedSafetensors(dir: string, tensors: TensorMap, maxShardBytes: number, metadata?: Record<string, string>): Promise<string[]> {
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const groups: [string, Tensor][][] = [];
  let size = 0;
  for (const e of entries) {
    const bytes = e[1].data.byteLength;
    if (groups.length === 0 || (size + bytes > maxShardBytes && size > 0)) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1]!.push(e);
    size += bytes;
  }
  const pad = (i: number): string => String(i).padStart(5, '0');
  const names = groups.map((_, i) => `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`);
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let i = 0; i < groups.length; i++) {
    await writeSafetensors(join(dir, names[i]!), new Map(groups[i]), metadata);
    for (const [name, t] of groups[i]!) {
      weightMap[name] = names[i]!;
      total += t.data.byteLength;
    }
  }
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  await writeFileAtomic(join(dir, INDEX_FILE), new TextEncoder().encode(`${JSON.stringify(index, null, 2)}\n`));
  return names;
}
