// Handlers of the emulators.* and adapters.* channels (see emulators-contract.ts). handlers.ts
// spreads them into the one handler map. They translate between the contract and
// services/emulator-library.ts, and relay copy/hash progress of a check or an import as
// job.progress events (kind "emulator.verify", "emulator.import", …) so the screen can show it.
import { randomBytes } from 'node:crypto';
import type { EmulatorResponses } from './emulators-contract';
import type { Handlers, Services } from './handlers';
import type { PackageKind } from '../../native-models/formats/package';
import { checkPackage, getEmulator, importToLibrary, listAdapters, listEmulators, removeEmulator, type LibraryProgress } from '../services/emulator-library';

type EmulatorChannel = keyof EmulatorResponses;

/** At most this many progress events a second (a big package reports every chunk it hashes). */
const PROGRESS_INTERVAL_MS = 150;

function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** Runs `work` as a short job: progress relayed (throttled, and on every new file), then job.finished. */
async function asJob<T>(services: Services, kind: string, work: (onProgress: (p: LibraryProgress) => void) => Promise<T>, finished: (value: T) => { outcome: 'done' | 'failed'; message: string }): Promise<T> {
  const jobId = `${kind}-${randomBytes(6).toString('hex')}`;
  let last = 0;
  let lastKey = '';
  const onProgress = (p: LibraryProgress): void => {
    const key = `${p.phase}:${p.file}`;
    const now = Date.now();
    if (key === lastKey && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    lastKey = key;
    const what = p.phase === 'copy' ? 'Copying into the staging folder' : 'Checking SHA-256';
    services.events.emit('job.progress', {
      jobId,
      kind,
      step: p.bytesDone,
      total: p.bytesTotal && p.bytesTotal > 0 ? p.bytesTotal : null,
      message: `${what}: ${p.file} (${formatBytes(p.bytesDone)}${p.bytesTotal ? ` of ${formatBytes(p.bytesTotal)}` : ''} done)`,
      metrics: { bytesDone: p.bytesDone, ...(p.bytesTotal ? { bytesTotal: p.bytesTotal } : {}) },
    });
  };
  try {
    const value = await work(onProgress);
    services.events.emit('job.finished', { jobId, kind, ...finished(value) });
    return value;
  } catch (e) {
    services.events.emit('job.finished', { jobId, kind, outcome: 'failed', message: e instanceof Error ? e.message : String(e) });
    throw e;
  }
}

export function createEmulatorHandlers(services: Services): Pick<Handlers, EmulatorChannel> {
  const verify = (kind: PackageKind, path: string) =>
    asJob(
      services,
      `${kind}.verify`,
      (onProgress) => checkPackage(path, kind, { audit: services.audit, onProgress }),
      (c) => ({ outcome: 'done', message: c.report.verdict }),
    );
  const importKind = (kind: PackageKind, path: string, override: { reason: string } | undefined) =>
    asJob(
      services,
      `${kind}.import`,
      (onProgress) => importToLibrary(services.home, path, kind, { audit: services.audit, override, onProgress }),
      (r) => ({ outcome: r.ok ? 'done' : 'failed', message: r.report.verdict }),
    );
  return {
    'emulators.verify': ({ path }) => verify('emulator', path),
    'emulators.import': ({ path, override }) => importKind('emulator', path, override),
    'emulators.list': () => listEmulators(services.home, services.audit),
    'emulators.get': ({ id }) => getEmulator(services.home, id, services.audit),
    'emulators.remove': ({ id }) => removeEmulator(services.home, id, services.audit),
    'adapters.verify': ({ path }) => verify('adapter', path),
    'adapters.import': ({ path, override }) => importKind('adapter', path, override),
    'adapters.list': () => listAdapters(services.home, services.audit),
  };
}
