// What each folder may import (ARCHITECTURE.md, STYLE.md):
// - only `*.electron.ts` files import `electron` (services, IPC, audit, jobs and the CLI run in
//   plain Node);
// - native-models/ imports no electron, SQLite, Svelte or Vite, and nothing from electron/ or
//   renderer/ (it runs in worker threads, the CLI and tests);
// - renderer/ imports no Node built-ins and no native or main-process package, and nothing
//   outside renderer/ except types from electron/ipc/contract.ts. renderer/vite.config.ts is the
//   build's Node-side configuration, not renderer code, and is left out.
// A failure names the file, the import and the rule.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface ImportRef {
  specifier: string;
  typeOnly: boolean;
}

/** Every import, re-export, dynamic import and require in a TypeScript or Svelte source. */
export function importsOf(source: string, file: string): ImportRef[] {
  let text = source;
  if (file.endsWith('.svelte')) text = [...source.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]).join('\n');
  text = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:\\])\/\/.*$/gm, '$1');
  const refs: ImportRef[] = [];
  const statement = /(?:^|[\n;}])\s*(import|export)\s+(type\s+)?([\w*{}\s,$]*?)\s*from\s*['"]([^'"]+)['"]/g;
  for (const m of text.matchAll(statement)) {
    const clause = m[3] ?? '';
    const named = clause.match(/^\{([\s\S]*)\}$/);
    const allTypeSpecifiers =
      named !== null &&
      named[1]!
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .every((s) => s.startsWith('type '));
    refs.push({ specifier: m[4]!, typeOnly: m[2] !== undefined || allTypeSpecifiers });
  }
  for (const m of text.matchAll(/(?:^|[\n;}])\s*import\s*['"]([^'"]+)['"]/g)) refs.push({ specifier: m[1]!, typeOnly: false });
  for (const m of text.matchAll(/\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) refs.push({ specifier: m[1]!, typeOnly: false });
  return refs;
}

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, m.split('/')[0]!]));
const isBuiltin = (s: string) => s.startsWith('node:') || NODE_BUILTINS.has(s) || NODE_BUILTINS.has(s.split('/')[0]!);
const packageOf = (s: string) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!);
const isRelative = (s: string) => s.startsWith('.') || s.startsWith('/');

const RENDERER_FORBIDDEN_PACKAGES = new Set(['electron', 'better-sqlite3', 'onnxruntime-node', 'onnx-buf', '@huggingface/tokenizers', 'tsx']);
const ENGINE_FORBIDDEN_PACKAGES = new Set(['electron', 'better-sqlite3', 'svelte', 'vite', 'playwright-core']);
const CONTRACT = join('electron', 'ipc', 'contract');

/** The broken rules of one file: "<file>: imports "<specifier>" — <rule>". */
export function violations(file: string, source: string): string[] {
  const out: string[] = [];
  const inDir = (dir: string) => file === dir || file.startsWith(`${dir}/`);
  const say = (spec: string, rule: string) => out.push(`${file}: imports "${spec}" — ${rule}`);
  for (const { specifier, typeOnly } of importsOf(source, file)) {
    const target = isRelative(specifier) ? relative(root, resolve(root, dirname(file), specifier)).split(sep).join('/') : undefined;
    const pkg = target === undefined ? packageOf(specifier) : undefined;

    if (pkg === 'electron' && !file.endsWith('.electron.ts') && !inDir('test')) {
      say(specifier, 'only *.electron.ts files may import electron; services, IPC and the engine run in plain Node.');
    }
    if (inDir('native-models')) {
      if (pkg !== undefined && (ENGINE_FORBIDDEN_PACKAGES.has(pkg) || pkg.startsWith('@sveltejs/') || pkg.startsWith('svelte/'))) {
        say(specifier, 'native-models/ must not import electron, SQLite, Svelte or Vite.');
      }
      if (target !== undefined && !target.startsWith('native-models/')) say(specifier, 'native-models/ must not import from outside native-models/.');
    }
    if (inDir('renderer') && file !== 'renderer/vite.config.ts') {
      if (pkg !== undefined && isBuiltin(specifier)) say(specifier, 'renderer/ must not import Node built-ins; it talks to nothing but window.offsite.');
      else if (pkg !== undefined && RENDERER_FORBIDDEN_PACKAGES.has(pkg)) say(specifier, 'renderer/ must not import main-process or native packages.');
      if (target !== undefined && !target.startsWith('renderer/')) {
        const isContract = target === CONTRACT.split(sep).join('/') || target === `${CONTRACT.split(sep).join('/')}.ts`;
        if (!isContract) say(specifier, 'renderer/ may import nothing outside renderer/ except types from electron/ipc/contract.ts.');
        else if (!typeOnly) say(specifier, 'renderer/ may import electron/ipc/contract.ts for types only (use "import type").');
      }
    }
  }
  return out;
}

