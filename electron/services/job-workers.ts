// Where each job's worker module is. The app runs its bundled main process
// (dist/electron/main.electron.js, scripts/build-main.mjs), and a packaged build ships no
// TypeScript sources, so the workers are bundled too, beside it in workers/<name>.js. Run from the
// sources (development, the CLI, tests) a worker is its TypeScript entry, which runtime/jobs.ts
// loads through tsx. Resolved when a job starts, from this module's own location: in the bundle
// that is the main process file, whose folder holds workers/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const JOB_WORKERS = {
  tune: new URL('../../native-models/tune/worker.ts', import.meta.url),
  eval: new URL('../../native-models/eval/worker.ts', import.meta.url),
  scaleot: new URL('../../native-models/scaleot/worker.ts', import.meta.url),
  generate: new URL('../../native-models/generate/worker.ts', import.meta.url),
} as const;

export type JobWorkerName = keyof typeof JOB_WORKERS;

/** The bundled worker beside the bundled main process when there is one, else the TypeScript entry. */
export function jobWorker(name: JobWorkerName): URL {
  const bundled = new URL(`./workers/${name}.js`, import.meta.url);
  return existsSync(fileURLToPath(bundled)) ? bundled : JOB_WORKERS[name];
}
