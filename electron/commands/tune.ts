// `offsite tune`: LoRA or full-layer tuning with an optional IST / uniform layer sampler, in a job
// worker, through the same runs service as the app (audit events, metrics, checkpoints).
//
// `--emulator PKG` (the data owner's side of offsite-tuning): the package is verified strictly
// first (services/emulator-trust, the same rules as `offsite eval --emulator`); one from outside the
// data folder is imported (copied into staging, verified there, filed under <home>/emulators/ —
// SECURITY.md: packages are only ever loaded from there). Then only its adapter blocks are tuned,
// with the manifest's recommendedTuning as defaults under the flags. `--sign-key` packages the
// adapter afterwards as a signed adapter package referencing the emulator (<out>/adapter-package).
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FormatError } from '../../native-models/formats/errors';
import { readPackageSigningKey, type EmulatorManifest, type JsonValue, type PackageSigningKey } from '../../native-models/formats/package';
import { readPeftAdapter } from '../../native-models/formats/peft';
import { FULL_LAYERS_CONFIG } from '../../native-models/peft/full';
import { TUNE_DEFAULTS, type TuneConfig, type TuneEmulator } from '../../native-models/tune/config';
import { checkEmulatorLayers, emulatorAdapterBlocks, recommendedSettings, type RecommendedSettings } from '../../native-models/tune/emulator';
import type { TuneProgress, TuneResult } from '../../native-models/tune/engine';
import { isImportedEmulator, trustedKeysFor, verifyEmulatorPackage } from '../services/emulator-trust';
import { buildAdapterPackage, importPackage } from '../services/packages';
import { openRuns, RUN_FILE, type RunOutcome } from '../services/runs';
import { ServiceError } from '../services/service-error';
import { intFlag, numberFlag, choice, list } from './flags';
import { CancelledError, UsageError, VerificationError, type CliIO, type Command, type ParsedCommand } from './types';

/** Where --sign-key writes the signed adapter package, inside the run folder. */
export const ADAPTER_PACKAGE_DIR = 'adapter-package';

