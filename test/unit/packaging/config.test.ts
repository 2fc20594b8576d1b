// Static checks of the electron-builder configuration in forge.config.ts: targets, identity, asar
// and what is unpacked from it, the afterPack hook, and which files may (and may not) ship.
import { describe, expect, it } from 'vitest';
import { Minimatch } from 'minimatch';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import config, { parseDesktopEntry } from '../../../forge.config';
import type { Configuration, TargetConfiguration } from 'electron-builder';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

/** Target names of one OS section, whatever form (string, object, array) electron-builder allows. */
function targetNames(section: { target?: unknown } | null | undefined): string[] {
  const t = section?.target;
  const list = Array.isArray(t) ? t : t == null ? [] : [t];
  return list.map((x) => (typeof x === 'string' ? x : (x as TargetConfiguration).target));
}

/** Evaluates a pattern list the way electron-builder does: in order, later patterns override, `!` excludes. */
function matches(patterns: string[], path: string, vars: Record<string, string> = { platform: 'linux', arch: 'x64' }): boolean {
  let included = false;
  for (const raw of patterns) {
    const expanded = raw.replace(/\$\{(\w+)\}/g, (_, k: string) => vars[k] ?? '');
    const negate = expanded.startsWith('!');
    const m = new Minimatch(negate ? expanded.slice(1) : expanded, { dot: true });
    if (m.match(path)) included = !negate;
  }
  return included;
}

const files = (config.files as string[]);
const asarUnpack = config.asarUnpack as string[];

