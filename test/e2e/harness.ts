// End-to-end harness: the built renderer (dist/renderer) served on 127.0.0.1 under the app's own
// CSP, Debian's Chromium driven by playwright-core, and a `window.offsite` built by the preload's
// builder whose calls go into the REAL gateway and services in this Node process (one fresh data
// folder per page). Later e2e tests reuse it:
//
//   const suite = useStudioSuite();
//   it('…', async () => {
//     const studio = await suite.open();
//     await studio.openScreen('Settings');
//     studio.pushEvent('job.progress', {...});   // or services.events.emit(...) from a service
//   });
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { events as eventSchemas, type EventName, type EventPayload, type IpcResult } from '../../electron/ipc/contract';
import { createGateway, type Gateway } from '../../electron/ipc/gateway';
import { createServices, type Services } from '../../electron/ipc/handlers';
import { readRendererFile } from '../../electron/services/renderer-files';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const rendererDist = join(repoRoot, 'dist', 'renderer');
export const screenshotDir = join(repoRoot, 'test-results', 'screenshots');
export const CHROMIUM = '/usr/bin/chromium';

// ── Renderer build ───────────────────────────────────────────────────────────────────────────

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let t = stat.mtimeMs;
  for (const name of readdirSync(path)) t = Math.max(t, newestMtime(join(path, name)));
  return t;
}

