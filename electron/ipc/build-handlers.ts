// Handlers of the emulatorBuild.* and plugin.run channels (see build-contract.ts). handlers.ts
// spreads them into the one handler map. A build runs in a worker thread (services/emulators.ts
// starts native-models/scaleot/worker.ts); this file keeps each build's history (loss per step,
// replaceability snapshots) so a screen opened mid-build can draw everything so far, relays every
// report as job.progress (kind "emulator.build") and the end as job.finished, sent once the end
// is in the audit trail. A plug-in also runs in the worker; it reports its phases as job.progress
// (kind "plugin") and answers with the tuned model's location and hashes.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BuildDefaultsView, BuildJobView, BuildResponses, BuildResultView, PlugInResultView } from './build-contract';
import type { EventPayload, ParsedRequest } from './contract';
import type { Handlers, Services } from './handlers';
import { readPackageManifest } from '../../native-models/formats/package';
import { BUILD_DEFAULTS, type BuildProgress } from '../../native-models/scaleot/build';
import { finalReplacement, groupsOf, replacedPerGroup, uniformKeptPositions } from '../../native-models/scaleot/plan';
import { listAdapters } from '../services/emulator-library';
import { buildEmulatorPackage, JobCancelledError, plugInAdapter, type BuiltEmulator } from '../services/emulators';
import { hashFolder, hashPath } from '../services/hashing';
import { importedPackagePath } from '../services/packages';
import { ServiceError } from '../services/service-error';

type BuildChannel = keyof BuildResponses;

export function buildDefaultsView(): BuildDefaultsView {
  const d = BUILD_DEFAULTS;
  return {
    method: d.method,
    adapterLayers: [...d.adapterLayers] as [number, number],
    alpha: d.alpha,
    beta: d.beta,
    groupSize: d.groupSize,
    steps: d.steps,
    batchSize: d.batchSize,
    seqLen: d.seqLen,
    seed: d.seed,
    kd: d.kd,
    interval: d.interval,
    candidates: d.candidates,
  };
}

// ── Build jobs ───────────────────────────────────────────────────────────────────────────────

interface BuildJob {
  view: BuildJobView;
  controller: AbortController;
  done: Promise<void>;
}

/** The builds of one Services instance (one data folder), kept for the life of the app. */
const jobsOf = new WeakMap<Services, Map<string, BuildJob>>();
function jobs(services: Services): Map<string, BuildJob> {
  let m = jobsOf.get(services);
  if (!m) jobsOf.set(services, (m = new Map()));
  return m;
}

const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
const finiteScores = (s: Record<number, number>): Record<string, number> => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, Number.isFinite(v) ? v : 0]));

/** The layers the build would replace (ScaleOT) or drop (uniform) if it ended with these scores. */
export function wouldReplace(view: Pick<BuildJobView, 'request' | 'middle' | 'scores'>): number[] {
  if (view.middle.length === 0) return [];
  const groups = groupsOf(view.middle, view.request.groupSize);
  if (view.request.method === 'scaleot') return finalReplacement(groups, view.request.alpha, new Map(Object.entries(view.scores).map(([k, v]) => [Number(k), v])));
  const nDrop = groups.reduce((s, g) => s + replacedPerGroup(g.length, view.request.alpha), 0);
  const kept = new Set(uniformKeptPositions(view.middle.length, view.middle.length - nDrop).map((p) => view.middle[p]!));
  return view.middle.filter((l) => !kept.has(l));
}

