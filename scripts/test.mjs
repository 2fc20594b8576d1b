#!/usr/bin/env node
// `npm test`: typecheck, build the renderer (the e2e tests load the built bundle), then run every
// test once with vitest, and close with the plain `N passed, N failed` line CI reads.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';

const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit', env: process.env }).status ?? 1;
const bin = (name) => `node_modules/.bin/${name}`;
const extra = process.argv.slice(2);

let failedSteps = 0;
let passedSteps = 0;
for (const [label, cmd, args] of [
  ['typecheck', 'npm', ['run', '--silent', 'typecheck']],
  ['build', 'npm', ['run', '--silent', 'build']],
]) {
  if (extra.length > 0) break; // a filtered run (npm test -- path) skips the whole-project steps
  console.log(`\n── ${label} ──`);
  if (run(cmd, args) === 0) passedSteps++;
  else { failedSteps++; console.error(`${label} failed`); }
}

mkdirSync('test-results', { recursive: true });
const out = 'test-results/vitest.json';
const status = run(bin('vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile=${out}`, ...extra]);

let passed = passedSteps;
let failed = failedSteps;
if (existsSync(out)) {
  const r = JSON.parse(readFileSync(out, 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += (r.numFailedTests ?? 0) + (r.numFailedTestSuites ?? 0);
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
} else {
  console.log(`\n${passed} passed, ${failed + 1} failed`);
}
process.exit(status !== 0 || failed > 0 ? 1 : 0);