describe('forge.config.ts (electron-builder configuration)', () => {
  it('says in its header that electron-builder reads it', () => {
    const head = readFileSync(resolve(repoRoot, 'forge.config.ts'), 'utf8').slice(0, 600);
    expect(head).toMatch(/electron-builder configuration/);
    expect(head).toMatch(/scripts\/package\.mjs/);
  });

  it('names the app', () => {
    expect(config.appId).toBe('org.offsitestudio.OffsiteStudio');
    expect(config.productName).toBe('Offsite Studio');
    expect(config.linux?.executableName).toBe('offsite-studio');
  });

  it('builds AppImage and deb for Linux, NSIS for Windows and dmg for macOS', () => {
    expect(targetNames(config.linux).sort()).toEqual(['AppImage', 'deb']);
    expect(targetNames(config.win)).toEqual(['nsis']);
    expect(targetNames(config.mac)).toEqual(['dmg']);
  });

  it('packages the Electron version installed in node_modules', () => {
    const installed = JSON.parse(readFileSync(resolve(repoRoot, 'node_modules/electron/package.json'), 'utf8')).version;
    expect(config.electronVersion).toBe(installed);
  });

  it('puts the app in an asar archive and unpacks every native binary', () => {
    expect(config.asar).toBe(true);
    const unpacked = (p: string) => asarUnpack.some((pattern) => new Minimatch(pattern, { dot: true }).match(p));
    for (const p of [
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so',
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_shared.so',
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_tensorrt.so',
      'node_modules/onnxruntime-node/bin/napi-v6/win32/x64/onnxruntime.dll',
      'node_modules/onnxruntime-node/bin/napi-v6/win32/x64/DirectML.dll',
      'node_modules/onnxruntime-node/bin/napi-v6/darwin/arm64/libonnxruntime.1.dylib',
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      'native-models/demo/emulator/model.onnx',
    ]) {
      expect(unpacked(p), p).toBe(true);
    }
    // JavaScript stays inside the archive.
    expect(unpacked('dist/electron/main.electron.js')).toBe(false);
    expect(unpacked('node_modules/better-sqlite3/lib/index.js')).toBe(false);
  });

  it('rebuilds native modules for Electron by default', () => {
    // The test process does not set the escape hatch, so the default must be on.
    expect(process.env.OFFSITE_PACKAGE_SKIP_REBUILD).toBeUndefined();
    expect(config.npmRebuild).toBe(true);
  });

  it('runs the fuse hook after packing, and the hook file exists', () => {
    expect(config.afterPack).toBe('./build/afterPack.ts');
    expect(existsSync(resolve(repoRoot, 'build/afterPack.ts'))).toBe(true);
  });

  it('ships the built app, package.json and the demo assets', () => {
    for (const p of [
      'package.json',
      'dist/electron/main.electron.js',
      'dist/electron/preload.electron.cjs',
      'dist/renderer/index.html',
      'dist/renderer/assets/index-abc123.js',
      'native-models/demo/emulator/manifest.json',
      'native-models/demo/data/stories.jsonl',
    ]) {
      expect(matches(files, p), p).toBe(true);
    }
  });

  it('ships no sources, tests, tooling or Electron itself', () => {
    for (const p of [
      'test/unit/packaging/config.test.ts',
      'test/fixtures/tiny/model.safetensors',
      'electron/main.electron.ts',
      'renderer/src/App.svelte',
      'native-models/onnx/builder.ts',
      'scripts/package.mjs',
      'build/afterPack.ts',
      'forge.config.ts',
      'tsconfig.json',
      '.npmrc',
      'release/offsite-studio-0.1.0-x86_64.AppImage',
      'node_modules/electron/dist/electron',
      'node_modules/electron/index.js',
    ]) {
      expect(matches(files, p), p).toBe(false);
    }
    const pkg = JSON.parse(readFileSync(resolve(repoRoot, 'package.json'), 'utf8'));
    // electron-builder copies production dependencies only; Electron and the builder must not be among them.
    expect(Object.keys(pkg.dependencies ?? {})).not.toContain('electron');
    expect(Object.keys(pkg.dependencies ?? {})).not.toContain('electron-builder');
  });

  it('keeps only the target OS and CPU binaries of onnxruntime-node, and no better-sqlite3 build leftovers', () => {
    // electron-builder applies the exclusions in `files` to node_modules; `platform`/`arch` are its macros.
    const keep = (p: string, platform: string, arch: string) => !files.filter((f) => f.startsWith('!')).some((f) =>
      new Minimatch(f.slice(1).replace(/\$\{(\w+)\}/g, (_, k: string) => (k === 'platform' ? platform : arch)), { dot: true }).match(p));
    const ort = 'node_modules/onnxruntime-node/bin/napi-v6';
    expect(keep(`${ort}/linux/x64/libonnxruntime.so.1`, 'linux', 'x64')).toBe(true);
    expect(keep(`${ort}/linux/arm64/libonnxruntime.so.1`, 'linux', 'x64')).toBe(false);
    expect(keep(`${ort}/win32/x64/onnxruntime.dll`, 'linux', 'x64')).toBe(false);
    expect(keep(`${ort}/darwin/arm64/libonnxruntime.1.dylib`, 'linux', 'x64')).toBe(false);
    expect(keep(`${ort}/win32/x64/onnxruntime.dll`, 'win32', 'x64')).toBe(true);
    expect(keep(`${ort}/linux/x64/libonnxruntime.so.1`, 'win32', 'x64')).toBe(false);
    expect(keep(`${ort}/darwin/arm64/libonnxruntime.1.dylib`, 'darwin', 'arm64')).toBe(true);
    expect(keep('node_modules/better-sqlite3/build/Release/better_sqlite3.node', 'linux', 'x64')).toBe(true);
    expect(keep('node_modules/better-sqlite3/build/Release/test_extension.node', 'linux', 'x64')).toBe(false);
    expect(keep('node_modules/better-sqlite3/build/Release/obj.target/better_sqlite3.node', 'linux', 'x64')).toBe(false);
    expect(keep('node_modules/better-sqlite3/deps/sqlite3/sqlite3.c', 'linux', 'x64')).toBe(false);
  });

  it('points every icon at a file that exists', () => {
    const icons = [config.linux?.icon, config.win?.icon, config.mac?.icon, config.nsis?.installerIcon, config.nsis?.uninstallerIcon];
    for (const icon of icons) {
      expect(typeof icon).toBe('string');
      expect(existsSync(resolve(repoRoot, icon as string)), icon as string).toBe(true);
    }
  });

  it('builds the Linux menu entry from build/linux/offsite-studio.desktop', () => {
    const file = parseDesktopEntry(readFileSync(resolve(repoRoot, 'build/linux/offsite-studio.desktop'), 'utf8'));
    expect(file.Type).toBe('Application');
    expect(file.Name).toBe('Offsite Studio');
    expect(file.Exec).toBe('offsite-studio %U');
    expect(file.Icon).toBe('offsite-studio');
    const entry = (config.linux?.desktop as { entry: Record<string, string> }).entry;
    // electron-builder writes Exec itself and refuses one in the config.
    expect(entry.Exec).toBeUndefined();
    expect(entry.Name).toBe(file.Name);
    expect(entry.Comment).toBe(file.Comment);
    expect(entry.Keywords).toBe(file.Keywords);
    expect(`${config.linux?.category};`).toBe(file.Categories);
    expect((config.extraMetadata as Record<string, string>).desktopName).toBe('offsite-studio.desktop');
  });

  it('is plain data that survives a JSON round trip (what electron-builder.json would hold)', () => {
    const json = JSON.parse(JSON.stringify(config)) as Configuration;
    expect(json).toEqual(config);
  });
});