/** Builds dist/renderer when it is missing or older than its sources (npm test builds first). */
export function ensureRendererBuilt(): void {
  const index = join(rendererDist, 'index.html');
  const sources = Math.max(newestMtime(join(repoRoot, 'renderer')), newestMtime(join(repoRoot, 'electron', 'ipc', 'contract.ts')));
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  // Two e2e files may start at once: one builds, the other waits for it.
  const lock = join(repoRoot, 'test-results', '.renderer-build.lock');
  mkdirSync(join(repoRoot, 'test-results'), { recursive: true });
  let owner = false;
  for (let waited = 0; !owner; waited++) {
    try {
      mkdirSync(lock);
      owner = true;
    } catch {
      if (waited > 600) throw new Error(`Waited 5 minutes for another renderer build; remove ${lock} if no build is running.`);
      spawnSync('sleep', ['0.5']);
    }
  }
  try {
    if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
    const vite = join(repoRoot, 'node_modules', '.bin', 'vite');
    const run = spawnSync(vite, ['build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn'], { cwd: repoRoot, encoding: 'utf8' });
    if (run.status !== 0 || !existsSync(index)) {
      throw new Error(`The renderer could not be built for the e2e tests (vite build failed); run "npm run build" to see why.\n${run.stdout}${run.stderr}`);
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

// ── Serving and browsing ─────────────────────────────────────────────────────────────────────

export interface RendererServer {
  /** http://127.0.0.1:PORT — the app origin the gateway accepts in these tests. */
  origin: string;
  close(): Promise<void>;
}

/** Serves dist/renderer on an ephemeral port with the same headers (CSP) as the app:// protocol. */
export async function serveRenderer(root = rendererDist): Promise<RendererServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const file = readRendererFile(root, path);
    res.writeHead(file.status, file.headers);
    res.end(file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`The e2e tests need Debian's Chromium at ${CHROMIUM}; install it with "apt-get install chromium" (npm test's pretest does).`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

let bridgeSource: Promise<string> | undefined;
/** test/e2e/bridge.page.ts bundled for the page: the preload's api builder over Playwright bindings. */
export function bridgeScript(): Promise<string> {
  bridgeSource ??= build({
    absWorkingDir: repoRoot,
    entryPoints: ['test/e2e/bridge.page.ts'],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'chrome120',
    minify: true,
    logLevel: 'silent',
  }).then((r) => r.outputFiles[0]!.text);
  return bridgeSource;
}

// ── One app page over the real gateway ───────────────────────────────────────────────────────

export type Invoke = (channel: unknown, request: unknown, senderUrl: string) => Promise<IpcResult<unknown>>;

export interface StudioOptions {
  /** Data folder; a fresh temp folder (removed afterwards) when not given. */
  home?: string;
  /** Replaces the gateway, e.g. to prove what the UI does when the main process cannot be reached. */
  invoke?: Invoke;
}

export interface Studio {
  page: Page;
  context: BrowserContext;
  /** The page's data folder. */
  home: string;
  services: Services;
  gateway: Gateway;
  /** Console errors, page errors and CSP violations seen so far. */
  problems: string[];
  /** Delivers an event to the page's window.offsite.on listeners, as main's webContents.send does. */
  pushEvent<E extends EventName>(event: E, payload: EventPayload<E>): Promise<void>;
  /** Clicks the screen's link in the main navigation and waits for its title. */
  openScreen(label: string): Promise<void>;
  /** Saves test-results/screenshots/NAME.png. */
  screenshot(name: string): Promise<string>;
  /** Reloads the page (settings must come back from the data folder). */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/** A fresh, empty data folder under the OS temp folder. */
export function freshHome(): string {
  return mkdtempSync(join(tmpdir(), 'offsite-e2e-'));
}

export async function openStudio(browser: Browser, server: RendererServer, options: StudioOptions = {}): Promise<Studio> {
  const ownHome = options.home === undefined;
  const home = options.home ?? freshHome();
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  const pushEvent = async <E extends EventName>(event: E, payload: EventPayload<E>): Promise<void> => {
    eventSchemas[event].parse(payload); // a malformed test event is a test bug, caught here
    await page.evaluate(([name, data]) => (globalThis as unknown as { __offsiteDispatch(n: string, d: unknown): void }).__offsiteDispatch(name, data), [event, payload] as const);
  };
  const services = createServices(home, {
    events: {
      emit: (event, payload) => {
        pushEvent(event, payload).catch((e: unknown) => problems.push(`event ${event} not delivered: ${String(e)}`));
      },
    },
  });
  const gateway = createGateway(services, { appOrigin: server.origin });
  const invoke: Invoke = options.invoke ?? ((channel, request, senderUrl) => gateway.handle(channel, request, senderUrl));

  // The sender URL is the calling frame's, as Electron's event.senderFrame.url is.
  await page.exposeBinding('__offsiteInvoke', (source, channel: unknown, request: unknown) => invoke(channel, request, source.frame.url()));
  await page.addInitScript({ content: await bridgeScript() });

  const title = page.locator('#screen-title');
  const studio: Studio = {
    page,
    context,
    home,
    services,
    gateway,
    problems,
    pushEvent,
    async openScreen(label) {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true }).click();
      await expect.poll(() => title.textContent()).toBe(label);
    },
    async screenshot(name) {
      mkdirSync(screenshotDir, { recursive: true });
      const path = join(screenshotDir, `${name}.png`);
      await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    async reload() {
      await page.reload();
      await title.waitFor();
    },
    async close() {
      await context.close();
      // Close the services' database handles and job hosts before the data folder goes away.
      services.close();
      if (ownHome) rmSync(home, { recursive: true, force: true });
    },
  };
  await page.goto(`${server.origin}/index.html`);
  await title.waitFor();
  return studio;
}

export interface StudioSuite {
  readonly origin: string;
  open(options?: StudioOptions): Promise<Studio>;
}

/** Registers the hooks of an e2e file: build check, server and browser per file, pages closed after each test. */
export function useStudioSuite(): StudioSuite {
  let browser: Browser | undefined;
  let server: RendererServer | undefined;
  const opened: Studio[] = [];
  beforeAll(async () => {
    ensureRendererBuilt();
    server = await serveRenderer();
    browser = await launchChromium();
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });
  return {
    get origin() {
      if (!server) throw new Error('The renderer server is not running yet (use suite.origin inside a test).');
      return server.origin;
    },
    async open(options) {
      if (!browser || !server) throw new Error('useStudioSuite(): open() was called outside a test.');
      const studio = await openStudio(browser, server, options);
      opened.push(studio);
      return studio;
    },
  };
}
