// `npm run package` without a network: the local preflight names everything electron-builder would
// have to download, and the script stops early — plain message, exit 1, no output folder.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { downloadHost, electronZipName, findLocalGaps, offlineMessage, type PreflightOptions } from '../../../build/preflight';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const electronVersion: string = JSON.parse(readFileSync(resolve(repoRoot, 'node_modules/electron/package.json'), 'utf8')).version;
const STACK_LINE = /^\s+at .+(:\d+:\d+\)?|\(native\))$/m;

let tmp: string;
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'offsite-preflight-')); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

/** A fresh folder under the test's temp dir. */
function fresh(name: string): string {
  const p = join(tmp, name);
  mkdirSync(p, { recursive: true });
  return p;
}

/** The environment of a machine with no caches and none of the packaging overrides set. */
function bareEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, USERPROFILE: home, XDG_CACHE_HOME: join(home, '.cache'), LOCALAPPDATA: join(home, 'AppData', 'Local') };
  for (const k of ['ELECTRON_DIST', 'electron_config_cache', 'ELECTRON_BUILDER_CACHE', 'ELECTRON_MIRROR', 'CUSTOM_FPM_PATH', 'USE_SYSTEM_FPM',
    'APPIMAGE_TOOLS_PATH', 'ELECTRON_BUILDER_NSIS_DIR', 'CUSTOM_DMGBUILD_PATH', 'OFFSITE_PACKAGE_SKIP_PREFLIGHT', 'OFFSITE_PACKAGE_SKIP_REBUILD',
    'OFFSITE_PACKAGE_OUT', 'OFFSITE_DEBUG']) delete env[k];
  return env;
}

const hostOs = ({ linux: 'linux', win32: 'win', darwin: 'mac' } as const)[process.platform as 'linux' | 'win32' | 'darwin'];

