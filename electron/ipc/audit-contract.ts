// The audit and keys part of the IPC contract: request schemas and response types of the audit.*
// and keys.* channels. contract.ts spreads these into its one channel map, so the gateway, the
// preload and the renderer see them like any other channel. Like contract.ts, this file imports
// nothing but zod and schemas.ts (the renderer imports it type-only, the e2e bridge bundles it).
import { z } from 'zod';
import { noRequest, fullPath } from './schemas';

const KEY_ID = /^[0-9a-f]{16}$/;
const MAX_LABEL = 120;
const label = z
  .string({ error: 'The key label must be text.' })
  .trim()
  .max(MAX_LABEL, { error: `The key label must be at most ${MAX_LABEL} characters.` })
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { error: 'The key label must not contain control characters.' });

// ── Requests ─────────────────────────────────────────────────────────────────────────────────

export const AUDIT_PAGE_MAX = 500;

export const auditLogRequestSchema = z
  .object({
    /** Only events of this run (payload.run_id). */
    runId: z.string({ error: 'The run filter must be text.' }).max(200, { error: 'The run filter is too long.' }).optional(),
    /** Only events of this actor, as stored (the actor's canonical JSON, from the source's facets). */
    actor: z.string({ error: 'The actor filter must be text.' }).max(2000, { error: 'The actor filter is too long.' }).optional(),
    /** Exact action, or a prefix ending in "." or ".*" (e.g. "run.*"). */
    action: z.string({ error: 'The action filter must be text.' }).max(200, { error: 'The action filter is too long.' }).optional(),
    /** Case-insensitive text anywhere in the event (action, reason, actor, payload, hash). */
    text: z.string({ error: 'The search text must be text.' }).max(200, { error: 'The search text must be at most 200 characters.' }).optional(),
    /** Events to skip, newest first. */
    offset: z.number({ error: 'The page offset must be a whole number.' }).int({ error: 'The page offset must be a whole number.' }).min(0, { error: 'The page offset must not be negative.' }).optional(),
    limit: z
      .number({ error: `The page size must be a whole number from 1 to ${AUDIT_PAGE_MAX}.` })
      .int({ error: `The page size must be a whole number from 1 to ${AUDIT_PAGE_MAX}.` })
      .min(1, { error: `The page size must be a whole number from 1 to ${AUDIT_PAGE_MAX}.` })
      .max(AUDIT_PAGE_MAX, { error: `The page size must be a whole number from 1 to ${AUDIT_PAGE_MAX}.` })
      .optional(),
  })
  .strict();
export type AuditLogRequest = z.output<typeof auditLogRequestSchema>;

const SEQ_SENTENCE = 'The event number (seq) must be a whole number of 1 or more.';

export const auditRequests = {
  /** Where the Audit screen reads from (this data folder, or a record opened in auditor mode), with filter choices. */
  'audit.source': noRequest,
  /** One page of events, newest first, with the number that match the filters. */
  'audit.log': auditLogRequestSchema,
  /** One event with everything recorded about it. */
  'audit.event': z.object({ seq: z.number({ error: SEQ_SENTENCE }).int({ error: SEQ_SENTENCE }).min(1, { error: SEQ_SENTENCE }) }).strict(),
  /** Checks the hash chain and the signed checkpoints of the source being shown. */
  'audit.verify': z
    .object({
      /** Public key files (KEYFILE.pub) to trust for this check only, besides Settings → trusted keys. */
      trust: z.array(fullPath('public key file', '/media/usb/publisher.key.pub')).max(20, { error: 'Give at most 20 public key files.' }).optional(),
    })
    .strict(),
  /** Writes the JSON export, the printable HTML report and the signed checkpoint file. */
  'audit.export': z.object({ out: fullPath('export file', '/media/usb/audit-export.json') }).strict(),
  /** Auditor mode: opens an audit database or an audit export read-only. */
  'audit.open': z.object({ path: fullPath('audit file', '/media/usb/audit-export.json') }).strict(),
  /** Leaves auditor mode: the Audit screen shows this data folder's log again. */
  'audit.close': noRequest,
  'keys.list': noRequest,
  /** Adds a publisher's public key: a KEYFILE.pub path, or the key pasted as PEM or base64. */
  'keys.trust': z
    .object({
      path: fullPath('public key file', '/media/usb/publisher.key.pub').optional(),
      publicKey: z.string({ error: 'The public key must be text.' }).max(10_000, { error: 'The public key text is too long to be an Ed25519 public key.' }).optional(),
      label: label.optional(),
    })
    .strict()
    .refine((r) => (r.path === undefined) !== (r.publicKey === undefined || r.publicKey.trim() === ''), {
      error: 'Give either the public key file or the pasted key text, not both and not neither.',
    }),
  'keys.untrust': z.object({ keyId: z.string({ error: 'The key id must be text.' }).regex(KEY_ID, { error: 'A key id is 16 hexadecimal digits, as shown in the trusted keys list.' }) }).strict(),
  /** A new Ed25519 key pair: OUT (private, mode 0600) and OUT.pub; optionally trusted on this workstation. */
  'keys.generate': z
    .object({
      out: fullPath('private key file', '/home/me/keys/signing.key'),
      trust: z.boolean({ error: 'Whether to trust the new key must be true or false.' }).optional(),
      label: label.optional(),
    })
    .strict(),
} as const;

