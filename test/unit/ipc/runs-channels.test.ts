// The runs.* channels through the real gateway and services: a tiny IST run started, cancelled,
// resumed and exported over IPC, with job.progress / job.finished events of kind "tune"; request
// validation sentences; thinning of long metric series; the progress-to-event mapping; auditor
// mode refusing the mutating channels.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { channelFlags, events as eventSchemas } from '../../../electron/ipc/contract';
import { auditorModeRefusal } from '../../../electron/ipc/gateway';
import { thinRows, tuneProgressPayload } from '../../../electron/ipc/runs-handlers';
import { importDataset } from '../../../electron/services/datasets';
import { TUNE_DEFAULTS } from '../../../native-models/tune/config';
import { periodicData, writeTinyLlama } from '../tune/tiny-model';
import { useGatewayStudios } from './helpers';

const { studio, tempHome } = useGatewayStudios();

let work: string;
let model: string;
let data: string;
beforeAll(async () => {
  work = tempHome();
  model = join(work, 'tiny-llama');
  await writeTinyLlama(model, { layers: 4 });
  data = join(work, 'train.jsonl');
  periodicData(data, 16, 20, 4, 64, 9);
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('runs.* over the gateway', () => {
  it('starts, cancels, resumes and exports a tiny IST run, with tune events and audit events', async () => {
    const s = studio();
    const dataset = (await importDataset(s.home, data, { audit: s.services.audit })).dataset;
    const defaults = await s.call('runs.defaults');
    expect(defaults.settings.rank).toBe(TUNE_DEFAULTS.rank);
    expect(defaults.settings.istRatio).toBe(TUNE_DEFAULTS.ist.ratio);
    expect(defaults.runsFolder).toBe(join(s.home, 'runs'));

    const total = 400;
    const started = await s.call('runs.start', { model, dataset: dataset.id, steps: total, batchSize: 2, seqLen: 20, checkpointEvery: 5, sampler: 'ist' });
    expect(started.out.startsWith(join(s.home, 'runs', 'run-'))).toBe(true);
    const { runId } = started;

    // Live progress: a started event with the tunable layers, then step events with the selected layers.
    const first = await s.until('job.progress', (p) => p.jobId === runId && p.stage === 'step');
    expect(first.kind).toBe('tune');
    expect(first.step).toBe(1);
    expect(first.total).toBe(total);
    expect(first.series?.selected?.length).toBe(1); // floor(0.25 · 4) layers
    expect(first.series?.importance?.length).toBe(4);
    const startedEvent = await s.until('job.progress', (p) => p.jobId === runId && p.stage === 'started');
    expect(startedEvent.series?.tunableLayers).toEqual([0, 1, 2, 3]);
    expect((await s.call('runs.list')).find((r) => r.id === runId)?.live).toBe(true);

    await s.until('job.progress', (p) => p.jobId === runId && p.stage === 'step' && p.step >= 8);
    expect(await s.call('runs.cancel', { runId })).toEqual({ runId, cancelled: true });
    const end1 = await s.until('job.finished', (p) => p.jobId === runId);
    expect(end1.outcome).toBe('cancelled');
    const afterCancel = await s.call('runs.get', { runId });
    expect(afterCancel.status).toBe('cancelled');
    expect(afterCancel.resumable).toBe(true);
    expect(afterCancel.adapter).toBeNull();
    expect(afterCancel.stepsDone).toBeGreaterThanOrEqual(8);
    expect(afterCancel.stepsDone).toBeLessThan(total);
    expect(end1.message).toBe(`Tuning cancelled after step ${afterCancel.stepsDone} of ${total}; the checkpoint is kept, so Resume continues from there.`);
    expect((await s.refusal('runs.exportAdapter', { runId, out: join(work, 'too-early') })).message).toBe(
      `Run ${runId} has not finished (it is cancelled); only a finished run has an adapter to export. Resume it first.`,
    );

    await s.call('runs.resume', { runId });
    const end2 = await s.until('job.finished', (p) => p.jobId === runId && p !== end1, 240_000);
    expect(end2.outcome).toBe('done');
    const done = await s.call('runs.get', { runId });
    expect(done.status).toBe('finished');
    expect(done.stepsDone).toBe(total);
    expect(done.adapter).toBe(join(started.out, 'adapter'));
    expect(done.config.steps).toBe(total);
    expect((await s.refusal('runs.resume', { runId })).message).toBe(`Run ${runId} has finished; there is nothing to resume. Start a new run instead.`);

    // Metrics: every update stored; a page thinned to 50 points keeps the first and the last.
    const full = await s.call('runs.metrics', { runId, maxPoints: 100_000 });
    expect(full.total).toBe(total);
    expect(full.rows.map((r) => r.step)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const thin = await s.call('runs.metrics', { runId, maxPoints: 50 });
    expect(thin.total).toBe(total);
    expect(thin.rows.length).toBeLessThanOrEqual(50);
    expect(thin.rows[0]!.step).toBe(1);
    expect(thin.rows[thin.rows.length - 1]!.step).toBe(total);
    const tail = await s.call('runs.metrics', { runId, afterStep: total - 3 });
    expect(tail.rows.map((r) => r.step)).toEqual([total - 2, total - 1, total]);

    // Export: a byte-identical copy, audited with the source folder's hash.
    const out = join(work, 'exports', 'adapter-1');
    const exported = await s.call('runs.exportAdapter', { runId, out });
    expect(exported.files).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    for (const f of exported.files) expect(sha256(readFileSync(join(out, f)))).toBe(sha256(readFileSync(join(done.adapter!, f))));
    expect(readdirSync(join(work, 'exports'))).toEqual(['adapter-1']);
    const event = s.services.audit.log({ action: 'adapter.exported' });
    expect(event.length).toBe(1);
    expect(event[0]!.seq).toBe(exported.auditSeq);
    expect(event[0]!.payload.run_id).toBe(runId);
    expect(event[0]!.payload.details.out).toBe(out);
    expect((await s.refusal('runs.exportAdapter', { runId, out })).message).toBe(`${out} already exists; choose a new folder name for the exported adapter.`);

    expect(s.services.audit.log({ runId }).map((e) => e.action)).toEqual(['run.started', 'run.cancelled', 'run.started', 'run.finished', 'adapter.exported']);
    // Every event the services emitted fits the contract's event schema.
    for (const e of s.emitted) expect(eventSchemas[e.event].safeParse(e.payload).success, JSON.stringify(e.payload).slice(0, 200)).toBe(true);
  }, 300_000);

  it('says in sentences what is wrong with a start request', async () => {
    const s = studio();
    const id = 'a'.repeat(64);
    const cases: Array<[unknown, string]> = [
      [{ dataset: id }, 'Choose either a model or an imported emulator to tune, not both and not neither.'],
      [{ model: 'models/tiny', dataset: id }, 'The path of the model must be a full path, such as /models/tinyllama.'],
      [{ model, dataset: id, steps: 10, epochs: 1 }, 'Give the number of steps or the number of epochs, not both.'],
      [{ model, dataset: id, rank: 2.5 }, 'The LoRA rank must be a whole number from 1 to 4096.'],
      [{ model, dataset: id, sampler: 'random' }, 'The layer sampler must be all, ist or uniform.'],
      [{ model, dataset: id, istRatio: 0 }, 'The IST ratio must be a number above 0 and at most 1.'],
      [{ model, dataset: id, peft: 'full' }, 'Full-layer tuning needs the layers to tune, such as 0,1.'],
    ];
    for (const [request, sentence] of cases) {
      const e = await s.refusal('runs.start', request);
      expect(e.code, JSON.stringify(request)).toBe('invalid-request');
      expect(e.message, JSON.stringify(request)).toContain(sentence);
    }
    // Valid shape, but no such dataset: the service says so.
    const e = await s.refusal('runs.start', { model, dataset: id });
    expect(e.code).toBe('failed');
    expect(e.message).toBe(`No imported dataset has the id ${id}; see the list of imported datasets.`);
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await s.refusal('runs.get', { runId: unknown })).message).toBe(`No tuning run has the id ${unknown}; see the list of runs.`);
    expect(await s.call('runs.list')).toEqual([]);
  });

  it('marks starting, cancelling, resuming and exporting as mutating; auditor mode refuses them', async () => {
    expect(Object.entries(channelFlags).filter(([c, f]) => c.startsWith('runs.') && f.mutates).map(([c]) => c).sort()).toEqual(['runs.cancel', 'runs.exportAdapter', 'runs.resume', 'runs.start']);
    const owner = studio();
    const exportFile = join(owner.home, 'handover.json');
    await owner.call('audit.export', { out: exportFile });
    const s = studio();
    await s.call('audit.open', { path: exportFile });
    const runId = '00000000-0000-4000-8000-000000000000';
    for (const [channel, request] of [
      ['runs.start', { model, dataset: 'a'.repeat(64) }],
      ['runs.cancel', { runId }],
      ['runs.resume', { runId }],
      ['runs.exportAdapter', { runId, out: join(work, 'x') }],
    ] as const) {
      expect(await s.refusal(channel, request), channel).toEqual({ code: 'read-only', message: auditorModeRefusal(channel) });
    }
    expect(await s.call('runs.list')).toEqual([]);
    expect(existsSync(join(work, 'x'))).toBe(false);
  });
});

describe('thinRows', () => {
  it('keeps every row up to the limit, then every stride-th row and always the last', () => {
    const rows = Array.from({ length: 10 }, (_, i) => i);
    expect(thinRows(rows, 10)).toEqual({ stride: 1, rows });
    expect(thinRows(rows, 4)).toEqual({ stride: 4, rows: [0, 4, 8, 9] });
    expect(thinRows(rows, 6)).toEqual({ stride: 2, rows: [0, 2, 4, 6, 8, 9] });
    const long = Array.from({ length: 2001 }, (_, i) => i);
    const t = thinRows(long, 500);
    expect(t.rows.length).toBeLessThanOrEqual(500);
    expect(t.rows[0]).toBe(0);
    expect(t.rows[t.rows.length - 1]).toBe(2000);
  });
});

describe('tuneProgressPayload', () => {
  it('turns engine progress into job.progress events the contract accepts, counting updates done', () => {
    const last = { step: 0, total: null as number | null };
    const started = tuneProgressPayload('r', { kind: 'started', startStep: 0, totalSteps: 40, provider: 'cpu', providerReason: 'CPU requested.', tunableLayers: [0, 1, 2], parameterCount: 1234, examples: 8, seqLen: 16 }, last);
    expect(started).toEqual({
      jobId: 'r',
      kind: 'tune',
      stage: 'started',
      step: 0,
      total: 40,
      message: 'Started on CPU: 3 tunable layers, 1,234 trainable parameters.',
      metrics: { parameterCount: 1234, examples: 8, seqLen: 16 },
      series: { tunableLayers: [0, 1, 2] },
    });
    const step = tuneProgressPayload('r', { kind: 'step', step: 4, totalSteps: 40, loss: Number.NaN, lr: 1e-4, gradNorm: 0.5, selected: [2], importance: [0, 0.1, -0.2], tokensPerSecond: 900, etaSeconds: 3, elapsedSeconds: 1 }, last);
    expect(step.step).toBe(5);
    expect(step.message).toBe('Step 5 of 40: loss NaN.');
    expect(step.metrics).toEqual({ lr: 1e-4, gradNorm: 0.5, tokensPerSecond: 900, etaSeconds: 3, elapsedSeconds: 1 });
    expect(step.series).toEqual({ selected: [2], importance: [0, 0.1, -0.2] });
    const ck = tuneProgressPayload('r', { kind: 'checkpoint', step: 5, dir: '/x' }, last);
    expect([ck.step, ck.total, ck.message]).toEqual([5, 40, 'Checkpoint written at step 5.']);
    const ev = tuneProgressPayload('r', { kind: 'evaluated', when: 'after', loss: 2.5, tokens: 100 }, last);
    expect(ev.metrics).toEqual({ evalLossAfter: 2.5, evalTokens: 100 });
    for (const p of [started, step, ck, ev]) expect(eventSchemas['job.progress'].safeParse(p).success).toBe(true);
  });
});
