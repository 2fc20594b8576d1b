// Launching the packaged app. Where Electron's binary is installed, package it unpacked (--dir) and
// start it: the window must load app://offsite/index.html with the preload's `window.offsite` in
// place. Where the binary is absent (air-gapped machines, this sandbox), `npm start` must say so in
// plain words and exit 1 — no download attempt, no stack trace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const STACK_LINE = /^\s+at .+(:\d+:\d+\)?|\(native\))$/m;

/** The installed Electron executable, found the way node_modules/electron/index.js does — without its download. */
function installedElectron(): string | null {
  const pkg = resolve(repoRoot, 'node_modules/electron');
  const pathFile = join(pkg, 'path.txt');
  if (!existsSync(pathFile)) return null;
  const binary = join(pkg, 'dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(binary) ? binary : null;
}

const electron = installedElectron();

/** Where electron-builder puts the executable of an unpacked (--dir) build. */
function packagedExecutable(out: string): string {
  if (process.platform === 'win32') return join(out, 'win-unpacked', 'Offsite Studio.exe');
  if (process.platform === 'darwin') {
    const dir = readdirSync(out).find((d) => d.startsWith('mac'))!;
    return join(out, dir, 'Offsite Studio.app', 'Contents', 'MacOS', 'Offsite Studio');
  }
  return join(out, 'linux-unpacked', 'offsite-studio');
}

describe('launching the app', () => {
  let tmp = '';
  let child: ChildProcess | null = null;
  beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'offsite-launch-')); });
  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  });

  it(electron ? 'starts the packaged app, which loads its window from app.asar' : 'npm start says plainly that Electron is not installed', async () => {
    if (!electron) {
      const env = { ...process.env };
      delete env.ELECTRON_OVERRIDE_DIST_PATH;
      const r = spawnSync('npm', ['start'], { cwd: repoRoot, encoding: 'utf8', env, shell: process.platform === 'win32' });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('Electron’s binary is not installed on this machine, so the desktop app cannot start here');
      expect(r.stderr).toContain('npx install-electron');
      expect(r.stderr).not.toMatch(STACK_LINE);
      expect(r.stdout).not.toMatch(STACK_LINE);
      return;
    }

    // Package with the installed Electron (its dist folder is an unpacked Electron distribution).
    const out = join(tmp, 'release');
    const pack = spawnSync(process.execPath, ['scripts/package.mjs', '--dir', '--out', out], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, ELECTRON_DIST: join(repoRoot, 'node_modules/electron/dist'), OFFSITE_PACKAGE_SKIP_REBUILD: '1', OFFSITE_PACKAGE_OFFLINE: '1', OFFSITE_PACKAGE_OUT: '' },
    });
    expect(pack.status, `${pack.stdout}\n${pack.stderr}`).toBe(0);

    // Start it headless with a DevTools endpoint (a Chromium switch: the Node inspect fuse stays off).
    const env: NodeJS.ProcessEnv = { ...process.env, OFFSITE_HOME: join(tmp, 'home') };
    delete env.ELECTRON_RUN_AS_NODE;
    const args = ['--remote-debugging-port=0', '--disable-gpu', ...(process.platform === 'linux' ? ['--ozone-platform=headless', '--no-sandbox'] : [])];
    const proc = spawn(packagedExecutable(out), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let log = '';
    const endpoint = await new Promise<string>((ok, fail) => {
      const onData = (d: Buffer) => {
        log += d.toString();
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(log);
        if (m) ok(m[1]!);
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => fail(new Error(`the packaged app exited (code ${code}) before it opened a window:\n${log}`)));
    });
    const browser = await chromium.connectOverCDP(endpoint);
    try {
      // Wait for the app's window; the test's own timeout bounds this.
      let page = null;
      while (!page) {
        page = browser.contexts().flatMap((c) => c.pages()).find((p) => p.url().startsWith('app://offsite/')) ?? null;
        if (!page) await new Promise((r) => setTimeout(r, 200));
      }
      await page.waitForLoadState('domcontentloaded');
      expect(page.url()).toBe('app://offsite/index.html');
      // The preload ran (from app.asar) and exposed the API; Node is not reachable from the page.
      expect(await page.evaluate(() => typeof (globalThis as unknown as { offsite?: unknown }).offsite)).toBe('object');
      expect(await page.evaluate(() => typeof (globalThis as unknown as { require?: unknown }).require)).toBe('undefined');
    } finally {
      await browser.close().catch(() => undefined);
    }
  });
});
