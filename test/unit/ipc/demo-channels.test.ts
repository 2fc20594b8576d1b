// The demo.* channels through the real gateway and services: flags and auditor mode, request
// sentences, the suggested folder, a real quick demo started over IPC and cancelled during the
// emulator build (job.progress of kind "demo" with stage boundaries, job.finished "cancelled",
// the whole history in demo.status); and the results view against the CLI's printed table.
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { channelFlags, events as eventSchemas, type DemoJobView } from '../../../electron/ipc/contract';
import { auditorModeRefusal } from '../../../electron/ipc/gateway';
import { formatTaskTable, type DemoProgress, type TaskTable } from '../../../electron/services/demo';
import { applyDemoProgress, demoNumber, demoTaskView } from '../../../electron/services/demo-jobs';
import { useGatewayStudios } from './helpers';

const { studio, tempHome } = useGatewayStudios();

function task(over: Partial<TaskTable>): TaskTable {
  return {
    task: 'email-lm',
    metric: 'ppl',
    higherIsBetter: false,
    table: { fullZS: 123.456, emuZS: 140.04, emuFT: 9.87654, plugin: 5.123456, fullFT: 4.5 },
    gaps: { utility: -0.623456, privacy: -4.753084 },
    scores: { fullZS: {}, emuZS: {}, emuFT: {}, plugin: {}, fullFT: {} },
    evaluations: [],
    trainFile: 'train.jsonl',
    testFile: 'test.jsonl',
    testExamples: 32,
    runs: [],
    plugin: { out: 'plugged', auditSeq: 1, format: 'peft-lora', merged: false, layerMapping: [] },
    ...over,
  };
}

describe('demo results view', () => {
  it('shows every number exactly as offsite demo prints it', () => {
    const t = task({});
    const v = demoTaskView(t);
    expect(v.columns.map((c) => c.title)).toEqual(['Full ZS', 'Emu ZS', 'Emu FT', 'Plug-in', 'Full FT']);
    expect(v.columns.map((c) => c.headline.text)).toEqual(['123.5', '140.0', '9.8765', '5.1235', '4.5000']);
    expect(v.columns.map((c) => c.headline.value)).toEqual([123.456, 140.04, 9.87654, 5.123456, 4.5]);
    expect(v.columns.every((c) => c.accNorm === null)).toBe(true);
    expect([v.gaps.utility.text, v.gaps.privacy.text]).toEqual(['-0.6235', '-4.7531']);
    // The same text the CLI prints for this task, line by line.
    expect(v.lines).toEqual(formatTaskTable(t).split('\n'));
    expect(v.lines[2]).toBe('    123.5    140.0   9.8765   5.1235   4.5000');
    expect(v.lines[3]).toContain('utility gap (Full FT − Plug-in) -0.6235, privacy gap (Plug-in − Emu FT) -4.7531');
  });

  it('adds acc_norm for a multiple-choice task', () => {
    const scores = { fullZS: { acc_norm: 0.5 }, emuZS: { acc_norm: 0.46875 }, emuFT: { acc_norm: 0.625 }, plugin: { acc_norm: 0.75 }, fullFT: { acc_norm: 0.8125 } };
    const t = task({ task: 'ham-spam', metric: 'acc', higherIsBetter: true, table: { fullZS: 0.5, emuZS: 0.5, emuFT: 0.59375, plugin: 0.71875, fullFT: 0.78125 }, gaps: { utility: 0.0625, privacy: 0.125 }, scores });
    const v = demoTaskView(t);
    expect(v.columns.map((c) => c.accNorm?.text)).toEqual(['0.5000', '0.4688', '0.6250', '0.7500', '0.8125']);
    expect(v.lines[3]).toBe('   0.5000   0.4688   0.6250   0.7500   0.8125   (acc_norm)');
    expect(demoNumber(-100)).toBe('-100.0');
    expect(demoNumber(99.99)).toBe('99.9900');
  });

  it('folds stage boundaries and detail lines into the job view and its events', () => {
    const view: DemoJobView = { jobId: 'demo-0123456789ab', status: 'running', quick: true, out: '/tmp/x', startedAt: '', finishedAt: null, message: '', totalStages: null, stages: [], result: null, error: null };
    const reports: DemoProgress[] = [
      { kind: 'stage', phase: 'start', index: 1, total: 14, title: 'keys' },
      { kind: 'stage', phase: 'done', index: 1, total: 14, title: 'keys', seconds: 0.25, cpuSeconds: 0.125, summary: 'model owner a, data owner b' },
      { kind: 'stage', phase: 'start', index: 2, total: 14, title: 'build' },
      { kind: 'detail', message: '  step 1/8 loss 5.1234' },
    ];
    const payloads = reports.map((p) => applyDemoProgress(view, p));
    for (const p of payloads) eventSchemas['job.progress'].parse(p);
    expect(payloads.map((p) => [p.stage, p.step, p.total, p.message])).toEqual([
      ['stage-start', 0, 14, 'keys'],
      ['stage-done', 1, 14, 'model owner a, data owner b'],
      ['stage-start', 1, 14, 'build'],
      ['detail', 1, 14, 'step 1/8 loss 5.1234'],
    ]);
    expect(payloads[1]!.metrics).toEqual({ seconds: 0.25, cpuSeconds: 0.125 });
    expect(view.totalStages).toBe(14);
    expect(view.stages).toEqual([
      { index: 1, title: 'keys', status: 'done', seconds: 0.25, cpuSeconds: 0.125, summary: 'model owner a, data owner b', details: [] },
      { index: 2, title: 'build', status: 'running', seconds: null, cpuSeconds: null, summary: null, details: ['step 1/8 loss 5.1234'] },
    ]);
    expect(view.message).toBe('Stage 2 of 14: build…');
  });
});

