// Names found inside imported files (shard lists, manifests) are resolved only as plain relative
// paths that stay inside their folder: no "..", no absolute paths, no backslashes, no symlink
// escapes.
import { realpath, lstat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { FormatError } from './errors';

/** Resolves `name` inside `dir`, or throws FormatError(rule) saying why it may not be used. */
export async function resolveInside(dir: string, name: string, rule: string, what: string): Promise<string> {
  const bad = (why: string): never => {
    throw new FormatError(rule, `${what} names ${JSON.stringify(name).slice(0, 120)}, which ${why} (rule: referenced files are plain relative paths inside the folder).`, dir);
  };
  if (typeof name !== 'string' || name.length === 0) bad('is empty');
  if (name.includes('\\')) bad('contains a backslash');
  if (name.includes('\0')) bad('contains a NUL character');
  if (isAbsolute(name) || name.startsWith('/') || /^[A-Za-z]:/.test(name)) bad('is an absolute path');
  if (name.split('/').some((p) => p === '..' || p === '.' || p === '')) bad('contains "..", "." or an empty path segment');
  const path = join(dir, name);
  const st = await lstat(path).catch(() => undefined);
  if (!st) bad('does not exist');
  if (st!.isSymbolicLink()) bad('is a symbolic link');
  if (!st!.isFile()) bad('is not a regular file');
  const [realDir, realFile] = await Promise.all([realpath(dir), realpath(path)]);
  const rel = relative(realDir, realFile);
  if (rel.startsWith('..') || isAbsolute(rel) || rel.split(sep)[0] === '..') bad('resolves outside the folder');
  return path;
}