describe('npm run package on a machine without a network', () => {
  it('stops before creating anything, with a plain list of what it needs', () => {
    const home = fresh('home-cli');
    const out = join(tmp, 'release-cli');
    const releaseExisted = existsSync(resolve(repoRoot, 'release'));
    // OFFSITE_PACKAGE_OFFLINE=1 makes the run offline on any machine, so the test never reaches a host.
    const r = spawnSync('npm', ['run', 'package', '--', '--out', out], {
      cwd: repoRoot, encoding: 'utf8', env: { ...bareEnv(home), OFFSITE_PACKAGE_OFFLINE: '1' }, shell: process.platform === 'win32',
    });
    expect(r.status).toBe(1);
    const err = r.stderr;
    expect(err).toContain('Cannot package Offsite Studio: OFFSITE_PACKAGE_OFFLINE=1 forbids downloads');
    expect(err).toContain(`Electron ${electronVersion} for ${process.platform}-${process.arch}`);
    expect(err).toContain('ELECTRON_DIST');
    expect(err).toContain('headers (to rebuild better-sqlite3 for Electron)');
    if (hostOs === 'linux') {
      expect(err).toContain('fpm (builds the .deb)');
      expect(err).toContain('the AppImage tools');
    }
    expect(err).toContain('Nothing was written.');
    expect(err).toContain('docs/packaging.md');
    expect(err).not.toMatch(STACK_LINE);
    expect(`${r.stdout}`).not.toMatch(STACK_LINE);
    // No partial output: neither the requested folder nor the default one was created.
    expect(existsSync(out)).toBe(false);
    expect(existsSync(resolve(repoRoot, 'release'))).toBe(releaseExisted);
  });

  it('names the ELECTRON_DIST path when it does not exist', () => {
    const home = fresh('home-dist');
    const out = join(tmp, 'release-dist');
    const missing = join(tmp, 'no-such', electronZipName(electronVersion, hostOs, process.arch as 'x64'));
    const r = spawnSync(process.execPath, ['scripts/package.mjs', '--dir', '--out', out], {
      cwd: repoRoot, encoding: 'utf8', env: { ...bareEnv(home), OFFSITE_PACKAGE_OFFLINE: '1', ELECTRON_DIST: missing },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`the Electron distribution named by ELECTRON_DIST (${missing})`);
    expect(r.stderr).toContain('that path does not exist');
    // --dir needs no installer tools, so none are asked for.
    expect(r.stderr).not.toContain('fpm');
    expect(r.stderr).not.toMatch(STACK_LINE);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses to build another OS\'s installer with a usage error', () => {
    const other = hostOs === 'win' ? '--mac' : '--win';
    const r = spawnSync(process.execPath, ['scripts/package.mjs', other], { cwd: repoRoot, encoding: 'utf8', env: bareEnv(fresh('home-os')) });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^Build the (Windows|macOS) installer on (Windows|macOS): the native modules in node_modules/);
  });

  it('rejects an unknown option in one sentence', () => {
    const r = spawnSync(process.execPath, ['scripts/package.mjs', '--portable'], { cwd: repoRoot, encoding: 'utf8', env: bareEnv(fresh('home-opt')) });
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('Unknown option "--portable" for npm run package. Run "npm run package -- --help" for the options.');
  });
});

describe('findLocalGaps', () => {
  /** A minimal repository: node_modules/better-sqlite3 and Electron's ABI number. */
  function fakeRepo(name: string): string {
    const root = fresh(name);
    mkdirSync(join(root, 'node_modules/better-sqlite3/build/Release'), { recursive: true });
    mkdirSync(join(root, 'node_modules/electron'), { recursive: true });
    writeFileSync(join(root, 'node_modules/electron/abi_version'), '150');
    return root;
  }
  const base = (over: Partial<PreflightOptions>): PreflightOptions => ({
    os: 'linux', arch: 'x64', dirOnly: false, electronVersion: '45.5.0', repoRoot: fakeRepo(`repo-${Math.random().toString(36).slice(2)}`),
    env: {}, homeDir: fresh(`home-${Math.random().toString(36).slice(2)}`), onPath: () => false, ...over,
  });
  const whats = (o: PreflightOptions) => findLocalGaps(o).map((g) => g.what);

  it('lists Electron, its headers, fpm and the AppImage tools on a bare Linux machine', () => {
    expect(whats(base({}))).toEqual([
      'Electron 45.5.0 for linux-x64 (electron-v45.5.0-linux-x64.zip)',
      'Electron 45.5.0 headers (to rebuild better-sqlite3 for Electron)',
      'fpm (builds the .deb)',
      'the AppImage tools (mksquashfs and the AppImage runtime)',
    ]);
  });

  it('asks for NSIS on Windows and dmgbuild on macOS, and for no tools with --dir', () => {
    expect(whats(base({ os: 'win' }))).toContain('NSIS (builds the Windows installer)');
    expect(whats(base({ os: 'mac', arch: 'arm64' }))).toContain('dmgbuild (builds the .dmg)');
    expect(whats(base({ os: 'mac', arch: 'arm64' }))[0]).toBe('Electron 45.5.0 for darwin-arm64 (electron-v45.5.0-darwin-arm64.zip)');
    expect(whats(base({ dirOnly: true }))).toEqual([
      'Electron 45.5.0 for linux-x64 (electron-v45.5.0-linux-x64.zip)',
      'Electron 45.5.0 headers (to rebuild better-sqlite3 for Electron)',
    ]);
  });

  it('accepts an Electron zip, or a folder holding it, through ELECTRON_DIST', () => {
    const dir = fresh('dist-folder');
    const zip = join(dir, 'electron-v45.5.0-linux-x64.zip');
    writeFileSync(zip, 'zip');
    expect(whats(base({ dirOnly: true, env: { ELECTRON_DIST: zip } }))).not.toContain('Electron 45.5.0 for linux-x64 (electron-v45.5.0-linux-x64.zip)');
    expect(findLocalGaps(base({ dirOnly: true, env: { ELECTRON_DIST: zip, OFFSITE_PACKAGE_SKIP_REBUILD: '1' } }))).toEqual([]);
    expect(findLocalGaps(base({ dirOnly: true, env: { ELECTRON_DIST: dir, OFFSITE_PACKAGE_SKIP_REBUILD: '1' } }))).toEqual([]);
  });

  it('rejects an ELECTRON_DIST zip for another version or OS, and an empty folder', () => {
    const dir = fresh('dist-wrong');
    const wrong = join(dir, 'electron-v44.0.0-linux-x64.zip');
    writeFileSync(wrong, 'zip');
    const [gap] = findLocalGaps(base({ dirOnly: true, env: { ELECTRON_DIST: wrong, OFFSITE_PACKAGE_SKIP_REBUILD: '1' } }));
    expect(gap?.fix).toContain('electron-v44.0.0-linux-x64.zip, which is a different build');
    const empty = fresh('dist-empty');
    const [gap2] = findLocalGaps(base({ dirOnly: true, env: { ELECTRON_DIST: empty, OFFSITE_PACKAGE_SKIP_REBUILD: '1' } }));
    expect(gap2?.fix).toContain(`the folder in ELECTRON_DIST (${empty}) holds neither electron-v45.5.0-linux-x64.zip`);
  });

  it('uses a cached Electron zip only when its checksum list is cached too', () => {
    const cache = fresh('electron-cache');
    mkdirSync(join(cache, 'abc123hash'));
    writeFileSync(join(cache, 'abc123hash', 'electron-v45.5.0-linux-x64.zip'), 'zip');
    const env = { electron_config_cache: cache, OFFSITE_PACKAGE_SKIP_REBUILD: '1' };
    expect(whats(base({ dirOnly: true, env }))).toEqual(['the checksum list for Electron 45.5.0']);
    writeFileSync(join(cache, 'SHASUMS256.txt-45.5.0'), `${'a'.repeat(64)} *electron-v45.5.0-linux-x64.zip\n`);
    expect(findLocalGaps(base({ dirOnly: true, env }))).toEqual([]);
  });

  it('needs no Electron headers when better-sqlite3 is already built for this Electron, or the headers are cached', () => {
    const repoRoot = fakeRepo('repo-meta');
    writeFileSync(join(repoRoot, 'node_modules/better-sqlite3/build/Release/.forge-meta'), 'linux--x64--150');
    expect(whats(base({ repoRoot, dirOnly: true }))).not.toContain('Electron 45.5.0 headers (to rebuild better-sqlite3 for Electron)');
    writeFileSync(join(repoRoot, 'node_modules/better-sqlite3/build/Release/.forge-meta'), 'linux--x64--140');
    expect(whats(base({ repoRoot, dirOnly: true }))).toContain('Electron 45.5.0 headers (to rebuild better-sqlite3 for Electron)');
    const homeDir = fresh('home-gyp');
    mkdirSync(join(homeDir, '.electron-gyp/45.5.0/include/node'), { recursive: true });
    writeFileSync(join(homeDir, '.electron-gyp/45.5.0/include/node/node.h'), '// header');
    expect(whats(base({ repoRoot, homeDir, dirOnly: true }))).not.toContain('Electron 45.5.0 headers (to rebuild better-sqlite3 for Electron)');
  });

  it('finds fpm and the AppImage tools through the overrides or electron-builder\'s cache', () => {
    const fpm = join(fresh('fpm-bin'), 'fpm');
    writeFileSync(fpm, '#!/bin/sh\n');
    const tools = fresh('appimage-tools');
    const has = (o: PreflightOptions, what: string) => whats(o).includes(what);
    expect(has(base({ env: { CUSTOM_FPM_PATH: fpm } }), 'fpm (builds the .deb)')).toBe(false);
    expect(has(base({ env: { USE_SYSTEM_FPM: 'true' }, onPath: (c) => c === 'fpm' }), 'fpm (builds the .deb)')).toBe(false);
    expect(has(base({ env: { USE_SYSTEM_FPM: 'true' }, onPath: () => false }), 'fpm (builds the .deb)')).toBe(true);
    expect(has(base({ env: { APPIMAGE_TOOLS_PATH: tools } }), 'the AppImage tools (mksquashfs and the AppImage runtime)')).toBe(false);
    const ebCache = fresh('eb-cache');
    mkdirSync(join(ebCache, 'fpm@2.1.4'));
    mkdirSync(join(ebCache, 'appimage-12.0.1'));
    const cached = whats(base({ env: { ELECTRON_BUILDER_CACHE: ebCache } }));
    expect(cached).not.toContain('fpm (builds the .deb)');
    expect(cached).not.toContain('the AppImage tools (mksquashfs and the AppImage runtime)');
  });
});

describe('preflight messages', () => {
  it('downloads from GitHub unless ELECTRON_MIRROR names another host', () => {
    expect(downloadHost({})).toBe('github.com');
    expect(downloadHost({ ELECTRON_MIRROR: 'https://mirror.example.org/electron/' })).toBe('mirror.example.org');
  });

  it('prints one line per missing item between a reason and the way forward', () => {
    const text = offlineMessage([{ what: 'A', fix: 'do a.' }, { what: 'B', fix: 'do b.' }], 'no network');
    expect(text.split('\n')).toEqual([
      'Cannot package Offsite Studio: no network, and these are not on this machine:',
      '  - A: do a.',
      '  - B: do b.',
      'Nothing was written. Provide the items above (or build on a connected machine), then run "npm run package" again; docs/packaging.md, "Building without a network", has the steps.',
    ]);
  });
});
