// `offsite audit log | verify | export` — reading, checking and handing over the audit trail.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  openAudit,
  readAuditLog,
  readCheckpointFile,
  verifyAuditDatabase,
  verifyAuditExport,
  type AuditEvent,
  type VerifyReport,
} from '../services/audit';
import { readPublicKey, readSigningKey } from '../services/keys';
import { ServiceError } from '../services/service-error';
import { auditPath } from '../audit/store';
import { list } from './flags';
import { EXIT, UsageError, type CliIO, type Command } from './types';

/** Service errors are sentences about the user's input: exit 2, like any bad input. */
async function asUsage<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ServiceError) throw new UsageError(e.message);
    throw e;
  }
}


function describeEvent(e: AuditEvent): string {
  const who = e.actor.app ? `${e.actor.app} (${e.actor.os})` : e.actor.os;
  const bits = [`#${e.seq}`, e.ts, who, e.action];
  if (e.payload.run_id) bits.push(`run=${e.payload.run_id}`);
  if (e.payload.corrects) bits.push(`corrects #${e.payload.corrects}`);
  const ins = Object.keys(e.payload.inputs ?? {});
  const outs = Object.keys(e.payload.outputs ?? {});
  if (ins.length) bits.push(`in: ${ins.join(',')}`);
  if (outs.length) bits.push(`out: ${outs.join(',')}`);
  if (e.reason) bits.push(`reason: ${e.reason}`);
  return bits.join('  ');
}

export const auditLogCommand: Command = {
  name: 'audit log',
  summary: 'list audit events (who did what, when, with which inputs)',
  usage: '  offsite audit log [--run ID] [--action NAME|PREFIX.*] [--limit N] [--db FILE] [--json]',
  options: { run: { type: 'string' }, action: { type: 'string' }, limit: { type: 'string' }, db: { type: 'string' } },
  async run(cmd, io) {
    const limitFlag = cmd.values.limit as string | undefined;
    const limit = limitFlag === undefined ? undefined : Number(limitFlag);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new UsageError(`--limit must be a positive whole number, not "${limitFlag}".`);
    const dbPath = cmd.values.db ? resolve(String(cmd.values.db)) : auditPath(cmd.home);
    if (!existsSync(dbPath)) {
      if (cmd.values.db) throw new UsageError(`There is no audit database at ${dbPath}.`);
      if (cmd.json) io.out(JSON.stringify({ database: dbPath, events: [] }));
      else io.out(`No audit events yet (no audit database at ${dbPath}).`);
      return EXIT.ok;
    }
    // The newest N when limited, printed oldest first.
    const events = await asUsage(() =>
      readAuditLog(dbPath, { runId: cmd.values.run as string | undefined, action: cmd.values.action as string | undefined, limit, newestFirst: limit !== undefined }),
    );
    if (limit !== undefined) events.reverse();
    if (cmd.json) io.out(JSON.stringify({ database: dbPath, events }));
    else io.out(events.length ? events.map(describeEvent).join('\n') : 'No matching audit events.');
    return EXIT.ok;
  },
};

function printReport(report: VerifyReport, json: boolean, io: CliIO, extra: Record<string, unknown>): number {
  if (json) io.out(JSON.stringify({ ...extra, ...report }));
  if (report.ok) {
    if (!json) io.out(report.verdict);
    return EXIT.ok;
  }
  const lines = [report.verdict, ...report.problems.slice(1, 10).map((p) => `  seq ${p.seq}: ${p.message}`)];
  if (report.problems.length > 10) lines.push(`  … and ${report.problems.length - 10} more.`);
  io.err(lines.join('\n'));
  return EXIT.verify;
}

export const auditVerifyCommand: Command = {
  name: 'audit verify',
  summary: 'check the audit hash chain and signed checkpoints (exit 3 when broken)',
  usage: [
    '  offsite audit verify [--checkpoint FILE]... [--trust PUBKEY]... [--db FILE | --export FILE] [--json]',
    '  Without --db or --export, checks this data folder\'s log and also trusts the keys it trusted itself.',
  ].join('\n'),
  options: {
    checkpoint: { type: 'string', multiple: true },
    trust: { type: 'string', multiple: true },
    db: { type: 'string' },
    export: { type: 'string' },
  },
  async run(cmd, io) {
    if (cmd.values.db && cmd.values.export) throw new UsageError('Give either --db FILE or --export FILE, not both.');
    return asUsage(() => {
      const trust = list(cmd.values.trust).map((p) => readPublicKey(resolve(p)));
      const checkpoints = list(cmd.values.checkpoint).map((p) => readCheckpointFile(resolve(p)));
      if (cmd.values.export) {
        const file = resolve(String(cmd.values.export));
        return printReport(verifyAuditExport(file, { trust, checkpoints }), cmd.json, io, { export: file });
      }
      const own = !cmd.values.db;
      const dbPath = own ? auditPath(cmd.home) : resolve(String(cmd.values.db));
      if (!existsSync(dbPath)) throw new UsageError(`There is no audit database at ${dbPath}.`);
      return printReport(verifyAuditDatabase(dbPath, { trust, checkpoints, trustLocalKeys: own }), cmd.json, io, { database: dbPath });
    });
  },
};

export const auditExportCommand: Command = {
  name: 'audit export',
  summary: 'write the auditor\'s copy: JSON export, printable HTML report, signed checkpoint',
  usage: '  offsite audit export --out FILE [--sign-key KEYFILE] [--json]\n  Writes FILE, FILE.html and FILE.checkpoint.json (a .json extension is replaced).',
  options: { out: { type: 'string' }, 'sign-key': { type: 'string' } },
  async run(cmd, io) {
    const outFlag = cmd.values.out as string | undefined;
    if (!outFlag) throw new UsageError('offsite audit export needs --out FILE (where to write the export).');
    const out = resolve(outFlag);
    const result = await asUsage(() => {
      const signingKey = cmd.values['sign-key'] ? readSigningKey(resolve(String(cmd.values['sign-key']))) : undefined;
      const audit = openAudit(cmd.home);
      try {
        return audit.export({ out, signingKey });
      } finally {
        audit.close();
      }
    });
    const c = result.checkpoint.checkpoint;
    if (cmd.json) {
      io.out(
        JSON.stringify({
          export: result.json,
          report: result.html,
          checkpointFile: result.checkpointFile,
          checkpoint: result.checkpoint,
          verified: result.report.ok,
          firstBadSeq: result.report.firstBadSeq,
          verdict: result.report.verdict,
          seq: result.seq,
        }),
      );
    } else {
      io.out(
        [
          `Exported ${c.size} events to ${result.json}`,
          `Printable report: ${result.html}`,
          `Signed checkpoint (key ${c.key_id}): ${result.checkpointFile}`,
          result.report.verdict,
        ].join('\n'),
      );
    }
    if (!result.report.ok) {
      io.err(`The export was written, but the log does not verify: ${result.report.verdict}`);
      return EXIT.verify;
    }
    return EXIT.ok;
  },
};

export const auditCommands: Command[] = [auditLogCommand, auditVerifyCommand, auditExportCommand];
