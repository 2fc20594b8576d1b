/**
 * forge.config.ts — the electron-builder configuration of Offsite Studio.
 *
 * The file name is fixed by the product's layout; the packager is electron-builder (not Electron
 * Forge). electron-builder does not read TypeScript configuration files, so `npm run package`
 * (scripts/package.mjs) loads this module with tsx and passes the exported object to
 * electron-builder's `build()` API. `node scripts/package.mjs --print-config` prints it as the JSON
 * electron-builder would otherwise read from electron-builder.json. docs/packaging.md explains how to
 * build each installer.
 *
 * Environment read here:
 *   ELECTRON_DIST              an Electron zip, a folder holding `electron-v<version>-<os>-<arch>.zip`,
 *                              or an unpacked Electron; used instead of downloading Electron
 *   OFFSITE_PACKAGE_MAINTAINER the Debian maintainer line ("Name <email>") of the organisation shipping
 *   OFFSITE_PACKAGE_SKIP_REBUILD=1  do not rebuild native modules; only when better-sqlite3 in
 *                              node_modules is already built for this Electron (docs/packaging.md)
 */
import type { Configuration } from 'electron-builder';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));

export const APP_ID = 'org.offsitestudio.OffsiteStudio';
export const PRODUCT_NAME = 'Offsite Studio';
/** Linux executable, .desktop file and icon name. */
export const EXECUTABLE_NAME = 'offsite-studio';
/** Bundled demo model and data (built by the engine team); shipped inside app.asar. */
export const DEMO_ASSETS_GLOB = 'native-models/demo/**/*';
/** The electron-builder hook (relative to the repository root) that flips the Electron fuses. */
export const AFTER_PACK_HOOK = './build/afterPack.ts';
/** Where `npm run package` writes installers unless told otherwise. */
export const DEFAULT_OUTPUT_DIR = 'release';

/** onnxruntime-node's CUDA execution-provider libraries, present after `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node`. */
export const CUDA_PROVIDER_LIBS = [
  'libonnxruntime_providers_cuda.so',
  'libonnxruntime_providers_shared.so',
  'libonnxruntime_providers_tensorrt.so',
] as const;

