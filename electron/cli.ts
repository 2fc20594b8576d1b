// The headless `offsite` command line (CLI.md), over the same services as the desktop app.
import { parseArgs } from 'node:util';
import { commands } from './commands/index';
import { CancelledError, EXIT, UsageError, VerificationError, type CliIO, type Command } from './commands/types';
import { resolveHome } from './services/home';
import { appVersion } from './services/version';
import { ServiceError } from './services/service-error';

const GLOBAL_OPTIONS = {
  json: { type: 'boolean' },
  home: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function checkRegistry(list: Command[]): void {
  const seen = new Set<string>();
  for (const c of list) {
    if (seen.has(c.name)) throw new Error(`duplicate offsite command "${c.name}"`);
    seen.add(c.name);
  }
}

/** The command whose name matches the most leading words of argv. */
function findCommand(argv: string[]): { command: Command; rest: string[] } | undefined {
  let best: { command: Command; rest: string[] } | undefined;
  for (const command of commands) {
    const words = command.name.split(' ');
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.command.name.split(' ').length)) {
      best = { command, rest: argv.slice(words.length) };
    }
  }
  return best;
}

export function helpText(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    `offsite ${appVersion()} — offsite-tuning of language models on air-gapped workstations`,
    '',
    'Usage: offsite <command> [options]   (offsite <command> --help for its options)',
    '',
    'Commands:',
    ...lines,
    '',
    'Global options: --json (one JSON object on stdout), --home DIR (or OFFSITE_HOME), --help',
    'Exit codes: 0 done, 2 bad input or usage, 3 verification failed, 130 cancelled, 1 bug.',
  ].join('\n');
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  checkRegistry(commands);
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(helpText());
    return argv.length === 0 ? EXIT.usage : EXIT.ok;
  }
  if (argv[0] === '--version') {
    io.out(appVersion());
    return EXIT.ok;
  }
  const found = findCommand(argv);
  if (!found) {
    io.err(`Unknown command "${argv.filter((a) => !a.startsWith('-')).slice(0, 2).join(' ')}"; run "offsite --help" to list the commands.`);
    return EXIT.usage;
  }
  const { command, rest } = found;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError(`${(e as Error).message.replace(/\.$/, '')} (offsite ${command.name}: ${command.usage.split('\n')[0]}).`);
    }
    if (parsed.values.help) {
      io.out(`offsite ${command.name} — ${command.summary}\n\nUsage:\n${command.usage}`);
      return EXIT.ok;
    }
    const home = resolveHome(parsed.values.home as string | undefined);
    return await command.run({ values: parsed.values, positionals: parsed.positionals, json: parsed.values.json === true, home }, io);
  } catch (e) {
    // A ServiceError is a sentence a user can act on (bad input, missing file): exit 2 like usage.
    if (e instanceof UsageError || e instanceof ServiceError) { io.err(e.message); return EXIT.usage; }
    if (e instanceof VerificationError) { io.err(e.message); return EXIT.verify; }
    if (e instanceof CancelledError) { io.err(e.message); return EXIT.cancelled; }
    const err = e as NodeJS.ErrnoException;
    if (err && (err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'EISDIR' || err.code === 'ENOTDIR')) {
      io.err(`${err.code === 'ENOENT' ? 'No such file or folder' : 'Cannot open'}: ${err.path ?? err.message}.`);
      return EXIT.usage;
    }
    io.err(`Internal error (please report it): ${err?.stack ?? String(e)}`);
    return EXIT.bug;
  }
}

/** Entry point used by bin/offsite.mjs. */
export async function runFromProcess(): Promise<void> {
  const controller = new AbortController();
  let interrupted = 0;
  process.on('SIGINT', () => {
    interrupted++;
    if (interrupted > 1) process.exit(EXIT.cancelled);
    process.stderr.write('\nCancelling after the current step… (press Ctrl-C again to quit at once)\n');
    controller.abort();
  });
  const io: CliIO = {
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
    isTTY: Boolean(process.stderr.isTTY),
    signal: controller.signal,
  };
  const code = await main(process.argv.slice(2), io);
  process.exitCode = code;
}
