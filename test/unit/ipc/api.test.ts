import { describe, expect, it } from 'vitest';
import { buildOffsiteApi, type Invoke, type Subscribe } from '../../../electron/ipc/api';
import { channels, eventNames, events, requests } from '../../../electron/ipc/contract';
import { createGateway } from '../../../electron/ipc/gateway';
import { createServices } from '../../../electron/ipc/handlers';
import { useTempHomes } from './helpers';

const tempHome = useTempHomes();

function recorder() {
  const calls: Array<[string, unknown]> = [];
  const invoke: Invoke = async (channel, request) => {
    calls.push([channel, request]);
    return { ok: true, value: `answer to ${channel}` };
  };
  const subscriptions: string[] = [];
  const subscribe: Subscribe = (event) => {
    subscriptions.push(event);
    return () => subscriptions.splice(subscriptions.indexOf(event), 1);
  };
  return { calls, invoke, subscriptions, subscribe };
}

describe('contract', () => {
  it('names every channel namespace.method, with no namespace called "on"', () => {
    for (const c of channels) expect(c).toMatch(/^[a-z][A-Za-z]*\.[a-z][A-Za-z]*$/);
    expect(channels.some((c) => c.startsWith('on.'))).toBe(false);
    expect(channels).toEqual(Object.keys(requests));
    expect(eventNames).toEqual(Object.keys(events));
  });

  it('has the first channels and the job events', () => {
    expect(channels).toEqual(expect.arrayContaining(['app.info', 'settings.get', 'settings.set']));
    expect(eventNames).toEqual(expect.arrayContaining(['job.progress', 'job.finished']));
  });
});

describe('buildOffsiteApi', () => {
  it('offers one function per channel, grouped by namespace, each invoking its own channel', async () => {
    const r = recorder();
    const api = buildOffsiteApi(r.invoke, r.subscribe) as unknown as Record<string, Record<string, (x?: unknown) => Promise<unknown>>>;
    expect(await api.app!.info!()).toEqual({ ok: true, value: 'answer to app.info' });
    await api.settings!.get!();
    await api.settings!.set!({ threads: 2 });
    expect(r.calls).toEqual([
      ['app.info', undefined],
      ['settings.get', undefined],
      ['settings.set', { threads: 2 }],
    ]);
    // One group per contract namespace (new features add namespaces), plus `on`.
    const namespaces = [...new Set(channels.map((c) => c.split('.')[0]!))];
    expect(namespaces).toEqual(expect.arrayContaining(['app', 'settings']));
    expect(Object.keys(api).sort()).toEqual([...namespaces, 'on'].sort());
    expect(Object.isFrozen(api)).toBe(true);
  });

  it('exposes nothing but plain functions and plain objects (no transport object)', () => {
    const api = buildOffsiteApi(recorder().invoke, recorder().subscribe) as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(api)) {
      if (key === 'on') expect(typeof value).toBe('function');
      else for (const fn of Object.values(value as object)) expect(typeof fn).toBe('function');
    }
  });

  it('turns a rejected or malformed transport answer into an "unreachable" error value', async () => {
    const rejecting = buildOffsiteApi(async () => {
      throw new Error('ipc closed');
    }, recorder().subscribe);
    const r1 = await rejecting.app.info();
    expect(r1.ok).toBe(false);
    if (!r1.ok) expect(r1.error.code).toBe('unreachable');
    const garbage = buildOffsiteApi((async () => 'nonsense') as unknown as Invoke, recorder().subscribe);
    const r2 = await garbage.settings.get();
    expect(!r2.ok && r2.error.code).toBe('unreachable');
  });

  it('subscribes to known events only and returns the unsubscribe function', () => {
    const r = recorder();
    const api = buildOffsiteApi(r.invoke, r.subscribe);
    const off = api.on('job.progress', () => {});
    expect(r.subscriptions).toEqual(['job.progress']);
    off();
    expect(r.subscriptions).toEqual([]);
    expect(() => api.on('job.exploded' as never, () => {})).toThrow('There is no event "job.exploded" in this version of Offsite Studio.');
  });

  it('works end to end over the real gateway, validation sentences included', async () => {
    const gateway = createGateway(createServices(tempHome(), { events: { emit: () => {} } }), { appOrigin: 'app://offsite' });
    const api = buildOffsiteApi((c, p) => gateway.handle(c, p, 'app://offsite/index.html'), recorder().subscribe);
    const saved = await api.settings.set({ role: 'data-owner' });
    expect(saved.ok && saved.value.role).toBe('data-owner');
    const refused = await api.settings.set({ threads: -2 });
    expect(refused).toEqual({ ok: false, error: { code: 'invalid-request', message: 'Threads must be "auto" or a whole number from 1 to 1024.' } });
  });
});
