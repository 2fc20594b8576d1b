// The Tune screen end to end: the built renderer in Chromium, window.offsite wired into the real
// gateway and services. A tiny random LLaMA written by the test is tuned with IST from the form;
// the loss chart and heat map grow while it runs, Cancel leaves a checkpoint, Resume finishes it,
// Export copies the PEFT adapter, and the Audit screen shows the run's events. A second test pushes
// a synthetic 2,000-step stream as fast as the bridge delivers it and measures frame times.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importDataset } from '../../electron/services/datasets';
import { TUNE_DEFAULTS } from '../../native-models/tune/config';
import { lcg } from '../integration/tune/helpers';
import { periodicData, writeTinyLlama } from '../unit/tune/tiny-model';
import { useStudioSuite, type Studio } from './harness';

const suite = useStudioSuite();
let files: string;
let model: string;
let trainData: string;

const LAYERS = 8;
const STEPS = 400;

beforeAll(async () => {
  files = mkdtempSync(join(tmpdir(), 'offsite-e2e-tune-'));
  model = join(files, 'tiny-llama');
  await writeTinyLlama(model, { layers: LAYERS });
  trainData = join(files, 'periodic.jsonl');
  periodicData(trainData, 40, 24, 4, 64, 5);
});
afterAll(() => rmSync(files, { recursive: true, force: true }));

const field = (studio: Studio, name: string) => studio.page.locator(`[data-field="${name}"]`);
const intAttr = async (studio: Studio, name: string, attr: string) => Number((await field(studio, name).getAttribute(attr)) ?? 'NaN');

