// Packaging preflight: before `npm run package` creates anything, find out — from local files only —
// whether everything electron-builder would otherwise download is already on this machine:
// the Electron zip, the Electron headers for rebuilding better-sqlite3, and the installer tools
// (fpm for .deb, the AppImage tools, NSIS, dmgbuild). What is missing is returned as a list of
// plain sentences; scripts/package.mjs then either goes ahead (the download host answers) or stops
// with that list. The cache layouts mirror electron-builder 26 / @electron/get 4 / @electron/rebuild 4.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { lookup } from 'node:dns/promises';
import { delimiter, join, resolve } from 'node:path';

export type TargetOs = 'linux' | 'win' | 'mac';
export type TargetArch = 'x64' | 'arm64';

/** Node's platform name for each electron-builder OS flag. */
export const OS_PLATFORM: Record<TargetOs, 'linux' | 'win32' | 'darwin'> = { linux: 'linux', win: 'win32', mac: 'darwin' };
/** Installer targets per OS (what forge.config.ts declares). */
export const OS_TARGETS: Record<TargetOs, string[]> = { linux: ['AppImage', 'deb'], win: ['nsis'], mac: ['dmg'] };

export interface PreflightOptions {
  os: TargetOs;
  arch: TargetArch;
  /** `--dir`: lay out the unpacked app only; no installer tools needed. */
  dirOnly: boolean;
  electronVersion: string;
  repoRoot: string;
  env: Record<string, string | undefined>;
  homeDir: string;
  /** Whether a command is on PATH (injected so tests do not depend on the machine). */
  onPath?: (command: string) => boolean;
}

export interface Gap {
  /** What is missing, e.g. "Electron 45.5.0 for linux-x64". */
  what: string;
  /** How to provide it without a network, as one sentence. */
  fix: string;
}

export function electronZipName(version: string, os: TargetOs, arch: TargetArch): string {
  return `electron-v${version}-${OS_PLATFORM[os]}-${arch}.zip`;
}

/** @electron/get's cache root (env-paths("electron").cache, or electron_config_cache). */
export function electronGetCacheRoot(env: PreflightOptions['env'], homeDir: string, os: NodeJS.Platform = process.platform): string {
  if (env.electron_config_cache) return resolve(env.electron_config_cache);
  if (os === 'darwin') return join(homeDir, 'Library', 'Caches', 'electron');
  if (os === 'win32') return join(env.LOCALAPPDATA || join(homeDir, 'AppData', 'Local'), 'electron', 'Cache');
  return join(env.XDG_CACHE_HOME || join(homeDir, '.cache'), 'electron');
}

/** electron-builder's own cache, where it keeps downloaded tool bundles (fpm, AppImage, NSIS, dmgbuild). */
export function electronBuilderCacheDir(env: PreflightOptions['env'], homeDir: string, os: NodeJS.Platform = process.platform): string {
  const override = env.ELECTRON_BUILDER_CACHE?.trim();
  if (override && resolve(override) === override) return override;
  if (os === 'darwin') return join(homeDir, 'Library', 'Caches', 'electron-builder');
  if (os === 'win32') return join(env.LOCALAPPDATA || join(homeDir, 'AppData', 'Local'), 'electron-builder', 'Cache');
  return join(env.XDG_CACHE_HOME || join(homeDir, '.cache'), 'electron-builder');
}

const isDir = (p: string) => { try { return statSync(p).isDirectory(); } catch { return false; } };
const isFile = (p: string) => { try { return statSync(p).isFile(); } catch { return false; } };
const list = (p: string) => { try { return readdirSync(p); } catch { return []; } };

/** Finds `name` in `root` or one folder below it (@electron/get keeps zips in a per-URL hash folder). */
function findInCache(root: string, name: string): string | null {
  if (isFile(join(root, name))) return join(root, name);
  for (const sub of list(root)) {
    const p = join(root, sub, name);
    if (isFile(p)) return p;
  }
  return null;
}

function defaultOnPath(env: PreflightOptions['env']) {
  return (command: string) => (env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && isFile(join(dir, command)));
}

