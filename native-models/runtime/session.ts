// ORT session factory: one place that turns a model (bytes or a path, with its external data) and
// the user's settings (execution provider, threads, optimisation level, memory options) into an
// InferenceSession, and says which execution provider it ended up on.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { chooseProvider, defaultThreads, type ProviderChoice, type ProviderRequest } from './providers';

export type GraphOptimization = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionSettings {
  /** Execution provider wanted ('auto' = CUDA when its libraries load, else CPU). */
  provider?: ProviderRequest;
  /** Threads inside one operator (default: all cores). */
  intraOpThreads?: number;
  /** Threads across independent operators (only used with executionMode 'parallel'; default 1). */
  interOpThreads?: number;
  executionMode?: 'sequential' | 'parallel';
  graphOptimization?: GraphOptimization;
  /** ORT's CPU memory arena (default on): faster repeated runs, higher resident memory. */
  memoryArena?: boolean;
  /**
   * ORT's memory pattern planner (default off). It preallocates one block per input shape for all
   * intermediates; measured on the LoRA train step (test/bench/ab-step.ts, 2 cores) it cost
   * 30% more resident memory (d 512: 1262 → 882 MiB; d 768: 2314 → 1854 MiB) for no step-time gain
   * (the CPU arena already reuses freed buffers between runs).
   */
  memoryPattern?: boolean;
  /**
   * Whether idle intra-op worker threads spin-wait for the next parallel section (ORT's
   * session.intra_op.allow_spinning). Spinning saves wake-up latency on an idle machine; on
   * oversubscribed cores the spinning threads steal time from the ones doing work.
   */
  spinning?: boolean;
  /** 0 verbose … 4 fatal (default 3: errors only). */
  logSeverity?: 0 | 1 | 2 | 3 | 4;
}

export interface ExternalDataFile {
  /** The relative file name the model refers to (e.g. "weights.bin"). */
  name: string;
  data: Uint8Array;
}

export type ModelSource =
  /** A model file; its external data files are read from the same folder. */
  | { path: string }
  /** Model bytes in memory; every external data file it refers to must be given with its bytes. */
  | { bytes: Uint8Array; externalData?: ExternalDataFile[] };

export interface OpenedSession {
  session: ort.InferenceSession;
  provider: ProviderChoice;
  /** The settings actually applied (defaults filled in), for logs and audit events. */
  settings: Required<Omit<SessionSettings, 'provider'>>;
}

export function resolveSettings(s: SessionSettings = {}): Required<Omit<SessionSettings, 'provider'>> {
  const intra = s.intraOpThreads ?? defaultThreads();
  const inter = s.interOpThreads ?? 1;
  for (const [label, n] of [['intra-op threads', intra], ['inter-op threads', inter]] as const) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`The number of ${label} must be a whole number of at least 1 (got ${n}).`);
  }
  return {
    intraOpThreads: intra,
    interOpThreads: inter,
    executionMode: s.executionMode ?? 'sequential',
    graphOptimization: s.graphOptimization ?? 'all',
    memoryArena: s.memoryArena ?? true,
    memoryPattern: s.memoryPattern ?? false,
    spinning: s.spinning ?? true,
    logSeverity: s.logSeverity ?? 3,
  };
}

/** ORT session options for `settings`, with the execution provider list for `provider`. */
export function ortSessionOptions(provider: ProviderChoice, settings: Required<Omit<SessionSettings, 'provider'>>): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider.chosen === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    intraOpNumThreads: settings.intraOpThreads,
    interOpNumThreads: settings.interOpThreads,
    executionMode: settings.executionMode,
    graphOptimizationLevel: settings.graphOptimization,
    enableCpuMemArena: settings.memoryArena,
    enableMemPattern: settings.memoryPattern,
    logSeverityLevel: settings.logSeverity,
    extra: { session: { intra_op: { allow_spinning: settings.spinning ? '1' : '0' } } },
  };
}

/**
 * Opens an inference session. Errors name the model and say what to check. When CUDA was chosen
 * but its provider fails to load (missing CUDA/cuDNN runtime, no device), the session opens on the
 * CPU and the returned provider says so.
 */
export async function openSession(source: ModelSource, settings: SessionSettings = {}): Promise<OpenedSession> {
  const provider = chooseProvider(settings.provider ?? 'auto');
  const applied = resolveSettings(settings);
  if (provider.chosen === 'cuda') {
    try {
      return await openWith(source, provider, applied);
    } catch (e) {
      const cpu: ProviderChoice = { ...provider, chosen: 'cpu', reason: `CUDA provider libraries are installed but failed to load (${errorText(e)}); running on CPU.` };
      return openWith(source, cpu, applied);
    }
  }
  return openWith(source, provider, applied);
}

async function openWith(source: ModelSource, provider: ProviderChoice, applied: Required<Omit<SessionSettings, 'provider'>>): Promise<OpenedSession> {
  const options = ortSessionOptions(provider, applied);
  let session: ort.InferenceSession;
  if ('path' in source) {
    if (!existsSync(source.path) || !statSync(source.path).isFile()) throw new Error(`The model file ${source.path} does not exist.`);
    try {
      // From a path ORT resolves external data files relative to the model's own folder.
      session = await ort.InferenceSession.create(source.path, options);
    } catch (e) {
      throw new Error(`Could not load the model ${basename(source.path)}: ${errorText(e)}`);
    }
  } else {
    const externalData = (source.externalData ?? []).map((f) => {
      checkExternalName(f.name);
      return { path: f.name, data: f.data };
    });
    try {
      session = await ort.InferenceSession.create(source.bytes, externalData.length ? { ...options, externalData } : options);
    } catch (e) {
      throw new Error(`Could not load the model from memory: ${errorText(e)}${externalData.length ? '' : ' (if it refers to external data files, pass each one with its bytes)'}`);
    }
  }
  return { session, provider, settings: applied };
}

/** Reads a model and the external data files sitting beside it into memory (for `openSession({bytes})`). */
export function readModelWithExternalData(modelPath: string, externalNames: string[]): { bytes: Uint8Array; externalData: ExternalDataFile[] } {
  const folder = dirname(modelPath);
  return {
    bytes: readFileSync(modelPath),
    externalData: externalNames.map((name) => {
      checkExternalName(name);
      return { name, data: readFileSync(join(folder, name)) };
    }),
  };
}

// External data may only be a plain relative file name beside the model (SECURITY.md).
function checkExternalName(name: string): void {
  if (!name || isAbsolute(name) || name.includes('/') || name.includes('\\') || name.startsWith('.')) {
    throw new Error(`External data file "${name}" must be a plain file name beside the model.`);
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