// ── Responses ────────────────────────────────────────────────────────────────────────────────

export interface AuditActorInfo {
  os: string;
  app: string | null;
}

export interface AuditDigestInfo {
  name: string;
  sha256: string;
  size: number | null;
}

/** One line of the timeline. */
export interface AuditEventSummary {
  seq: number;
  ts: string;
  action: string;
  actor: AuditActorInfo;
  reason: string | null;
  runId: string | null;
  /** A short description of what the event records, e.g. "threads: auto → 2". */
  summary: string;
  hash: string;
}

export interface AuditEventDetail extends AuditEventSummary {
  prevHash: string;
  /** The payload exactly as stored and hashed (canonical JSON). */
  payload: string;
  /** The actor exactly as stored. */
  actorJson: string;
  appVersion: string | null;
  machineId: string | null;
  executionProvider: string | null;
  inputs: AuditDigestInfo[];
  outputs: AuditDigestInfo[];
  /** The event's details, pretty-printed JSON. */
  details: string;
  corrects: number | null;
  /** The stored hash equals the hash recomputed from the row. */
  hashOk: boolean;
  /** prev_hash equals the hash of the event before (seq − 1); false when that event is missing. */
  linkOk: boolean;
}

export interface AuditFacets {
  actions: string[];
  actors: Array<{ value: string; label: string; events: number }>;
  runs: Array<{ id: string; kind: string | null; startedAt: string }>;
}

export interface AuditSourceInfo {
  /** 'local': this data folder's own log; 'auditor': a record opened read-only. */
  mode: 'local' | 'auditor';
  kind: 'database' | 'export';
  /** The audit database, or the file the auditor opened. */
  path: string;
  dataFolder: string;
  events: number;
  lastSeq: number | null;
  /** For an export: when it was written. */
  exportedAt: string | null;
  facets: AuditFacets;
}

export interface AuditPage {
  events: AuditEventSummary[];
  /** Events matching the filters. */
  total: number;
  offset: number;
  limit: number;
  mode: AuditSourceInfo['mode'];
}

export interface AuditCheckpointInfo {
  source: string;
  size: number;
  keyId: string;
  time: string;
  trusted: boolean;
  ok: boolean;
}

export interface AuditVerdict {
  ok: boolean;
  /** Events read. */
  size: number;
  headHash: string;
  firstBadSeq: number | null;
  /** The verifier's one-line verdict (the same line `offsite audit verify` prints). */
  verdict: string;
  /** The first problems, lowest seq first. */
  problems: Array<{ seq: number; message: string }>;
  problemCount: number;
  checkpoints: AuditCheckpointInfo[];
  /** The checkpoint covering the most events, or null when none is signed. */
  lastCheckpoint: AuditCheckpointInfo | null;
  /** What to do about a broken verdict; empty when intact. */
  advice: string;
  mode: AuditSourceInfo['mode'];
  kind: AuditSourceInfo['kind'];
  path: string;
  checkedAt: string;
}

export interface AuditExportInfo {
  json: string;
  html: string;
  checkpointFile: string;
  /** Events covered by the signed checkpoint. */
  size: number;
  headHash: string;
  keyId: string;
  ok: boolean;
  verdict: string;
  /** The seq of the audit.exported event. */
  seq: number;
}

export interface TrustedKeyInfo {
  keyId: string;
  label: string;
  /** SPKI PEM. */
  publicKey: string;
  addedAt: string;
  /** The key.trusted event. */
  addedSeq: number;
}

export interface GeneratedKeyInfo {
  keyId: string;
  privateKey: string;
  publicKey: string;
  /** The key.generated event. */
  seq: number;
  /** The trusted-key entry, when the new key was trusted as well. */
  trusted: TrustedKeyInfo | null;
}

export interface AuditResponses {
  'audit.source': AuditSourceInfo;
  'audit.log': AuditPage;
  'audit.event': AuditEventDetail;
  'audit.verify': AuditVerdict;
  'audit.export': AuditExportInfo;
  'audit.open': AuditSourceInfo;
  'audit.close': AuditSourceInfo;
  'keys.list': TrustedKeyInfo[];
  'keys.trust': { key: TrustedKeyInfo; added: boolean };
  'keys.untrust': { keyId: string; seq: number };
  'keys.generate': GeneratedKeyInfo;
}

/** Which audit/keys channels change the data folder (refused in auditor mode; see contract.ts). */
export const auditChannelFlags = {
  'audit.source': { mutates: false },
  'audit.log': { mutates: false },
  'audit.event': { mutates: false },
  'audit.verify': { mutates: false },
  // Writes files, signs a checkpoint and appends audit.exported.
  'audit.export': { mutates: true },
  // Switching what is shown read-only changes nothing on disk but a staging copy.
  'audit.open': { mutates: false },
  'audit.close': { mutates: false },
  'keys.list': { mutates: false },
  'keys.trust': { mutates: true },
  'keys.untrust': { mutates: true },
  'keys.generate': { mutates: true },
} as const;
