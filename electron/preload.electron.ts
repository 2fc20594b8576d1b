// Sandboxed preload (bundled to CommonJS): exposes `window.offsite`, the task-level API derived
// from the IPC contract. ipcRenderer and its raw events never cross into the page.
import { contextBridge, ipcRenderer } from 'electron';
import { buildOffsiteApi } from './ipc/api';
import { EVENT_CHANNEL, INVOKE_CHANNEL } from './ipc/electron-channels';
import type { EventName, IpcResult, OffsiteApi } from './ipc/contract';

const listeners = new Map<EventName, Set<(payload: unknown) => void>>();

ipcRenderer.on(EVENT_CHANNEL, (_event, name: EventName, payload: unknown) => {
  for (const listener of listeners.get(name) ?? []) listener(payload);
});

const api = buildOffsiteApi(
  (channel, request) => ipcRenderer.invoke(INVOKE_CHANNEL, channel, request) as Promise<IpcResult<unknown>>,
  (event, listener) => {
    const set = listeners.get(event) ?? new Set();
    listeners.set(event, set);
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  },
) satisfies OffsiteApi;

contextBridge.exposeInMainWorld('offsite', api);
