// The machine-readable audit export: every event exactly as stored (so an auditor recomputes the
// same hashes), the chain head, and the signed checkpoints. Parsed with a strict schema because an
// export arrives from elsewhere and is hostile until verified.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { EventRow } from './chain';
import { signedCheckpointSchema, type SignedCheckpoint } from './checkpoint';
import { ServiceError } from '../services/service-error';

export const EXPORT_FORMAT = 'offsite-audit-export';

export interface AuditExport {
  format: typeof EXPORT_FORMAT;
  version: 1;
  exported_at: string;
  app_version: string;
  machine_id: string;
  events: EventRow[];
  chain: { size: number; head_hash: string; genesis_hash: string };
  /** Every checkpoint in the database; the last one was signed for this export. */
  checkpoints: SignedCheckpoint[];
  /** The verifier's result at export time (an auditor re-runs `offsite audit verify --export`). */
  verdict: { ok: boolean; first_bad_seq: number | null; text: string };
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

const eventRowSchema = z
  .object({
    seq: z.number().int().positive(),
    ts: z.string(),
    actor: z.string(),
    action: z.string(),
    reason: z.string().nullable(),
    payload: z.string(),
    prev_hash: z.string(),
    hash: z.string(),
  })
  .strict();

export const auditExportSchema = z
  .object({
    format: z.literal(EXPORT_FORMAT),
    version: z.literal(1),
    exported_at: z.string(),
    app_version: z.string(),
    machine_id: z.string(),
    events: z.array(eventRowSchema),
    chain: z.object({ size: z.number().int().nonnegative(), head_hash: hex64, genesis_hash: hex64 }).strict(),
    checkpoints: z.array(signedCheckpointSchema),
    verdict: z.object({ ok: z.boolean(), first_bad_seq: z.number().int().nullable(), text: z.string() }).strict(),
  })
  .strict();

export function readAuditExport(path: string): AuditExport {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw e;
    throw new ServiceError(`${path} is not an audit export (it is not valid JSON).`);
  }
  const result = auditExportSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ServiceError(`${path} is not an audit export written by Offsite Studio (${issue.path.join('.') || 'top level'}: ${issue.message}).`);
  }
  return result.data as AuditExport;
}

/** FILE.json → FILE.html and FILE.checkpoint.json (the extension, if any, is replaced). */
export function exportCompanions(out: string): { html: string; checkpoint: string } {
  const base = out.replace(/\.json$/i, '');
  return { html: `${base}.html`, checkpoint: `${base}.checkpoint.json` };
}
