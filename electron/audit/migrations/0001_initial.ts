// Schema 1: the append-only event chain, signed checkpoints, and the domain tables the screens
// list (emulators, datasets, runs, evaluations, trusted keys, settings changes). The domain tables
// are indexes for the UI; the event chain is the record.
import type { Migration } from './types';

export const migration0001: Migration = {
  version: 1,
  name: 'initial',
  up(db) {
    db.exec(`
      CREATE TABLE audit_events (
        seq       INTEGER PRIMARY KEY,
        ts        TEXT NOT NULL,
        actor     TEXT NOT NULL CHECK (json_valid(actor)),
        action    TEXT NOT NULL,
        reason    TEXT,
        payload   TEXT NOT NULL CHECK (json_valid(payload)),
        prev_hash TEXT NOT NULL CHECK (length(prev_hash) = 64),
        hash      TEXT NOT NULL UNIQUE CHECK (length(hash) = 64)
      ) STRICT;

      -- A guardrail only: the hash chain and signed checkpoints are what detect tampering.
      CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: add a correcting event instead'); END;
      CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: add a correcting event instead'); END;

      CREATE TABLE audit_checkpoints (
        id         INTEGER PRIMARY KEY,
        size       INTEGER NOT NULL CHECK (size >= 0),
        head_hash  TEXT NOT NULL CHECK (length(head_hash) = 64),
        time       TEXT NOT NULL,
        key_id     TEXT NOT NULL,
        public_key TEXT NOT NULL,
        signature  TEXT NOT NULL
      ) STRICT;
      CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
      CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;

      CREATE TABLE keys (
        key_id     TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,
        label      TEXT NOT NULL,
        added_at   TEXT NOT NULL,
        added_seq  INTEGER NOT NULL REFERENCES audit_events(seq)
      ) STRICT;

      CREATE TABLE emulators (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        path          TEXT NOT NULL,
        sha256        TEXT NOT NULL,
        signer_key_id TEXT,
        details       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
        imported_at   TEXT NOT NULL,
        seq           INTEGER NOT NULL REFERENCES audit_events(seq)
      ) STRICT;

      CREATE TABLE datasets (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        path        TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        rows        INTEGER NOT NULL CHECK (rows >= 0),
        format      TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        seq         INTEGER NOT NULL REFERENCES audit_events(seq)
      ) STRICT;

      CREATE TABLE runs (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'cancelled')),
        config      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
        emulator_id TEXT,
        dataset_id  TEXT,
        output      TEXT,
        result      TEXT CHECK (result IS NULL OR json_valid(result)),
        error       TEXT,
        started_at  TEXT NOT NULL,
        finished_at TEXT
      ) STRICT;

      CREATE TABLE evaluations (
        id         TEXT PRIMARY KEY,
        run_id     TEXT,
        metric     TEXT NOT NULL,
        value      REAL,
        result     TEXT NOT NULL CHECK (json_valid(result)),
        created_at TEXT NOT NULL,
        seq        INTEGER NOT NULL REFERENCES audit_events(seq)
      ) STRICT;

      CREATE TABLE settings_changes (
        id        INTEGER PRIMARY KEY,
        ts        TEXT NOT NULL,
        key       TEXT NOT NULL,
        old_value TEXT CHECK (old_value IS NULL OR json_valid(old_value)),
        new_value TEXT CHECK (new_value IS NULL OR json_valid(new_value)),
        seq       INTEGER NOT NULL REFERENCES audit_events(seq)
      ) STRICT;
    `);
  },
};
