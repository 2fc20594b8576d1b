// The one IPC contract between the renderer and the main process. Every channel the renderer may
// call is listed in `requests` (its zod request schema) and `Responses` (its response type); every
// event the main process may push is listed in `events`. Main (gateway), preload and renderer
// types all derive from this file, so adding a feature means adding its channels here and its
// handler in ./handlers.ts — nothing else has to learn the new names.
//
// Channel names are `namespace.method` (one dot); the renderer calls them as
// `window.offsite.namespace.method(request)`. This file must stay importable from the renderer
// (type-only) and from the e2e bridge, so it imports nothing but zod (and schemas.ts and its sibling
// *-contract.ts files, which import nothing else either).
//
// Every channel also declares in `channelFlags` whether it mutates: starts a job or changes the
// data folder (settings, keys, imports, exports, runs). The gateway refuses mutating channels
// while auditor mode is on. The compiler insists that every channel makes that choice.
import { z } from 'zod';
import { noRequest } from './schemas';
import { auditChannelFlags, auditRequests, type AuditResponses } from './audit-contract';
import { datasetChannelFlags, datasetRequests, type DatasetResponses } from './datasets-contract';
import { evalChannelFlags, evalRequests, type EvalResponses } from './eval-contract';
import { emulatorChannelFlags, emulatorRequests, type EmulatorResponses } from './emulators-contract';
import { runsChannelFlags, runsRequests, type RunsResponses } from './runs-contract';
import { buildChannelFlags, buildRequests, type BuildResponses } from './build-contract';
import { demoChannelFlags, demoRequests, type DemoResponses } from './demo-contract';
import { modelsChannelFlags, modelsRequests, type ModelsResponses } from './models-contract';

export * from './audit-contract';
export * from './datasets-contract';
export * from './eval-contract';
export * from './emulators-contract';
export * from './runs-contract';
export * from './build-contract';
export * from './demo-contract';
export * from './models-contract';

// ── Shared schemas ───────────────────────────────────────────────────────────────────────────

export const ROLES = ['model-owner', 'data-owner', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export const EXECUTION_PROVIDER_REQUESTS = ['auto', 'cpu', 'cuda'] as const;
export type ExecutionProviderRequest = (typeof EXECUTION_PROVIDER_REQUESTS)[number];

export const MAX_THREADS = 1024;
export const MAX_USER_NAME = 80;

const THREADS_SENTENCE = `Threads must be "auto" or a whole number from 1 to ${MAX_THREADS}.`;

/** Every setting, with its validation sentence (shown to the user as written). */
export const settingsSchema = z.object({
  /** The role chosen on Home; null until the user picks one. */
  role: z.enum(ROLES, { error: 'Role must be model owner, data owner or auditor.' }).nullable(),
  /** The app user recorded in audit events next to the OS user. */
  userName: z
    .string({ error: 'User name must be text.' })
    .trim()
    .max(MAX_USER_NAME, { error: `User name must be at most ${MAX_USER_NAME} characters.` })
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { error: 'User name must not contain control characters.' }),
  executionProvider: z.enum(EXECUTION_PROVIDER_REQUESTS, { error: 'Execution provider must be auto, cpu or cuda.' }),
  /** Intra-op threads for engine sessions; "auto" uses every core the OS gives the app. */
  threads: z.union(
    [
      z.literal('auto'),
      z
        .number({ error: THREADS_SENTENCE })
        .int({ error: THREADS_SENTENCE })
        .min(1, { error: THREADS_SENTENCE })
        .max(MAX_THREADS, { error: THREADS_SENTENCE }),
    ],
    { error: THREADS_SENTENCE },
  ),
});
export type Settings = z.infer<typeof settingsSchema>;

export const DEFAULT_SETTINGS: Settings = { role: null, userName: '', executionProvider: 'auto', threads: 'auto' };

/** A change to some settings; keys not named keep their value. Unknown keys are refused. */
export const settingsPatchSchema = settingsSchema.partial().strict();
export type SettingsPatch = z.input<typeof settingsPatchSchema>;

export interface AppInfo {
  /** Offsite Studio's version (package.json). */
  version: string;
  /** onnxruntime-node's version. */
  onnxruntime: string;
  node: string;
  /** Electron's version, or null when the services run outside Electron (CLI, tests). */
  electron: string | null;
  platform: string;
  arch: string;
  executionProviders: {
    /** Providers whose libraries are present on this machine. */
    available: Array<'cpu' | 'cuda'>;
    requested: ExecutionProviderRequest;
    chosen: 'cpu' | 'cuda';
    /** A sentence saying why `chosen` was chosen. */
    reason: string;
  };
  /** Intra-op threads engine sessions will use. */
  threads: number;
  /** Where `threads` comes from: the user's setting or the default (every core). */
  threadsSource: 'setting' | 'default';
  /** Cores the OS gives the app. */
  cores: number;
  /** The data folder: audit database, keys, imported packages, runs, settings. */
  dataFolder: string;
}

// ── Request channels ─────────────────────────────────────────────────────────────────────────