describe('demo.* over the gateway', () => {
  it('marks start and cancel as mutating; auditor mode refuses them', async () => {
    expect(Object.entries(channelFlags).filter(([c]) => c.startsWith('demo.')).map(([c, f]) => [c, f.mutates])).toEqual([
      ['demo.defaults', false],
      ['demo.start', true],
      ['demo.cancel', true],
      ['demo.status', false],
    ]);
    const owner = studio();
    const exportFile = join(owner.home, 'handover.json');
    await owner.call('audit.export', { out: exportFile });
    const s = studio();
    await s.call('audit.open', { path: exportFile });
    const out = join(tempHome(), 'demo');
    for (const [channel, request] of [
      ['demo.start', { quick: true, out }],
      ['demo.cancel', { jobId: 'demo-000000000000' }],
    ] as const) {
      expect(await s.refusal(channel, request), channel).toEqual({ code: 'read-only', message: auditorModeRefusal(channel) });
    }
    expect(existsSync(out)).toBe(false);
    expect(await s.call('demo.status', {})).toBeNull();
  });

  it('answers bad requests with sentences and suggests a new folder in the data folder', async () => {
    const s = studio();
    const suggested = await s.call('demo.defaults');
    expect(suggested.out.startsWith(join(s.home, 'demo-'))).toBe(true);
    expect(existsSync(suggested.out)).toBe(false);
    expect(await s.call('demo.status', {})).toBeNull();
    expect((await s.refusal('demo.start', { quick: true, out: 'demo' })).message).toBe('The output folder must be a full path, such as /home/me/offsite-demo.');
    expect((await s.refusal('demo.start', { out: join(s.home, 'd') })).message).toBe('Quick must be on or off.');
    expect((await s.refusal('demo.cancel', { jobId: 'nope' })).message).toBe('A demo job id looks like demo-0123456789ab, as demo.start returned it.');
    expect((await s.refusal('demo.cancel', { jobId: 'demo-000000000000' })).message).toBe('No demo has the id demo-000000000000 in this session.');
    const full = join(s.home, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'x.txt'), 'x');
    expect((await s.refusal('demo.start', { quick: true, out: full })).message).toBe(`${full} already exists and is not empty; choose a new or empty folder for the demo's outputs.`);
    expect((await s.refusal('demo.start', { quick: true, out: join(full, 'x.txt') })).message).toBe(`${join(full, 'x.txt')} is a file; choose a new or empty folder for the demo's outputs.`);
    expect(await s.call('demo.status', {})).toBeNull();
  });

  it('runs the quick demo over IPC and cancels it during the emulator build', async () => {
    const s = studio();
    const out = join(s.home, 'demo');
    const started = await s.call('demo.start', { quick: true, out });
    expect(started).toEqual({ jobId: expect.stringMatching(/^demo-[0-9a-f]{12}$/), out });
    // One demo at a time.
    expect((await s.refusal('demo.start', { quick: true, out: join(s.home, 'other') })).message).toBe(`The demo is already running (writing to ${out}); wait for it to finish or cancel it first.`);

    await s.until('job.progress', (p) => p.jobId === started.jobId && p.stage === 'stage-start' && p.step === 1);
    expect(await s.call('demo.cancel', { jobId: started.jobId })).toEqual({ jobId: started.jobId, cancelled: true });
    const end = await s.until('job.finished', (p) => p.jobId === started.jobId);
    expect(end.kind).toBe('demo');
    expect(end.outcome, end.message).toBe('cancelled');
    expect(end.message).toMatch(/^The demo was cancelled\. /);

    const progress = s.emitted.filter((e) => e.event === 'job.progress' && e.payload.jobId === started.jobId).map((e) => e.payload as ReturnType<typeof eventSchemas['job.progress']['parse']>);
    for (const p of progress) {
      eventSchemas['job.progress'].parse(p);
      expect(p.kind).toBe('demo');
      expect(p.total).toBe(14);
    }
    expect(progress.slice(0, 3).map((p) => [p.stage, p.step])).toEqual([
      ['stage-start', 0],
      ['stage-done', 1],
      ['stage-start', 1],
    ]);

    const view = await s.call('demo.status', { jobId: started.jobId });
    expect(view).toMatchObject({ jobId: started.jobId, status: 'cancelled', quick: true, out, totalStages: 14, result: null });
    expect(view!.message).toBe(end.message);
    // Cancelled during stage 2 or, when the build finished first, right after it: nothing later ran.
    const stages = view!.stages;
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages.length).toBeLessThanOrEqual(3);
    expect(stages[0]!.status).toBe('done');
    expect(stages.slice(1).every((st) => st.status === 'done' || st.status === 'stopped')).toBe(true);
    expect(stages.some((st) => st.status === 'running')).toBe(false);
    expect(stages[0]!.title).toBe('keys for the model owner and the data owner, each trusting the other');
    expect(stages[0]!.summary).toMatch(/^model owner [0-9a-f]+, data owner [0-9a-f]+$/);
    expect(stages[0]!.seconds).toBeGreaterThanOrEqual(0);
    expect(stages[1]!.title).toMatch(/^ScaleOT emulator build/);
    // The latest demo is what a screen opened afterwards sees; a cancelled one cannot be cancelled again.
    expect((await s.call('demo.status', {}))!.jobId).toBe(started.jobId);
    expect(await s.call('demo.cancel', { jobId: started.jobId })).toEqual({ jobId: started.jobId, cancelled: false });
    // The keys the first stage wrote stay where they are.
    expect(existsSync(join(out, 'keys', 'model-owner.key'))).toBe(true);
  }, 600_000);
});
