// Where the committed demo assets live, resolved from this file (never from the working directory).
// Run from the sources they sit beside it; the app's bundled main process and workers
// (dist/electron/, scripts/build-main.mjs) find them where a packaged build ships them, under
// native-models/demo/ at the app's root.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

function demoDir(name: string): string {
  const beside = fileURLToPath(new URL(`./${name}`, import.meta.url));
  return existsSync(beside) ? beside : fileURLToPath(new URL(`../../native-models/demo/${name}`, import.meta.url));
}

/** The demo base model: a Hugging Face folder (config.json, model.safetensors, tokenizer files, MODEL_CARD.md). */
export const DEMO_BASE_DIR = demoDir('base');
/** The generated task files and their manifest tasks.json. */
export const DEMO_TASKS_DIR = demoDir('tasks');
/** The repository root (for paths printed relative to it); from dist/electron/ the app's root too. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
