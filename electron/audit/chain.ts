// The hash chain over audit events: hash = SHA-256(prev_hash ‖ canonical JSON of the row without
// `hash`). The first event links to GENESIS_HASH. Used by the writer and by the verifier, so both
// compute the same bytes.
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical';

export const GENESIS_HASH = '0'.repeat(64);

/** One row of `audit_events`, exactly as stored (actor and payload are canonical JSON text). */
export interface EventRow {
  seq: number;
  ts: string;
  actor: string;
  action: string;
  reason: string | null;
  payload: string;
  prev_hash: string;
  hash: string;
}

export function eventHash(row: Omit<EventRow, 'hash'>): string {
  const body = canonicalJson({
    seq: row.seq,
    ts: row.ts,
    actor: row.actor,
    action: row.action,
    reason: row.reason,
    payload: row.payload,
    prev_hash: row.prev_hash,
  });
  return createHash('sha256').update(row.prev_hash, 'utf8').update(body, 'utf8').digest('hex');
}
