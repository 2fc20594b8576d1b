// Which service answers which channel. A new feature adds its channels to contract.ts, its
// service to `Services`, and one line per channel here; the compiler checks every channel has a
// handler with the contract's request and response types.
import type { Channel, EventName, EventPayload, ParsedRequest, Response } from './contract';
import { createAuditHandlers } from './audit-handlers';
import { createDatasetHandlers } from './datasets-handlers';
import { createEvalHandlers } from './eval-handlers';
import { createEmulatorHandlers } from './emulators-handlers';
import { createRunsHandlers, forwardRunProgress } from './runs-handlers';
import { createBuildHandlers } from './build-handlers';
import { createDemoHandlers } from './demo-handlers';
import { createModelsHandlers } from './models-handlers';
import { appInfo } from '../services/app-info';
import { openAudit, type AuditLog } from '../services/audit';
import { createAuditViewer, type AuditViewer } from '../services/audit-viewer';
import { openRuns, type RunsService } from '../services/runs';
import type { SettingsStore, SettingsStoreOptions } from '../services/settings';
import { createAuditedSettingsStore } from '../services/settings-audit';

/** Where services push events for the renderer (job progress); main sends them to the window. */
export interface EventSink {
  emit<E extends EventName>(event: E, payload: EventPayload<E>): void;
}

export interface Services {
  /** The data folder. */
  home: string;
  /** Every change is recorded as a settings.changed audit event. */
  settings: SettingsStore;
  events: EventSink;
  /** The data folder's audit log, opened on first use (so reading settings creates no database). */
  readonly audit: AuditLog;
  /** What the Audit screen reads: this data folder's log, or a record opened in auditor mode. */
  auditView: AuditViewer;
  /** Tuning runs, opened on first use; their progress goes to `events` as job.progress (kind "tune"). */
  readonly runs: RunsService;
  /** Closes the audit log and leaves auditor mode (app quit; end of a test). */
  close(): void;
}

export interface ServicesOptions {
  events: EventSink;
  onSettingsChange?: SettingsStoreOptions['onChange'];
}

export function createServices(home: string, options: ServicesOptions): Services {
  let audit: AuditLog | undefined;
  const getAudit = (): AuditLog => (audit ??= openAudit(home));
  const auditView = createAuditViewer(home, getAudit);
  let runs: RunsService | undefined;
  const getRuns = (): RunsService => {
    if (!runs) {
      runs = openRuns(home);
      forwardRunProgress(runs, options.events);
    }
    return runs;
  };
  return {
    home,
    settings: createAuditedSettingsStore(home, getAudit, options.onSettingsChange),
    events: options.events,
    get audit() {
      return getAudit();
    },
    auditView,
    get runs() {
      return getRuns();
    },
    close() {
      try {
        // Live runs are asked to stop (each keeps a checkpoint); then their audit handle closes.
        runs?.close();
        runs = undefined;
        auditView.close();
      } finally {
        audit?.close();
        audit = undefined;
      }
    },
  };
}

export type Handlers = {
  [C in Channel]: (request: ParsedRequest<C>) => Response<C> | Promise<Response<C>>;
};

export function createHandlers(services: Services): Handlers {
  return {
    'app.info': () => appInfo(services.home, services.settings.get()),
    'settings.get': () => services.settings.get(),
    'settings.set': (patch) => services.settings.set(patch),
    ...createAuditHandlers(services),
    ...createDatasetHandlers(services),
    ...createEvalHandlers(services),
    ...createEmulatorHandlers(services),
    ...createRunsHandlers(services),
    ...createBuildHandlers(services),
    ...createDemoHandlers(services),
    ...createModelsHandlers(services),
  };
}
