// The shape every `offsite` command shares. One file per command in this folder, registered in
// index.ts; cli.ts parses flags with node:util parseArgs from each command's option table.
import type { ParseArgsConfig } from 'node:util';

export type OptionTable = NonNullable<ParseArgsConfig['options']>;

export interface CliIO {
  /** Result output (the single JSON object with --json, or the human summary). */
  out(text: string): void;
  /** Progress and diagnostics. */
  err(text: string): void;
  /** True when stderr is a terminal (progress bars allowed). */
  isTTY: boolean;
  /** Aborted on SIGINT; long commands stop within one step, checkpoint, and exit 130. */
  signal: AbortSignal;
}

export interface ParsedCommand {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  json: boolean;
  home: string;
}

export interface Command {
  /** Words that select the command, e.g. "audit verify". */
  name: string;
  summary: string;
  /** One usage line per form, shown by --help. */
  usage: string;
  options: OptionTable;
  run(cmd: ParsedCommand, io: CliIO): Promise<number>;
}

/** Bad input or usage: exit 2 with one plain sentence. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A verification failed (signature, hash chain, tampered file): exit 3. */
export class VerificationError extends Error {
  override name = 'VerificationError';
}

/** The user cancelled (SIGINT): exit 130 after leaving a resumable checkpoint. */
export class CancelledError extends Error {
  override name = 'CancelledError';
}

export const EXIT = { ok: 0, bug: 1, usage: 2, verify: 3, cancelled: 130 } as const;