/** Folds one BuildProgress report into the job's view; returns the job.progress payload to send. */
export function applyBuildProgress(view: BuildJobView, p: BuildProgress): EventPayload<'job.progress'> {
  const base = { jobId: view.jobId, kind: 'emulator.build', stage: p.kind };
  const series = (): Record<string, number[]> => {
    const layers = view.middle;
    return { middle: layers, scores: layers.map((l) => view.scores[String(l)] ?? 0), replacedNow: view.replacedNow, wouldReplace: view.wouldReplace };
  };
  switch (p.kind) {
    case 'status':
      view.message = p.message;
      return { ...base, step: view.step, total: view.totalSteps, message: p.message, metrics: {} };
    case 'started':
      view.layers = p.layers;
      view.middle = [...p.middle];
      view.groups = p.groups.map((g) => [...g]);
      view.totalSteps = p.steps > 0 ? p.steps : null;
      view.scores = Object.fromEntries(p.middle.map((l) => [String(l), 0]));
      view.wouldReplace = wouldReplace(view);
      view.message = `Started ${p.method === 'scaleot' ? 'ScaleOT' : 'uniform LayerDrop'} on ${p.provider.toUpperCase()}: ${p.layers} layers, ${p.middle.length} in the middle, ${p.steps} steps.`;
      return { ...base, step: 0, total: view.totalSteps, message: view.message, metrics: { layers: p.layers }, series: series() };
    case 'step': {
      // The engine numbers steps from 0; the screen counts steps done (1 after the first).
      view.step = p.step + 1;
      view.totalSteps = p.steps > 0 ? p.steps : view.totalSteps;
      view.losses[p.step] = Number.isFinite(p.loss) ? p.loss : Number.NaN;
      view.replacedNow = [...p.replaced];
      if (Object.keys(p.scores).length > 0) {
        view.scores = finiteScores(p.scores);
        view.wouldReplace = wouldReplace(view);
      }
      view.message = `Step ${view.step} of ${p.steps}: loss ${fixed(p.loss, 4)}.`;
      return { ...base, step: view.step, total: view.totalSteps, message: view.message, metrics: Number.isFinite(p.loss) ? { loss: p.loss } : {}, series: series() };
    }
    case 'importance':
      view.scores = finiteScores(p.scores);
      view.wouldReplace = wouldReplace(view);
      view.scoreHistory.push({ step: p.step + 1, scores: { ...view.scores } });
      view.message = `Replaceability updated at step ${p.step + 1}: candidate losses ${p.losses.map((l) => fixed(l, 4)).join(', ')}.`;
      return { ...base, step: view.step, total: view.totalSteps, message: view.message, metrics: {}, series: { ...series(), losses: p.losses.filter(Number.isFinite), rewards: p.rewards.filter(Number.isFinite) } };
    case 'src':
      view.message = `Selective Rank Compression: ${p.done} of ${p.total} projections.`;
      return { ...base, step: view.step, total: view.totalSteps, message: view.message, metrics: { srcDone: p.done, srcTotal: p.total } };
    case 'evaluated':
      if (p.what === 'emuZS') view.emuZsPpl = p.ppl;
      else view.fullZsPpl = p.ppl;
      view.message = `${p.what === 'emuZS' ? 'Emu ZS' : 'Full ZS'} perplexity ${fixed(p.ppl, 3)} over ${p.tokens} held-out tokens.`;
      return { ...base, step: view.step, total: view.totalSteps, message: view.message, metrics: Number.isFinite(p.ppl) ? { [p.what === 'emuZS' ? 'emuZsPpl' : 'fullZsPpl']: p.ppl } : {} };
  }
}

async function resultView(built: BuiltEmulator, request: BuildJobView['request'], model: string): Promise<BuildResultView> {
  const r = built.result;
  const { manifest } = await readPackageManifest(r.out);
  const reference = manifest.kind === 'emulator' ? (manifest.reference.emuZS[0]?.task ?? null) : null;
  const source = await hashPath(model);
  return {
    out: r.out,
    manifestSha256: r.manifestSha256,
    signerKeyId: r.signerKeyId,
    method: r.method,
    layerMap: r.layerMap.map((e) => ({ layer: e.layer, role: e.role, index: e.index })),
    adapterLayers: request.adapterLayers,
    alpha: request.alpha,
    beta: request.beta,
    scores: finiteScores(r.scores),
    replaced: r.replaced,
    dropped: r.dropped,
    emuZsPpl: r.emuZsPpl,
    fullZsPpl: r.fullZsPpl,
    referenceTask: reference,
    src: r.src ? { beta: r.src.beta, projections: [...r.src.projections], keptAttentionBefore: r.src.keptAttentionBefore, keptAttentionAfter: r.src.keptAttentionAfter } : null,
    parameterCount: r.parameterCount,
    sourceParameterCount: r.sourceParameterCount,
    packageBytes: manifest.files.reduce((s, f) => s + f.size, 0),
    sourceBytes: source.size,
    auditSeq: built.event.seq,
  };
}

