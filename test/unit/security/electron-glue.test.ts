// Runs main.electron.ts and preload.electron.ts against a recording stand-in for the `electron`
// module (no Electron binary on these machines) and checks what they actually register: window
// flags, protocol, navigation/permission guards, and that the preload's `window.offsite` reaches
// the real gateway through the one IPC handler.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IpcResult, OffsiteApi } from '../../../electron/ipc/contract';
import { CONTENT_SECURITY_POLICY } from '../../../electron/services/renderer-files';

type Fn = (...args: any[]) => any;

const rec = vi.hoisted(() => ({
  appPath: '',
  privileged: [] as Array<{ scheme: string; privileges: Record<string, boolean> }>,
  sandboxEnabled: false,
  appEvents: new Map<string, Fn[]>(),
  protocolHandlers: new Map<string, Fn>(),
  ipcHandlers: new Map<string, Fn>(),
  permissionRequest: undefined as Fn | undefined,
  permissionCheck: undefined as Fn | undefined,
  beforeRequest: undefined as Fn | undefined,
  windows: [] as Array<{ options: any; url?: string; sent: unknown[][] }>,
  exposed: new Map<string, unknown>(),
  rendererListeners: new Map<string, Fn>(),
  rendererInvokes: [] as unknown[][],
  senderUrl: 'app://offsite/index.html' as string | undefined,
}));

vi.mock('electron', () => {
  class BrowserWindow {
    options: any;
    url?: string;
    sent: unknown[][] = [];
    webContents = { send: (...args: unknown[]) => this.sent.push(args) };
    constructor(options: any) {
      this.options = options;
      rec.windows.push(this);
    }
    static getAllWindows() {
      return rec.windows;
    }
    once() {}
    isMinimized() {
      return false;
    }
    restore() {}
    focus() {}
    loadURL(url: string) {
      this.url = url;
      return Promise.resolve();
    }
  }
  const on = (event: string, fn: Fn) => {
    rec.appEvents.set(event, [...(rec.appEvents.get(event) ?? []), fn]);
  };
  return {
    app: {
      on,
      enableSandbox: () => {
        rec.sandboxEnabled = true;
      },
      requestSingleInstanceLock: () => true,
      whenReady: () => Promise.resolve(),
      getAppPath: () => rec.appPath,
      quit: () => {},
      exit: () => {},
    },
    BrowserWindow,
    dialog: { showErrorBox: (title: string, message: string) => rec.windows.push({ options: { error: `${title}: ${message}` }, sent: [] }) },
    protocol: {
      registerSchemesAsPrivileged: (list: typeof rec.privileged) => rec.privileged.push(...list),
      handle: (scheme: string, fn: Fn) => rec.protocolHandlers.set(scheme, fn),
    },
    session: {
      defaultSession: {
        setPermissionRequestHandler: (fn: Fn) => (rec.permissionRequest = fn),
        setPermissionCheckHandler: (fn: Fn) => (rec.permissionCheck = fn),
        webRequest: { onBeforeRequest: (fn: Fn) => (rec.beforeRequest = fn) },
      },
    },
    ipcMain: { handle: (channel: string, fn: Fn) => rec.ipcHandlers.set(channel, fn) },
    contextBridge: { exposeInMainWorld: (key: string, value: unknown) => rec.exposed.set(key, value) },
    ipcRenderer: {
      // Delivered to main's handler as Electron would, with the sender frame's URL.
      invoke: (channel: string, ...args: unknown[]) => {
        rec.rendererInvokes.push([channel, ...args]);
        const handler = rec.ipcHandlers.get(channel);
        if (!handler) return Promise.reject(new Error(`No handler registered for '${channel}'`));
        return Promise.resolve(handler({ senderFrame: rec.senderUrl === undefined ? null : { url: rec.senderUrl } }, ...args));
      },
      on: (channel: string, fn: Fn) => rec.rendererListeners.set(channel, fn),
    },
  };
});

const root = fileURLToPath(new URL('../../..', import.meta.url));
let home: string;
let savedHome: string | undefined;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'offsite-glue-'));
  savedHome = process.env.OFFSITE_HOME;
  process.env.OFFSITE_HOME = home;
  rec.appPath = root;
  await import('../../../electron/main.electron');
  await vi.waitFor(() => expect(rec.windows).toHaveLength(1));
  await import('../../../electron/preload.electron');
});

afterAll(() => {
  if (savedHome === undefined) delete process.env.OFFSITE_HOME;
  else process.env.OFFSITE_HOME = savedHome;
  rmSync(home, { recursive: true, force: true });
});

