/**
 * Tuning runs: start, cancel, resume, list, get. Plain Node (no Electron import), shared by the
 * app's IPC gateway and the CLI.
 *
 *   const runs = openRuns(home);
 *   const off = runs.onProgress(({ runId, progress }) => …);   // event channel "job.progress"
 *   const { runId, done } = await runs.start(config);            // run.started is written first
 *   runs.cancel(runId);                                          // stops within one step, checkpoint kept
 *   const outcome = await done;                                  // { status, result | error }
 *   const again = await runs.resume(config.out);                 // continues from the checkpoint
 *   runs.list(); runs.get(runId);                                 // audit rows + live progress
 *   runs.close();
 *
 * Each run trains in a worker thread (native-models/tune/worker.ts via runtime/jobs startJob); the
 * main thread only relays progress, stores per-step metrics in batches (audit.recordMetrics) and
 * writes the run's audit events: run.started (config, model / data / initial adapter hashes, app
 * version, machine, execution provider) and run.finished / run.cancelled / run.failed with the
 * hashes of what is on disk (the adapter folder, the checkpoint). A worker crash only fails its run.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { startJob, type JobHandle } from '../../native-models/runtime/jobs';
import { chooseProvider } from '../../native-models/runtime/providers';
import { checkTuneConfig, type TuneConfig } from '../../native-models/tune/config';
import { adapterDir, checkpointDir, type TuneProgress, type TuneResult } from '../../native-models/tune/engine';
import type { TuneJobInput } from '../../native-models/tune/worker';
import { writeFileAtomic } from './atomic-write';
import { openAudit, type AuditLog, type JsonValue, type RunRecord } from './audit';
import { hashFile, hashPath, type Digest } from './hashing';
import { ServiceError } from './service-error';
import { jobWorker } from './job-workers';

export const RUN_FILE = 'run.json';
const RUN_FORMAT = 'offsite-tune-run';

/** The event the UI subscribes to ("job.progress"). */
export interface RunProgressEvent {
  runId: string;
  progress: TuneProgress;
}

export type RunOutcome =
  | { runId: string; status: 'finished'; result: TuneResult }
  /** Stopped by cancel (or a scripted stop): `result` describes the checkpoint to resume from. */
  | { runId: string; status: 'cancelled'; result: TuneResult | null }
  | { runId: string; status: 'failed'; error: string; errorName: string | undefined };

export interface StartedRun {
  runId: string;
  /** Settles when the run ends; never rejects. */
  done: Promise<RunOutcome>;
}

export interface RunView extends RunRecord {
  /** True while this process runs it. */
  live: boolean;
  /** The latest step progress of a live run. */
  lastStep: Extract<TuneProgress, { kind: 'step' }> | null;
}

interface RunFile {
  format: typeof RUN_FORMAT;
  version: 1;
  runId: string;
  config: TuneConfig;
  inputs: Record<string, Digest>;
}

export interface RunsOptions {
  /** The worker module (default: native-models/tune/worker.ts beside this source tree). */
  workerModule?: URL;
  /** Extra job settings for tests: stop after this many updates, as a cancel would. */
  stopAfterSteps?: number;
}


export class RunsService {
  private readonly audit: AuditLog;
  private readonly live = new Map<string, { handle: JobHandle<TuneResult>; lastStep: RunView['lastStep'] }>();
  private readonly listeners = new Set<(e: RunProgressEvent) => void>();

  constructor(readonly home: string, private readonly options: RunsOptions = {}) {
    this.audit = openAudit(home);
  }