function startBuild(services: Services, req: ParsedRequest<'emulatorBuild.start'>): BuildResponses['emulatorBuild.start'] {
  const all = jobs(services);
  const running = [...all.values()].find((j) => j.view.status === 'running');
  // One build at a time: it already uses every core the settings give the engine.
  if (running) throw new ServiceError(`An emulator is already being built (${running.view.request.out}); wait for it to finish or cancel it first.`);
  const d = BUILD_DEFAULTS;
  const request: BuildJobView['request'] = {
    model: resolve(req.model),
    out: resolve(req.out),
    distillData: resolve(req.distillData),
    method: req.method ?? d.method,
    adapterLayers: req.adapterLayers ?? ([...d.adapterLayers] as [number, number]),
    alpha: req.alpha ?? d.alpha,
    beta: req.beta ?? d.beta,
    groupSize: req.groupSize ?? d.groupSize,
    steps: req.steps ?? d.steps,
    signKey: req.signKey ? resolve(req.signKey) : null,
  };
  // Cheap checks first, so a typo is an answer to Start, not a failed job.
  if (existsSync(request.out)) throw new ServiceError(`${request.out} already exists; choose a new folder for the emulator package.`);
  if (!existsSync(request.model)) throw new ServiceError(`The model ${request.model} does not exist; give a Hugging Face model folder or a llama2.c .bin file.`);
  if (!existsSync(request.distillData)) throw new ServiceError(`The distillation text ${request.distillData} does not exist.`);
  if (request.signKey && !existsSync(request.signKey)) throw new ServiceError(`The signing key ${request.signKey} does not exist; create one with offsite keygen --out KEYFILE, or leave the field empty for an unsigned package.`);
  const jobId = `build-${randomBytes(6).toString('hex')}`;
  const view: BuildJobView = {
    jobId,
    status: 'running',
    request,
    startedAt: new Date().toISOString(),
    finishedAt: null,
    message: 'Starting the build worker…',
    layers: null,
    middle: [],
    groups: [],
    step: 0,
    totalSteps: null,
    losses: [],
    replacedNow: [],
    scores: {},
    scoreHistory: [],
    wouldReplace: [],
    emuZsPpl: null,
    fullZsPpl: null,
    result: null,
    error: null,
  };
  const controller = new AbortController();
  const s = services.settings.get();
  const finish = (status: BuildJobView['status'], message: string, outcome: 'done' | 'failed' | 'cancelled') => {
    view.status = status;
    view.finishedAt = new Date().toISOString();
    view.message = message;
    services.events.emit('job.finished', { jobId, kind: 'emulator.build', outcome, message });
  };
  const done = (async () => {
    try {
      const built = await buildEmulatorPackage(
        services.home,
        {
          model: request.model,
          out: request.out,
          distillData: request.distillData,
          method: request.method,
          adapterLayers: request.adapterLayers,
          alpha: request.alpha,
          beta: request.beta,
          groupSize: request.groupSize,
          steps: request.steps,
          ...(req.batchSize !== undefined ? { batchSize: req.batchSize } : {}),
          ...(req.seqLen !== undefined ? { seqLen: req.seqLen } : {}),
          ...(req.seed !== undefined ? { seed: req.seed } : {}),
          ...(req.kd !== undefined ? { kd: req.kd } : {}),
          signKey: request.signKey,
          provider: s.executionProvider,
          threads: s.threads === 'auto' ? null : s.threads,
        },
        { signal: controller.signal, audit: services.audit, onProgress: (p) => services.events.emit('job.progress', applyBuildProgress(view, p)) },
      );
      view.result = await resultView(built, request, request.model);
      view.scores = view.result.scores;
      view.wouldReplace = view.result.method === 'scaleot' ? view.result.replaced : view.result.dropped;
      const r = view.result;
      finish('done', `Emulator package written to ${r.out}${r.signerKeyId ? `, signed by key ${r.signerKeyId}` : ', unsigned'}: Emu ZS perplexity ${fixed(r.emuZsPpl, 3)} against Full ZS ${fixed(r.fullZsPpl, 3)} (audit event #${r.auditSeq}).`, 'done');
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      view.error = message;
      if (e instanceof JobCancelledError) finish('cancelled', message, 'cancelled');
      else finish('failed', message, 'failed');
    }
  })();
  all.set(jobId, { view, controller, done });
  return { jobId, out: request.out };
}

// ── Plug-in ──────────────────────────────────────────────────────────────────────────────────

/** The package folder of an emulator this data folder built (emulator.built), when it is still there. */
function builtEmulatorPath(services: Services, manifestSha256: string): string | null {
  for (const ev of services.audit.log({ action: 'emulator.built', newestFirst: true })) {
    const path = ev.payload.details.path;
    if (ev.payload.outputs.emulator === manifestSha256 && typeof path === 'string' && existsSync(join(path, 'manifest.json'))) return path;
  }
  return null;
}

