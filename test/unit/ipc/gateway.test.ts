import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createGateway, isAppUrl } from '../../../electron/ipc/gateway';
import { createServices, type Services } from '../../../electron/ipc/handlers';
import { ServiceError } from '../../../electron/services/service-error';
import type { IpcResult } from '../../../electron/ipc/contract';
import { useTempHomes } from './helpers';

const APP = 'app://offsite';
const PAGE = 'app://offsite/index.html';
const tempHome = useTempHomes();

function gatewayFor(home = tempHome(), onInternalError?: (channel: string, e: unknown) => void) {
  const services = createServices(home, { events: { emit: () => {} } });
  return { home, services, gateway: createGateway(services, { appOrigin: APP, onInternalError }) };
}

function errorOf(r: IpcResult<unknown>) {
  if (r.ok) throw new Error(`expected an error result, got ${JSON.stringify(r.value)}`);
  return r.error;
}

describe('gateway: sender check', () => {
  it.each([
    ['https://evil.example/index.html'],
    ['app://evil/index.html'],
    ['app://offsite.evil/index.html'],
    ['app://evil@offsite.evil/'],
    ['http://offsite/index.html'],
    ['file:///index.html'],
    ['about:blank'],
    ['not a url'],
    [''],
  ])('refuses a call from %j without touching any service', async (sender) => {
    const { gateway, home } = gatewayFor();
    const r = await gateway.handle('settings.set', { threads: 2 }, sender);
    expect(errorOf(r).code).toBe('forbidden-sender');
    expect(existsSync(join(home, 'settings.json'))).toBe(false);
  });

  it('refuses a call with no sender frame (null or undefined)', async () => {
    const { gateway } = gatewayFor();
    expect(errorOf(await gateway.handle('app.info', undefined, null)).code).toBe('forbidden-sender');
    expect(errorOf(await gateway.handle('app.info', undefined, undefined)).code).toBe('forbidden-sender');
  });

  it('accepts any page of the app origin, and only that scheme, host and port', () => {
    expect(isAppUrl('app://offsite/index.html', APP)).toBe(true);
    expect(isAppUrl('app://offsite/deep/page.html#/settings', APP)).toBe(true);
    expect(isAppUrl('http://127.0.0.1:4173/index.html', 'http://127.0.0.1:4173')).toBe(true);
    expect(isAppUrl('http://127.0.0.1:4174/index.html', 'http://127.0.0.1:4173')).toBe(false);
    expect(isAppUrl('https://127.0.0.1:4173/index.html', 'http://127.0.0.1:4173')).toBe(false);
  });

  it('refuses to be created with an origin that has no host', () => {
    expect(() => createGateway(gatewayFor().services, { appOrigin: 'offsite' })).toThrow(/appOrigin/);
  });
});

describe('gateway: channels and payloads', () => {
  it.each([['no.such'], ['settings'], ['__proto__'], ['constructor'], ['toString'], [''], [42], [null], [{ channel: 'app.info' }]])(
    'answers an unknown channel %j with an error value',
    async (channel) => {
      const { gateway } = gatewayFor();
      const r = await gateway.handle(channel, undefined, PAGE);
      expect(errorOf(r).code).toBe('unknown-channel');
      expect(errorOf(r).message).toMatch(/^There is no channel .* in this version of Offsite Studio\.$/);
    },
  );

  it.each([
    ['settings.set', { threads: 0 }, 'Threads must be "auto" or a whole number from 1 to 1024.'],
    ['settings.set', { threads: 'many' }, 'Threads must be "auto" or a whole number from 1 to 1024.'],
    ['settings.set', { threads: 2.5 }, 'Threads must be "auto" or a whole number from 1 to 1024.'],
    ['settings.set', { threads: Number.NaN }, 'Threads must be "auto" or a whole number from 1 to 1024.'],
    ['settings.set', { executionProvider: 'tpu' }, 'Execution provider must be auto, cpu or cuda.'],
    ['settings.set', { role: 'admin' }, 'Role must be model owner, data owner or auditor.'],
    ['settings.set', { userName: 7 }, 'User name must be text.'],
    ['settings.set', { userName: 'x'.repeat(81) }, 'User name must be at most 80 characters.'],
    ['settings.set', { userName: 'a\u0007b' }, 'User name must not contain control characters.'],
    ['settings.set', { dataFolder: '/elsewhere' }, '"dataFolder" is not a known field.'],
    ['settings.set', 'threads=2', 'The request is not valid: expected object, received string.'],
    ['settings.set', null, 'The request is not valid: expected object, received null.'],
    ['app.info', { verbose: true }, 'This call takes no request.'],
  ])('%s with %j is refused with the sentence %j', async (channel, payload, sentence) => {
    const { gateway, home } = gatewayFor();
    const r = await gateway.handle(channel, payload, PAGE);
    expect(errorOf(r)).toEqual({ code: 'invalid-request', message: sentence });
    expect(existsSync(join(home, 'settings.json'))).toBe(false);
  });

  it('passes a valid request to the service and returns its value', async () => {
    const { gateway, home } = gatewayFor();
    const r = await gateway.handle('settings.set', { threads: 2, userName: '  Grace  ' }, PAGE);
    expect(r).toEqual({ ok: true, value: { role: null, userName: 'Grace', executionProvider: 'auto', threads: 2 } });
    expect(JSON.parse(readFileSync(join(home, 'settings.json'), 'utf8'))).toEqual({ role: null, userName: 'Grace', executionProvider: 'auto', threads: 2 });
  });
});

describe('gateway: failures are values, never throws', () => {
  it('returns a service sentence as a "failed" error (corrupt settings file)', async () => {
    const { gateway, home } = gatewayFor();
    writeFileSync(join(home, 'settings.json'), '{ not json');
    const error = errorOf(await gateway.handle('settings.get', undefined, PAGE));
    expect(error.code).toBe('failed');
    expect(error.message).toContain(join(home, 'settings.json'));
    expect(error.message).toMatch(/delete it to go back to the default settings\.$/);
  });

  it('turns an unexpected error into an "internal" error value and reports the details', async () => {
    const home = tempHome();
    const reported: Array<[string, unknown]> = [];
    const boom = new TypeError('cannot read properties of undefined');
    const services: Services = Object.assign(createServices(home, { events: { emit: () => {} } }), {
      settings: {
        file: join(home, 'settings.json'),
        get: () => {
          throw boom;
        },
        set: () => {
          throw new ServiceError('The disk said no.');
        },
      },
    });
    const gateway = createGateway(services, {
      appOrigin: APP,
      onInternalError: (channel, e) => {
        reported.push([channel, e]);
        throw new Error('the logger itself fails');
      },
    });
    const internal = errorOf(await gateway.handle('settings.get', undefined, PAGE));
    expect(internal.code).toBe('internal');
    expect(internal.message).toContain('settings.get');
    expect(reported).toEqual([['settings.get', boom]]);
    expect(errorOf(await gateway.handle('settings.set', { threads: 1 }, PAGE))).toEqual({ code: 'failed', message: 'The disk said no.' });
  });

  it('does not throw when reading the payload throws', async () => {
    const { gateway } = gatewayFor();
    const hostile = {
      get threads(): number {
        throw new Error('getter exploded');
      },
    };
    const r = await gateway.handle('settings.set', hostile, PAGE);
    expect(r.ok).toBe(false);
  });
});