/** True when the CUDA provider libraries are installed for linux-x64 (the only platform onnxruntime-node offers them for). */
export function cudaProvidersPresent(repoRoot: string = root): boolean {
  const dir = join(repoRoot, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64');
  return existsSync(join(dir, 'libonnxruntime_providers_cuda.so')) && existsSync(join(dir, 'libonnxruntime_providers_shared.so'));
}

/** The Electron version installed in node_modules (what `npm start` runs and what gets packaged). */
export function installedElectronVersion(repoRoot: string = root): string {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'node_modules/electron/package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Parses the [Desktop Entry] group of a freedesktop .desktop file into key → value. */
export function parseDesktopEntry(text: string): Record<string, string> {
  const entry: Record<string, string> = {};
  let inGroup = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[')) { inGroup = line === '[Desktop Entry]'; continue; }
    const eq = line.indexOf('=');
    if (inGroup && eq > 0) entry[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return entry;
}

/** build/linux/offsite-studio.desktop is the source of the Linux menu entry. */
export const desktopEntry = parseDesktopEntry(readFileSync(join(root, 'build/linux', `${EXECUTABLE_NAME}.desktop`), 'utf8'));
// electron-builder writes Exec (from linux.executableName; it refuses an explicit Exec), Icon and
// Categories (from linux.category) itself; every other key comes from the file.
const { Exec: _exec, Categories: desktopCategories = 'Development;', ...desktopExtra } = desktopEntry;

// The CPU and GPU builds of one version must not overwrite each other's installers.
const flavour = cudaProvidersPresent() ? '-cuda12' : '';
const electronDist = process.env.ELECTRON_DIST?.trim();

const config: Configuration = {
  appId: APP_ID,
  productName: PRODUCT_NAME,
  copyright: 'Copyright © the Offsite Studio authors',
  electronVersion: installedElectronVersion(),
  ...(electronDist ? { electronDist: resolve(electronDist) } : {}),
  // package.json's name/desktopName are what Electron uses as the Wayland app_id / WM_CLASS.
  extraMetadata: { desktopName: `${EXECUTABLE_NAME}.desktop` },
  directories: { output: DEFAULT_OUTPUT_DIR, buildResources: 'build' },
  artifactName: `${EXECUTABLE_NAME}-\${version}${flavour}-\${os}-\${arch}.\${ext}`,

  // What goes into app.asar. Production dependencies are added by electron-builder from
  // package.json "dependencies" (electron itself is a devDependency and is never copied).
  files: [
    'package.json',
    'dist/electron/**/*',
    'dist/renderer/**/*',
    DEMO_ASSETS_GLOB,
    // onnxruntime-node carries binaries for every OS and CPU; ship only the target's. electron-builder
    // expands ${platform} to the build machine's OS, which is always the target (see scripts/package.mjs),
    // and ${arch} to the target CPU. (These live here, not in linux/win/mac.files: electron-builder
    // turns the top-level list into a file set, and a platform list of exclusions only would then
    // re-include the whole repository.)
    '!**/node_modules/onnxruntime-node/bin/napi-v6/!(${platform})/**',
    '!**/node_modules/onnxruntime-node/bin/napi-v6/${platform}/!(${arch})/**',
    // better-sqlite3 is compiled in place: ship the addon, not its sources and build leftovers.
    '!**/node_modules/better-sqlite3/{deps,src}/**',
    '!**/node_modules/better-sqlite3/build/Release/{obj,obj.target,.deps}/**',
    '!**/node_modules/better-sqlite3/build/Release/{test_extension.node,sqlite3.a}',
    '!**/node_modules/better-sqlite3/build/{deps/**,*.mk,Makefile,config.gypi}',
  ],
  asar: true,
  // Native code cannot be loaded from inside an asar archive: the addons and the shared libraries
  // they dlopen (onnxruntime, and its CUDA/TensorRT providers when installed) go to
  // app.asar.unpacked, next to each other as the loaders expect.
  asarUnpack: [
    '**/*.node',
    '**/node_modules/onnxruntime-node/bin/**',
    '**/node_modules/better-sqlite3/build/Release/*.node',
    // The demo model files are opened by onnxruntime's native code and by job worker threads,
    // which need real files on disk (under resources/app.asar.unpacked/native-models/demo).
    DEMO_ASSETS_GLOB,
  ],
  // Rebuild native modules (better-sqlite3) against Electron's ABI before copying them.
  npmRebuild: process.env.OFFSITE_PACKAGE_SKIP_REBUILD !== '1',
  nodeGypRebuild: false,
  afterPack: AFTER_PACK_HOOK,

  linux: {
    target: ['AppImage', 'deb'],
    executableName: EXECUTABLE_NAME,
    icon: 'build/icons',
    category: desktopCategories.replace(/;$/, ''),
    synopsis: 'Offsite-tuning of language models on air-gapped workstations',
    description: 'Import a signed emulator, tune adapters on private data offline, evaluate locally and export only the adapter; every action is recorded in a tamper-evident audit log.',
    maintainer: process.env.OFFSITE_PACKAGE_MAINTAINER?.trim() || 'Offsite Studio authors',
    desktop: { entry: desktopExtra },
  },
  deb: {
    // Electron's runtime libraries on Debian/Ubuntu (electron-builder's own list plus libsecret,
    // which Chromium's password store expects on GNOME).
    depends: ['libgtk-3-0', 'libnotify4', 'libnss3', 'libxss1', 'libxtst6', 'xdg-utils', 'libatspi2.0-0', 'libuuid1', 'libsecret-1-0'],
    packageCategory: 'science',
    priority: 'optional',
  },
  appImage: { artifactName: `${EXECUTABLE_NAME}-\${version}${flavour}-\${arch}.AppImage` },

  win: {
    target: ['nsis'],
    icon: 'build/icon.ico',
  },
  nsis: {
    oneClick: false,
    perMachine: false,
    allowElevation: true,
    allowToChangeInstallationDirectory: true,
    createDesktopShortcut: true,
    createStartMenuShortcut: true,
    shortcutName: PRODUCT_NAME,
    installerIcon: 'build/icon.ico',
    uninstallerIcon: 'build/icon.ico',
    // Keep the user's audit database, keys and runs on uninstall: they are records, not cache.
    deleteAppDataOnUninstall: false,
  },

  mac: {
    target: ['dmg'],
    icon: 'build/icon.icns',
    category: 'public.app-category.developer-tools',
    hardenedRuntime: true,
  },
  dmg: { title: `${PRODUCT_NAME} \${version}` },

  publish: null,
};

export default config;
