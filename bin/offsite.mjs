#!/usr/bin/env node
// `offsite` — runs the TypeScript CLI through tsx (the packaged app ships a bundled build instead).
import { register } from 'tsx/esm/api';

register();
const { runFromProcess } = await import('../electron/cli.ts');
await runFromProcess();