async function runPlugIn(services: Services, req: ParsedRequest<'plugin.run'>): Promise<PlugInResultView> {
  const jobId = `plugin-${randomBytes(6).toString('hex')}`;
  const say = (step: number, message: string) => services.events.emit('job.progress', { jobId, kind: 'plugin', stage: 'status', step, total: 3, message, metrics: {} });
  try {
    let adapter: string;
    let override = req.override;
    if (req.adapterId !== undefined) {
      const found = (await listAdapters(services.home, services.audit)).find((a) => a.id === req.adapterId);
      if (!found) throw new ServiceError(`No imported adapter has the id ${req.adapterId}; import it on this screen or the Emulators screen first.`);
      adapter = importedPackagePath(services.home, 'adapter', req.adapterId);
      // An adapter imported on an override stays accepted on that recorded decision.
      if (!override && found.imported?.override) override = { reason: `imported on override (audit event #${found.imported.seq}): ${found.imported.override.reason}` };
    } else adapter = resolve(req.adapterPath!);
    let emulator: string | null = null;
    if (req.emulatorId !== undefined) {
      emulator = importedPackagePath(services.home, 'emulator', req.emulatorId);
      if (!existsSync(emulator)) throw new ServiceError(`No imported emulator has the id ${req.emulatorId}.`);
    } else if (req.emulatorPath !== undefined) emulator = resolve(req.emulatorPath);
    else if (existsSync(join(adapter, 'manifest.json'))) {
      // The model owner built the emulator here: its package is where emulator.built says it was written.
      const m = await readPackageManifest(adapter).catch(() => null);
      if (m && m.manifest.kind === 'adapter') {
        const ref = m.manifest.emulator.manifestSha256;
        if (!existsSync(join(importedPackagePath(services.home, 'emulator', ref), 'manifest.json'))) emulator = builtEmulatorPath(services, ref);
      }
    }
    say(1, 'Verifying the adapter and plugging it into the full model…');
    const trustedKeys = services.audit.trustedKeys().map((k) => ({ publicKey: k.publicKey, label: k.label }));
    const done = await plugInAdapter(services.home, { model: req.model, adapter, out: req.out, emulator, merge: req.merge ?? false, trustedKeys, ...(override ? { override } : {}) }, { audit: services.audit });
    say(2, 'Hashing the tuned model…');
    const folder = await hashFolder(done.result.out);
    const ev = services.audit.log({ action: 'plugin.finished', afterSeq: done.event.seq - 1, limit: 1 })[0];
    const inputs = ev?.payload.inputs ?? {};
    const digestOf = (v: unknown): string | null => (typeof v === 'string' ? v : v && typeof v === 'object' && 'sha256' in v ? String((v as { sha256: unknown }).sha256) : null);
    const view: PlugInResultView = {
      out: done.result.out,
      format: done.result.format,
      merged: done.result.merged,
      layerMapping: done.result.layerMapping,
      changedWeights: done.result.changedWeights.length,
      sha256: folder.sha256,
      files: folder.entries,
      inputs: { model: digestOf(inputs.model) ?? '', adapter: digestOf(inputs.adapter) ?? '', emulator: digestOf(inputs.emulator) },
      emulatorPath: emulator,
      adapterSigner: done.verification?.signer ? { keyId: done.verification.signer.keyId, trusted: done.verification.signer.trusted } : null,
      auditSeq: done.event.seq,
    };
    services.events.emit('job.finished', { jobId, kind: 'plugin', outcome: 'done', message: `The tuned model was written to ${view.out} (audit event #${view.auditSeq}).` });
    return view;
  } catch (e) {
    services.events.emit('job.finished', { jobId, kind: 'plugin', outcome: e instanceof JobCancelledError ? 'cancelled' : 'failed', message: e instanceof Error ? e.message : String(e) });
    throw e;
  }
}

// ── Handlers ─────────────────────────────────────────────────────────────────────────────────

export function createBuildHandlers(services: Services): Pick<Handlers, BuildChannel> {
  const job = (jobId: string): BuildJob => {
    const j = jobs(services).get(jobId);
    if (!j) throw new ServiceError(`No emulator build has the id ${jobId} in this session.`);
    return j;
  };
  return {
    'emulatorBuild.defaults': () => buildDefaultsView(),
    'emulatorBuild.start': (req) => startBuild(services, req),
    'emulatorBuild.cancel': ({ jobId }) => {
      const j = job(jobId);
      if (j.view.status !== 'running') return { jobId, cancelled: false };
      j.controller.abort();
      return { jobId, cancelled: true };
    },
    'emulatorBuild.status': ({ jobId }) => {
      if (jobId !== undefined) return structuredClone(job(jobId).view);
      const latest = [...jobs(services).values()].at(-1);
      return latest ? structuredClone(latest.view) : null;
    },
    'plugin.run': (req) => runPlugIn(services, req),
  };
}

/** Asks every running build of this data folder to stop and waits for them (app quit, end of a test). */
export async function stopBuilds(services: Services): Promise<void> {
  const all = [...jobs(services).values()];
  for (const j of all) if (j.view.status === 'running') j.controller.abort();
  await Promise.all(all.map((j) => j.done));
}
