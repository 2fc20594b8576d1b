// Where the app keeps its audit database, keys, imported packages and runs.
import { homedir, platform } from 'node:os';
import { join, resolve } from 'node:path';

export function defaultHome(): string {
  const h = homedir();
  switch (platform()) {
    case 'win32':
      return join(process.env.APPDATA ?? join(h, 'AppData', 'Roaming'), 'Offsite Studio');
    case 'darwin':
      return join(h, 'Library', 'Application Support', 'Offsite Studio');
    default:
      return join(process.env.XDG_CONFIG_HOME ?? join(h, '.config'), 'Offsite Studio');
  }
}

/** `--home DIR`, else `OFFSITE_HOME`, else the platform's app-data folder. */
export function resolveHome(flag?: string): string {
  const chosen = flag ?? process.env.OFFSITE_HOME;
  return chosen ? resolve(chosen) : defaultHome();
}

/**
 * A new output folder in `home` named `prefix-<UTC date and time>` (the name `offsite demo`,
 * `offsite table` and the Demo screen pick when no folder is given).
 */
export function stampedFolder(home: string, prefix: string, now = new Date()): string {
  return join(home, `${prefix}-${now.toISOString().replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z')}`);
}
