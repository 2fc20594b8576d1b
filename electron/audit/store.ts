// Opening the audit database: one writer connection per process (WAL, synchronous = FULL,
// integrity check, migrations) and any number of read-only connections for readers, which under
// WAL never block the writer.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LATEST_VERSION, migrations } from './migrations/index';
import { ServiceError } from '../services/service-error';

export const AUDIT_FILE = 'audit.sqlite';

export function auditPath(home: string): string {
  return join(home, AUDIT_FILE);
}

export type Db = Database.Database;

/** 'ok', or the problems SQLite lists, joined into one line. */
export function integrityCheck(db: Db): string {
  const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
  return rows.map((r) => r.integrity_check).join('; ');
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Applies the migrations after the database's version, up to `target`, each in its own transaction. */
export function migrate(db: Db, target = LATEST_VERSION): number {
  const current = schemaVersion(db);
  if (current > LATEST_VERSION) {
    throw new ServiceError(
      `The audit database ${db.name} has schema version ${current}, newer than this Offsite Studio understands (${LATEST_VERSION}); open it with a newer version.`,
    );
  }
  for (const m of migrations) {
    if (m.version <= current || m.version > target) continue;
    db.transaction(() => {
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return schemaVersion(db);
}

export interface OpenWriterOptions {
  /** Stop at this schema version (tests of migrations); default: the latest. */
  targetVersion?: number;
}

/** The writer connection: creates the file when missing, checks it, migrates it. */
export function openWriter(path: string, options: OpenWriterOptions = {}): Db {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma('busy_timeout = 10000');
    db.pragma('journal_mode = WAL');
    // FULL: a commit returns only after the WAL is on disk, so an acknowledged event survives a
    // kill -9 or a power cut.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    const integrity = integrityCheck(db);
    if (integrity !== 'ok') {
      throw new ServiceError(
        `The audit database ${path} is damaged (SQLite integrity check: ${integrity}); keep a copy for the auditor and restore the latest backup.`,
      );
    }
    migrate(db, options.targetVersion);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** A read-only connection for readers (UI, `audit log`, the verifier). */
export function openReader(path: string): Db {
  if (!existsSync(path)) throw new ServiceError(`There is no audit database at ${path}.`);
  const db = new Database(path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  return db;
}
