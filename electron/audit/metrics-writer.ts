// Per-step training metrics, buffered: rows collect in memory and are written in one transaction
// every `maxRows` rows or `maxDelayMs` milliseconds, whichever comes first, so a training step
// never waits for a disk sync. A crash loses at most the unflushed rows of the live run (the
// run's audit events, written through append, are never buffered; run.finished records the
// SHA-256 of the stored metrics).
import type { Db } from './store';

export interface MetricRow {
  step: number;
  loss?: number | null;
  lr?: number | null;
  tokensPerSecond?: number | null;
  /** IST: the layer indices selected for this step. */
  selected?: number[] | null;
  /** IST: the importance score of each layer after this step. */
  importance?: number[] | null;
  /** Wall-clock time; default: when recorded. */
  ts?: string;
}

export interface MetricsWriterOptions {
  maxRows?: number;
  maxDelayMs?: number;
  /** Called when a timed flush fails (the rows stay queued and are retried). */
  onError?: (e: Error) => void;
}

const finiteOrNull = (x: number | null | undefined): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);

export class MetricsWriter {
  private buffer: Array<[string, MetricRow & { ts: string }]> = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly maxRows: number;
  private readonly maxDelayMs: number;
  private readonly onError: (e: Error) => void;
  private readonly insert;
  private readonly writeBatch;

  constructor(private readonly db: Db, options: MetricsWriterOptions = {}) {
    this.maxRows = options.maxRows ?? 256;
    this.maxDelayMs = options.maxDelayMs ?? 1000;
    this.onError = options.onError ?? ((e) => process.stderr.write(`Could not store training metrics yet (will retry): ${e.message}\n`));
    // A resumed run re-records the steps after its checkpoint: the newer row wins.
    this.insert = db.prepare(`
      INSERT INTO run_metrics (run_id, step, ts, loss, lr, tokens_per_second, selected, importance)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (run_id, step) DO UPDATE SET ts = excluded.ts, loss = excluded.loss, lr = excluded.lr,
        tokens_per_second = excluded.tokens_per_second, selected = excluded.selected, importance = excluded.importance`);
    this.writeBatch = db.transaction((rows: Array<[string, MetricRow & { ts: string }]>) => {
      for (const [runId, r] of rows) {
        this.insert.run(
          runId,
          r.step,
          r.ts,
          finiteOrNull(r.loss),
          finiteOrNull(r.lr),
          finiteOrNull(r.tokensPerSecond),
          r.selected ? JSON.stringify(r.selected) : null,
          r.importance ? JSON.stringify(r.importance.map((x) => (Number.isFinite(x) ? x : null))) : null,
        );
      }
    });
  }

  /** Queues rows; cheap enough to call every training step. */
  record(runId: string, rows: MetricRow[]): void {
    const now = new Date().toISOString();
    for (const r of rows) {
      if (!Number.isInteger(r.step) || r.step < 0) throw new RangeError(`Metric step must be a whole number ≥ 0, not ${r.step}.`);
      this.buffer.push([runId, { ...r, ts: r.ts ?? now }]);
    }
    if (this.buffer.length >= this.maxRows) this.flush();
    else if (!this.timer && this.buffer.length > 0) {
      this.timer = setTimeout(() => this.flushFromTimer(), this.maxDelayMs);
      this.timer.unref();
    }
  }

  private flushFromTimer(): void {
    this.timer = undefined;
    try {
      this.flush();
    } catch (e) {
      // A timer has no caller to throw to: keep the rows, report once, try again later.
      this.onError(e as Error);
      this.timer = setTimeout(() => this.flushFromTimer(), this.maxDelayMs);
      this.timer.unref();
    }
  }

  get pending(): number {
    return this.buffer.length;
  }

  /** Writes every queued row now, in one transaction. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.buffer.length === 0 || !this.db.open) return;
    const rows = this.buffer;
    this.buffer = [];
    // Metrics batches skip their own fsync (synchronous = NORMAL for this commit only): the next
    // audit event's FULL commit syncs the WAL, these frames included. A power cut can lose the last
    // metrics batch, never an acknowledged event; a kill -9 loses nothing committed.
    const relax = !this.db.inTransaction;
    const previous = relax ? (this.db.pragma('synchronous', { simple: true }) as number) : undefined;
    if (relax) this.db.pragma('synchronous = NORMAL');
    try {
      this.writeBatch.immediate(rows);
    } catch (e) {
      // Keep the rows for the next try (a busy database); the caller sees the error once.
      this.buffer = rows.concat(this.buffer);
      throw e;
    } finally {
      if (relax) this.db.pragma(`synchronous = ${previous}`);
    }
  }
}
