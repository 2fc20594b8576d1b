// `offsite emulator verify PKG` and `offsite emulator import PKG`: the strict package verifier
// (every file hashed, signature, trusted signer) and the import into the data folder. Shared with
// `offsite adapter verify|import` (adapter.ts). `offsite emulator build` lives in its own file.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { FormatError } from '../../native-models/formats/errors';
import { verifyPackage, type PackageKind, type PackageVerifyReport, type TrustedKeyLike } from '../../native-models/formats/package';
import { auditPath } from '../audit/store';
import { openAudit } from '../services/audit';
import { readPublicKey } from '../services/keys';
import { importPackage } from '../services/packages';
import { ServiceError } from '../services/service-error';
import { list } from './flags';
import { EXIT, UsageError, type CliIO, type Command, type ParsedCommand } from './types';


export const packageOptions = {
  trust: { type: 'string', multiple: true },
  'allow-unsigned': { type: 'boolean' },
  reason: { type: 'string' },
} as const;

interface PackageArgs {
  pkg: string;
  trustedKeys: TrustedKeyLike[];
  trustSummary: string;
  override: { reason: string } | undefined;
}

/** PKG, the --trust keys plus the data folder's trusted keys, and the override (with its reason). */
export function packageArgs(cmd: ParsedCommand, usage: string): PackageArgs {
  if (cmd.positionals.length !== 1) throw new UsageError(`Give exactly one package folder, got ${cmd.positionals.length} (${usage.trim()}).`);
  const allow = cmd.values['allow-unsigned'] === true;
  const reason = typeof cmd.values.reason === 'string' ? cmd.values.reason.trim() : undefined;
  if (allow && !reason) throw new UsageError('--allow-unsigned needs --reason TEXT saying why this package is accepted without a trusted signature (it goes into the audit log).');
  if (!allow && cmd.values.reason !== undefined) throw new UsageError('--reason is only used with --allow-unsigned.');
  const trustedKeys: TrustedKeyLike[] = [];
  for (const p of list(cmd.values.trust)) {
    try {
      const info = readPublicKey(resolve(p));
      trustedKeys.push({ publicKey: info.publicKey, label: `--trust ${p}` });
    } catch (e) {
      if (e instanceof ServiceError) throw new UsageError(e.message);
      throw e;
    }
  }
  const fromFlags = trustedKeys.length;
  // Keys the user trusted in this data folder (Settings → trusted keys) count too; a data folder
  // without an audit database has none, and verifying must not create one.
  if (existsSync(auditPath(cmd.home))) {
    const audit = openAudit(cmd.home);
    try {
      for (const k of audit.trustedKeys()) trustedKeys.push({ publicKey: k.publicKey, label: k.label });
    } finally {
      audit.close();
    }
  }
  const fromHome = trustedKeys.length - fromFlags;
  return {
    pkg: resolve(cmd.positionals[0]!),
    trustedKeys,
    trustSummary: `${fromFlags} key${fromFlags === 1 ? '' : 's'} from --trust, ${fromHome} from the data folder`,
    override: allow ? { reason: reason! } : undefined,
  };
}

const MARK: Record<string, string> = { passed: 'ok  ', failed: 'FAIL', overridden: 'OVRD', skipped: 'skip' };

export function reportLines(report: PackageVerifyReport): string[] {
  const width = Math.max(...report.steps.map((s) => s.name.length));
  const lines = report.steps.map((s) => `  ${MARK[s.status]}  ${s.name.padEnd(width)}  ${s.detail}`);
  for (const s of report.steps) {
    if (s.status === 'failed' && s.problems.length > 1) {
      for (const p of s.problems.slice(1, 10)) lines.push(`        ${' '.repeat(width)}  ${p.message}`);
      if (s.problems.length > 10) lines.push(`        ${' '.repeat(width)}  … and ${s.problems.length - 10} more.`);
    }
  }
  return lines;
}

