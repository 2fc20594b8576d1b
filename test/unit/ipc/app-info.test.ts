import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../../electron/ipc/gateway';
import { createServices } from '../../../electron/ipc/handlers';
import { appInfo } from '../../../electron/services/app-info';
import { DEFAULT_SETTINGS, type AppInfo } from '../../../electron/ipc/contract';
import { useTempHomes } from './helpers';

const tempHome = useTempHomes();
const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
const ortVersion = (require('onnxruntime-node/package.json') as { version: string }).version;

describe('app.info', () => {
  it('has the documented shape and real values, through the gateway', async () => {
    const home = tempHome();
    const gateway = createGateway(createServices(home, { events: { emit: () => {} } }), { appOrigin: 'app://offsite' });
    const r = await gateway.handle('app.info', undefined, 'app://offsite/index.html');
    if (!r.ok) throw new Error(r.error.message);
    const info = r.value as AppInfo;
    expect(Object.keys(info).sort()).toEqual(
      ['arch', 'cores', 'dataFolder', 'electron', 'executionProviders', 'node', 'onnxruntime', 'platform', 'threads', 'threadsSource', 'version'].sort(),
    );
    expect(info.version).toBe(pkg.version);
    expect(info.onnxruntime).toBe(ortVersion);
    expect(info.node).toBe(process.versions.node);
    expect(info.electron).toBe(null);
    expect(info.dataFolder).toBe(home);
    expect(info.cores).toBe(availableParallelism());
    expect(info.threads).toBe(availableParallelism());
    expect(info.threadsSource).toBe('default');
    expect(info.executionProviders.requested).toBe('auto');
    expect(info.executionProviders.available).toContain('cpu');
    expect(info.executionProviders.available).toContain(info.executionProviders.chosen);
    expect(info.executionProviders.reason).toMatch(/\.$/);
  });

  it('follows the settings: threads and the requested execution provider', async () => {
    const home = tempHome();
    const services = createServices(home, { events: { emit: () => {} } });
    const gateway = createGateway(services, { appOrigin: 'app://offsite' });
    await gateway.handle('settings.set', { threads: 3, executionProvider: 'cpu' }, 'app://offsite/index.html');
    const r = await gateway.handle('app.info', undefined, 'app://offsite/index.html');
    if (!r.ok) throw new Error(r.error.message);
    const info = r.value as AppInfo;
    expect(info.threads).toBe(3);
    expect(info.threadsSource).toBe('setting');
    expect(info.executionProviders).toMatchObject({ requested: 'cpu', chosen: 'cpu', reason: 'CPU requested.' });
  });

  it('lets the CLI flags override the settings for one report', () => {
    const info = appInfo('/data', { ...DEFAULT_SETTINGS, threads: 8, executionProvider: 'auto' }, { threads: 1, executionProvider: 'cpu' });
    expect(info.threads).toBe(1);
    expect(info.executionProviders.requested).toBe('cpu');
  });
});
