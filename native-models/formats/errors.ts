// One error type for every format reader: the CLI turns it into exit 2 with its message, and tests
// match on `rule` (stable) rather than on wording (which may improve).
import { basename, dirname } from 'node:path';

export class FormatError extends Error {
  override name = 'FormatError';
  constructor(
    /** Stable identifier of the broken rule, e.g. "safetensors.overlap". */
    readonly rule: string,
    message: string,
    /** The file or folder the problem is in. */
    readonly file?: string,
    /** The tensor (or field) the problem is in, when there is one. */
    readonly tensor?: string,
  ) {
    super(message);
  }
}

/** A short, path-free name for messages ("model.safetensors"), so errors stay one readable line. */
export function shortName(path: string): string {
  return basename(path) || path;
}

/** "folder/file" for files whose own name says little (config.json, adapter_config.json). */
export function nameInFolder(path: string): string {
  const folder = basename(dirname(path));
  return folder && folder !== '.' && folder !== '/' ? `${folder}/${basename(path)}` : basename(path);
}
