// `offsite demo` (= `npm run demo`): the whole offsite-tuning pipeline on the bundled demo assets,
// start to finish, in this process (heavy stages in worker threads): keys → ScaleOT emulator
// build, signed → verify and import → per task: IST LoRA tuning on the emulator, signed adapter
// export, plug-in, Full FT baseline, the five evaluations → audit verify. Stage lines with times go
// to stderr; the results table (or, with --json, one object) to stdout.
import { resolve } from 'node:path';
import { stampedFolder } from '../services/home';
import { asCancel, formatTaskTable, runDemo, type DemoProgress } from '../services/demo';
import { JobCancelledError } from '../services/emulators';
import { intFlag } from './flags';
import { CancelledError, EXIT, UsageError, type Command } from './types';

const USAGE = [
  '  offsite demo [--out DIR] [--quick] [--ep auto|cpu|cuda] [--threads N] [--home DIR] [--json]',
  '',
  '  --out DIR    a new (or empty) folder for everything the demo writes (default: a new folder',
  '               demo-<date-time> in the data folder)',
  '  --quick      a much smaller budget (fewer steps, 32 test examples per task): checks the pipeline',
  '               end to end in about two minutes; its numbers say little about quality',
  '  --home DIR   the data folder for the audit log, keys and imported packages (default: OUT/home,',
  '               a fresh one, so the demo never touches your own trusted keys)',
  '  One data folder plays both the model owner and the data owner: each has a key pair in OUT/keys',
  '  and the folder trusts both public keys (the emulator\'s and the adapter\'s signer).',
  '  --json: {table:{fullZS,emuZS,emuFT,plugin,fullFT}, metric, task, tasks:[{task, metric, table, gaps,',
  '          scores, …}], emulator:{…}, runs:[…], auditVerified, out, home, timings, …}; table, metric and',
  '          task are the primary task (email-lm); tasks lists every task (email-lm, ham-spam)',
].join('\n');

export function stageLine(p: DemoProgress): string {
  if (p.kind === 'detail') return p.message;
  if (p.phase === 'start') return `[${p.index}/${p.total}] ${p.title}…`;
  return `[${p.index}/${p.total}] done in ${p.seconds.toFixed(1)} s (CPU ${p.cpuSeconds.toFixed(1)} s)${p.summary ? `: ${p.summary}` : ''}`;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'the whole offsite-tuning pipeline on the bundled demo assets, printing the five-column results table',
  usage: USAGE,
  options: { out: { type: 'string' }, quick: { type: 'boolean' }, ep: { type: 'string' }, threads: { type: 'string' } },
  async run(cmd, io) {
    const v = cmd.values;
    if (v.out !== undefined && (typeof v.out !== 'string' || v.out === '')) throw new UsageError('--out needs a folder name.');
    const ep = (v.ep as string | undefined) ?? 'auto';
    if (!['auto', 'cpu', 'cuda'].includes(ep)) throw new UsageError(`--ep must be auto, cpu or cuda, not "${ep}".`);
    // A data folder the user named (--home or OFFSITE_HOME) is used as is; otherwise the demo
    // keeps its own inside OUT so it never touches the user's trusted keys.
    const homeGiven = typeof v.home === 'string' || Boolean(process.env.OFFSITE_HOME);
    const out = typeof v.out === 'string' ? resolve(v.out) : stampedFolder(cmd.home, 'demo');
    const quick = v.quick === true;
    io.err(`Offsite demo${quick ? ' (--quick)' : ''}: writing to ${out}`);
    let r;
    try {
      r = await runDemo(
        { out, home: homeGiven ? cmd.home : null, quick, provider: ep as 'auto' | 'cpu' | 'cuda', threads: intFlag(cmd, 'threads', undefined) ?? null },
        { signal: io.signal, onProgress: (p) => io.err(stageLine(p)) },
      );
    } catch (err) {
      const e = asCancel(err);
      if (e instanceof JobCancelledError) throw new CancelledError(e.message);
      throw e;
    }
    if (cmd.json) {
      io.out(JSON.stringify(r));
    } else {
      const lines = [
        `Offsite-tuning demo${quick ? ' (--quick budget)' : ''}: results on each task's test split`,
        `Emulator: ScaleOT, ${r.emulator.triplet.adapterLayers.join('+')} adapter layers, α ${r.emulator.triplet.alpha}, β ${r.emulator.triplet.beta}; ${r.emulator.parameterCount} of ${r.emulator.sourceParameterCount} parameters; replaced layers ${r.emulator.replaced.join(', ')}; held-out Moby Dick perplexity Emu ZS ${r.emulator.referencePpl.emuZS.toFixed(3)} vs Full ZS ${r.emulator.referencePpl.fullZS.toFixed(3)}`,
        '',
        ...r.tasks.flatMap((t) => [formatTaskTable(t), '']),
        `Audit trail: ${r.audit.events} events, ${r.auditVerified ? 'verified' : 'NOT verified'} — ${r.audit.verdict}`,
        `Total ${r.totalSeconds.toFixed(1)} s. Outputs in ${r.out}:`,
        `  results.json              this table and every detail (runs, hashes, timings)`,
        `  model-owner/              the signed emulator package`,
        `  tasks/<task>/             data-owner/emulator-run (adapter, signed adapter package), model-owner/plugged-in-model, full-ft-run`,
        `  keys/                     the model owner's and data owner's key pairs`,
        `  audit-export.json/.html   the auditor's copy of the audit log, with a signed checkpoint`,
        `  data folder (audit log, imported emulator): ${r.home}`,
      ];
      io.out(lines.join('\n'));
    }
    return r.auditVerified ? EXIT.ok : EXIT.verify;
  },
};
