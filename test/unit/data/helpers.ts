// Shared by the data tests: temp files and the real byte-level tokenizer (ids 0..255 = bytes,
// BOS 256 prepended, EOS 257, PAD 258), so expected ids can be written down by hand.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { loadTokenizer, writeByteLevelTokenizerJson, type LoadedTokenizer } from '../../../native-models/formats/tokenizer';

export function tempFolder(): { dir: string; file(name: string, content: string | Uint8Array): string } {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-data-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    file(name, content) {
      const p = join(dir, name);
      writeFileSync(p, content);
      return p;
    },
  };
}

const tokenizers = new Map<string, Promise<LoadedTokenizer>>();
export function byteTokenizer(dir: string): Promise<LoadedTokenizer> {
  let t = tokenizers.get(dir);
  if (!t) {
    const folder = join(dir, 'tok');
    mkdirSync(folder, { recursive: true });
    t = writeByteLevelTokenizerJson(folder).then(() => loadTokenizer(folder));
    tokenizers.set(dir, t);
  }
  return t;
}

export const bytes = (s: string): number[] => [...Buffer.from(s, 'utf8')];
export const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
