// The user's settings, kept as JSON in the data folder (settings.json), validated by the schema
// in the IPC contract and written atomically. The CLI and the app read the same file.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_SETTINGS, settingsPatchSchema, settingsSchema, type Settings, type SettingsPatch } from '../ipc/contract';
import { describeIssues } from '../ipc/issues';
import type { SessionSettings } from '../../native-models/runtime/session';
import { writeFileAtomic } from './atomic-write';
import { ServiceError } from './service-error';

export const SETTINGS_FILE = 'settings.json';

/** The execution provider and threads a job's onnxruntime sessions get from the user's settings. */
export function sessionSettingsOf(s: Settings): SessionSettings {
  return { provider: s.executionProvider, ...(s.threads === 'auto' ? {} : { intraOpThreads: s.threads }) };
}

export interface SettingsChange {
  before: Settings;
  after: Settings;
  /** The settings whose value changed. */
  changed: Array<keyof Settings>;
}

export interface SettingsStoreOptions {
  /**
   * Called after a change of at least one value has been written (the audit trail records
   * settings changes here).
   * An error it throws reaches the caller.
   */
  onChange?: (change: SettingsChange) => void;
}

export interface SettingsStore {
  /** The settings file's path. */
  readonly file: string;
  /** The current settings: defaults for anything the file does not set. */
  get(): Settings;
  /** Validates the change, writes the file atomically and returns the new settings. */
  set(patch: SettingsPatch): Settings;
}

export function createSettingsStore(home: string, options: SettingsStoreOptions = {}): SettingsStore {
  const file = join(home, SETTINGS_FILE);

  /** The file's object as stored, including keys a newer version may have written. */
  function readRaw(): Record<string, unknown> {
    if (!existsSync(file)) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ServiceError(
        `The settings file ${file} is not valid JSON (${(e as Error).message}); fix it, or delete it to go back to the default settings.`,
      );
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ServiceError(`The settings file ${file} does not hold a JSON object; fix it, or delete it to go back to the default settings.`);
    }
    return parsed as Record<string, unknown>;
  }

  function current(raw: Record<string, unknown>): Settings {
    const stored = settingsSchema.partial().safeParse(raw);
    if (!stored.success) {
      throw new ServiceError(
        `The settings file ${file} holds a value that is not valid: ${describeIssues(stored.error)} Fix it, or delete the file to go back to the default settings.`,
      );
    }
    const known = Object.fromEntries(Object.entries(stored.data).filter(([, v]) => v !== undefined));
    return { ...DEFAULT_SETTINGS, ...known };
  }

  return {
    file,
    get: () => current(readRaw()),
    set(patch) {
      const parsed = settingsPatchSchema.safeParse(patch);
      if (!parsed.success) throw new ServiceError(describeIssues(parsed.error));
      const raw = readRaw();
      const before = current(raw);
      const change = Object.fromEntries(Object.entries(parsed.data).filter(([, v]) => v !== undefined));
      const after: Settings = { ...before, ...change };
      // Keys this version does not know are kept, so an older app does not erase a newer one's settings.
      writeFileAtomic(file, `${JSON.stringify({ ...raw, ...after }, null, 2)}\n`);
      const changed = (Object.keys(after) as Array<keyof Settings>).filter((k) => after[k] !== before[k]);
      if (changed.length > 0) options.onChange?.({ before, after, changed });
      return after;
    },
  };
}
