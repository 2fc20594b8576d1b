#!/usr/bin/env node
// Bundles the Electron main process (ESM) and the preload (CommonJS: sandboxed preloads cannot
// load ES modules) into dist/electron/. Native modules stay external: they are loaded from
// node_modules at run time (and unpacked from the asar by the packager).
// The job workers are bundled too (dist/electron/workers/<name>.js, the names of
// electron/services/job-workers.ts): a packaged build ships no TypeScript sources, and the
// services start the bundled worker when it sits beside the bundled main process.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const EXTERNAL = ['electron', 'onnxruntime-node', 'better-sqlite3'];

// A bundled ES module has no `require`; CommonJS dependencies inside the bundle need one.
const esmBanner = "import { createRequire as __offsiteCreateRequire } from 'node:module'; const require = __offsiteCreateRequire(import.meta.url);";

const ENTRIES = [
  { in: 'electron/main.electron.ts', out: 'dist/electron/main.electron.js', format: 'esm', banner: esmBanner },
  // Minified: the preload is parsed on every window load and carries the contract's schemas.
  { in: 'electron/preload.electron.ts', out: 'dist/electron/preload.electron.cjs', format: 'cjs', minify: true },
  ...['tune', 'eval', 'scaleot', 'generate'].map((name) => ({ in: `native-models/${name}/worker.ts`, out: `dist/electron/workers/${name}.js`, format: 'esm', banner: esmBanner })),
];

try {
  for (const entry of ENTRIES) {
    await build({
      absWorkingDir: root,
      entryPoints: [entry.in],
      outfile: entry.out,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: entry.format,
      external: EXTERNAL,
      minify: entry.minify === true,
      sourcemap: true,
      legalComments: 'none',
      logLevel: 'warning',
      banner: entry.banner ? { js: entry.banner } : undefined,
    });
  }
  console.log(`built ${ENTRIES.map((e) => e.out).join(', ')}`);
} catch {
  // esbuild has already printed each error with its file and line.
  console.error('Building the Electron main process failed; see the errors above.');
  process.exit(1);
}
