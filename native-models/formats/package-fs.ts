// Filesystem primitives for packages that never follow a symbolic link: walking a folder with
// lstat, hashing a file through a descriptor opened with O_NOFOLLOW (and checked with fstat, so
// the file hashed is the file that was checked), and copying a folder the same way.
import { constants, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { lstat, mkdir, open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from './errors';

// O_NOFOLLOW does not exist on Windows; there lstat before open is the best available.
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const CHUNK = 1 << 20;

export interface PackageLimits {
  /** Most files a package may hold (manifest.json and manifest.sig not counted). */
  maxFiles: number;
  /** Most bytes all files together may hold. */
  maxTotalBytes: number;
  /** Largest manifest.json accepted. */
  maxManifestBytes: number;
  /** Deepest folder nesting inside a package. */
  maxDepth: number;
}

/** Sane defaults: room for a sharded 70B-parameter emulator, not for a disk-filling folder. */
export const DEFAULT_PACKAGE_LIMITS: PackageLimits = {
  maxFiles: 4096,
  maxTotalBytes: 512 * 2 ** 30,
  maxManifestBytes: 16 * 2 ** 20,
  maxDepth: 16,
};

export interface WalkedEntry {
  /** Relative path with forward slashes. */
  path: string;
  kind: 'file' | 'symlink' | 'other';
  size: number;
}

export interface WalkResult {
  entries: WalkedEntry[];
  /** True when the walk stopped early because the folder holds more entries than allowed. */
  truncated: boolean;
  tooDeep: string | null;
}

/**
 * Lists everything under `root` without following links (lstat). Stops after `maxEntries`, so a
 * hostile folder with millions of files costs a bounded amount of work.
 */
export async function walkNoFollow(root: string, maxEntries: number, maxDepth: number): Promise<WalkResult> {
  const entries: WalkedEntry[] = [];
  let truncated = false;
  let tooDeep: string | null = null;
  async function walk(dir: string, rel: string, depth: number): Promise<void> {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      if (entries.length >= maxEntries) {
        truncated = true;
        return;
      }
      const path = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(dir, name));
      if (st.isSymbolicLink()) entries.push({ path, kind: 'symlink', size: 0 });
      else if (st.isDirectory()) {
        if (depth + 1 > maxDepth) {
          tooDeep ??= path;
          continue;
        }
        await walk(join(dir, name), path, depth + 1);
        if (truncated) return;
      } else if (st.isFile()) entries.push({ path, kind: 'file', size: st.size });
      else entries.push({ path, kind: 'other', size: 0 });
    }
  }
  await walk(root, '', 0);
  return { entries, truncated, tooDeep };
}

