// Small formatting helpers shared by the Emulators screen's components.
import type { LayerRoleName, ManifestJsonValue } from '../../../../electron/ipc/contract';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n.toLocaleString('en-US')} ${n === 1 ? 'byte' : 'bytes'}`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** "2025-01-02T03:04:05.000Z" → "2025-01-02 03:04 UTC": packages move between machines and time zones. */
export function formatTime(iso: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)/.exec(iso);
  return m ? `${m[1]} ${m[2]} UTC` : iso;
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? word : many}`;
}

/** A recommended-tuning value as the model owner wrote it. */
export function jsonText(v: ManifestJsonValue): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return JSON.stringify(v);
}

export const ROLE_LABEL: Record<LayerRoleName, string> = {
  adapter: 'Adapter',
  kept: 'Kept',
  'kept-compressed': 'Kept, compressed',
  harmonizer: 'Harmonizer',
  dropped: 'Dropped',
};

/** The role inside a sentence: "5 kept and compressed". */
export const ROLE_PHRASE: Record<LayerRoleName, string> = {
  adapter: 'adapter',
  kept: 'kept',
  'kept-compressed': 'kept and compressed',
  harmonizer: 'replaced by harmonizers',
  dropped: 'dropped',
};

/** What each role means, for the legend and the screen reader text. */
export const ROLE_MEANING: Record<LayerRoleName, string> = {
  adapter: 'tuned by the data owner and returned',
  kept: 'the original block, frozen',
  'kept-compressed': 'the original block with rank-compressed projections, frozen',
  harmonizer: 'replaced by a small harmonizer network',
  dropped: 'left out of the emulator',
};

export const ROLE_ORDER: LayerRoleName[] = ['adapter', 'kept', 'kept-compressed', 'harmonizer', 'dropped'];