function checkElectron(o: PreflightOptions): Gap[] {
  const zip = electronZipName(o.electronVersion, o.os, o.arch);
  const dist = o.env.ELECTRON_DIST?.trim();
  const releases = `https://github.com/electron/electron/releases/tag/v${o.electronVersion}`;
  if (dist) {
    const p = resolve(o.repoRoot, dist);
    if (!existsSync(p)) {
      return [{ what: `the Electron distribution named by ELECTRON_DIST (${p})`, fix: `that path does not exist; point ELECTRON_DIST at ${zip} or at a folder holding it.` }];
    }
    if (isFile(p)) {
      const m = /^electron-v(.+)-(linux|win32|darwin)-(x64|arm64|ia32|armv7l)\.zip$/.exec(p.split(/[\\/]/).pop() ?? '');
      if (m && (m[1] !== o.electronVersion || m[2] !== OS_PLATFORM[o.os] || m[3] !== o.arch)) {
        return [{ what: `Electron ${o.electronVersion} for ${OS_PLATFORM[o.os]}-${o.arch}`, fix: `ELECTRON_DIST is ${p.split(/[\\/]/).pop()}, which is a different build; point it at ${zip} (from ${releases}).` }];
      }
      if (!p.endsWith('.zip')) return [{ what: `an Electron zip`, fix: `ELECTRON_DIST (${p}) is a file but not a .zip; point it at ${zip} or at a folder holding it.` }];
      return [];
    }
    const unpacked = o.os === 'mac' ? 'Electron.app' : o.os === 'win' ? 'electron.exe' : 'electron';
    if (existsSync(join(p, zip)) || existsSync(join(p, unpacked))) return [];
    return [{ what: `Electron ${o.electronVersion} for ${OS_PLATFORM[o.os]}-${o.arch}`, fix: `the folder in ELECTRON_DIST (${p}) holds neither ${zip} nor an unpacked Electron (${unpacked}); copy ${zip} from ${releases} into it.` }];
  }
  const cacheRoot = electronGetCacheRoot(o.env, o.homeDir);
  if (!findInCache(cacheRoot, zip)) {
    return [{ what: `Electron ${o.electronVersion} for ${OS_PLATFORM[o.os]}-${o.arch} (${zip})`, fix: `download ${zip} from ${releases} on a connected machine, carry it over and set ELECTRON_DIST=/path/to/${zip}.` }];
  }
  // A cached zip is still checked against SHASUMS256.txt, which @electron/get fetches every time
  // unless a copy sits at the cache root (electron-builder's air-gap seeding contract).
  const sums = [join(cacheRoot, `SHASUMS256.txt-${o.electronVersion}`), join(cacheRoot, 'SHASUMS256.txt')];
  const seeded = sums.some((f) => isFile(f) && readFileSync(f, 'utf8').includes(zip));
  if (!seeded) {
    return [{ what: `the checksum list for Electron ${o.electronVersion}`, fix: `put SHASUMS256.txt from ${releases} at ${sums[0]}, or set ELECTRON_DIST to the cached ${zip}.` }];
  }
  return [];
}

/** better-sqlite3 must be compiled for Electron's ABI; @electron/rebuild needs Electron's headers for that. */
function checkNativeRebuild(o: PreflightOptions): Gap[] {
  const modDir = join(o.repoRoot, 'node_modules', 'better-sqlite3');
  if (!isDir(modDir) || o.env.OFFSITE_PACKAGE_SKIP_REBUILD === '1') return [];
  const abiFile = join(o.repoRoot, 'node_modules', 'electron', 'abi_version');
  const abi = isFile(abiFile) ? readFileSync(abiFile, 'utf8').trim() : '';
  const meta = join(modDir, 'build', 'Release', '.forge-meta');
  if (abi && isFile(meta) && readFileSync(meta, 'utf8').trim() === `${OS_PLATFORM[o.os]}--${o.arch}--${abi}`) return [];
  const headers = join(o.homeDir, '.electron-gyp', o.electronVersion, 'include', 'node', 'node.h');
  if (isFile(headers)) return [];
  return [{
    what: `Electron ${o.electronVersion} headers (to rebuild better-sqlite3 for Electron)`,
    fix: `on a connected machine run "npx node-gyp install --target=${o.electronVersion} --dist-url=https://electronjs.org/headers --devdir=$HOME/.electron-gyp", then copy its ~/.electron-gyp/${o.electronVersion} folder to ${join(o.homeDir, '.electron-gyp', o.electronVersion)}.`,
  }];
}

function cachedTool(cacheDir: string, prefix: string): boolean {
  return list(cacheDir).some((name) => name.startsWith(prefix) && isDir(join(cacheDir, name)));
}

