import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { Channel, EventName, EventPayload, IpcResult, Response } from '../../../electron/ipc/contract';
import { stopBuilds } from '../../../electron/ipc/build-handlers';
import { stopDemos } from '../../../electron/ipc/demo-handlers';
import { createGateway, type Gateway } from '../../../electron/ipc/gateway';
import { createServices, type Services } from '../../../electron/ipc/handlers';

/** A fresh temp data folder per call, removed after the test. */
export function useTempHomes(): () => string {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-ipc-'));
    made.push(dir);
    return dir;
  };
}

export const APP = 'app://offsite';
export const PAGE = 'app://offsite/index.html';

export type Emitted = { [E in EventName]: { event: E; payload: EventPayload<E> } }[EventName];

export interface GatewayStudio {
  home: string;
  services: Services;
  gateway: Gateway;
  /** Every event the services emitted, in order. */
  emitted: Emitted[];
  /** Calls a channel as the app's page; throws with the error when the call fails. */
  call<C extends Channel>(channel: C, request?: unknown): Promise<Response<C>>;
  /** Calls a channel that must fail; resolves with its error. */
  refusal(channel: string, request?: unknown): Promise<{ code: string; message: string }>;
  /** Resolves with the first emitted event that matches (waiting for it if needed). */
  until<E extends EventName>(event: E, match: (p: EventPayload<E>) => boolean, timeoutMs?: number): Promise<EventPayload<E>>;
}

/**
 * Real services and gateway over a data folder, recording the events they emit. After each test
 * every running build and demo is stopped and the services closed (fresh temp homes removed).
 */
export function useGatewayStudios(): { studio: (home?: string) => GatewayStudio; tempHome: () => string } {
  const tempHome = useTempHomes();
  const opened: Services[] = [];
  // Registered after useTempHomes' hook, so it runs first: jobs stop before their folders go.
  afterEach(async () => {
    for (const s of opened.splice(0)) {
      await stopBuilds(s);
      await stopDemos(s);
      s.close();
    }
  });
  const studio = (home = tempHome()): GatewayStudio => {
    const emitted: Emitted[] = [];
    const waiters: Array<() => void> = [];
    const services = createServices(home, {
      events: {
        emit: (event, payload) => {
          emitted.push({ event, payload } as Emitted);
          for (const w of waiters.splice(0)) w();
        },
      },
    });
    opened.push(services);
    const gateway = createGateway(services, { appOrigin: APP });
    return {
      home,
      services,
      gateway,
      emitted,
      async call<C extends Channel>(channel: C, request?: unknown): Promise<Response<C>> {
        const r = (await gateway.handle(channel, request, PAGE)) as IpcResult<Response<C>>;
        if (!r.ok) throw new Error(`${channel} failed: ${r.error.code}: ${r.error.message}`);
        return r.value;
      },
      async refusal(channel, request) {
        const r = await gateway.handle(channel, request, PAGE);
        if (r.ok) throw new Error(`${channel} was expected to fail, got ${JSON.stringify(r.value).slice(0, 300)}`);
        return r.error;
      },
      async until<E extends EventName>(event: E, match: (p: EventPayload<E>) => boolean, timeoutMs = 240_000): Promise<EventPayload<E>> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const hit = emitted.find((e) => e.event === event && match(e.payload as EventPayload<E>));
          if (hit) return hit.payload as EventPayload<E>;
          if (Date.now() > deadline) throw new Error(`No ${event} event matched within ${timeoutMs} ms.`);
          await new Promise<void>((r) => {
            waiters.push(r);
            setTimeout(r, 200);
          });
        }
      },
    };
  };
  return { studio, tempHome };
}
