#!/usr/bin/env node
// `pretest`: make sure the system packages the tests need are present. Installs them with apt-get
// when running as root, otherwise stops with one sentence saying what to install.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const need = [];
if (!existsSync('/usr/bin/chromium')) need.push('chromium');
const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
if (torch.status !== 0) need.push('python3-torch');
const openblas = spawnSync('sh', ['-c', 'ls /usr/lib/*/openblas-pthread/libblas.so.3 >/dev/null 2>&1']);
if (openblas.status !== 0) need.push('libopenblas0-pthread');

if (need.length === 0) process.exit(0);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasApt = existsSync('/usr/bin/apt-get');
if (!isRoot || !hasApt) {
  console.error(`The tests need these system packages: ${need.join(', ')} — install them (for example: sudo apt-get install -y ${need.join(' ')}) and run npm test again.`);
  process.exit(1);
}
console.log(`pretest: installing ${need.join(', ')} with apt-get…`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
const install = update.status === 0
  ? spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...need], { stdio: 'inherit', env })
  : update;
if (install.status !== 0) {
  console.error(`Could not install ${need.join(', ')} with apt-get; install them by hand and run npm test again.`);
  process.exit(1);
}