function checkTools(o: PreflightOptions): Gap[] {
  if (o.dirOnly) return [];
  const env = o.env;
  const onPath = o.onPath ?? defaultOnPath(env);
  const cache = electronBuilderCacheDir(env, o.homeDir);
  const gaps: Gap[] = [];
  if (o.os === 'linux') {
    const fpmOk = (env.CUSTOM_FPM_PATH && isFile(resolve(env.CUSTOM_FPM_PATH)))
      || (env.USE_SYSTEM_FPM === 'true' && onPath('fpm'))
      || cachedTool(cache, 'fpm@');
    if (!fpmOk) gaps.push({ what: 'fpm (builds the .deb)', fix: 'install fpm (for example "sudo gem install fpm") and set USE_SYSTEM_FPM=true, or set CUSTOM_FPM_PATH=/path/to/fpm.' });
    const appImageOk = (env.APPIMAGE_TOOLS_PATH && isDir(resolve(env.APPIMAGE_TOOLS_PATH))) || cachedTool(cache, 'appimage');
    if (!appImageOk) gaps.push({ what: 'the AppImage tools (mksquashfs and the AppImage runtime)', fix: `copy the "appimage-12.0.1" folder from ${electronBuilderCacheDir({}, '~', 'linux')} on a machine that has built an AppImage to the same place here, or set APPIMAGE_TOOLS_PATH to an unpacked appimage-12.0.1 bundle.` });
  } else if (o.os === 'win') {
    const nsisOk = (env.ELECTRON_BUILDER_NSIS_DIR && isDir(resolve(env.ELECTRON_BUILDER_NSIS_DIR))) || cachedTool(cache, 'nsis');
    if (!nsisOk) gaps.push({ what: 'NSIS (builds the Windows installer)', fix: `copy the nsis folders from %LOCALAPPDATA%\\electron-builder\\Cache on a machine that has built an NSIS installer, or set ELECTRON_BUILDER_NSIS_DIR to an NSIS bundle.` });
  } else {
    const dmgOk = (env.CUSTOM_DMGBUILD_PATH && isFile(resolve(env.CUSTOM_DMGBUILD_PATH))) || cachedTool(cache, 'dmg-builder@');
    if (!dmgOk) gaps.push({ what: 'dmgbuild (builds the .dmg)', fix: 'copy the dmg-builder@… folder from ~/Library/Caches/electron-builder on a Mac that has built a dmg, or set CUSTOM_DMGBUILD_PATH to a dmgbuild executable.' });
  }
  return gaps;
}

/** Everything the build would have to download, judged from local files only. */
export function findLocalGaps(o: PreflightOptions): Gap[] {
  return [...checkElectron(o), ...checkNativeRebuild(o), ...checkTools(o)];
}

/** The host electron-builder downloads from: GitHub, or the host of ELECTRON_MIRROR when set. */
export function downloadHost(env: PreflightOptions['env']): string {
  const mirror = env.ELECTRON_MIRROR?.trim();
  if (mirror) {
    try { return new URL(mirror).hostname; } catch { /* not a URL: fall through to GitHub */ }
  }
  return 'github.com';
}

/** DNS lookup and a TCP connect to port 443, each bounded by `timeoutMs`. Never throws. */
export async function hostReachable(host: string, timeoutMs = 3000): Promise<boolean> {
  const within = <T>(p: Promise<T>) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs).unref())]);
  try {
    const { address } = await within(lookup(host));
    await within(new Promise<void>((ok, fail) => {
      const socket = connect({ host: address, port: 443 });
      socket.once('connect', () => { socket.destroy(); ok(); });
      socket.once('error', (e) => { socket.destroy(); fail(e); });
      setTimeout(() => socket.destroy(), timeoutMs).unref();
    }));
    return true;
  } catch {
    return false;
  }
}

/** The message printed when packaging cannot start; one line per missing thing. */
export function offlineMessage(gaps: Gap[], reason: string): string {
  const lines = [
    `Cannot package Offsite Studio: ${reason}, and these are not on this machine:`,
    ...gaps.map((g) => `  - ${g.what}: ${g.fix}`),
    'Nothing was written. Provide the items above (or build on a connected machine), then run "npm run package" again; docs/packaging.md, "Building without a network", has the steps.',
  ];
  return lines.join('\n');
}
