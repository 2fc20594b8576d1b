// Runs inside the test page (bundled by harness.ts, injected with page.addInitScript): builds
// `window.offsite` with the preload's own builder, over Playwright bindings instead of Electron
// IPC. Requests go to `__offsiteInvoke` (a binding into the real gateway in the test's Node
// process); events arrive through `__offsiteDispatch`, which the harness calls.
import { buildOffsiteApi } from '../../electron/ipc/api';
import type { EventName, IpcResult } from '../../electron/ipc/contract';

type Listener = (payload: unknown) => void;

interface BridgeWindow {
  __offsiteInvoke(channel: string, request: unknown): Promise<IpcResult<unknown>>;
}

const listeners = new Map<EventName, Set<Listener>>();
// globalThis is the page's window (this file is type-checked without DOM types).
const page = globalThis as unknown as BridgeWindow;

const api = buildOffsiteApi(
  (channel, request) => page.__offsiteInvoke(channel, request),
  (event, listener) => {
    const set = listeners.get(event) ?? new Set<Listener>();
    listeners.set(event, set);
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  },
);

Object.defineProperty(globalThis, '__offsiteDispatch', {
  value: (event: EventName, payload: unknown) => {
    for (const listener of listeners.get(event) ?? []) listener(payload);
  },
});
Object.defineProperty(globalThis, 'offsite', { value: api, enumerable: true });
