// The one door between the renderer and the services. Every call is checked in this order:
// the sender frame is the app's own page, the channel exists, the payload passes its zod schema;
// then the service runs. The answer is always a value — `{ ok: true, value }` or
// `{ ok: false, error: { code, message } }` — never a throw, so nothing leaks across IPC.
// No electron import: the Electron main process, the unit tests and the e2e bridge share it.
import { channelFlags, requests, type Channel, type IpcError, type IpcResult } from './contract';
import { createHandlers, type Services } from './handlers';
import { describeIssues } from './issues';
import { ServiceError } from '../services/service-error';
import { UsageError, VerificationError } from '../commands/types';

export interface GatewayOptions {
  /** The renderer's origin, e.g. `app://offsite`; calls from any other frame are refused. */
  appOrigin: string;
  /** Receives the details of unexpected errors (the renderer only gets a short sentence). */
  onInternalError?: (channel: string, error: unknown) => void;
}

export interface Gateway {
  handle(channel: unknown, payload: unknown, senderUrl: string | null | undefined): Promise<IpcResult<unknown>>;
}

interface Origin {
  protocol: string;
  host: string;
}

function originOf(url: string): Origin | undefined {
  try {
    // URL.origin is "null" for custom schemes such as app://, so compare scheme and host instead.
    const u = new URL(url);
    return u.host === '' ? undefined : { protocol: u.protocol, host: u.host };
  } catch {
    return undefined;
  }
}

/** True when `url` is a page of the app (same scheme, host and port as `appOrigin`). */
export function isAppUrl(url: string | null | undefined, appOrigin: string): boolean {
  const app = originOf(appOrigin);
  const sender = typeof url === 'string' ? originOf(url) : undefined;
  return app !== undefined && sender !== undefined && sender.protocol === app.protocol && sender.host === app.host;
}

const fail = (code: IpcError['code'], message: string): IpcResult<never> => ({ ok: false, error: { code, message } });

/** The sentence a mutating channel gets while auditor mode is on. */
export function auditorModeRefusal(channel: string): string {
  return `Auditor mode is read-only, so this action (${channel}) was refused: nothing can be started or changed while an audit record is open for review. Choose “Leave auditor mode” on the Audit screen first.`;
}

const FS_SENTENCES: Record<string, string> = {
  ENOENT: 'No such file or folder',
  EACCES: 'Permission denied',
  EPERM: 'Permission denied',
  ENOSPC: 'The disk is full',
  EROFS: 'The disk is read-only',
};

function describeFailure(channel: string, e: unknown): IpcError | undefined {
  if (e instanceof ServiceError || e instanceof UsageError || e instanceof VerificationError) return { code: 'failed', message: e.message };
  const err = e as NodeJS.ErrnoException;
  const known = err && typeof err.code === 'string' ? FS_SENTENCES[err.code] : undefined;
  if (known) return { code: 'failed', message: `${known}: ${err.path ?? channel}.` };
  return undefined;
}

export function createGateway(services: Services, options: GatewayOptions): Gateway {
  const handlers = createHandlers(services);
  const known = new Set<string>(Object.keys(requests));
  if (originOf(options.appOrigin) === undefined) throw new Error(`createGateway: appOrigin "${options.appOrigin}" is not an absolute URL with a host`);

  return {
    async handle(channel, payload, senderUrl) {
      try {
        if (!isAppUrl(senderUrl, options.appOrigin)) {
          return fail('forbidden-sender', 'This request did not come from the Offsite Studio window and was refused.');
        }
        if (typeof channel !== 'string' || !known.has(channel)) {
          const name = typeof channel === 'string' ? `"${channel.slice(0, 80)}"` : 'without a name';
          return fail('unknown-channel', `There is no channel ${name} in this version of Offsite Studio.`);
        }
        const name = channel as Channel;
        // Checked before the payload, so a refused call never reaches a service in any form.
        if (channelFlags[name].mutates && services.auditView.auditorMode) return fail('read-only', auditorModeRefusal(name));
        const parsed = requests[name].safeParse(payload);
        if (!parsed.success) return fail('invalid-request', describeIssues(parsed.error));
        const handler = handlers[name] as (request: unknown) => unknown;
        const value = await handler(parsed.data);
        return { ok: true, value };
      } catch (e) {
        const known = describeFailure(String(channel), e);
        if (known) return { ok: false, error: known };
        try {
          options.onInternalError?.(String(channel), e);
        } catch {
          // A failing logger must not turn a returned error into a throw.
        }
        const detail = e instanceof Error ? e.message : String(e);
        return fail('internal', `Offsite Studio hit an unexpected error in ${String(channel)} (${detail}); please report it.`);
      }
    },
  };
}
