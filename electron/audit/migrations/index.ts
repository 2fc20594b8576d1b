// Every schema version in order. Add a version by writing NNNN_name.ts beside this file, listing
// it here, and adding a test that migrates a database of the previous version with rows in place.
import { migration0001 } from './0001_initial';
import { migration0002 } from './0002_run_metrics';
import type { Migration } from './types';

export type { Migration } from './types';
export const migrations: readonly Migration[] = [migration0001, migration0002];
export const LATEST_VERSION = migrations[migrations.length - 1]!.version;
