import { createHash } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashFile, hashFolder, hashPath } from '../../../electron/services/hashing';
import { tempHome } from './helpers';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('hashing', () => {
  it('hashes a file: SHA-256 and size', async () => {
    const { home, cleanup } = tempHome('hash');
    cleanups.push(cleanup);
    writeFileSync(join(home, 'a.txt'), 'hello\n');
    expect(await hashFile(join(home, 'a.txt'))).toEqual({ sha256: sha('hello\n'), size: 6 });
  });

  it('hashes a folder over sorted relative paths, sizes and file hashes', async () => {
    const { home, cleanup } = tempHome('hash');
    cleanups.push(cleanup);
    const dir = join(home, 'adapter');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'b.json'), '{}');
    writeFileSync(join(dir, 'sub', 'w.bin'), 'xyz');
    writeFileSync(join(dir, 'a.safetensors'), 'tensor');
    const listing = `a.safetensors\t6\t${sha('tensor')}\nb.json\t2\t${sha('{}')}\nsub/w.bin\t3\t${sha('xyz')}\n`;
    const d = await hashFolder(dir);
    expect(d.sha256).toBe(sha(listing));
    expect(d.size).toBe(11);
    expect(d.files).toBe(3);
    expect(d.entries.map((e) => e.path)).toEqual(['a.safetensors', 'b.json', 'sub/w.bin']);
    expect(await hashPath(dir)).toEqual({ sha256: sha(listing), size: 11, files: 3 });

    // Renaming a file changes the folder digest even though the bytes are the same.
    writeFileSync(join(dir, 'c.json'), '{}');
    expect((await hashFolder(dir)).sha256).not.toBe(d.sha256);
  });

  it('refuses symbolic links inside a folder', async () => {
    const { home, cleanup } = tempHome('hash');
    cleanups.push(cleanup);
    writeFileSync(join(home, 'real'), 'x');
    mkdirSync(join(home, 'dir'));
    symlinkSync(join(home, 'real'), join(home, 'dir', 'link'));
    await expect(hashFolder(join(home, 'dir'))).rejects.toThrow(/symbolic link/);
  });
});