function walk(dir: string): string[] {
  if (!statSafe(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    if (name === 'node_modules' || name.startsWith('.')) return [];
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : /\.(ts|mts|cts|js|mjs|svelte)$/.test(name) ? [p] : [];
  });
}

function statSafe(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

describe('import rules checker', () => {
  it('finds static, multi-line, side-effect, dynamic and require imports, and tells type-only ones apart', () => {
    const src = [
      "import type { A } from './a';",
      "import { type B, type C } from './b';",
      "import { type D, E } from './d';",
      'import {',
      '  F,',
      '  G,',
      "} from './f';",
      "import './side.css';",
      "export { H } from './h';",
      "const x = await import('./lazy');",
      "const y = require('fs');",
      "// import { no } from './commented';",
      "const url = 'app://offsite'; import * as z from 'zod';",
    ].join('\n');
    expect(importsOf(src, 'x.ts')).toEqual([
      { specifier: './a', typeOnly: true },
      { specifier: './b', typeOnly: true },
      { specifier: './d', typeOnly: false },
      { specifier: './f', typeOnly: false },
      { specifier: './h', typeOnly: false },
      { specifier: 'zod', typeOnly: false },
      { specifier: './side.css', typeOnly: false },
      { specifier: './lazy', typeOnly: false },
      { specifier: 'fs', typeOnly: false },
    ]);
  });

  it('reports each broken rule with the file and the import', () => {
    expect(violations('native-models/x/y.ts', "import { app } from 'electron';\nimport Database from 'better-sqlite3';")).toEqual([
      'native-models/x/y.ts: imports "electron" — only *.electron.ts files may import electron; services, IPC and the engine run in plain Node.',
      'native-models/x/y.ts: imports "electron" — native-models/ must not import electron, SQLite, Svelte or Vite.',
      'native-models/x/y.ts: imports "better-sqlite3" — native-models/ must not import electron, SQLite, Svelte or Vite.',
    ]);
    expect(violations('native-models/x/y.ts', "import { mount } from 'svelte';")).toHaveLength(1);
    expect(violations('native-models/x/y.ts', "import { s } from '../../electron/services/settings';")).toHaveLength(1);
    expect(violations('electron/services/z.ts', "import { app } from 'electron';")).toHaveLength(1);
    expect(violations('electron/main.electron.ts', "import { app } from 'electron';")).toEqual([]);
    expect(violations('renderer/src/a.ts', "import { readFileSync } from 'node:fs';")).toHaveLength(1);
    expect(violations('renderer/src/a.ts', "import { join } from 'path';")).toHaveLength(1);
    expect(violations('renderer/src/a.svelte', "<script lang=\"ts\">\n  import * as ort from 'onnxruntime-node';\n</script>")).toHaveLength(1);
    expect(violations('renderer/src/lib/a.ts', "import { settingsSchema } from '../../../electron/ipc/contract';")).toEqual([
      'renderer/src/lib/a.ts: imports "../../../electron/ipc/contract" — renderer/ may import electron/ipc/contract.ts for types only (use "import type").',
    ]);
    expect(violations('renderer/src/lib/a.ts', "import type { Settings } from '../../../electron/ipc/handlers';")).toHaveLength(1);
    expect(violations('renderer/src/lib/a.ts', "import type { Settings } from '../../../electron/ipc/contract';")).toEqual([]);
    expect(violations('renderer/src/lib/a.ts', "import { mount } from 'svelte';\nimport { x } from './b';")).toEqual([]);
  });
});

describe('import rules over the source tree', () => {
  const files = ['electron', 'native-models', 'renderer'].flatMap((d) => walk(join(root, d))).map((f) => relative(root, f).split(sep).join('/'));

  it('finds the source files', () => {
    expect(files).toContain('electron/main.electron.ts');
    expect(files).toContain('renderer/src/App.svelte');
    expect(files.some((f) => f.startsWith('native-models/'))).toBe(true);
  });

  it('every file keeps to its folder’s import rules', () => {
    const broken = files.flatMap((f) => violations(f, readFileSync(join(root, f), 'utf8')));
    expect(broken, broken.join('\n')).toEqual([]);
  });
});
