// The app's job workers as a packaged build runs them: bundled by scripts/build-main.mjs into
// dist/electron/workers/, loaded by plain Node with no TypeScript loader. A generation through the
// bundled worker gives the engine's own tokens; every bundled worker loads and answers a bad job
// with its own error (not a missing module); and the demo's assets are found from a bundle two
// folders below the app's root, as the bundled main process finds them.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { JOB_WORKERS, jobWorker, type JobWorkerName } from '../../../electron/services/job-workers';
import { generate } from '../../../native-models/generate/generate';
import type { GenerationJobInput, GenerationJobResult } from '../../../native-models/generate/worker';
import { loadModel } from '../../../native-models/models/load';
import { ModelRunner } from '../../../native-models/models/runner';
import { startJob } from '../../../native-models/runtime/jobs';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const stories = resolve(repoRoot, '../shared/fixtures/llama2c/stories260K.bin');
const NAMES = Object.keys(JOB_WORKERS) as JobWorkerName[];
const bundled = (name: JobWorkerName) => pathToFileURL(resolve(repoRoot, `dist/electron/workers/${name}.js`));

beforeAll(() => {
  // `npm test` builds first; a lone run of this file builds the main process and workers itself.
  if (NAMES.some((n) => !existsSync(fileURLToPath(bundled(n))))) {
    const b = spawnSync(process.execPath, ['scripts/build-main.mjs'], { cwd: repoRoot, encoding: 'utf8' });
    if (b.status !== 0) throw new Error(`scripts/build-main.mjs failed:\n${b.stderr}`);
  }
});

describe('bundled job workers', () => {
  it('are plain JavaScript that imports no TypeScript source', () => {
    for (const n of NAMES) {
      const js = readFileSync(fileURLToPath(bundled(n)), 'utf8');
      expect(js).not.toMatch(/(from\s*|import\s*\(\s*)["'][^"']*\.ts["']/);
    }
  });

  it('generate the engine\'s own tokens through the bundled generation worker', async () => {
    const input: GenerationJobInput = { model: stories, prompt: [1], maxNewTokens: 16, temperature: 0, topP: 1, seed: 0, useCache: true, settings: { provider: 'cpu', intraOpThreads: 1 } };
    const job = startJob<GenerationJobInput, unknown, GenerationJobResult>(bundled('generate'), input);
    const outcome = await job.result;
    expect(outcome.status).toBe('done');
    const runner = new ModelRunner(await loadModel(stories), { settings: { provider: 'cpu', intraOpThreads: 1 }, contextLength: 17 });
    try {
      const want = await generate(runner, [1], { maxNewTokens: 16 });
      expect(outcome.status === 'done' ? outcome.value.tokens : []).toEqual(want.tokens);
    } finally {
      await runner.release();
    }
  });

  it('each load in a worker thread and fail a bad job with their own error, not a module error', async () => {
    for (const n of NAMES) {
      const outcome = await startJob(bundled(n), { model: join(repoRoot, 'no-such-model') }).result;
      expect(outcome.status, n).toBe('failed');
      const message = outcome.status === 'failed' ? outcome.error.message : '';
      expect(message, n).not.toMatch(/Cannot find (module|package)|ERR_MODULE_NOT_FOUND|Unknown file extension|ERR_UNKNOWN_FILE_EXTENSION/);
    }
  });

  it('are what the services start only when they sit beside the bundled main process', () => {
    // Run from the sources (as here) the services start the TypeScript entries.
    for (const n of NAMES) expect(jobWorker(n).href).toBe(JOB_WORKERS[n].href);
  });
});

describe('demo assets from a bundle', () => {
  it('are found at the app root\'s native-models/demo/ from two folders below it', async () => {
    const dir = resolve(repoRoot, 'test-results/bundle-check'); // like dist/electron/: two folders below the root
    mkdirSync(dir, { recursive: true });
    const out = join(dir, 'paths.mjs');
    await build({ entryPoints: [resolve(repoRoot, 'native-models/demo/paths.ts')], outfile: out, bundle: true, platform: 'node', format: 'esm', logLevel: 'silent' });
    const paths = (await import(pathToFileURL(out).href)) as { DEMO_BASE_DIR: string; DEMO_TASKS_DIR: string };
    expect(paths.DEMO_BASE_DIR).toBe(resolve(repoRoot, 'native-models/demo/base'));
    expect(paths.DEMO_TASKS_DIR).toBe(resolve(repoRoot, 'native-models/demo/tasks'));
    expect(existsSync(join(paths.DEMO_BASE_DIR, 'config.json'))).toBe(true);
  });
});
