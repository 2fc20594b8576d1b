#!/usr/bin/env node
// `npm run pretrain-demo`: runs native-models/demo/pretrain-main.ts through tsx (see that file).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../native-models/demo/pretrain-main.ts');
process.exitCode = await main(process.argv.slice(2));
