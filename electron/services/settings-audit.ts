// Settings changes go into the audit trail (SECURITY.md: every settings change appends an event).
// The desktop app (ipc/handlers.ts createServices) and any command-line path that changes settings
// open their settings store through here, so neither can change a setting without its event.
import type { JsonValue } from '../audit/canonical';
import type { AuditLog } from './audit';
import { createSettingsStore, type SettingsChange, type SettingsStore, type SettingsStoreOptions } from './settings';

/** Appends one `settings.changed` event listing every changed key with its old and new value. */
export function recordSettingsChange(audit: AuditLog, change: SettingsChange, reason?: string): void {
  if (change.changed.length === 0) return;
  audit.recordSettingsChanges(
    change.changed.map((key) => ({ key, oldValue: change.before[key] as JsonValue, newValue: change.after[key] as JsonValue })),
    reason,
  );
}

/**
 * A settings store whose every change is recorded in `audit()` (opened on first change only, so
 * reading settings never creates an audit database). `onChange` runs after the event is written.
 */
export function createAuditedSettingsStore(home: string, audit: () => AuditLog, onChange?: SettingsStoreOptions['onChange']): SettingsStore {
  return createSettingsStore(home, {
    onChange(change) {
      recordSettingsChange(audit(), change);
      onChange?.(change);
    },
  });
}
