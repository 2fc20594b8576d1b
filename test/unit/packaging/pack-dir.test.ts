// A real electron-builder run through `scripts/package.mjs --dir`, offline: Electron itself is a
// stand-in (a file carrying Electron's fuse wire, given through ELECTRON_DIST), everything else —
// the configuration, file patterns, asar, asarUnpack and the afterPack fuse hook — is the real thing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FuseState, FuseV1Options, getCurrentFuseWire } from '@electron/fuses';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const SENTINEL = 'dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX';

interface AsarEntry { files?: Record<string, AsarEntry>; unpacked?: boolean; size?: number }

/** Reads an asar archive's JSON header (a Chromium pickle: sizes, then the JSON string). */
function asarHeader(file: string): AsarEntry {
  const buf = readFileSync(file);
  const jsonLength = buf.readUInt32LE(12);
  return JSON.parse(buf.toString('utf8', 16, 16 + jsonLength)) as AsarEntry;
}

/** Every path in the archive, with whether it lives in app.asar.unpacked. */
function asarPaths(entry: AsarEntry, prefix = ''): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const [name, child] of Object.entries(entry.files ?? {})) {
    const p = prefix ? `${prefix}/${name}` : name;
    if (child.files) for (const [k, v] of asarPaths(child, p)) out.set(k, v);
    else out.set(p, child.unpacked === true);
  }
  return out;
}

let tmp: string;
let out: string;
let result: ReturnType<typeof spawnSync>;

beforeAll(() => {
  // The packager ships what `npm run build` produced; build it if this checkout has not yet.
  for (const need of ['dist/electron/main.electron.js', 'dist/electron/preload.electron.cjs', 'dist/electron/workers/generate.js', 'dist/renderer/index.html']) {
    if (!existsSync(resolve(repoRoot, need))) {
      const b = spawnSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, encoding: 'utf8', shell: process.platform === 'win32' });
      if (b.status !== 0) throw new Error(`npm run build failed, so there is nothing to package:\n${b.stderr}`);
      break;
    }
  }
  tmp = mkdtempSync(join(tmpdir(), 'offsite-pack-'));
  const fakeElectron = join(tmp, 'electron-dist');
  mkdirSync(join(fakeElectron, 'resources'), { recursive: true });
  const binaryName = process.platform === 'win32' ? 'electron.exe' : process.platform === 'darwin' ? 'Electron.app' : 'electron';
  // Every fuse starts "on" ('1'), so the hook has something to turn off.
  writeFileSync(join(fakeElectron, binaryName), Buffer.concat([Buffer.alloc(256, 0x7f), Buffer.from(SENTINEL), Buffer.from([1, 9, ...Array(9).fill(0x31)]), Buffer.alloc(256)]), { mode: 0o755 });
  writeFileSync(join(fakeElectron, 'LICENSE'), 'MIT');
  out = join(tmp, 'release');
  result = spawnSync(process.execPath, ['scripts/package.mjs', '--dir', '--no-build', '--out', out], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, ELECTRON_DIST: fakeElectron, OFFSITE_PACKAGE_SKIP_REBUILD: '1', OFFSITE_PACKAGE_OFFLINE: '1', OFFSITE_PACKAGE_OUT: '' },
  });
});
afterAll(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

// The assertions use the Linux layout (linux-unpacked/offsite-studio): the project's tests run on Linux.
describe('scripts/package.mjs --dir', () => {
  it('finishes and reports where the unpacked app is', () => {
    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toContain(`Unpacked app written under ${out}.`);
  });

  it('renames Electron to the product executable and flips its fuses', async () => {
    const binary = join(out, 'linux-unpacked', 'offsite-studio');
    expect(existsSync(binary)).toBe(true);
    const wire = await getCurrentFuseWire(binary);
    expect(wire[FuseV1Options.RunAsNode]).toBe(FuseState.DISABLE);
    expect(wire[FuseV1Options.EnableNodeOptionsEnvironmentVariable]).toBe(FuseState.DISABLE);
    expect(wire[FuseV1Options.EnableNodeCliInspectArguments]).toBe(FuseState.DISABLE);
    expect(wire[FuseV1Options.OnlyLoadAppFromAsar]).toBe(FuseState.ENABLE);
    expect(wire[FuseV1Options.EnableEmbeddedAsarIntegrityValidation]).toBe(FuseState.ENABLE);
  });

  it('puts only the built app, package.json and production modules in app.asar', () => {
    const paths = asarPaths(asarHeader(join(out, 'linux-unpacked/resources/app.asar')));
    const top = new Set([...paths.keys()].map((p) => p.split('/')[0]));
    const allowed = new Set(['dist', 'package.json', 'node_modules', 'native-models']);
    expect([...top].filter((t) => !allowed.has(t!))).toEqual([]);
    expect(paths.has('dist/electron/main.electron.js')).toBe(true);
    expect(paths.has('dist/electron/preload.electron.cjs')).toBe(true);
    expect(paths.has('dist/renderer/index.html')).toBe(true);
    // Every job runs in a bundled worker (no TypeScript sources ship), and the demo's model and tasks are there.
    for (const w of ['tune', 'eval', 'scaleot', 'generate']) expect(paths.has(`dist/electron/workers/${w}.js`)).toBe(true);
    expect(paths.has('native-models/demo/base/config.json')).toBe(true);
    expect([...paths.keys()].filter((p) => p.startsWith('native-models/') && !p.startsWith('native-models/demo/'))).toEqual([]);
    expect([...paths.keys()].filter((p) => p.startsWith('node_modules/electron/') || p.startsWith('node_modules/electron-builder/') || p.startsWith('node_modules/vitest/'))).toEqual([]);
    expect(paths.has('node_modules/zod/package.json')).toBe(true);
    // The packaged package.json carries desktopName, Electron's Wayland app id.
    expect(paths.has('package.json')).toBe(true);
  });

  it('unpacks the native modules next to their libraries, for this OS and CPU only', () => {
    const paths = asarPaths(asarHeader(join(out, 'linux-unpacked/resources/app.asar')));
    const ort = `node_modules/onnxruntime-node/bin/napi-v6/linux/${process.arch}`;
    for (const p of [`${ort}/onnxruntime_binding.node`, `${ort}/libonnxruntime.so.1`, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node']) {
      expect(paths.get(p), p).toBe(true);
      expect(existsSync(join(out, 'linux-unpacked/resources/app.asar.unpacked', p)), p).toBe(true);
    }
    const ortFiles = [...paths.keys()].filter((p) => p.startsWith('node_modules/onnxruntime-node/bin/'));
    expect(ortFiles.filter((p) => !p.startsWith(`${ort}/`))).toEqual([]);
    expect([...paths.keys()].filter((p) => p.startsWith('node_modules/better-sqlite3/') && /(deps|src|obj\.target)\//.test(p))).toEqual([]);
  });
});
