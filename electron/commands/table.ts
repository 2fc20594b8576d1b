// `offsite table`: the offsite-tuning results table for one task in one command — Full ZS, Emu ZS,
// Emu FT, Plug-in and Full FT — with the emulator run and the Full FT baseline tuned with the SAME
// budget (steps, batch, sequence length, LoRA rank/alpha/targets, learning rate, schedule, sampler).
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { TUNE_DEFAULTS } from '../../native-models/tune/config';
import type { DemoTuning } from '../../native-models/demo/pipeline-config';
import { stampedFolder } from '../services/home';
import { asCancel, formatTaskTable, PackageRejectedError, runFiveColumns } from '../services/demo';
import { JobCancelledError, PackageVerificationError } from '../services/emulators';
import { readPublicKey } from '../services/keys';
import { ServiceError } from '../services/service-error';
import { stageLine } from './demo';
import { intFlag, numberFlag, choice, list } from './flags';
import { CancelledError, EXIT, UsageError, VerificationError, type Command, type ParsedCommand } from './types';

const DEFAULT_STEPS = 100;

const USAGE = [
  '  offsite table --model MODEL --emulator PKG --data TRAIN --eval EVAL [--metric ppl|mc|em] [options] [--json]',
  '',
  '  --model MODEL        the full model (Hugging Face folder or llama2.c .bin) the emulator was built from',
  '  --emulator PKG       its emulator package: verified first (exit 3 on failure) and imported into the data folder',
  '  --trust PUBKEY       trust this signer for the emulator (repeatable; the data folder\'s trusted keys count too)',
  '  --allow-unsigned --reason TEXT   accept an intact but unsigned or untrusted emulator (recorded in the audit log)',
  '  --data TRAIN         training data for both tunings (JSONL or CSV)',
  '  --eval EVAL          evaluation data for all five columns',
  '  --metric ppl|mc|em   (default: from the evaluation data\'s format)',
  '  --out DIR            new or empty folder for the runs and the plugged-in model (default: table-<date-time>',
  '                       in the data folder)',
  '  --sign-key KEYFILE   export the emulator-tuned adapter as a signed adapter package and plug that in',
  'The one budget both tunings get (LoRA; the emulator run tunes its adapter blocks, Full FT every layer):',
  `  --steps n (default ${DEFAULT_STEPS}), --batch-size n (default ${TUNE_DEFAULTS.batchSize}), --seq-len n (default min(256, context)),`,
  `  --rank r (default ${TUNE_DEFAULTS.rank}), --alpha a (default ${TUNE_DEFAULTS.alpha}), --dropout p (default ${TUNE_DEFAULTS.dropout}), --targets a,b,… (default q_proj,v_proj),`,
  `  --lr x (default ${TUNE_DEFAULTS.lr}), --warmup n (default 0), --schedule constant|linear|cosine (default linear),`,
  `  --sampler all|ist|uniform (default ist), --ist-ratio x (default ${TUNE_DEFAULTS.ist.ratio}), --seed n (default 0)`,
  '  --eval-batch-size n (default 8), --ep auto|cpu|cuda, --threads N',
  '  --json: {table:{fullZS,emuZS,emuFT,plugin,fullFT}, metric, task, gaps:{utility, privacy}, scores, runs, emulator, out, timings}',
].join('\n');

const FLAGS = {
  model: { type: 'string' },
  emulator: { type: 'string' },
  trust: { type: 'string', multiple: true },
  'allow-unsigned': { type: 'boolean' },
  reason: { type: 'string' },
  data: { type: 'string' },
  eval: { type: 'string' },
  metric: { type: 'string' },
  out: { type: 'string' },
  'sign-key': { type: 'string' },
  steps: { type: 'string' },
  'batch-size': { type: 'string' },
  'seq-len': { type: 'string' },
  rank: { type: 'string' },
  alpha: { type: 'string' },
  dropout: { type: 'string' },
  targets: { type: 'string' },
  lr: { type: 'string' },
  warmup: { type: 'string' },
  schedule: { type: 'string' },
  sampler: { type: 'string' },
  'ist-ratio': { type: 'string' },
  seed: { type: 'string' },
  'eval-batch-size': { type: 'string' },
  ep: { type: 'string' },
  threads: { type: 'string' },
} as const;


