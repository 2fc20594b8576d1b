// Where the committed demo assets live, resolved from this file (never from the working directory).
import { fileURLToPath } from 'node:url';

/** The demo base model: a Hugging Face folder (config.json, model.safetensors, tokenizer files, MODEL_CARD.md). */
export const DEMO_BASE_DIR = fileURLToPath(new URL('./base', import.meta.url));
/** The generated task files and their manifest tasks.json. */
export const DEMO_TASKS_DIR = fileURLToPath(new URL('./tasks', import.meta.url));
/** The repository root (for paths printed relative to it). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