  /** Subscribes to progress of every run; returns the unsubscribe function. */
  onProgress(listener: (e: RunProgressEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts a new run into `config.out` (which must be missing or empty). */
  async start(input: TuneConfig, opts: { stopAfterSteps?: number } = {}): Promise<StartedRun> {
    const config = absolutePaths(input);
    try {
      checkTuneConfig(config);
    } catch (e) {
      throw new ServiceError((e as Error).message);
    }
    const outStat = await stat(config.out).catch(() => undefined);
    if (outStat && (!outStat.isDirectory() || (await readdir(config.out)).length > 0)) {
      throw new ServiceError(`The output folder ${config.out} already exists and is not empty; choose a new folder, or resume it with --resume.`);
    }
    const inputs = await hashInputs(config);
    const runId = randomUUID();
    const file: RunFile = { format: RUN_FORMAT, version: 1, runId, config, inputs };
    await mkdir(config.out, { recursive: true });
    writeFileAtomic(join(config.out, RUN_FILE), `${JSON.stringify(file, null, 2)}\n`);
    return this.launch(file, false, opts.stopAfterSteps ?? this.options.stopAfterSteps);
  }

  /** Continues the run in folder `out` from its checkpoint (same model and data, unchanged). */
  async resume(out: string, opts: { stopAfterSteps?: number } = {}): Promise<StartedRun> {
    const dir = resolve(out);
    const file = await readRunFile(dir);
    if (this.live.has(file.runId)) throw new ServiceError(`Run ${file.runId} is already running.`);
    if (!existsSync(join(checkpointDir(dir), 'checkpoint.json'))) throw new ServiceError(`${dir} has no checkpoint to resume from.`);
    const now = await hashInputs(file.config);
    for (const [k, d] of Object.entries(file.inputs)) {
      if (now[k]?.sha256 !== d.sha256) throw new ServiceError(`The ${k} file changed since run ${file.runId} started (SHA-256 differs); resuming needs the same ${k}.`);
    }
    // The folder may have moved: its own location wins over the recorded one.
    return this.launch({ ...file, config: { ...file.config, out: dir } }, true, opts.stopAfterSteps ?? this.options.stopAfterSteps);
  }

  /** Asks a live run to stop at its next step boundary (a checkpoint is written). */
  cancel(runId: string): boolean {
    const r = this.live.get(runId);
    if (!r) return false;
    r.handle.cancel();
    return true;
  }

  list(): RunView[] {
    return this.audit.runs().map((r) => this.view(r));
  }

  get(runId: string): RunView | undefined {
    const r = this.audit.run(runId);
    return r ? this.view(r) : undefined;
  }

  /** Stored per-step metrics of a run (loss curve, selected layers, importance heat map). */
  metrics(runId: string) {
    return this.audit.metrics(runId);
  }

  close(): void {
    for (const r of this.live.values()) r.handle.cancel();
    this.audit.close();
  }

  private view(r: RunRecord): RunView {
    const l = this.live.get(r.id);
    return { ...r, live: Boolean(l), lastStep: l?.lastStep ?? null };
  }

  private emit(e: RunProgressEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // a failing listener must not stop the run or the other listeners
      }
    }
  }

  private async launch(file: RunFile, resume: boolean, stopAfterSteps: number | undefined): Promise<StartedRun> {
    const { runId, config } = file;
    const provider = chooseProvider(config.provider).chosen;
    let resumedFrom: number | null = null;
    if (resume) {
      const meta = JSON.parse(await readFile(join(checkpointDir(config.out), 'checkpoint.json'), 'utf8')) as { step?: unknown };
      resumedFrom = typeof meta.step === 'number' ? meta.step : null;
    }
    const em = config.emulator ?? null;
    this.audit.startRun({
      runId,
      kind: 'tune',
      config: config as unknown as Record<string, JsonValue>,
      // An emulator run names the package by its manifest hash (its identity) besides the folder digest.
      inputs: em ? { ...file.inputs, emulator: em.manifestSha256 } : file.inputs,
      output: config.out,
      executionProvider: provider,
      ...(em ? { emulatorId: em.manifestSha256 } : {}),
      ...(em?.override ? { reason: em.override } : {}),
      details: {
        resumed_from_step: resumedFrom ?? undefined,
        model_name: basename(config.model),
        data_name: basename(config.data),
        ...(em ? { emulator: { manifest_sha256: em.manifestSha256, signer_key_id: em.signerKeyId, override: em.override, adapter_blocks: config.layers } } : {}),
      },
    });
    const jobInput: TuneJobInput = { config, options: { resume, ...(stopAfterSteps !== undefined ? { stopAfterSteps } : {}) } };
    const entry = { handle: undefined as unknown as JobHandle<TuneResult>, lastStep: null as RunView['lastStep'] };
    entry.handle = startJob<TuneJobInput, TuneProgress, TuneResult>(this.options.workerModule ?? jobWorker('tune'), jobInput, {
      name: `tune ${runId}`,
      onProgress: (p) => {
        if (p.kind === 'step') {
          entry.lastStep = p;
          this.audit.recordMetrics(runId, [{ step: p.step, loss: p.loss, lr: p.lr, tokensPerSecond: p.tokensPerSecond, selected: p.selected, importance: p.importance }]);
        }
        this.emit({ runId, progress: p });
      },
    });
    this.live.set(runId, entry);
    const done = entry.handle.result.then(async (outcome): Promise<RunOutcome> => {
      this.live.delete(runId);
      const ck = checkpointDir(config.out);
      const ckOutputs = async (): Promise<Record<string, Digest>> => (existsSync(join(ck, 'checkpoint.json')) ? { checkpoint: await hashPath(ck) } : {});
      try {
        if (outcome.status === 'done' && outcome.value.status === 'finished') {
          const result = outcome.value;
          this.audit.finishRun(runId, 'finished', { outputs: { adapter: await hashPath(adapterDir(config.out)), ...(await ckOutputs()) }, result: summary(result), executionProvider: result.provider });
          return { runId, status: 'finished', result };
        }
        if (outcome.status === 'cancelled' || (outcome.status === 'done' && outcome.value.status === 'cancelled')) {
          const result = outcome.status === 'done' ? outcome.value : (outcome.value ?? null);
          this.audit.finishRun(runId, 'cancelled', {
            outputs: await ckOutputs(),
            result: result ? { ...summary(result), resumable: true } : { resumable: existsSync(join(ck, 'checkpoint.json')) },
            reason: outcome.status === 'cancelled' && outcome.forced ? 'the job was stopped without waiting for its step to end' : 'cancelled by the user',
            executionProvider: result?.provider ?? provider,
          });
          return { runId, status: 'cancelled', result };
        }
        const err = outcome.status === 'failed' ? outcome.error : { message: 'The run ended in an unexpected state.', name: undefined };
        this.audit.finishRun(runId, 'failed', { outputs: await ckOutputs(), error: err.message, executionProvider: provider });
        return { runId, status: 'failed', error: err.message, errorName: err.name };
      } catch (e) {
        // Recording the end failed (e.g. the disk is full): the run still ends, with that error.
        return { runId, status: 'failed', error: `The run ended but its audit event could not be written: ${(e as Error).message}`, errorName: (e as Error).name };
      }
    });
    return { runId, done };
  }
}