const FLAGS = {
  model: { type: 'string' },
  emulator: { type: 'string' },
  trust: { type: 'string', multiple: true },
  'allow-unsigned': { type: 'boolean' },
  reason: { type: 'string' },
  'sign-key': { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  'eval-data': { type: 'string' },
  peft: { type: 'string' },
  rank: { type: 'string' },
  alpha: { type: 'string' },
  dropout: { type: 'string' },
  targets: { type: 'string' },
  layers: { type: 'string' },
  sampler: { type: 'string' },
  'ist-ratio': { type: 'string' },
  'ist-interval': { type: 'string' },
  'ist-rl-steps': { type: 'string' },
  'ist-suppress-ratio': { type: 'string' },
  'ist-suppress-factor': { type: 'string' },
  'ist-score-lr': { type: 'string' },
  'ist-batch-size': { type: 'string' },
  optimizer: { type: 'string' },
  lr: { type: 'string' },
  'weight-decay': { type: 'string' },
  momentum: { type: 'string' },
  warmup: { type: 'string' },
  schedule: { type: 'string' },
  clip: { type: 'string' },
  steps: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  'grad-accum': { type: 'string' },
  'seq-len': { type: 'string' },
  seed: { type: 'string' },
  'no-shuffle': { type: 'boolean' },
  'loss-on-prompt': { type: 'boolean' },
  'init-adapter': { type: 'string' },
  resume: { type: 'string' },
  'checkpoint-every': { type: 'string' },
  ep: { type: 'string' },
  threads: { type: 'string' },
} as const;

const USAGE = [
  '  offsite tune (--model MODEL | --emulator PKG) --data FILE --out DIR [options]',
  '  offsite tune --resume DIR [--sign-key KEYFILE]',
  '',
  'Model and data:',
  '  --model MODEL            Hugging Face model folder or llama2.c .bin file',
  '  --emulator PKG           emulator package: verified first (exit 3 on failure), imported into the data folder,',
  '                           then only its adapter blocks are tuned (default --peft full, or the package\'s',
  '                           recommendedTuning; flags override it); the adapter uses the emulator\'s block numbering',
  '  --trust PUBKEY           trust this signer for --emulator (repeatable; the data folder\'s trusted keys count too)',
  '  --allow-unsigned --reason TEXT   accept an intact but unsigned or untrusted emulator (recorded in the audit log)',
  '  --sign-key KEYFILE       after an emulator run, write a signed adapter package to OUT/adapter-package',
  '  --data FILE              training data, JSONL or CSV ({"text"}, {"tokens"}, {"instruction","input","output"}, {"context","choices","label"})',
  '  --eval-data FILE         held-out data: mean token loss before and after tuning',
  '  --out DIR                run folder (new or empty): run.json, checkpoint/, adapter/',
  '  --seq-len n              truncate examples to n tokens (default: min(256, model context))',
  '  --loss-on-prompt         instruction data: train on the prompt too (default: response only)',
  'Adapter:',
  '  --peft lora|full         LoRA (default) or full parameters of --layers',
  '  --rank r                 LoRA rank (default 8)',
  '  --alpha a                LoRA alpha, scaling alpha/r (default 16)',
  '  --dropout p              LoRA dropout on the adapter input (default 0.05; 0 = none)',
  '  --targets a,b,...        LoRA modules (LLaMA: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj;',
  '                           GPT-2: c_attn,c_proj,c_fc; default q_proj,v_proj / c_attn)',
  '  --layers 0,1,...         layers to tune (default: all; required with --peft full); exported as layers_to_transform;',
  '                           with --emulator: emulator blocks, a subset of its adapter blocks (default: all of them)',
  '  --init-adapter DIR       start from an existing adapter (its A and B as given; its r, alpha, targets, layers)',
  'Layer sampling (IST):',
  '  --sampler all|ist|uniform  train all layers, IST importance-aware layers (default), or uniform random layers',
  '  --ist-ratio x            fraction of tunable layers trained per step (default 0.25, at least one layer)',
  '  --ist-interval n         steps between importance updates (default 10)',
  '  --ist-rl-steps n         suppression sets per importance update (default 3)',
  '  --ist-suppress-ratio x   fraction of layers suppressed per set (default 0.5)',
  '  --ist-suppress-factor x  adapter output scale of suppressed layers (default 0.25)',
  '  --ist-score-lr x         importance score step size (default 10)',
  '  --ist-batch-size n       batch size of the importance-update loader (default 16)',
  'Optimisation:',
  '  --optimizer adamw|sgd    (default adamw, betas 0.9/0.999, eps 1e-8)',
  '  --lr x                   peak learning rate (default 2e-4)',
  '  --weight-decay x         decoupled weight decay (default 0)',
  '  --momentum x             SGD momentum (default 0)',
  '  --warmup n               linear warmup updates (default 0)',
  '  --schedule constant|linear|cosine  decay after warmup (default linear)',
  '  --clip x                 global gradient-norm clipping (default 1.0; 0 = off)',
  '  --steps n | --epochs n   updates to run, or passes over the data (default 1 epoch)',
  '  --batch-size n           examples per micro-batch (default 4)',
  '  --grad-accum n           micro-batches per update (default 1)',
  '  --seed n                 seeds LoRA init, shuffling, dropout and layer sampling (default 0)',
  '  --no-shuffle             take examples in file order',
  'Run:',
  '  --checkpoint-every n     checkpoint every n updates (default 50; always at cancel and at the end)',
  '  --resume DIR             continue an interrupted run from its checkpoint, with its saved settings',
  '  --ep auto|cpu|cuda, --threads N, --json, --home DIR',
  '  Ctrl-C stops after the current step, writes a checkpoint and exits 130.',
  '  --json: {runId, adapter, finalLoss, tokensPerSecond, steps:[{step, loss, lr, selected}], importance, …;',
  '          with --emulator also emulator:{manifestSha256, signerKeyId, path}, layerMapping; with --sign-key adapterPackage}',
].join('\n');

function listFlag(cmd: ParsedCommand, name: string): string[] | null {
  const v = cmd.values[name];
  if (v === undefined) return null;
  const items = String(v).split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new UsageError(`--${name} needs a comma-separated list, not "${String(v)}".`);
  return items;
}

function layersFlag(cmd: ParsedCommand): number[] | null {
  const items = listFlag(cmd, 'layers');
  if (!items) return null;
  return items.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--layers takes layer indices such as 0,1,6,7; "${s}" is not one.`);
    return n;
  });
}

const unit = (n: number) => n > 0 && n <= 1;

/** A verified emulator package the run tunes. */
interface PreparedEmulator {
  /** The package folder in the data folder (imported there, or already there). */
  path: string;
  manifest: EmulatorManifest;
  ref: TuneEmulator;
}

/** The defaults under the flags: TUNE_DEFAULTS, overridden by an emulator's recommendedTuning. */
function defaultsFor(rec: RecommendedSettings): typeof TUNE_DEFAULTS {
  const d = TUNE_DEFAULTS;
  const pick = <K extends keyof RecommendedSettings & keyof typeof TUNE_DEFAULTS>(k: K) => (rec[k] ?? d[k]) as (typeof TUNE_DEFAULTS)[K];
  return {
    ...d,
    rank: pick('rank'),
    alpha: pick('alpha'),
    dropout: pick('dropout'),
    sampler: pick('sampler'),
    optimizer: pick('optimizer'),
    lr: pick('lr'),
    weightDecay: pick('weightDecay'),
    warmup: pick('warmup'),
    schedule: pick('schedule'),
    clip: pick('clip'),
    batchSize: pick('batchSize'),
    gradAccum: pick('gradAccum'),
    ist: { ...d.ist, ratio: rec.istRatio ?? d.ist.ratio },
  };
}

/** Builds the run's settings from the flags (and from --init-adapter or the emulator where flags are absent). */
async function configFromFlags(cmd: ParsedCommand, emu: PreparedEmulator | null): Promise<TuneConfig> {
  const need = (name: string, what: string) => {
    const v = cmd.values[name];
    if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} ${what} is required.`);
    return v;
  };
  const model = emu ? emu.path : need('model', 'MODEL (a Hugging Face model folder or a llama2.c .bin file)');
  const data = need('data', 'FILE (JSONL or CSV training data)');
  const out = need('out', 'DIR (the run folder)');
  const rec: RecommendedSettings = emu ? recommendedSettings(emu.manifest).settings : {};
  const d = defaultsFor(rec);
  // Offsite-Tuning tunes the adapter blocks' full parameters unless the package recommends otherwise.
  const peft = choice(cmd, 'peft', ['lora', 'full'] as const, rec.peft ?? (emu ? 'full' : 'lora'));
  const initAdapter = (cmd.values['init-adapter'] as string | undefined) ?? null;
  let rank = intFlag(cmd, 'rank', undefined, 1);
  let alpha = cmd.values.alpha !== undefined ? numberFlag(cmd, 'alpha', d.alpha, (n) => n > 0, 'a number > 0') : undefined;
  let dropout = cmd.values.dropout !== undefined ? numberFlag(cmd, 'dropout', d.dropout, (n) => n >= 0 && n < 1, 'a number from 0 to below 1') : undefined;
  let targets = listFlag(cmd, 'targets') ?? rec.targets ?? null;
  let layers = layersFlag(cmd);
  if (emu) {
    if (layers) {
      try {
        checkEmulatorLayers(emu.manifest, layers);
      } catch (e) {
        throw new UsageError(`--layers: ${(e as Error).message}`);
      }
    }
    layers ??= rec.layers ?? emulatorAdapterBlocks(emu.manifest);
  }
  if (initAdapter && peft === 'lora') {
    let a;
    try {
      a = await readPeftAdapter(initAdapter);
    } catch (e) {
      if (e instanceof FormatError) throw new UsageError(e.message);
      throw e;
    }
    rank ??= a.config.r;
    alpha ??= a.config.lora_alpha;
    dropout ??= a.config.lora_dropout;
    targets ??= a.config.target_modules;
    layers ??= a.config.layers_to_transform;
  } else if (initAdapter && peft === 'full' && !layers) {
    try {
      const cfg = JSON.parse(await readFile(join(initAdapter, FULL_LAYERS_CONFIG), 'utf8')) as { layers?: number[] };
      if (Array.isArray(cfg.layers)) layers = cfg.layers;
    } catch {
      throw new UsageError(`--init-adapter ${initAdapter} has no readable ${FULL_LAYERS_CONFIG}; with --peft full give a full-layer adapter folder.`);
    }
  }
  const stepsGiven = cmd.values.steps !== undefined;
  const epochsGiven = cmd.values.epochs !== undefined;
  if (stepsGiven && epochsGiven) throw new UsageError('Give --steps or --epochs, not both.');
  const threads = intFlag(cmd, 'threads', undefined, 1);
  return {
    model,
    ...(emu ? { emulator: emu.ref } : {}),
    data,
    out,
    evalData: (cmd.values['eval-data'] as string | undefined) ?? null,
    peft,
    rank: rank ?? d.rank,
    alpha: alpha ?? d.alpha,
    dropout: dropout ?? (peft === 'full' ? 0 : d.dropout),
    targets,
    layers,
    sampler: choice(cmd, 'sampler', ['all', 'ist', 'uniform'] as const, d.sampler),
    ist: {
      ratio: numberFlag(cmd, 'ist-ratio', d.ist.ratio, unit, 'a fraction above 0 and at most 1'),
      interval: intFlag(cmd, 'ist-interval', d.ist.interval, 1)!,
      rlSteps: intFlag(cmd, 'ist-rl-steps', d.ist.rlSteps, 1)!,
      suppressRatio: numberFlag(cmd, 'ist-suppress-ratio', d.ist.suppressRatio, unit, 'a fraction above 0 and at most 1'),
      suppressFactor: numberFlag(cmd, 'ist-suppress-factor', d.ist.suppressFactor, (n) => n >= 0 && n <= 1, 'a number from 0 to 1'),
      scoreLr: numberFlag(cmd, 'ist-score-lr', d.ist.scoreLr, (n) => n >= 0, 'a number ≥ 0'),
      batchSize: intFlag(cmd, 'ist-batch-size', d.ist.batchSize, 1)!,
    },
    optimizer: choice(cmd, 'optimizer', ['adamw', 'sgd'] as const, d.optimizer),
    lr: numberFlag(cmd, 'lr', d.lr, (n) => n >= 0, 'a number ≥ 0'),
    weightDecay: numberFlag(cmd, 'weight-decay', d.weightDecay, (n) => n >= 0, 'a number ≥ 0'),
    beta1: d.beta1,
    beta2: d.beta2,
    eps: d.eps,
    momentum: numberFlag(cmd, 'momentum', d.momentum, (n) => n >= 0 && n < 1, 'a number from 0 to below 1'),
    warmup: intFlag(cmd, 'warmup', d.warmup, 0)!,
    schedule: choice(cmd, 'schedule', ['constant', 'linear', 'cosine'] as const, d.schedule),
    clip: numberFlag(cmd, 'clip', d.clip, (n) => n >= 0, 'a number ≥ 0 (0 = off)'),
    steps: stepsGiven ? intFlag(cmd, 'steps', undefined, 1)! : epochsGiven ? null : (rec.steps ?? null),
    epochs: stepsGiven ? null : epochsGiven ? numberFlag(cmd, 'epochs', 1, (n) => n > 0, 'a number > 0') : rec.steps !== undefined ? null : (rec.epochs ?? d.epochs),
    batchSize: intFlag(cmd, 'batch-size', d.batchSize, 1)!,
    gradAccum: intFlag(cmd, 'grad-accum', d.gradAccum, 1)!,
    seqLen: intFlag(cmd, 'seq-len', undefined, 2) ?? rec.seqLen ?? null,
    seed: intFlag(cmd, 'seed', d.seed, 0)!,
    shuffle: cmd.values['no-shuffle'] !== true,
    lossOnPrompt: cmd.values['loss-on-prompt'] === true,
    initAdapter,
    checkpointEvery: intFlag(cmd, 'checkpoint-every', d.checkpointEvery, 1)!,
    provider: choice(cmd, 'ep', ['auto', 'cpu', 'cuda'] as const, d.provider),
    threads: threads ?? null,
  };
}

