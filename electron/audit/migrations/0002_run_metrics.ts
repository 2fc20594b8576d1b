// Schema 2: per-step training metrics (written in batches by the metrics writer) and the indexes
// the Audit screen and `offsite audit log --run ID` filter on.
import type { Migration } from './types';

export const migration0002: Migration = {
  version: 2,
  name: 'run metrics and log indexes',
  up(db) {
    db.exec(`
      CREATE TABLE run_metrics (
        run_id            TEXT NOT NULL,
        step              INTEGER NOT NULL CHECK (step >= 0),
        ts                TEXT NOT NULL,
        loss              REAL,
        lr                REAL,
        tokens_per_second REAL,
        selected          TEXT CHECK (selected IS NULL OR json_valid(selected)),
        importance        TEXT CHECK (importance IS NULL OR json_valid(importance)),
        PRIMARY KEY (run_id, step)
      ) STRICT, WITHOUT ROWID;

      -- Events name their run in payload.run_id; an expression index makes the run filter cheap
      -- on a log with years of events, including the events written before this version.
      CREATE INDEX audit_events_run ON audit_events (json_extract(payload, '$.run_id'))
        WHERE json_extract(payload, '$.run_id') IS NOT NULL;
      CREATE INDEX audit_events_action ON audit_events (action);
      CREATE INDEX runs_started ON runs (started_at);
      CREATE INDEX evaluations_run ON evaluations (run_id);
    `);
  },
};