describe('Tune screen (Chromium, real gateway)', () => {
  it('tunes a tiny model with IST from the form: live charts, cancel, resume, export, audit', async () => {
    const studio = await suite.open();
    const { page } = studio;
    await importDataset(studio.home, trainData, { audit: studio.services.audit });
    await studio.openScreen('Tune');
    await expect.poll(() => page.locator('[data-field="no-runs"]').count()).toBe(1);

    // The form starts from TUNE_DEFAULTS.
    expect(await page.getByLabel('LoRA rank').inputValue()).toBe(String(TUNE_DEFAULTS.rank));
    expect(await page.getByLabel('Learning rate').inputValue()).toBe(String(TUNE_DEFAULTS.lr));
    expect(await page.getByLabel('IST ratio').inputValue()).toBe(String(TUNE_DEFAULTS.ist.ratio));
    expect(await page.getByLabel('Layer sampler').inputValue()).toBe(TUNE_DEFAULTS.sampler);

    // Problems are said as sentences before anything is sent.
    await page.getByLabel('LoRA rank').fill('eight');
    await page.getByRole('button', { name: 'Start tuning' }).click();
    await expect.poll(() => field(studio, 'form-errors').textContent()).toContain('Give the full path of the model folder or llama2.c file to tune.');
    expect(await field(studio, 'form-errors').textContent()).toContain('The LoRA rank must be a whole number, not "eight".');
    expect(studio.services.audit.log({ action: 'run.started' })).toEqual([]);

    await page.getByLabel('Model folder or file').fill(model);
    await page.getByLabel('LoRA rank').fill('4');
    await page.getByLabel('Length unit').selectOption('steps');
    await page.getByLabel('Length in steps').fill(String(STEPS));
    await page.getByLabel('Batch size').fill('2');
    await page.getByLabel('Sequence length').fill('24');
    await page.getByLabel('Checkpoint every').fill('10');
    await studio.screenshot('tune-form');
    await page.getByRole('button', { name: 'Start tuning' }).click();

    // Live: the loss chart gains points, the heat map gains columns, the selected layers change.
    const section = page.locator('section.run');
    await expect.poll(() => section.getAttribute('data-status'), { timeout: 60_000 }).toBe('running');
    await expect.poll(() => intAttr(studio, 'loss-chart', 'data-points'), { timeout: 60_000 }).toBeGreaterThanOrEqual(5);
    const points1 = await intAttr(studio, 'loss-chart', 'data-points');
    const columns1 = await intAttr(studio, 'heatmap', 'data-columns');
    const selections = new Set<string>();
    await expect
      .poll(
        async () => {
          selections.add((await field(studio, 'selected-layers').getAttribute('data-selected')) ?? '');
          return (await intAttr(studio, 'loss-chart', 'data-points')) > points1 && (await intAttr(studio, 'heatmap', 'data-columns')) > columns1 && selections.size >= 2;
        },
        { timeout: 60_000, interval: 50 },
      )
      .toBe(true);
    // IST trains floor(0.25 · 8) = 2 of the 8 layers per step.
    const shownSelection = [...selections].find((s) => s !== '')!;
    expect(shownSelection.split(',').length).toBe(2);
    expect(await page.locator('[data-field="selected-layers"] li').count()).toBe(LAYERS);
    expect(await page.locator('[data-field="selected-layers"] li.selected').count()).toBe(2);
    expect(await intAttr(studio, 'lr-chart', 'data-points')).toBeGreaterThan(0);
    expect(await field(studio, 'tokens-per-second').textContent()).toMatch(/^[\d,]+$/);
    await studio.screenshot('tune-running');

    // Cancel mid-run: status cancelled, a checkpoint on disk.
    const runId = (await section.getAttribute('data-run-id'))!;
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await expect.poll(() => section.getAttribute('data-status'), { timeout: 60_000 }).toBe('cancelled');
    const cancelled = studio.services.runs.get(runId)!;
    expect(cancelled.status).toBe('cancelled');
    const out = cancelled.output!;
    expect(existsSync(join(out, 'checkpoint', 'checkpoint.json'))).toBe(true);
    const stepAtCancel = (cancelled.result as { steps_done: number }).steps_done;
    expect(stepAtCancel).toBeGreaterThan(0);
    expect(stepAtCancel).toBeLessThan(STEPS);
    expect(await field(studio, 'outcome').textContent()).toBe(`Tuning cancelled after step ${stepAtCancel} of ${STEPS}; the checkpoint is kept, so Resume continues from there.`);
    await expect.poll(() => page.locator(`tr[data-run-id="${runId}"]`).getAttribute('data-status')).toBe('cancelled');

    // Resume: continues from the checkpoint to the end.
    await page.getByRole('button', { name: 'Resume from checkpoint' }).click();
    await expect.poll(() => section.getAttribute('data-status'), { timeout: 120_000 }).toBe('finished');
    await expect.poll(() => field(studio, 'loss-chart').getAttribute('data-last-step')).toBe(String(STEPS));
    expect(await field(studio, 'step').textContent()).toBe(`${STEPS} / ${STEPS}`);
    const finished = studio.services.runs.get(runId)!;
    expect(finished.status).toBe('finished');
    // The service stores the engine's update index (from 0); the screen counts updates done.
    expect(studio.services.runs.metrics(runId).map((r) => r.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i));
    await expect.poll(() => field(studio, 'adapter-path').textContent()).toBe(join(out, 'adapter'));

    // Export: a new folder holding the PEFT adapter.
    const exportTo = join(files, 'export', 'my-adapter');
    await page.getByLabel('Export the adapter to').fill(exportTo);
    await page.getByRole('button', { name: 'Export adapter' }).click();
    await expect.poll(() => field(studio, 'exported').textContent()).toMatch(/^Adapter exported to .*my-adapter \(adapter_config\.json, adapter_model\.safetensors\); recorded as audit event #\d+\.$/);
    expect(readdirSync(exportTo).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect(readdirSync(join(files, 'export'))).toEqual(['my-adapter']);
    await studio.screenshot('tune-finished');

    // The Audit timeline shows the run's story.
    await studio.openScreen('Audit');
    const actions = studio.page.locator('ol.events button.event-row .event-action');
    await expect.poll(() => actions.allTextContents()).toEqual(expect.arrayContaining(['run.started', 'run.cancelled', 'run.finished', 'adapter.exported']));
    const story = (await actions.allTextContents()).filter((a) => a.startsWith('run.') || a === 'adapter.exported').reverse();
    expect(story).toEqual(['run.started', 'run.cancelled', 'run.started', 'run.finished', 'adapter.exported']);

    // Home lists the run with its status and final loss.
    await studio.openScreen('Home');
    const recent = page.locator(`.recent-runs li[data-run-id="${runId}"]`);
    await expect.poll(() => recent.getAttribute('data-status')).toBe('finished');
    expect(await recent.textContent()).toContain(`${STEPS} / ${STEPS} steps, loss ${((finished.result as { final_loss: number }).final_loss).toFixed(4)}`);
    expect(studio.problems).toEqual([]);
  }, 300_000);

  it('renders a 2,000-step metrics stream pushed as fast as possible and stays responsive', async () => {
    const studio = await suite.open();
    const { page } = studio;
    const runId = randomUUID();
    const layers = 16;
    const total = 2000;
    // A run row as an earlier session of the app would have left it; its metrics come as events.
    studio.services.audit.startRun({ runId, kind: 'tune', config: { model: '/models/synthetic', data: '/data/synthetic.jsonl', sampler: 'ist', peft: 'lora', steps: total }, output: join(studio.home, 'runs', 'synthetic') });
    await studio.openScreen('Tune');
    await page.locator(`tr[data-run-id="${runId}"] button`).click();
    await expect.poll(() => page.locator('section.run').getAttribute('data-run-id')).toBe(runId);

    // Frame times (rAF deltas), long tasks and event-loop lag, measured in the page.
    await page.evaluate(() => {
      const g = globalThis as unknown as Record<string, unknown> & { requestAnimationFrame(cb: (t: number) => void): void; performance: { now(): number } };
      const frames: number[] = [];
      const longTasks: number[] = [];
      const lags: number[] = [];
      let last = 0;
      let running = true;
      const tick = (t: number) => {
        if (last > 0) frames.push(t - last);
        last = t;
        if (running) g.requestAnimationFrame(tick);
      };
      g.requestAnimationFrame(tick);
      const PO = (globalThis as unknown as { PerformanceObserver: new (cb: (l: { getEntries(): Array<{ duration: number }> }) => void) => { observe(o: unknown): void; disconnect(): void } }).PerformanceObserver;
      const po = new PO((list) => {
        for (const e of list.getEntries()) longTasks.push(e.duration);
      });
      po.observe({ type: 'longtask', buffered: false });
      let expected = g.performance.now() + 20;
      const timer = setInterval(() => {
        const now = g.performance.now();
        lags.push(Math.max(0, now - expected));
        expected = now + 20;
      }, 20);
      g.__perf = {
        stop() {
          running = false;
          clearInterval(timer);
          po.disconnect();
          return { frames, longTasks, lags };
        },
      };
    });

    const rnd = lcg(7);
    const scores = new Array<number>(layers).fill(0);
    await studio.pushEvent('job.progress', {
      jobId: runId,
      kind: 'tune',
      stage: 'started',
      step: 0,
      total,
      message: `Started on CPU: ${layers} tunable layers, 1,000 trainable parameters.`,
      metrics: {},
      series: { tunableLayers: Array.from({ length: layers }, (_, i) => i) },
    });
    const started = Date.now();
    const inFlight: Array<Promise<void>> = [];
    for (let step = 1; step <= total; step++) {
      for (let i = 0; i < layers; i++) scores[i] = scores[i]! + (rnd() - 0.5) * 0.05;
      const selected = Array.from({ length: 4 }, () => Math.floor(rnd() * layers)).sort((a, b) => a - b);
      inFlight.push(
        studio.pushEvent('job.progress', {
          jobId: runId,
          kind: 'tune',
          stage: 'step',
          step,
          total,
          message: `Step ${step} of ${total}.`,
          metrics: { loss: 4 * Math.exp(-step / 600) + rnd() * 0.2, lr: 2e-4 * (1 - step / total), tokensPerSecond: 5000 + rnd() * 100, etaSeconds: (total - step) * 0.01 },
          series: { selected: [...new Set(selected)], importance: scores.slice() },
        }),
      );
      // Keep a bounded number of deliveries in flight so the bridge, not the test, sets the pace.
      if (inFlight.length >= 200) await Promise.all(inFlight.splice(0));
    }
    await Promise.all(inFlight);
    const pushSeconds = (Date.now() - started) / 1000;

    await expect.poll(() => field(studio, 'loss-chart').getAttribute('data-last-step')).toBe(String(total));
    await expect.poll(() => field(studio, 'heatmap').getAttribute('data-last-step')).toBe(String(total));
    expect(await field(studio, 'step').textContent()).toBe(`${total} / ${total}`);
    // The long series is thinned for drawing (min/max buckets), never cut short.
    const drawn = await intAttr(studio, 'loss-chart', 'data-points');
    expect(drawn).toBeGreaterThan(100);
    expect(drawn).toBeLessThan(total);
    // The heat map's fixed canvas shares pixel columns between steps: one column per pixel at most.
    const columns = await intAttr(studio, 'heatmap', 'data-columns');
    expect(columns).toBeGreaterThan(100);
    expect(columns).toBeLessThanOrEqual(640);

    const m = await page.evaluate(() => (globalThis as unknown as { __perf: { stop(): { frames: number[]; longTasks: number[]; lags: number[] } } }).__perf.stop());
    const stats = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      const pick = (q: number) => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(q * s.length))]!);
      return { n: s.length, p50: +pick(0.5).toFixed(1), p95: +pick(0.95).toFixed(1), max: +(s[s.length - 1] ?? 0).toFixed(1) };
    };
    console.log(
      `[tune perf] ${total} steps pushed in ${pushSeconds.toFixed(2)} s; frame time ms ${JSON.stringify(stats(m.frames))}; ` +
        `long tasks ${m.longTasks.length} (total ${m.longTasks.reduce((a, b) => a + b, 0).toFixed(0)} ms, max ${Math.max(0, ...m.longTasks).toFixed(0)} ms); ` +
        `event-loop lag ms ${JSON.stringify(stats(m.lags))}; loss chart points drawn ${drawn}; heat map columns ${columns}`,
    );
    expect(m.frames.length).toBeGreaterThan(0);

    // The page still answers: Cancel goes through the gateway and its answer is shown.
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await expect.poll(() => field(studio, 'action-error').textContent()).toBe('This run is not running in this app, so there was nothing to cancel.');
    await expect.poll(() => page.locator('section.run').getAttribute('data-status')).toBe('running');
    expect(studio.problems).toEqual([]);
  }, 180_000);
});