/** One RunsService per home in a process (they share the audit writer anyway). */
export function openRuns(home: string, options: RunsOptions = {}): RunsService {
  return new RunsService(home, options);
}

function absolutePaths(c: TuneConfig): TuneConfig {
  return {
    ...c,
    model: resolve(c.model),
    data: resolve(c.data),
    out: resolve(c.out),
    evalData: c.evalData ? resolve(c.evalData) : null,
    initAdapter: c.initAdapter ? resolve(c.initAdapter) : null,
  };
}

/** SHA-256 of every input file (a model or adapter folder hashes as its listing of file hashes). */
async function hashInputs(c: TuneConfig): Promise<Record<string, Digest>> {
  const need = async (label: string, path: string, folderOk: boolean) => {
    const st = await stat(path).catch(() => undefined);
    if (!st) throw new ServiceError(`The ${label} ${path} does not exist.`);
    if (!folderOk && !st.isFile()) throw new ServiceError(`The ${label} ${path} is not a file.`);
    return st.isFile() ? hashFile(path) : hashPath(path);
  };
  const out: Record<string, Digest> = { model: await need('model', c.model, true), data: await need('data file', c.data, false) };
  if (c.evalData) out.evalData = await need('evaluation data file', c.evalData, false);
  if (c.initAdapter) out.initAdapter = await need('initial adapter', c.initAdapter, true);
  return out;
}

async function readRunFile(dir: string): Promise<RunFile> {
  let text: string;
  try {
    text = await readFile(join(dir, RUN_FILE), 'utf8');
  } catch {
    throw new ServiceError(`${dir} is not a tuning run folder (it has no ${RUN_FILE}).`);
  }
  let file: RunFile;
  try {
    file = JSON.parse(text) as RunFile;
  } catch (e) {
    throw new ServiceError(`${join(dir, RUN_FILE)} is not valid JSON (${(e as Error).message}).`);
  }
  if (file.format !== RUN_FORMAT || file.version !== 1 || typeof file.runId !== 'string' || !file.config) throw new ServiceError(`${join(dir, RUN_FILE)} is not a run description this version can read.`);
  return file;
}

/** The run result as recorded in the audit log (no per-step history: that is in the metrics). */
function summary(r: TuneResult): Record<string, JsonValue> {
  return {
    status: r.status,
    steps_done: r.stepsDone,
    total_steps: r.totalSteps,
    final_loss: r.finalLoss,
    tokens_per_second: r.tokensPerSecond,
    eval_loss_before: r.evalLossBefore,
    eval_loss_after: r.evalLossAfter,
    tunable_layers: r.tunableLayers,
    importance: r.importance,
    peft: r.peft,
    parameter_count: r.parameterCount,
    ...(r.layerMapping ? { layer_mapping: r.layerMapping.map((m) => ({ adapter_layer: m.adapterLayer, model_layer: m.modelLayer })) } : {}),
  };
}
