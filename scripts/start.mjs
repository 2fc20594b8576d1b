#!/usr/bin/env node
// `npm start`: build what is missing or out of date, then launch the desktop app under Electron.
// Where Electron's binary is not installed (it cannot be downloaded on air-gapped or locked-down
// machines) this says so in one sentence and exits 1 — it never tries to download it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The Electron executable, read the way node_modules/electron/index.js does, minus its download. */
function electronBinary() {
  const pkg = join(root, 'node_modules', 'electron');
  const pathFile = join(pkg, 'path.txt');
  const relative = existsSync(pathFile) ? readFileSync(pathFile, 'utf8').trim() : '';
  if (process.env.ELECTRON_OVERRIDE_DIST_PATH) return join(process.env.ELECTRON_OVERRIDE_DIST_PATH, relative || 'electron');
  if (!relative) return undefined;
  const binary = join(pkg, 'dist', relative);
  return existsSync(binary) ? binary : undefined;
}

/** Newest modification time of any file under `dir` (0 when it does not exist). */
function newest(dir) {
  if (!existsSync(dir)) return 0;
  const stat = statSync(dir);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let t = 0;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    t = Math.max(t, newest(join(dir, name)));
  }
  return t;
}

function needsBuild() {
  const outputs = ['dist/renderer/index.html', 'dist/electron/main.electron.js', 'dist/electron/preload.electron.cjs'].map((p) => join(root, p));
  if (outputs.some((p) => !existsSync(p))) return true;
  const built = Math.min(...outputs.map((p) => statSync(p).mtimeMs));
  return Math.max(newest(join(root, 'electron')), newest(join(root, 'renderer')), newest(join(root, 'native-models'))) > built;
}

const binary = electronBinary();
if (!binary) {
  console.error(
    'Electron’s binary is not installed on this machine, so the desktop app cannot start here: on a machine with internet access run `npx install-electron` once and then `npm start`, or use the command line instead (`npm run offsite -- --help`, `npm run demo`).',
  );
  process.exit(1);
}

if (needsBuild()) {
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (build.status !== 0) {
    console.error('The build failed (see the errors above), so the app was not started.');
    process.exit(1);
  }
}

// ELECTRON_RUN_AS_NODE would turn the app into a plain Node process.
const env = { ...process.env };
delete env.ELECTRON_RUN_AS_NODE;
const child = spawn(binary, [root, ...process.argv.slice(2)], { cwd: root, stdio: 'inherit', env });
child.on('error', (e) => {
  console.error(`Electron could not be started (${e.message}); reinstall it with \`npm ci\` on a connected machine, or use \`npm run offsite -- --help\`.`);
  process.exit(1);
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