/** Opens a regular file for reading without following a link at its last component. */
export async function openNoFollow(path: string): Promise<{ fh: FileHandle; st: Stats }> {
  const fh = await open(path, constants.O_RDONLY | NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new FormatError('package.not-a-file', `${path} is not a regular file.`, path);
    return { fh, st };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

export interface HashResult {
  sha256: string;
  size: number;
}

/** Streams a file through SHA-256 (never the whole file in memory). */
export async function hashHandle(fh: FileHandle, onBytes?: (n: number) => void, signal?: AbortSignal): Promise<HashResult> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  let size = 0;
  for (;;) {
    signal?.throwIfAborted();
    const { bytesRead } = await fh.read(buf, 0, CHUNK, size);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    size += bytesRead;
    onBytes?.(bytesRead);
  }
  return { sha256: hash.digest('hex'), size };
}

export async function hashFileNoFollow(path: string): Promise<HashResult> {
  const { fh } = await openNoFollow(path);
  try {
    return await hashHandle(fh);
  } finally {
    await fh.close();
  }
}

export interface CopyOptions {
  limits?: Partial<PackageLimits>;
  signal?: AbortSignal;
  /** Called after each file with the bytes copied so far. */
  onProgress?: (p: { file: string; bytesDone: number }) => void;
}

/**
 * Copies the folder `src` into the existing empty folder `dst`: regular files and folders only.
 * A symbolic link or special file anywhere is refused (FormatError naming it), as are folders
 * with more files, bytes or nesting than the limits allow. Every file is fsynced.
 */
export async function copyTreeNoFollow(src: string, dst: string, opts: CopyOptions = {}): Promise<{ files: number; bytes: number }> {
  const limits = { ...DEFAULT_PACKAGE_LIMITS, ...opts.limits };
  const top = await lstat(src);
  if (top.isSymbolicLink()) throw new FormatError('package.symlink', `${src} is a symbolic link; give the package folder itself (rule: no symbolic links).`, src);
  if (!top.isDirectory()) throw new FormatError('package.not-a-folder', `${src} is not a folder; a package is a folder holding manifest.json.`, src);
  // +2 for manifest.json and manifest.sig, which the file cap does not count.
  const walked = await walkNoFollow(src, limits.maxFiles + 3, limits.maxDepth);
  if (walked.truncated) throw new FormatError('package.too-many-files', `${src} holds more than ${limits.maxFiles} files (rule: entry count is capped).`, src);
  if (walked.tooDeep) throw new FormatError('package.too-deep', `${walked.tooDeep} in ${src} is nested more than ${limits.maxDepth} folders deep (rule: nesting is capped).`, src);
  let total = 0;
  for (const e of walked.entries) {
    if (e.kind === 'symlink') throw new FormatError('package.symlink', `${e.path} in ${src} is a symbolic link (rule: no symbolic links in a package).`, join(src, e.path));
    if (e.kind === 'other') throw new FormatError('package.special-file', `${e.path} in ${src} is not a regular file or folder (rule: only plain files in a package).`, join(src, e.path));
    total += e.size;
  }
  if (total > limits.maxTotalBytes) {
    throw new FormatError('package.too-large', `${src} holds ${total} bytes, more than the ${limits.maxTotalBytes} allowed (rule: total size is capped).`, src);
  }
  let done = 0;
  let copiedBytes = 0;
  const buf = Buffer.allocUnsafe(CHUNK);
  for (const e of walked.entries) {
    opts.signal?.throwIfAborted();
    const parts = e.path.split('/');
    if (parts.length > 1) await mkdir(join(dst, ...parts.slice(0, -1)), { recursive: true });
    const { fh: input, st } = await openNoFollow(join(src, ...parts));
    const output = await open(join(dst, ...parts), 'wx', 0o644);
    try {
      let pos = 0;
      for (;;) {
        const { bytesRead } = await input.read(buf, 0, CHUNK, pos);
        if (bytesRead === 0) break;
        let off = 0;
        while (off < bytesRead) off += (await output.write(buf, off, bytesRead - off)).bytesWritten;
        pos += bytesRead;
        // A file that grows while it is copied could blow the size cap; stop at what was listed.
        if (pos > st.size || copiedBytes + pos > limits.maxTotalBytes) {
          throw new FormatError('package.changed-while-copying', `${e.path} in ${src} grew while it was being copied; copy the package again from a folder nothing writes to.`, join(src, e.path));
        }
      }
      copiedBytes += pos;
      await output.sync();
    } finally {
      await input.close();
      await output.close();
    }
    done++;
    opts.onProgress?.({ file: e.path, bytesDone: copiedBytes });
  }
  await syncTree(dst);
  return { files: done, bytes: copiedBytes };
}

/** fsyncs every folder under (and including) `root`, so new entries survive a power cut. */
export async function syncTree(root: string): Promise<void> {
  const dirs = [root];
  for (let i = 0; i < dirs.length; i++) {
    for (const d of await readdir(dirs[i]!, { withFileTypes: true })) if (d.isDirectory()) dirs.push(join(dirs[i]!, d.name));
  }
  for (const d of dirs.reverse()) {
    let fh: FileHandle | undefined;
    try {
      fh = await open(d, 'r');
      await fh.sync();
    } catch {
      // Windows cannot fsync a folder; the files themselves were synced.
    } finally {
      await fh?.close();
    }
  }
}