function tuningFromFlags(cmd: ParsedCommand): DemoTuning {
  const targets = cmd.values.targets === undefined ? ['q_proj', 'v_proj'] : String(cmd.values.targets).split(',').map((s) => s.trim()).filter(Boolean);
  if (targets.length === 0) throw new UsageError(`--targets needs a comma-separated list of modules such as q_proj,v_proj, not "${String(cmd.values.targets)}".`);
  return {
    steps: intFlag(cmd, 'steps', DEFAULT_STEPS, 1)!,
    batchSize: intFlag(cmd, 'batch-size', TUNE_DEFAULTS.batchSize, 1)!,
    // 256 or the model's context, whichever is smaller, is the tuning default; the engine checks it.
    seqLen: intFlag(cmd, 'seq-len', 256, 2)!,
    rank: intFlag(cmd, 'rank', TUNE_DEFAULTS.rank, 1)!,
    alpha: numberFlag(cmd, 'alpha', TUNE_DEFAULTS.alpha, (n) => n > 0, 'a number > 0'),
    dropout: numberFlag(cmd, 'dropout', TUNE_DEFAULTS.dropout, (n) => n >= 0 && n < 1, 'a number from 0 to below 1'),
    targets,
    sampler: choice(cmd, 'sampler', ['all', 'ist', 'uniform'] as const, 'ist'),
    istRatio: numberFlag(cmd, 'ist-ratio', TUNE_DEFAULTS.ist.ratio, (n) => n > 0 && n <= 1, 'a fraction above 0 and at most 1'),
    lr: numberFlag(cmd, 'lr', TUNE_DEFAULTS.lr, (n) => n > 0, 'a number > 0'),
    warmup: intFlag(cmd, 'warmup', 0, 0)!,
    schedule: choice(cmd, 'schedule', ['constant', 'linear', 'cosine'] as const, 'linear'),
    seed: intFlag(cmd, 'seed', 0, 0)!,
  };
}

export const tableCommand: Command = {
  name: 'table',
  summary: 'the five-column offsite-tuning results table (Full ZS, Emu ZS, Emu FT, Plug-in, Full FT) for one task, same budget, one command',
  usage: USAGE,
  options: FLAGS,
  async run(cmd, io) {
    const v = cmd.values;
    for (const f of ['model', 'emulator', 'data', 'eval'] as const) {
      if (typeof v[f] !== 'string' || v[f] === '') throw new UsageError(`offsite table needs --${f} (${USAGE.split('\n')[0]!.trim()}).`);
    }
    const allow = v['allow-unsigned'] === true;
    const reason = typeof v.reason === 'string' ? v.reason.trim() : '';
    if (allow && !reason) throw new UsageError('--allow-unsigned needs --reason TEXT saying why this emulator is accepted without a trusted signature (it goes into the audit log).');
    if (!allow && v.reason !== undefined) throw new UsageError('--reason is only used with --allow-unsigned.');
    const trustedKeys = list(v.trust).map((p) => {
      try {
        return { publicKey: readPublicKey(resolve(p)).publicKey, label: `--trust ${p}` };
      } catch (e) {
        if (e instanceof ServiceError || (e as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`--trust ${p}: ${e instanceof ServiceError ? e.message : 'no such file; give the KEYFILE.pub written by "offsite keygen".'}`);
        throw e;
      }
    });
    const metric = v.metric === undefined ? undefined : choice(cmd, 'metric', ['ppl', 'mc', 'em'] as const, 'ppl');
    const ep = choice(cmd, 'ep', ['auto', 'cpu', 'cuda'] as const, 'auto');
    const tuning = tuningFromFlags(cmd);
    const signKey = typeof v['sign-key'] === 'string' && v['sign-key'] !== '' ? resolve(v['sign-key']) : null;
    // Checked now, so a missing key fails in seconds and not after both tunings.
    if (signKey && !existsSync(signKey)) throw new UsageError(`The signing key ${v['sign-key']} does not exist; create one with offsite keygen --out KEYFILE.`);
    const out = typeof v.out === 'string' && v.out !== '' ? resolve(v.out) : stampedFolder(cmd.home, 'table');
    let r;
    try {
      r = await runFiveColumns(
        cmd.home,
        {
          model: v.model as string,
          emulator: v.emulator as string,
          trustedKeys,
          ...(allow ? { override: { reason } } : {}),
          task: basename(v.eval as string),
          train: v.data as string,
          eval: v.eval as string,
          ...(metric ? { metric } : {}),
          out,
          tuning,
          signKey,
          evalBatchSize: intFlag(cmd, 'eval-batch-size', 8, 1)!,
          provider: ep,
          threads: intFlag(cmd, 'threads', undefined) ?? null,
        },
        { signal: io.signal, onProgress: (p) => io.err(stageLine(p)) },
      );
    } catch (err) {
      const e = asCancel(err);
      if (e instanceof JobCancelledError) throw new CancelledError(e.message);
      if (e instanceof PackageRejectedError || e instanceof PackageVerificationError) throw new VerificationError(`${e.message.replace(/\.$/, '')}. Nothing was tuned or evaluated.`);
      throw e;
    }
    if (cmd.json) io.out(JSON.stringify(r));
    else io.out([formatTaskTable(r), `Emulator ${r.emulator.manifestSha256.slice(0, 16)}… (signer ${r.emulator.signerKeyId ?? 'none'}); runs, adapter and plugged-in model in ${r.out}; ${r.totalSeconds.toFixed(1)} s.`].join('\n'));
    return EXIT.ok;
  },
};
