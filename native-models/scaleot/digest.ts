// The SHA-256 an emulator manifest records for its source model, computed the way the audit log
// hashes inputs (electron/services/hashing.ts): a file's bytes, or for a folder the SHA-256 over
// lines `path\tsize\tsha256\n` of its regular files sorted by UTF-8 path. So the manifest's
// sourceModel.sha256 equals the model hash in the emulator.built audit event.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

async function fileDigest(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

export async function modelDigest(path: string): Promise<string> {
  const st = await lstat(path);
  if (!st.isDirectory()) return (await fileDigest(path)).sha256;
  const lines: { path: string; line: string }[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, e.name);
      if (e.isSymbolicLink()) throw new Error(`${full} is a symbolic link; a model folder with links cannot be hashed reproducibly.`);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile()) {
        const d = await fileDigest(full);
        const rel = relative(path, full).split(sep).join('/');
        lines.push({ path: rel, line: `${rel}\t${d.size}\t${d.sha256}\n` });
      }
    }
  };
  await walk(path);
  lines.sort((a, b) => Buffer.compare(Buffer.from(a.path, 'utf8'), Buffer.from(b.path, 'utf8')));
  return createHash('sha256').update(lines.map((l) => l.line).join('')).digest('hex');
}
