// Electron main process: lifecycle, one secure window, the app:// protocol serving the built
// renderer under a CSP, and the IPC gateway. Kept thin — everything testable lives in services/
// and ipc/, which never import electron. Long jobs will run in worker_threads, never here.
import { app, BrowserWindow, dialog, ipcMain, protocol, session } from 'electron';
import { join } from 'node:path';
import { EVENT_CHANNEL, INVOKE_CHANNEL } from './ipc/electron-channels';
import { createGateway } from './ipc/gateway';
import { createServices, type EventSink } from './ipc/handlers';
import { stopBuilds } from './ipc/build-handlers';
import { stopDemos } from './ipc/demo-handlers';
import { stopGenerations } from './ipc/models-handlers';
import { resolveHome } from './services/home';
import { readRendererFile } from './services/renderer-files';

const APP_SCHEME = 'app';
const APP_HOST = 'offsite';
const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;

// Must happen before `ready`: a standard, secure scheme gets a real origin, so 'self' in the CSP
// and the gateway's sender check both mean exactly app://offsite.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
app.enableSandbox();

/** Sends an event to every window's renderer (job progress, job finished). */
const events: EventSink = {
  emit(event, payload) {
    for (const win of BrowserWindow.getAllWindows()) win.webContents.send(EVENT_CHANNEL, event, payload);
  },
};

function hardenContents(): void {
  app.on('web-contents-created', (_event, contents) => {
    contents.on('will-navigate', (event) => event.preventDefault());
    contents.on('will-redirect', (event) => event.preventDefault());
    contents.on('will-attach-webview', (event) => event.preventDefault());
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });
}

function hardenSession(): void {
  const s = session.defaultSession;
  s.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  s.setPermissionCheckHandler(() => false);
  // An air-gapped tool: the window loads nothing but its own files.
  s.webRequest.onBeforeRequest((details, callback) => {
    const allowed = details.url.startsWith(`${APP_ORIGIN}/`) || details.url.startsWith('devtools:');
    callback({ cancel: !allowed });
  });
}

function serveRenderer(): void {
  const root = join(app.getAppPath(), 'dist', 'renderer');
  protocol.handle(APP_SCHEME, (request) => {
    const url = new URL(request.url);
    if (url.host !== APP_HOST) return new Response('Not found.', { status: 404 });
    const file = readRendererFile(root, url.pathname);
    return new Response(file.body, { status: file.status, headers: file.headers });
  });
}

function openGateway(): void {
  const services = createServices(resolveHome(process.env.OFFSITE_HOME), { events });
  // A running emulator build or demo is cancelled first (the cancellation is an audit event), and so is a
  // generation (it writes nothing); then the services flush buffered metrics, close the audit
  // database and remove auditor-mode staging copies.
  let quitting = false;
  app.on('will-quit', (event) => {
    if (quitting) return;
    quitting = true;
    event.preventDefault();
    void Promise.allSettled([stopBuilds(services), stopDemos(services), stopGenerations(services)]).finally(() => {
      services.close();
      app.quit();
    });
  });
  const gateway = createGateway(services, {
    appOrigin: APP_ORIGIN,
    onInternalError: (channel, error) => console.error(`[ipc ${channel}]`, error),
  });
  ipcMain.handle(INVOKE_CHANNEL, (event, channel: unknown, request: unknown) => gateway.handle(channel, request, event.senderFrame?.url));
}

function createWindow(): void {
  const win = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 960,
    minHeight: 640,
    show: false,
    title: 'Offsite Studio',
    backgroundColor: '#f5f6f8',
    webPreferences: {
      preload: join(app.getAppPath(), 'dist', 'electron', 'preload.electron.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  void win.loadURL(`${APP_ORIGIN}/index.html`);
}

async function start(): Promise<void> {
  await app.whenReady();
  hardenSession();
  serveRenderer();
  openGateway();
  createWindow();
}

// One instance per data folder: two processes appending to one audit log would race.
if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  hardenContents();
  app.on('second-instance', () => {
    const [win] = BrowserWindow.getAllWindows();
    if (win) {
      if (win.isMinimized()) win.restore();
      win.focus();
    }
  });
  app.on('window-all-closed', () => app.quit());
  start().catch((e: unknown) => {
    dialog.showErrorBox('Offsite Studio could not start', e instanceof Error ? e.message : String(e));
    app.exit(1);
  });
}
