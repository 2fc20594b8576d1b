#!/usr/bin/env node
// `npm run package`: build the app and turn it into installers with electron-builder, using the
// configuration in forge.config.ts, then write SHA256SUMS next to the installers.
//
//   npm run package                       installers for this OS (Linux: AppImage + deb; Windows: NSIS; macOS: dmg)
//   npm run package -- --dir              the unpacked app only (release/<os>-unpacked), no installer tools needed
//   npm run package -- --out <folder>     write somewhere other than release/ (or set OFFSITE_PACKAGE_OUT)
//   npm run package -- --no-build         package the existing dist/ without running `npm run build`
//   npm run package -- --arm64 | --x64    target architecture (default: this machine's)
//   npm run package -- --print-config     print the resolved electron-builder configuration as JSON
//
// Before anything is created, a local preflight (build/preflight.ts) lists what electron-builder
// would have to download. If something is missing and the download host does not answer (or
// OFFSITE_PACKAGE_OFFLINE=1), it stops with that list and exit code 1, leaving no output folder.
// OFFSITE_PACKAGE_SKIP_PREFLIGHT=1 skips the preflight. docs/packaging.md has the full procedure.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, createReadStream, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

const root = fileURLToPath(new URL('..', import.meta.url));
const INSTALLER_EXTS = ['.AppImage', '.deb', '.exe', '.dmg'];
const HOST_OS = { linux: 'linux', win32: 'win', darwin: 'mac' }[process.platform];
const OS_LABEL = { linux: 'Linux', win: 'Windows', mac: 'macOS' };

function usage(message) {
  console.error(`${message} Run "npm run package -- --help" for the options.`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { os: null, arch: null, dirOnly: false, out: process.env.OFFSITE_PACKAGE_OUT || null, build: true, printConfig: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--linux' || a === '--win' || a === '--mac') {
      const os = a.slice(2);
      if (opts.os && opts.os !== os) usage(`Choose one operating system per run (got --${opts.os} and ${a}).`);
      opts.os = os;
    } else if (a === '--x64' || a === '--arm64') {
      opts.arch = a.slice(2);
    } else if (a === '--dir') {
      opts.dirOnly = true;
    } else if (a === '--no-build') {
      opts.build = false;
    } else if (a === '--out') {
      if (!argv[i + 1] || argv[i + 1].startsWith('--')) usage('--out needs a folder after it.');
      opts.out = argv[++i];
    } else if (a.startsWith('--out=')) {
      opts.out = a.slice('--out='.length);
    } else if (a === '--print-config') {
      opts.printConfig = true;
    } else if (a === '--help' || a === '-h') {
      opts.help = true;
    } else {
      usage(`Unknown option "${a}" for npm run package.`);
    }
  }
  return opts;
}

/** Writes `text` to `path` through a temp file, fsync and rename, so a crash never leaves half a file. */
function writeAtomic(path, text) {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function sha256(file) {
  return new Promise((ok, fail) => {
    const h = createHash('sha256');
    createReadStream(file).on('error', fail).on('data', (d) => h.update(d)).on('end', () => ok(h.digest('hex')));
  });
}

/** Adds/updates the installers' lines in <out>/SHA256SUMS (sha256sum format), keeping lines for other files still present. */
async function writeChecksums(out, installers) {
  const file = join(out, 'SHA256SUMS');
  const lines = new Map();
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
      if (m && existsSync(join(out, m[2]))) lines.set(m[2], m[1]);
    }
  }
  for (const p of installers) lines.set(relative(out, p).split('\\').join('/'), await sha256(p));
  const text = [...lines].sort(([a], [b]) => a.localeCompare(b)).map(([name, hash]) => `${hash}  ${name}\n`).join('');
  writeAtomic(file, text);
  return { file, lines };
}