/** Channel name → zod schema of its request. */
export const requests = {
  'app.info': noRequest,
  'settings.get': noRequest,
  'settings.set': settingsPatchSchema,
  ...auditRequests,
  ...datasetRequests,
  ...evalRequests,
  ...emulatorRequests,
  ...runsRequests,
  ...buildRequests,
  ...demoRequests,
  ...modelsRequests,
} as const;

/** Channel name → response type. Must name exactly the channels of `requests`. */
export interface Responses extends AuditResponses, DatasetResponses, EmulatorResponses, EvalResponses, RunsResponses, BuildResponses, DemoResponses, ModelsResponses {
  'app.info': AppInfo;
  'settings.get': Settings;
  'settings.set': Settings;
}

// ── Event channels (main → renderer) ─────────────────────────────────────────────────────────

/** Every long job (tuning, emulator building, evaluation, plug-in) reports on these. */
export const events = {
  'job.progress': z.object({
    jobId: z.string(),
    /** What kind of job: 'tune', 'emulator.build', 'eval', 'plugin', … */
    kind: z.string(),
    /** Steps done and the total, when the job knows them. */
    step: z.number().int().nonnegative(),
    total: z.number().int().positive().nullable(),
    /** A short sentence for the status line. */
    message: z.string(),
    /** Numbers the screen plots (loss, lr, tokens/s, …). */
    metrics: z.record(z.string(), z.number()),
    /** The job's own name for this report (tune: started, step, importance, evaluated, checkpoint, status). */
    stage: z.string().optional(),
    /** Vectors the screen draws (tune: selected layers, importance scores, tunable layers). */
    series: z.record(z.string(), z.array(z.number())).optional(),
    /** Text the screen shows as it grows (generate: the decoded output so far). */
    text: z.string().optional(),
  }),
  'job.finished': z.object({
    jobId: z.string(),
    kind: z.string(),
    outcome: z.enum(['done', 'failed', 'cancelled']),
    /** A sentence saying how the job ended (and what to do when it failed). */
    message: z.string(),
  }),
} as const;

// ── Derived types ────────────────────────────────────────────────────────────────────────────

export type Channel = keyof typeof requests;
export type EventName = keyof typeof events;
export type Request<C extends Channel> = z.input<(typeof requests)[C]>;
/** The request after validation (what the handler receives). */
export type ParsedRequest<C extends Channel> = z.output<(typeof requests)[C]>;
export type Response<C extends Channel> = Responses[C];
export type EventPayload<E extends EventName> = z.output<(typeof events)[E]>;

// Compile-time check that `requests` and `Responses` name the same channels.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const channelsMatch: Same<Channel, keyof Responses> = true;
void channelsMatch;

export interface ChannelFlags {
  /** Starts a job or changes the data folder; refused while auditor mode is on. */
  mutates: boolean;
}

/** Per-channel flags; `satisfies` makes a new channel without its flags a compile error. */
export const channelFlags = {
  'app.info': { mutates: false },
  'settings.get': { mutates: false },
  'settings.set': { mutates: true },
  ...auditChannelFlags,
  ...datasetChannelFlags,
  ...evalChannelFlags,
  ...emulatorChannelFlags,
  ...runsChannelFlags,
  ...buildChannelFlags,
  ...demoChannelFlags,
  ...modelsChannelFlags,
} as const satisfies Record<Channel, ChannelFlags>;

export const channels = Object.keys(requests) as Channel[];
export const eventNames = Object.keys(events) as EventName[];

export type ErrorCode =
  /** The call did not come from the app's own page. */
  | 'forbidden-sender'
  /** No such channel in this contract. */
  | 'unknown-channel'
  /** The request failed its schema; the message lists what is wrong. */
  | 'invalid-request'
  /** The service refused or failed with a sentence the user can act on. */
  | 'failed'
  /** Auditor mode is on and the channel would start a job or change the data folder. */
  | 'read-only'
  /** A bug: the message says where; the user should report it. */
  | 'internal'
  /** The renderer could not reach the main process at all. */
  | 'unreachable';

export interface IpcError {
  code: ErrorCode;
  /** A sentence a user can act on. */
  message: string;
}

export type IpcResult<T> = { ok: true; value: T } | { ok: false; error: IpcError };

// ── The renderer-facing API (`window.offsite`) ───────────────────────────────────────────────

type NamespaceOf<C> = C extends `${infer N}.${string}` ? N : never;
export type Namespace = NamespaceOf<Channel>;

type Call<C extends Channel> = [Request<C>] extends [undefined]
  ? () => Promise<IpcResult<Response<C>>>
  : (request: Request<C>) => Promise<IpcResult<Response<C>>>;

type MethodsOf<N extends string> = {
  readonly [C in Channel as C extends `${N}.${infer M}` ? M : never]: Call<C>;
};

/** `window.offsite`: one async function per channel, grouped by namespace, plus `on` for events. */
export type OffsiteApi = { readonly [N in Namespace]: MethodsOf<N> } & {
  /** Subscribe to a main-process event; returns the function that unsubscribes. */
  readonly on: <E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void) => () => void;
};