describe('main.electron.ts under a recording electron', () => {
  it('opens one window with the secure webPreferences, loading app://offsite', () => {
    const [win] = rec.windows;
    expect(win!.options.webPreferences).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true });
    expect(win!.options.webPreferences.preload).toBe(join(root, 'dist', 'electron', 'preload.electron.cjs'));
    expect(win!.url).toBe('app://offsite/index.html');
    expect(rec.sandboxEnabled).toBe(true);
  });

  it('registers app:// as a standard, secure scheme and serves files with the CSP', async () => {
    expect(rec.privileged).toEqual([{ scheme: 'app', privileges: expect.objectContaining({ standard: true, secure: true }) }]);
    const serve = rec.protocolHandlers.get('app')!;
    const index: Response = await serve({ url: 'app://offsite/index.html' });
    expect(index.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    if (existsSync(join(root, 'dist', 'renderer', 'index.html'))) expect(index.status).toBe(200);
    for (const url of ['app://offsite/%2e%2e/%2e%2e/package.json', 'app://offsite/..%2f..%2fpackage.json', 'app://other/index.html']) {
      const r: Response = await serve({ url });
      expect(r.status, url).toBe(404);
    }
  });

  it('blocks navigation, redirects, webviews and new windows for every web contents', () => {
    const handlers = new Map<string, Fn>();
    let openHandler: Fn | undefined;
    const contents = { on: (e: string, fn: Fn) => handlers.set(e, fn), setWindowOpenHandler: (fn: Fn) => (openHandler = fn) };
    for (const created of rec.appEvents.get('web-contents-created') ?? []) created({}, contents);
    for (const name of ['will-navigate', 'will-redirect', 'will-attach-webview']) {
      const event = { preventDefault: vi.fn() };
      handlers.get(name)!(event, 'https://example.com/');
      expect(event.preventDefault, name).toHaveBeenCalledOnce();
    }
    expect(openHandler!({ url: 'https://example.com/' })).toEqual({ action: 'deny' });
  });

  it('denies permissions and every request that does not go to the app itself', () => {
    const callback = vi.fn();
    rec.permissionRequest!({}, 'media', callback);
    expect(callback).toHaveBeenCalledExactlyOnceWith(false);
    expect(rec.permissionCheck!({}, 'clipboard-read')).toBe(false);
    const decide = (url: string) => {
      let answer: unknown;
      rec.beforeRequest!({ url }, (r: unknown) => (answer = r));
      return answer;
    };
    expect(decide('https://example.com/x.js')).toEqual({ cancel: true });
    expect(decide('http://127.0.0.1:8080/')).toEqual({ cancel: true });
    expect(decide('app://offsite/assets/index.js')).toEqual({ cancel: false });
  });

  it('has exactly one IPC handler, and it refuses foreign or missing sender frames', async () => {
    expect([...rec.ipcHandlers.keys()]).toEqual(['offsite:invoke']);
    const handle = rec.ipcHandlers.get('offsite:invoke')!;
    const foreign: IpcResult<unknown> = await handle({ senderFrame: { url: 'https://evil.example/' } }, 'settings.set', { threads: 2 });
    expect(!foreign.ok && foreign.error.code).toBe('forbidden-sender');
    const none: IpcResult<unknown> = await handle({ senderFrame: null }, 'app.info', undefined);
    expect(!none.ok && none.error.code).toBe('forbidden-sender');
    expect(existsSync(join(home, 'settings.json'))).toBe(false);
  });
});

describe('preload.electron.ts under a recording electron', () => {
  it('exposes only `offsite`, with no ipcRenderer or other transport inside', () => {
    expect([...rec.exposed.keys()]).toEqual(['offsite']);
    const seen = new Set<unknown>();
    const visit = (v: unknown, path: string): void => {
      if (v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v)) return;
      seen.add(v);
      expect(['invoke', 'send', 'sendSync', 'ipcRenderer', 'postMessage'], path).not.toContain(path.split('.').pop());
      if (typeof v === 'object') for (const [k, x] of Object.entries(v)) visit(x, `${path}.${k}`);
    };
    visit(rec.exposed.get('offsite'), 'offsite');
  });

  it('reaches the real gateway through the one handler: settings are written to OFFSITE_HOME', async () => {
    const api = rec.exposed.get('offsite') as OffsiteApi;
    rec.senderUrl = 'app://offsite/index.html';
    const saved = await api.settings.set({ userName: 'Grace', threads: 2 });
    expect(saved).toEqual({ ok: true, value: { role: null, userName: 'Grace', executionProvider: 'auto', threads: 2 } });
    expect(JSON.parse(readFileSync(join(home, 'settings.json'), 'utf8')).userName).toBe('Grace');
    expect(rec.rendererInvokes.at(-1)).toEqual(['offsite:invoke', 'settings.set', { userName: 'Grace', threads: 2 }]);
    const info = await api.app.info();
    expect(info.ok && info.value.dataFolder).toBe(home);
  });

  it('gives event listeners the payload alone, and stops after unsubscribe', () => {
    const api = rec.exposed.get('offsite') as OffsiteApi;
    const got: unknown[][] = [];
    const off = api.on('job.finished', (...args: unknown[]) => got.push(args));
    const relay = rec.rendererListeners.get('offsite:event')!;
    const payload = { jobId: 'j1', kind: 'tune', outcome: 'done', message: 'Tuning finished.' };
    relay({ sender: 'raw ipc event' }, 'job.finished', payload);
    relay({ sender: 'raw ipc event' }, 'job.progress', { other: true });
    off();
    relay({ sender: 'raw ipc event' }, 'job.finished', payload);
    expect(got).toEqual([[payload]]);
  });
});
