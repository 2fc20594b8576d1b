// Static checks of the Electron glue (SECURITY.md, "Electron"): read the sources of the main
// process and the preload and assert every rule is written there. electron-glue.test.ts runs the
// same files against a recording stand-in for the electron module; this file catches rules that
// are removed or loosened in the text, including in code paths a run does not reach.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY, readRendererFile } from '../../../electron/services/renderer-files';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const read = (p: string) => readFileSync(join(root, p), 'utf8');
/** Source without comments, so a rule mentioned in a comment does not count as written. */
const code = (p: string) => read(p).replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');

const main = code('electron/main.electron.ts');
const preload = code('electron/preload.electron.ts');

/** The text of the balanced (...) call starting at `start` (an index of the opening parenthesis). */
function callAt(source: string, start: number): string {
  let depth = 0;
  for (let i = start; i < source.length; i++) {
    if (source[i] === '(') depth++;
    if (source[i] === ')' && --depth === 0) return source.slice(start, i + 1);
  }
  throw new Error('unbalanced call');
}

function calls(source: string, callee: string): string[] {
  const out: string[] = [];
  let at = source.indexOf(`${callee}(`);
  while (at !== -1) {
    out.push(callAt(source, at + callee.length));
    at = source.indexOf(`${callee}(`, at + 1);
  }
  return out;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('BrowserWindow webPreferences', () => {
  const windows = calls(main, 'new BrowserWindow');

  it('creates windows in main.electron.ts only', () => {
    expect(windows.length).toBeGreaterThan(0);
    const elsewhere = walk(join(root, 'electron'))
      .filter((f) => !f.endsWith('main.electron.ts'))
      .filter((f) => /new\s+BrowserWindow\s*\(/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(root, f));
    expect(elsewhere).toEqual([]);
  });

  it.each([
    ['contextIsolation', 'true'],
    ['sandbox', 'true'],
    ['nodeIntegration', 'false'],
    ['webSecurity', 'true'],
    ['nodeIntegrationInWorker', 'false'],
    ['allowRunningInsecureContent', 'false'],
    ['webviewTag', 'false'],
  ])('every window sets %s: %s', (flag, value) => {
    for (const w of windows) {
      const set = [...w.matchAll(new RegExp(`\\b${flag}\\s*:\\s*([^,\\n}]+)`, 'g'))].map((m) => m[1]!.trim());
      expect(set, `new BrowserWindow${w.slice(0, 60)}… must set ${flag}: ${value}`).toEqual([value]);
    }
  });

  it('no file of the main process loosens a security flag anywhere', () => {
    const loose = /\b(contextIsolation|sandbox|webSecurity)\s*:\s*false\b|\b(nodeIntegration|nodeIntegrationInWorker|nodeIntegrationInSubFrames|allowRunningInsecureContent|webviewTag|experimentalFeatures)\s*:\s*true\b/;
    const offenders = walk(join(root, 'electron')).filter((f) => loose.test(readFileSync(f, 'utf8'))).map((f) => relative(root, f));
    expect(offenders).toEqual([]);
  });

  it('enables the sandbox for every renderer', () => {
    expect(main).toMatch(/app\.enableSandbox\(\)/);
  });
});

describe('renderer origin and CSP', () => {
  it('serves the renderer from app:// through readRendererFile, never file://', () => {
    expect(main).toMatch(/protocol\.registerSchemesAsPrivileged\(\[\{\s*scheme:\s*APP_SCHEME,\s*privileges:\s*\{[^}]*standard:\s*true[^}]*secure:\s*true/);
    expect(main).toMatch(/const APP_SCHEME = 'app';/);
    const handlers = calls(main, 'protocol.handle');
    expect(handlers).toHaveLength(1);
    expect(handlers[0]).toMatch(/readRendererFile\(/);
    expect(handlers[0]).toMatch(/headers:\s*file\.headers/);
    expect(main).not.toMatch(/loadFile\(|file:\/\//);
    expect(calls(main, 'win.loadURL')).toEqual(['(`${APP_ORIGIN}/index.html`)']);
  });

  it('has a CSP with at least default-src, script-src and object-src locked down', () => {
    const directives = new Map(CONTENT_SECURITY_POLICY.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k!, v.join(' ')]));
    expect(directives.get('default-src')).toBe("'self'");
    expect(directives.get('script-src')).toBe("'self'");
    expect(directives.get('object-src')).toBe("'none'");
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-inline|unsafe-eval|\*|data:.*script|http:|https:/);
  });

  it('sends the CSP on every response, found or not', () => {
    const dir = fileURLToPath(new URL('.', import.meta.url));
    for (const path of ['/', '/index.html', '/nope.js', '/../../package.json', '/%2e%2e/%2e%2e/package.json', '/%E0%A4%A']) {
      expect(readRendererFile(dir, path).headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    }
  });
});

describe('navigation, new windows and permissions', () => {
  it('prevents will-navigate (and redirects and webviews) for every web contents', () => {
    expect(main).toMatch(/app\.on\('web-contents-created'/);
    expect(main).toMatch(/contents\.on\('will-navigate',\s*\(event\)\s*=>\s*event\.preventDefault\(\)\)/);
    expect(main).toMatch(/contents\.on\('will-redirect',\s*\(event\)\s*=>\s*event\.preventDefault\(\)\)/);
    expect(main).toMatch(/contents\.on\('will-attach-webview',\s*\(event\)\s*=>\s*event\.preventDefault\(\)\)/);
  });

  it('denies every window.open', () => {
    expect(calls(main, 'contents.setWindowOpenHandler')).toEqual(["(() => ({ action: 'deny' }))"]);
    expect(main).not.toMatch(/action:\s*'allow'/);
  });

  it('denies every permission request and check', () => {
    expect(calls(main, 's.setPermissionRequestHandler')).toEqual(['((_contents, _permission, callback) => callback(false))']);
    expect(calls(main, 's.setPermissionCheckHandler')).toEqual(['(() => false)']);
  });
});

describe('IPC', () => {
  it('registers every ipcMain.handle through the gateway, and no other kind of ipcMain listener', () => {
    const handles = calls(main, 'ipcMain.handle');
    expect(handles.length).toBeGreaterThan(0);
    for (const h of handles) expect(h).toMatch(/=>\s*gateway\.handle\(channel,\s*request,\s*event\.senderFrame\?\.url\)\)$/);
    expect(main).not.toMatch(/ipcMain\.(on|once|handleOnce|addListener)\(/);
  });

  it('uses ipcMain nowhere but main.electron.ts', () => {
    const elsewhere = walk(join(root, 'electron'))
      .filter((f) => !f.endsWith('main.electron.ts'))
      .filter((f) => /\bipcMain\b/.test(readFileSync(f, 'utf8').replace(/\/\/.*$/gm, '')))
      .map((f) => relative(root, f));
    expect(elsewhere).toEqual([]);
  });

  it('the preload exposes one object, `offsite`, built from the contract, and never ipcRenderer', () => {
    const exposed = calls(preload, 'contextBridge.exposeInMainWorld');
    expect(exposed).toEqual(["('offsite', api)"]);
    expect(preload).toMatch(/const api = buildOffsiteApi\(/);
    expect(preload).toMatch(/\) satisfies OffsiteApi;/);
    // ipcRenderer is only ever called, never passed or returned as a value.
    const uses = [...preload.matchAll(/\bipcRenderer\b(.{0,24})/g)].map((m) => m[1]!);
    for (const after of uses) expect(after).toMatch(/^\s*(\.(invoke|on)\(|\}\s*from 'electron')/);
    expect(preload).not.toMatch(/ipcRenderer\.(send|sendSync|sendToHost|postMessage)\(/);
  });

  it('the preload hands listeners the payload only, never the raw IPC event', () => {
    expect(calls(preload, 'ipcRenderer.on')).toHaveLength(1);
    expect(preload).toMatch(/ipcRenderer\.on\(EVENT_CHANNEL,\s*\(_event,\s*name: EventName,\s*payload: unknown\)\s*=>/);
    expect(preload).toMatch(/listener\(payload\)/);
    expect(preload).not.toMatch(/listener\(_event|listener\(event/);
  });
});
