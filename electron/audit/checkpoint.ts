// Signed checkpoints: `{size, head_hash, time, key_id}` signed with Ed25519 over its canonical
// JSON. An auditor who keeps a checkpoint can later prove that the log still holds those `size`
// events unchanged (a truncated, rewritten or reordered log no longer matches `head_hash`).
import { z } from 'zod';
import { canonicalJson } from './canonical';
import { signBytes, type SigningKey } from '../services/keys';

export interface Checkpoint {
  /** Events covered: seq 1 … size. */
  size: number;
  /** Hash of event `size` (GENESIS_HASH for an empty log). */
  head_hash: string;
  /** Wall-clock time of signing, ISO 8601. */
  time: string;
  key_id: string;
}

export interface SignedCheckpoint {
  checkpoint: Checkpoint;
  /** Base64 Ed25519 signature over canonicalJson(checkpoint). */
  signature: string;
  /** The signer's SPKI PEM, for convenience; trust comes from the auditor's --trust keys. */
  public_key: string;
}

export const checkpointSchema = z
  .object({
    size: z.number().int().nonnegative(),
    head_hash: z.string().regex(/^[0-9a-f]{64}$/),
    time: z.string(),
    key_id: z.string().regex(/^[0-9a-f]{16}$/),
  })
  .strict();

export const signedCheckpointSchema = z
  .object({
    checkpoint: checkpointSchema,
    signature: z.string(),
    public_key: z.string(),
  })
  .strict();

export const CHECKPOINT_FORMAT = 'offsite-audit-checkpoint';

export function checkpointBytes(c: Checkpoint): string {
  return canonicalJson({ size: c.size, head_hash: c.head_hash, time: c.time, key_id: c.key_id });
}

export function signCheckpoint(size: number, headHash: string, key: SigningKey, time = new Date().toISOString()): SignedCheckpoint {
  const checkpoint: Checkpoint = { size, head_hash: headHash, time, key_id: key.keyId };
  return { checkpoint, signature: signBytes(key, checkpointBytes(checkpoint)), public_key: key.pem };
}

/** The file written beside every export (and accepted by `audit verify --checkpoint FILE`). */
export function checkpointFileText(cp: SignedCheckpoint): string {
  return `${JSON.stringify({ format: CHECKPOINT_FORMAT, version: 1, ...cp }, null, 2)}\n`;
}

export const checkpointFileSchema = signedCheckpointSchema.extend({
  format: z.literal(CHECKPOINT_FORMAT),
  version: z.literal(1),
});
