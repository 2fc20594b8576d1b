// Auditor mode as the whole window sees it: which audit record is open read-only (if any). The
// main process holds the truth (and refuses mutating calls while a record is open); this store
// mirrors it so the navigation can show only the screens an auditor may use.
import type { AuditSourceInfo, IpcError } from '../../../electron/ipc/contract';
import type { ScreenId } from './screens';

/** The screens auditor mode keeps: the Audit screen's read-only views, Models (generation writes nothing), and Settings. */
export const AUDITOR_SCREENS: readonly ScreenId[] = ['models', 'audit', 'settings'];

class Auditor {
  /** The source the Audit screen reads; null until first loaded. */
  source = $state<AuditSourceInfo | null>(null);
  /** A sentence saying why the audit source could not be loaded. */
  error = $state<string | null>(null);

  readonly active = $derived(this.source?.mode === 'auditor');

  allows(id: ScreenId): boolean {
    return !this.active || AUDITOR_SCREENS.includes(id);
  }

  async refresh(): Promise<IpcError | null> {
    const r = await window.offsite.audit.source();
    if (!r.ok) {
      this.error = r.error.message;
      return r.error;
    }
    this.source = r.value;
    this.error = null;
    return null;
  }

  /** Opens an audit database or export read-only; returns the gateway's error, or null. */
  async open(path: string): Promise<IpcError | null> {
    const r = await window.offsite.audit.open({ path });
    if (!r.ok) return r.error;
    this.source = r.value;
    return null;
  }

  async leave(): Promise<IpcError | null> {
    const r = await window.offsite.audit.close();
    if (!r.ok) return r.error;
    this.source = r.value;
    return null;
  }
}

export const auditor = new Auditor();

/** "2024-05-01T13:02:21.123Z" → "2024-05-01 13:02:21 UTC": auditors compare times across machines. */
export function formatTs(ts: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(ts);
  return m ? `${m[1]} ${m[2]} UTC` : ts;
}

/** The first and last characters of a hash, for places with no room for all 64. */
export function shortHash(hash: string, n = 12): string {
  return hash.length > 2 * n ? `${hash.slice(0, n)}…${hash.slice(-4)}` : hash;
}

export function actorText(actor: { os: string; app: string | null }): string {
  return actor.app ? `${actor.app} (${actor.os})` : actor.os;
}