function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** Progress on stderr: a bar redrawn in place on a terminal, plain lines otherwise. */
function progressPrinter(io: { err(t: string): void; isTTY: boolean }) {
  let barShown = false;
  const endBar = () => {
    if (barShown) process.stderr.write('\n');
    barShown = false;
  };
  return (p: TuneProgress) => {
    switch (p.kind) {
      case 'status':
        endBar();
        io.err(p.message);
        return;
      case 'started':
        endBar();
        io.err(`Tuning ${p.parameterCount} parameters in layers ${p.tunableLayers.join(', ')} on ${p.provider.toUpperCase()} (${p.providerReason}); ${p.examples} examples, sequences of ${p.seqLen}, updates ${p.startStep + 1}–${p.totalSteps}.`);
        return;
      case 'evaluated':
        endBar();
        io.err(`Held-out loss ${p.when} tuning: ${p.loss.toFixed(5)} over ${p.tokens} tokens.`);
        return;
      case 'importance':
        endBar();
        io.err(`IST importance update at step ${p.step}: scores ${p.scores.map((s) => s.toFixed(4)).join(', ')}`);
        return;
      case 'checkpoint':
        return;
      case 'step': {
        const n = p.step + 1;
        const text = `step ${n}/${p.totalSteps} loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(2)} layers ${p.selected.join(',')} ${Math.round(p.tokensPerSecond)} tok/s ETA ${fmtDuration(p.etaSeconds)}`;
        if (io.isTTY) {
          const width = 24;
          const filled = Math.round((n / p.totalSteps) * width);
          process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K`);
          barShown = true;
          if (n === p.totalSteps) endBar();
        } else {
          const every = Math.max(1, Math.ceil(p.totalSteps / 100));
          if (n % every === 0 || n === p.totalSteps || p.step === 0) io.err(text);
        }
      }
    }
  };
}

const BAD_INPUT = new Set(['RangeError', 'FormatError', 'DataFileError', 'UnsupportedModelError', 'ServiceError', 'UsageError']);

const sentence = (s: string): string => (/[.!?]$/.test(s) ? s : `${s}.`);

/**
 * Verifies --emulator strictly before anything is trained: one already in the data folder is
 * verified again in place; any other is imported (copied to staging, verified there, filed), and
 * the run uses the imported copy. A failure is exit 3 with the failed step.
 */
async function prepareEmulator(cmd: ParsedCommand, io: CliIO, pkg: string): Promise<PreparedEmulator> {
  const allow = cmd.values['allow-unsigned'] === true;
  const reason = typeof cmd.values.reason === 'string' ? cmd.values.reason.trim() : '';
  if (allow && !reason) throw new UsageError('--allow-unsigned needs --reason TEXT saying why this emulator is accepted without a trusted signature (it goes into the audit log).');
  if (!allow && cmd.values.reason !== undefined) throw new UsageError('--reason is only used with --allow-unsigned.');
  const src = resolve(pkg);
  if (!existsSync(src)) throw new UsageError(`The emulator package ${pkg} does not exist.`);
  const trustedKeys = trustedKeysFor(cmd.home, list(cmd.values.trust));
  const override = allow ? { reason } : undefined;
  if (isImportedEmulator(cmd.home, src)) {
    const report = await verifyEmulatorPackage(src, { trustedKeys, home: cmd.home, signal: io.signal, ...(override ? { allowUnsigned: override } : {}) });
    if (!report.ok || report.manifest?.kind !== 'emulator' || !report.manifestSha256) throw new VerificationError(`${sentence(report.verdict)} Nothing was tuned.`);
    io.err(sentence(report.verdict));
    return { path: src, manifest: report.manifest, ref: { manifestSha256: report.manifestSha256, signerKeyId: report.signer?.keyId ?? null, override: report.override?.reason ?? null } };
  }
  io.err(`Verifying and importing the emulator package ${pkg}…`);
  const r = await importPackage(cmd.home, src, { trustedKeys, kind: 'emulator', signal: io.signal, ...(override ? { override } : {}) });
  const report = r.report;
  if (!r.ok || !r.path || report.manifest?.kind !== 'emulator' || !report.manifestSha256) {
    throw new VerificationError(`${sentence(report.verdict)} Nothing was tuned (audit event #${r.event.seq} ${r.event.action}).`);
  }
  io.err(`${sentence(report.verdict)} Imported as ${r.path} (audit event #${r.event.seq}).`);
  return { path: r.path, manifest: report.manifest, ref: { manifestSha256: report.manifestSha256, signerKeyId: report.signer?.keyId ?? null, override: report.override?.reason ?? null } };
}

/** The training summary an adapter package carries (never the data itself). */
function trainingSummary(runId: string, c: TuneConfig, r: TuneResult): { [key: string]: JsonValue } {
  return {
    runId,
    peft: r.peft,
    sampler: c.sampler,
    steps: r.stepsDone,
    finalLoss: r.finalLoss,
    tunedBlocks: r.tunableLayers,
    layerMapping: (r.layerMapping ?? []).map((m) => ({ adapterLayer: m.adapterLayer, modelLayer: m.modelLayer })),
    ...(r.peft === 'lora' ? { rank: c.rank, alpha: c.alpha, targets: c.targets } : {}),
  };
}

async function signingKeyFlag(cmd: ParsedCommand): Promise<PackageSigningKey | null> {
  const v = cmd.values['sign-key'];
  if (v === undefined) return null;
  if (typeof v !== 'string' || v === '') throw new UsageError('--sign-key needs the private KEYFILE written by "offsite keygen".');
  if (!existsSync(v)) throw new UsageError(`The signing key ${v} does not exist; create one with offsite keygen --out KEYFILE.`);
  try {
    return await readPackageSigningKey(v);
  } catch (e) {
    if (e instanceof FormatError) throw new UsageError(e.message);
    throw e;
  }
}

export const tuneCommand: Command = {
  name: 'tune',
  summary: 'tune an adapter (LoRA or full layers, optionally with IST) on local data',
  usage: USAGE,
  options: FLAGS,
  async run(cmd, io) {
    const resumeDir = cmd.values.resume as string | undefined;
    let resumedConfig: TuneConfig | null = null;
    if (resumeDir !== undefined) {
      const extra = Object.keys(cmd.values).filter((k) => cmd.values[k] !== undefined && !['resume', 'json', 'home', 'help', 'sign-key'].includes(k));
      if (extra.length) throw new UsageError(`--resume continues with the run's saved settings; leave out --${extra[0]}.`);
      try {
        resumedConfig = (JSON.parse(readFileSync(join(resumeDir, RUN_FILE), 'utf8')) as { config?: TuneConfig }).config ?? null;
      } catch {
        resumedConfig = null; // runs.resume says what is wrong with the folder
      }
      if (cmd.values['sign-key'] !== undefined && !resumedConfig?.emulator) throw new UsageError('--sign-key packages an adapter tuned on an emulator; this run folder holds no emulator run.');
    } else {
      const model = cmd.values.model;
      const emulator = cmd.values.emulator;
      if (model === undefined && emulator === undefined) throw new UsageError('--model MODEL (a Hugging Face model folder or a llama2.c .bin file) or --emulator PKG (an emulator package) is required.');
      if (model !== undefined && emulator !== undefined) throw new UsageError('Give either --model MODEL or --emulator PKG, not both.');
      if (emulator === undefined) {
        const stray = ['trust', 'allow-unsigned', 'reason', 'sign-key'].find((k) => cmd.values[k] !== undefined);
        if (stray) throw new UsageError(`--${stray} applies to --emulator only${stray === 'sign-key' ? ' (an adapter package references the emulator it was tuned on)' : ''}.`);
      }
      if (typeof emulator === 'string' && emulator === '') throw new UsageError('--emulator needs the emulator package folder.');
    }
    // Read the signing key before training, so a bad key fails in seconds, not after the run.
    const signingKey = await signingKeyFlag(cmd);
    let emu: PreparedEmulator | null = null;
    if (resumeDir === undefined && typeof cmd.values.emulator === 'string') {
      try {
        emu = await prepareEmulator(cmd, io, cmd.values.emulator);
      } catch (e) {
        if (e instanceof ServiceError) throw new UsageError(e.message);
        if ((e as Error)?.name === 'AbortError') throw new CancelledError('Cancelled while verifying the emulator; nothing was tuned.');
        throw e;
      }
      const ignored = recommendedSettings(emu.manifest).ignored;
      if (ignored.length) io.err(`The emulator's recommendedTuning has settings this version does not use: ${ignored.join(', ')}.`);
    }
    const runs = openRuns(cmd.home);
    const print = progressPrinter(io);
    try {
      const config = resumeDir !== undefined ? resumedConfig : await configFromFlags(cmd, emu);
      const started = resumeDir !== undefined ? await runs.resume(resumeDir) : await runs.start(config!);
      const off = runs.onProgress((e) => {
        if (e.runId === started.runId) print(e.progress);
      });
      const onAbort = () => runs.cancel(started.runId);
      io.signal.addEventListener('abort', onAbort);
      let outcome: RunOutcome;
      try {
        outcome = await started.done;
      } finally {
        io.signal.removeEventListener('abort', onAbort);
        off();
      }
      const out = runs.get(started.runId)?.output ?? resumeDir ?? '';
      if (outcome.status === 'cancelled') {
        const r = outcome.result;
        throw new CancelledError(`Tuning stopped${r ? ` after ${r.stepsDone} of ${r.totalSteps} updates` : ''}; a checkpoint is in ${join(out, 'checkpoint')}. Continue with: offsite tune --resume ${out}`);
      }
      if (outcome.status === 'failed') {
        if (outcome.errorName && BAD_INPUT.has(outcome.errorName)) throw new UsageError(outcome.error);
        throw new Error(outcome.error);
      }
      const r = outcome.result;
      let adapterPackage: Awaited<ReturnType<typeof buildAdapterPackage>> | null = null;
      if (signingKey && config?.emulator && r.adapter) {
        io.err('Writing the signed adapter package…');
        adapterPackage = await buildAdapterPackage(cmd.home, {
          adapterDir: r.adapter,
          emulatorDir: config.model,
          out: join(out, ADAPTER_PACKAGE_DIR),
          signingKey,
          training: trainingSummary(started.runId, config, r),
          runId: started.runId,
        });
      }
      if (cmd.json) {
        io.out(
          JSON.stringify({
            runId: started.runId,
            adapter: r.adapter,
            finalLoss: r.finalLoss,
            tokensPerSecond: r.tokensPerSecond,
            steps: r.steps.map((s) => ({ step: s.step, loss: s.loss, lr: s.lr, selected: s.selected })),
            importance: r.importance,
            tunableLayers: r.tunableLayers,
            evalLossBefore: r.evalLossBefore,
            evalLossAfter: r.evalLossAfter,
            peft: r.peft,
            parameterCount: r.parameterCount,
            executionProvider: r.provider,
            ...(config?.emulator ? { emulator: { manifestSha256: config.emulator.manifestSha256, signerKeyId: config.emulator.signerKeyId, override: config.emulator.override, path: config.model }, layerMapping: r.layerMapping ?? [] } : {}),
            ...(adapterPackage ? { adapterPackage: { path: adapterPackage.dir, manifestSha256: adapterPackage.manifestSha256, signerKeyId: adapterPackage.signerKeyId, auditSeq: adapterPackage.event.seq } } : {}),
          }),
        );
      } else {
        const lines = [`Adapter written to ${r.adapter} (run ${started.runId}).`, `${r.stepsDone} updates, final batch loss ${r.finalLoss?.toFixed(5) ?? '—'}, ${Math.round(r.tokensPerSecond)} tokens/s on ${r.provider.toUpperCase()}.`];
        if (r.evalLossBefore !== null && r.evalLossAfter !== null) lines.push(`Held-out loss ${r.evalLossBefore.toFixed(5)} → ${r.evalLossAfter.toFixed(5)}.`);
        if (r.layerMapping?.length) lines.push(`Emulator blocks → full-model layers: ${r.layerMapping.map((m) => `${m.adapterLayer} → ${m.modelLayer}`).join(', ')} (offsite plugin maps them through the emulator's layer map).`);
        if (adapterPackage) lines.push(`Signed adapter package: ${adapterPackage.dir} (manifest ${adapterPackage.manifestSha256.slice(0, 16)}…, key ${adapterPackage.signerKeyId}, audit event #${adapterPackage.event.seq}).`);
        io.out(lines.join('\n'));
      }
      return 0;
    } finally {
      runs.close();
    }
  },
};
