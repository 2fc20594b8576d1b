// Atomic file and folder writes: write to a temporary sibling, fsync, rename over the target, fsync
// the folder. A crash or a full disk leaves either the old file or the new one, never a torn one.
import { randomBytes } from 'node:crypto';
import { open, rename, rm, mkdir, stat, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

async function fsyncDir(dir: string): Promise<void> {
  // Some platforms (Windows) cannot open a folder for fsync; the rename is still atomic there.
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    /* best effort */
  } finally {
    await fh?.close();
  }
}

/**
 * Writes `chunks` in order to `path` atomically. Chunks may be produced lazily (an iterable), so a
 * large file is never assembled in memory.
 */
export async function writeFileAtomic(path: string, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array> | Uint8Array): Promise<void> {
  const tmp = tempSibling(path);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    const list = chunks instanceof Uint8Array ? [chunks] : chunks;
    for await (const chunk of list) {
      let off = 0;
      while (off < chunk.byteLength) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
        off += bytesWritten;
      }
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dirname(path));
}

/**
 * Builds a folder atomically: `fill` writes into a fresh temporary sibling folder (each file should
 * be fsynced, e.g. with writeFileAtomic), which then replaces `dir`. An existing non-empty `dir` is
 * only replaced when `overwrite` is set; the old one is removed after the swap.
 */
export async function writeDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void>, overwrite = false): Promise<void> {
  const existing = await stat(dir).catch(() => undefined);
  if (existing && !existing.isDirectory()) throw new Error(`${dir} exists and is not a folder; choose another output path.`);
  if (existing && !overwrite && (await readdir(dir)).length > 0) {
    throw new Error(`${dir} already exists and is not empty; choose another output folder or remove it first.`);
  }
  await mkdir(dirname(dir), { recursive: true });
  const tmp = tempSibling(dir);
  await mkdir(tmp);
  try {
    await fill(tmp);
    await fsyncDir(tmp);
    if (existing) {
      const old = tempSibling(dir);
      await rename(dir, old);
      await rename(tmp, dir);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, dir);
    }
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  await fsyncDir(dirname(dir));
}
