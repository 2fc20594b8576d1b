import { readFileSync } from 'node:fs';

let cached: string | undefined;
/** The app version from package.json (one source of truth for CLI, UI and audit events). */
export function appVersion(): string {
  if (cached) return cached;
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  cached = pkg.version;
  return cached;
}
