// Flag parsing shared by the commands: numbers, choices and repeatable flags, each refusing bad
// input with a usage error (exit 2) that names the flag and what it needs.
import { UsageError, type ParsedCommand } from './types';

/** A whole number ≥ min from flag `name`, or `def` when absent; anything else is a usage error. */
export function intFlag(cmd: ParsedCommand, name: string, def: number | undefined, min = 1): number | undefined {
  const v = cmd.values[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number ≥ ${min}, not "${String(v)}".`);
  return n;
}

export function numberFlag(cmd: ParsedCommand, name: string, def: number, ok: (n: number) => boolean, rule: string): number {
  const v = cmd.values[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new UsageError(`--${name} must be ${rule}, not "${String(v)}".`);
  return n;
}

/** Flag `name` as one of `allowed`, or `def` when absent. */
export function choice<T extends string>(cmd: ParsedCommand, name: string, allowed: readonly T[], def: T): T {
  const v = cmd.values[name];
  if (v === undefined) return def;
  if (!allowed.includes(v as T)) throw new UsageError(`--${name} must be ${allowed.join(', ')}, not "${String(v)}".`);
  return v as T;
}

/** The values of a repeatable flag (none, one or several). */
export const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);
