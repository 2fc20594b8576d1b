// Builds the renderer-facing `window.offsite` object from the contract. The preload builds it over
// ipcRenderer; the e2e bridge builds it over Playwright bindings — same function, same shape.
// Pure: no electron, no DOM, no Node.
import { channels, eventNames, type Channel, type EventName, type EventPayload, type IpcResult, type OffsiteApi } from './contract';

/** Sends one request to the gateway and resolves with its result value. */
export type Invoke = (channel: Channel, request: unknown) => Promise<IpcResult<unknown>>;
/** Registers a listener for one event; returns the function that removes it. */
export type Subscribe = (event: EventName, listener: (payload: unknown) => void) => () => void;

const UNREACHABLE = 'The Offsite Studio window could not reach the app’s main process; close and reopen the app, and report it if it happens again.';

function isResult(x: unknown): x is IpcResult<unknown> {
  if (x === null || typeof x !== 'object') return false;
  const r = x as { ok?: unknown; error?: { message?: unknown } };
  return r.ok === true || (r.ok === false && typeof r.error?.message === 'string');
}

export function buildOffsiteApi(invoke: Invoke, subscribe: Subscribe): OffsiteApi {
  const call = async (channel: Channel, request: unknown): Promise<IpcResult<unknown>> => {
    try {
      const result = await invoke(channel, request);
      if (isResult(result)) return result;
    } catch {
      // Fall through: the renderer always gets a result value, never a rejected promise.
    }
    return { ok: false, error: { code: 'unreachable', message: UNREACHABLE } };
  };

  const api: Record<string, Record<string, (request?: unknown) => Promise<IpcResult<unknown>>>> = {};
  for (const channel of channels) {
    const [namespace, method] = channel.split('.') as [string, string];
    api[namespace] ??= {};
    api[namespace][method] = (request?: unknown) => call(channel, request);
  }
  for (const group of Object.values(api)) Object.freeze(group);

  const on = <E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): (() => void) => {
    if (!eventNames.includes(event)) throw new Error(`There is no event "${String(event)}" in this version of Offsite Studio.`);
    return subscribe(event, (payload) => listener(payload as EventPayload<E>));
  };
  return Object.freeze({ ...api, on }) as unknown as OffsiteApi;
}
