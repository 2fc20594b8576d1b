// Who and where, for every audit event: the OS account, the app user named in Settings, and a
// stable machine id (a hash, so the raw machine-id never leaves the machine in an export).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';

export interface Actor {
  /** The operating-system account that ran the action. */
  os: string;
  /** The user name from Settings, when one is set. */
  app?: string;
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    // userInfo() throws when the uid has no passwd entry (some containers); the uid still identifies.
    return typeof process.getuid === 'function' ? `uid:${process.getuid()}` : 'unknown';
  }
}

/** `userName` from `<home>/settings.json` (the Settings screen's file), or undefined. */
export function appUserFromSettings(home: string): string | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(home, 'settings.json'), 'utf8')) as { userName?: unknown };
    const name = typeof parsed.userName === 'string' ? parsed.userName.trim() : '';
    return name.length > 0 ? name : undefined;
  } catch {
    return undefined;
  }
}

export function currentActor(appUser?: string): Actor {
  const app = appUser?.trim();
  return app ? { os: osUser(), app } : { os: osUser() };
}

const MACHINE_ID_FILES = ['/etc/machine-id', '/var/lib/dbus/machine-id'];

let cachedMachineId: string | undefined;
/** 32 hex digits of SHA-256(hostname + "\n" + OS machine-id), the id file left out where unreadable. */
export function machineId(): string {
  if (cachedMachineId) return cachedMachineId;
  let osId = '';
  for (const file of MACHINE_ID_FILES) {
    try {
      osId = readFileSync(file, 'utf8').trim();
      if (osId) break;
    } catch {
      // not on this platform or not readable: the hostname alone still gives a stable id
    }
  }
  cachedMachineId = createHash('sha256').update(`${hostname()}\n${osId}`).digest('hex').slice(0, 32);
  return cachedMachineId;
}
