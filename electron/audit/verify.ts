// The verifier: walks the event chain, then checks every signed checkpoint against the chain and
// the trusted keys. Works on rows from a database or from an export (same EventRow shape). It
// collects problems instead of stopping at the first, and names the first bad seq.
import { eventHash, GENESIS_HASH, type EventRow } from './chain';
import { checkpointBytes, type SignedCheckpoint } from './checkpoint';
import { parsePublicKey, verifyBytes, type PublicKeyInfo } from '../services/keys';

export interface CheckpointSource extends SignedCheckpoint {
  /** Where it came from, for messages: "the database", "the export", or a file path. */
  source: string;
}

export interface Problem {
  /** The first event seq the problem concerns. */
  seq: number;
  message: string;
}

export interface CheckpointResult {
  source: string;
  size: number;
  keyId: string;
  time: string;
  trusted: boolean;
  ok: boolean;
}

export interface VerifyReport {
  ok: boolean;
  /** Events read (the last seq seen, for an intact log). */
  size: number;
  headHash: string;
  checkpoints: CheckpointResult[];
  problems: Problem[];
  /** The lowest seq with a problem, or null when intact. */
  firstBadSeq: number | null;
  /** One line: the verdict a person reads. */
  verdict: string;
}

const MAX_PROBLEMS = 1000;

export function verifyLog(
  events: Iterable<EventRow>,
  checkpoints: CheckpointSource[],
  trusted: PublicKeyInfo[],
): VerifyReport {
  const problems: Problem[] = [];
  const add = (seq: number, message: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ seq, message });
  };
  // Only the hashes checkpoints point at are kept, so a long log is verified in constant memory.
  const wanted = new Set(checkpoints.map((c) => c.checkpoint.size));
  const hashAt = new Map<number, string>([[0, GENESIS_HASH]]);

  let expected = 1;
  let prev = GENESIS_HASH;
  let size = 0;
  for (const row of events) {
    if (row.seq !== expected) {
      if (row.seq > expected) {
        add(expected, row.seq === expected + 1 ? `event seq ${expected} is missing (deleted from the log).` : `events seq ${expected}–${row.seq - 1} are missing (deleted from the log).`);
      } else add(row.seq, `event seq ${row.seq} appears out of order (after seq ${expected - 1}).`);
    } else if (row.prev_hash !== prev) {
      add(row.seq, `event seq ${row.seq} does not link to the event before it (its prev_hash is not that event's hash).`);
    }
    let recomputed: string;
    try {
      recomputed = eventHash(row);
    } catch (e) {
      recomputed = '';
      add(row.seq, `event seq ${row.seq} cannot be hashed: ${(e as Error).message}`);
    }
    if (recomputed && recomputed !== row.hash) {
      add(row.seq, `event seq ${row.seq} does not match its hash (it was changed after it was written).`);
    }
    if (wanted.has(row.seq)) hashAt.set(row.seq, row.hash);
    prev = row.hash;
    expected = Math.max(expected, row.seq) + 1;
    size = Math.max(size, row.seq);
  }

  const trustedById = new Map(trusted.map((k) => [k.keyId, k]));
  const results: CheckpointResult[] = [];
  for (const cp of checkpoints) {
    const c = cp.checkpoint;
    const at = Math.max(1, c.size);
    const where = `the checkpoint of ${c.size} events signed ${c.time} (${cp.source})`;
    let ok = true;
    const fail = (seq: number, message: string) => {
      ok = false;
      add(seq, message);
    };
    let embedded: PublicKeyInfo | undefined;
    try {
      embedded = parsePublicKey(cp.public_key, `The public key in ${where}`);
    } catch {
      embedded = undefined;
    }
    const trustedKey = trustedById.get(c.key_id);
    if (embedded && embedded.keyId !== c.key_id) {
      fail(at, `${where} names key ${c.key_id} but carries key ${embedded.keyId} (forged checkpoint).`);
    }
    const verifier = trustedKey ?? embedded;
    if (!verifier || !verifyBytes(verifier, checkpointBytes(c), cp.signature)) {
      fail(at, `${where}: the signature does not verify (forged or altered checkpoint, seq ${at}).`);
    } else if (!trustedKey) {
      fail(at, `${where} is signed by key ${c.key_id}, which is not trusted; pass the signer's public key with --trust KEYFILE.pub.`);
    }
    if (c.size > size) {
      fail(size + 1, `the log ends at seq ${size} but ${where} covers ${c.size} events: seq ${size + 1}–${c.size} were removed (truncated log).`);
    } else if (hashAt.get(c.size) !== c.head_hash) {
      fail(c.size, `event seq ${c.size} does not match the head hash of ${where} (the log was rewritten).`);
    }
    results.push({ source: cp.source, size: c.size, keyId: c.key_id, time: c.time, trusted: Boolean(trustedKey), ok });
  }

  problems.sort((a, b) => a.seq - b.seq);
  const firstBadSeq = problems.length > 0 ? problems[0]!.seq : null;
  const headHash = size === 0 ? GENESIS_HASH : prev;
  let verdict: string;
  if (problems.length === 0) {
    const keys = [...new Set(results.map((r) => r.keyId))];
    const signed =
      results.length === 0
        ? 'no signed checkpoints'
        : `${results.length} signed checkpoint${results.length === 1 ? '' : 's'} verified (key${keys.length === 1 ? '' : 's'} ${keys.join(', ')})`;
    verdict = `Audit log intact: ${size} event${size === 1 ? '' : 's'}, head ${headHash.slice(0, 16)}…, ${signed}.`;
  } else {
    const more = problems.length > 1 ? ` (${problems.length - 1} more problem${problems.length === 2 ? '' : 's'})` : '';
    verdict = `Audit log verification failed at seq ${firstBadSeq}: ${problems[0]!.message}${more}`;
  }
  return { ok: problems.length === 0, size, headHash, checkpoints: results, problems, firstBadSeq, verdict };
}
