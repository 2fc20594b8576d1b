// SHA-256 digests of bytes, files and folders, in the form audit events record as input and output
// hashes. A folder's digest covers its sorted relative paths, sizes and file digests, so renaming,
// adding, removing or changing any file changes it; the listing it hashes is returned too.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { ServiceError } from './service-error';

/** What an audit event records for a file or folder it read or wrote. */
export interface Digest {
  sha256: string;
  /** Bytes (a folder: total bytes of its files). */
  size: number;
  /** Set for folders: how many files the digest covers. */
  files?: number;
}

export interface FolderEntry {
  /** Relative path with forward slashes. */
  path: string;
  size: number;
  sha256: string;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function isSha256Hex(s: unknown): s is string {
  return typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);
}

/** Streams the file, so multi-gigabyte weights never sit in memory. */
export async function hashFile(path: string): Promise<Digest> {
  const info = await lstat(path);
  if (info.isSymbolicLink()) throw new ServiceError(`${path} is a symbolic link; hash the file it points to instead.`);
  if (!info.isFile()) throw new ServiceError(`${path} is not a file.`);
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Every regular file under `folder`, sorted by relative path (byte order of the UTF-8 path). */
export async function listFolder(folder: string): Promise<FolderEntry[]> {
  const entries: FolderEntry[] = [];
  async function walk(dir: string): Promise<void> {
    for (const dirent of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, dirent.name);
      if (dirent.isSymbolicLink()) throw new ServiceError(`${full} is a symbolic link; folders with links cannot be hashed reproducibly.`);
      if (dirent.isDirectory()) await walk(full);
      else if (dirent.isFile()) {
        const d = await hashFile(full);
        entries.push({ path: relative(folder, full).split(sep).join('/'), size: d.size, sha256: d.sha256 });
      } else throw new ServiceError(`${full} is neither a file nor a folder.`);
    }
  }
  await walk(folder);
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.path, 'utf8'), Buffer.from(b.path, 'utf8')));
  return entries;
}

/** The digest of a folder listing: SHA-256 over lines `path\tsize\tsha256\n`. */
export function digestListing(entries: FolderEntry[]): Digest {
  const text = entries.map((e) => `${e.path}\t${e.size}\t${e.sha256}\n`).join('');
  return { sha256: sha256Hex(text), size: entries.reduce((n, e) => n + e.size, 0), files: entries.length };
}

export async function hashFolder(folder: string): Promise<Digest & { entries: FolderEntry[] }> {
  const info = await lstat(folder);
  if (!info.isDirectory()) throw new ServiceError(`${folder} is not a folder.`);
  const entries = await listFolder(folder);
  return { ...digestListing(entries), entries };
}

/** A file or a folder, whichever `path` is. */
export async function hashPath(path: string): Promise<Digest> {
  const info = await lstat(path);
  if (info.isDirectory()) {
    const { entries: _entries, ...digest } = await hashFolder(path);
    return digest;
  }
  return hashFile(path);
}