async function verifyCommandRun(kind: PackageKind, cmd: ParsedCommand, io: CliIO, usage: string): Promise<number> {
  const args = packageArgs(cmd, usage);
  if (!existsSync(args.pkg)) throw new UsageError(`There is no package folder at ${args.pkg}.`);
  const report = await verifyPackage(args.pkg, { trustedKeys: args.trustedKeys, allowUnsigned: args.override, expectKind: kind, signal: io.signal });
  if (cmd.json) io.out(JSON.stringify({ ...report, trust: args.trustSummary }));
  else {
    const head = report.manifestSha256 ? `${args.pkg}: ${report.kind ?? 'unknown'} package, manifest sha256 ${report.manifestSha256}` : args.pkg;
    io.out([head, ...reportLines(report), report.verdict].join('\n'));
  }
  if (!report.ok) {
    const f = report.failure;
    io.err(f ? `Verification failed at step "${f.step}"${f.file ? ` (${f.file})` : ''}: ${f.message}` : report.verdict);
    return EXIT.verify;
  }
  if (report.override) io.err(`Warning: accepted on override (${report.override.because}); reason: ${report.override.reason}`);
  return EXIT.ok;
}

async function importCommandRun(kind: PackageKind, cmd: ParsedCommand, io: CliIO, usage: string): Promise<number> {
  const args = packageArgs(cmd, usage);
  if (!existsSync(args.pkg)) throw new UsageError(`There is no package folder at ${args.pkg}.`);
  let result;
  try {
    result = await importPackage(cmd.home, args.pkg, {
      trustedKeys: args.trustedKeys,
      override: args.override,
      kind,
      signal: io.signal,
      onProgress: (p) => {
        if (!io.isTTY) return;
        io.err(`${p.phase} ${p.file}`);
      },
    });
  } catch (e) {
    if (e instanceof FormatError) throw new UsageError(e.message);
    throw e;
  }
  if (cmd.json) io.out(JSON.stringify({ ok: result.ok, kind: result.kind, path: result.path, manifestSha256: result.manifestSha256, event: result.event, report: result.report }));
  else io.out([`${args.pkg}:`, ...reportLines(result.report), result.ok ? `Imported into ${result.path} (audit event #${result.event.seq} ${result.event.action}).` : `Not imported (audit event #${result.event.seq} ${result.event.action}).`].join('\n'));
  if (!result.ok) {
    const f = result.report.failure;
    io.err(f ? `Verification failed at step "${f.step}"${f.file ? ` (${f.file})` : ''}: ${f.message}` : result.report.verdict);
    return EXIT.verify;
  }
  return EXIT.ok;
}

export function packageCommands(kind: PackageKind): Command[] {
  const verifyUsage = `  offsite ${kind} verify PKG [--trust PUBKEY]... [--allow-unsigned --reason TEXT] [--json]`;
  const importUsage = `  offsite ${kind} import PKG [--trust PUBKEY]... [--allow-unsigned --reason TEXT] [--json]`;
  const trustNote = '  Trusts the --trust public keys and the keys trusted in the data folder (Settings → trusted keys).';
  return [
    {
      name: `${kind} verify`,
      summary: `check an ${kind} package: manifest, safe names, no links or extra files, sizes, SHA-256, signature, trusted signer (exit 3 when any check fails)`,
      usage: `${verifyUsage}\n${trustNote}`,
      options: packageOptions,
      run: (cmd, io) => verifyCommandRun(kind, cmd, io, verifyUsage),
    },
    {
      name: `${kind} import`,
      summary: `copy an ${kind} package into the data folder's staging area, verify it there, file it and record it in the audit log`,
      usage: `${importUsage}\n${trustNote}`,
      options: packageOptions,
      run: (cmd, io) => importCommandRun(kind, cmd, io, importUsage),
    },
  ];
}

export const emulatorCommands: Command[] = packageCommands('emulator');