/** electron-builder rebuilds better-sqlite3 for Electron in place; put back the Node build the CLI and tests use. */
function restoreNodeBuildOfBetterSqlite() {
  const meta = join(root, 'node_modules/better-sqlite3/build/Release/.forge-meta');
  if (!existsSync(meta)) return;
  // The marker must go too, or the next package run would think the Node build is Electron's.
  rmSync(meta, { force: true });
  console.log('Rebuilding better-sqlite3 for Node (electron-builder compiled it for Electron)…');
  const r = spawnSync('npm', ['rebuild', 'better-sqlite3'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) {
    console.error('Could not rebuild better-sqlite3 for Node; run "npm rebuild better-sqlite3" before using the CLI or running tests.');
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) {
    console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//   ')).map((l) => l.slice(5)).join('\n'));
    return 0;
  }
  process.chdir(root);
  // forge.config.ts and the afterPack hook are TypeScript; tsx lets both this script and
  // electron-builder (which imports the hook by path) load them.
  register();
  const { default: config, DEFAULT_OUTPUT_DIR } = await import(pathToFileURL(join(root, 'forge.config.ts')).href);
  if (opts.printConfig) {
    console.log(JSON.stringify(config, null, 2));
    return 0;
  }

  if (!HOST_OS) usage(`Packaging runs on Linux, Windows or macOS, not on ${process.platform}.`);
  const os = opts.os ?? HOST_OS;
  if (os !== HOST_OS) {
    usage(`Build the ${OS_LABEL[os]} installer on ${OS_LABEL[os]}: the native modules in node_modules (better-sqlite3, onnxruntime-node) are installed for ${OS_LABEL[HOST_OS]}.`);
  }
  const arch = opts.arch ?? process.arch;
  if (arch !== 'x64' && arch !== 'arm64') usage(`Offsite Studio is packaged for x64 or arm64, not ${arch}; pass --x64 or --arm64.`);
  const out = resolve(root, opts.out ?? DEFAULT_OUTPUT_DIR);

  // Preflight: local files only, before anything is created.
  if (process.env.OFFSITE_PACKAGE_SKIP_PREFLIGHT !== '1') {
    const { findLocalGaps, downloadHost, hostReachable, offlineMessage } = await import(pathToFileURL(join(root, 'build/preflight.ts')).href);
    const gaps = findLocalGaps({ os, arch, dirOnly: opts.dirOnly, electronVersion: config.electronVersion, repoRoot: root, env: process.env, homeDir: homedir() });
    if (gaps.length > 0) {
      const host = downloadHost(process.env);
      let reason = null;
      if (process.env.OFFSITE_PACKAGE_OFFLINE === '1') reason = 'OFFSITE_PACKAGE_OFFLINE=1 forbids downloads';
      else if (!(await hostReachable(host))) reason = `this machine cannot reach ${host} to download what is missing`;
      if (reason) {
        console.error(offlineMessage(gaps, reason));
        return 1;
      }
      console.log(`Will download from ${host}: ${gaps.map((g) => g.what).join('; ')}.`);
    }
  }

  if (opts.build) {
    console.log('Building the app (npm run build)…');
    const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
    if (r.status !== 0) {
      console.error('Building the app failed (see the errors above); nothing was packaged.');
      return 1;
    }
  }
  const mainEntry = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).main;
  for (const need of [mainEntry, 'dist/renderer/index.html']) {
    if (!existsSync(join(root, need))) {
      console.error(`${need} is missing; run "npm run build" (or drop --no-build) and package again.`);
      return 1;
    }
  }
  if (!existsSync(join(root, 'native-models/demo'))) {
    console.warn('Note: native-models/demo does not exist, so this installer carries no demo assets.');
  }

  const createdOut = !existsSync(out);
  const eb = await import('electron-builder');
  const { build, Platform, Arch } = eb.default ?? eb;
  const platform = { linux: Platform.LINUX, win: Platform.WINDOWS, mac: Platform.MAC }[os];
  const targets = platform.createTarget(opts.dirOnly ? ['dir'] : config[os].target, Arch[arch]);
  let artifacts;
  try {
    artifacts = await build({
      targets,
      projectDir: root,
      publish: 'never',
      config: { ...config, directories: { ...config.directories, output: out } },
    });
  } catch (err) {
    const message = (err && err.message) || String(err);
    const network = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH/.test(message);
    console.error(`Packaging failed: ${message.split('\n').filter(Boolean).join(' ')}`
      + (network ? ' — electron-builder needed a download and the network did not answer; docs/packaging.md, "Building without a network", says what to provide.' : ''));
    if (process.env.OFFSITE_DEBUG === '1' && err && err.stack) console.error(err.stack);
    if (createdOut) rmSync(out, { recursive: true, force: true });
    if (config.npmRebuild) restoreNodeBuildOfBetterSqlite();
    return 1;
  }
  if (config.npmRebuild) restoreNodeBuildOfBetterSqlite();

  if (opts.dirOnly) {
    console.log(`Unpacked app written under ${out}.`);
    return 0;
  }
  const installers = artifacts.filter((p) => INSTALLER_EXTS.some((ext) => p.endsWith(ext)) && existsSync(p));
  const { file } = await writeChecksums(out, installers);
  console.log(`\nInstallers (checksums in ${file}):`);
  for (const p of installers) console.log(`  ${basename(p)}`);
  console.log('Carry the installers together with SHA256SUMS; docs/packaging.md says how to check them on the other side.');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    // A bug in this script, not a packaging problem: say so plainly.
    console.error(`npm run package stopped unexpectedly: ${(err && err.message) || err}`);
    if (process.env.OFFSITE_DEBUG === '1' && err && err.stack) console.error(err.stack);
    process.exit(1);
  },
);
