// The Demo screen end to end in Chromium over the real gateway: reached from Home, the QUICK demo
// runs the whole pipeline (14 stages with times and summaries, tuning steps as detail lines) and
// ends with the results table for both tasks (five numeric columns, the two gaps) matching the
// results.json the pipeline wrote, and a verified audit trail; a second demo cancelled mid-way
// says so.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stopDemos } from '../../electron/ipc/demo-handlers';
import { useStudioSuite, type Studio } from './harness';

const suite = useStudioSuite();
let work: string;
const used: Studio[] = [];
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'offsite-e2e-demo-'));
});
// A demo still running when a test fails must not outlive its data folder.
afterEach(async () => {
  for (const s of used.splice(0)) await stopDemos(s.services);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const field = (studio: Studio, name: string) => studio.page.locator(`[data-field="${name}"]`);
const FIVE = ['fullZS', 'emuZS', 'emuFT', 'plugin', 'fullFT'] as const;

interface ResultsJson {
  tasks: Array<{ task: string; table: Record<(typeof FIVE)[number], number>; gaps: { utility: number; privacy: number } }>;
  auditVerified: boolean;
  budget: string;
}

/** The cell's number; the CLI prints 4 decimals below 100 and 1 from 100 up. */
function close(shown: string, expected: number): void {
  expect(shown).toMatch(/^-?\d+\.\d+$/);
  const decimals = shown.split('.')[1]!.length;
  expect(decimals).toBe(Math.abs(expected) >= 100 ? 1 : 4);
  expect(Math.abs(Number(shown) - expected)).toBeLessThanOrEqual(0.5 * 10 ** -decimals + 1e-12);
}

describe('Demo screen (Chromium, real gateway)', () => {
  it('runs the quick demo from Home to the results table and a verified audit trail', async () => {
    const studio = await suite.open();
    used.push(studio);
    const { page } = studio;
    await page.getByRole('link', { name: 'Run the bundled demo' }).click();
    await expect.poll(() => page.locator('#screen-title').textContent()).toBe('Demo');
    // The output folder starts as a new demo-<date-time> folder in the data folder.
    await expect.poll(() => page.locator('#demo-out').inputValue()).toMatch(new RegExp(`^${studio.home.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/demo-\\d{4}-`));
    expect(await page.locator('[data-field="budget-quick"]').isChecked()).toBe(true);

    // A relative folder is refused with a sentence before anything starts.
    await page.locator('#demo-out').fill('demo-out');
    await page.locator('[data-action="start"]').click();
    await expect.poll(() => field(studio, 'error').textContent()).toBe('The output folder must be a full path, such as /home/me/offsite-demo.');
    await studio.screenshot('demo-form');

    const out = join(work, 'quick');
    await page.locator('#demo-out').fill(out);
    await page.locator('[data-action="start"]').click();
    const job = field(studio, 'demo-job');
    await expect.poll(() => job.getAttribute('data-status'), { timeout: 60_000 }).toBe('running');
    expect(await field(studio, 'error').count()).toBe(0);
    // Live: stages finish one by one while the demo runs, with wall and CPU time.
    await expect.poll(async () => Number(await job.getAttribute('data-stages-done')), { timeout: 300_000 }).toBeGreaterThanOrEqual(2);
    expect(await page.locator('[data-field="demo-stages"] > li[data-stage="1"] [data-field="stage-time"]').textContent()).toMatch(/^\d+\.\d s \(CPU \d+\.\d s\)$/);
    await studio.screenshot('demo-running');

    await expect.poll(() => job.getAttribute('data-status'), { timeout: 900_000, interval: 2_000 }).toBe('done');
    expect(await field(studio, 'demo-count').textContent()).toBe('14 of 14 stages done');
    const stages = page.locator('[data-field="demo-stages"] > li');
    expect(await stages.count()).toBe(14);
    expect(await stages.evaluateAll((lis) => lis.every((li) => li.getAttribute('data-status') === 'done'))).toBe(true);
    // Tuning steps arrive as detail lines under their stage.
    expect(await page.locator('[data-field="demo-stages"] .details li').allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/^step \d+\/\d+ loss \d+\.\d{4}/)]));
    expect(await stages.last().locator('[data-field="stage-summary"]').textContent()).toMatch(/^Audit log intact: /);

    // The table against what the pipeline itself wrote to results.json.
    const resultsFile = join(out, 'results.json');
    expect(existsSync(resultsFile)).toBe(true);
    const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as ResultsJson;
    expect(results.budget).toBe('quick');
    expect(results.tasks.map((t) => t.task)).toEqual(['email-lm', 'ham-spam']);
    const table = field(studio, 'demo-results');
    expect(await table.locator('thead th').allTextContents()).toEqual(['Task', 'Metric', 'Full ZS', 'Emu ZS', 'Emu FT', 'Plug-in', 'Full FT', 'Utility gap', 'Privacy gap']);
    for (const t of results.tasks) {
      const row = table.locator(`tbody tr[data-task="${t.task}"]:not(.sub)`);
      expect(await row.count()).toBe(1);
      for (const c of FIVE) close((await row.locator(`td[data-column="${c}"]`).textContent())!, t.table[c]);
      close((await row.locator('td[data-column="utility"]').textContent())!, t.gaps.utility);
      close((await row.locator('td[data-column="privacy"]').textContent())!, t.gaps.privacy);
    }
    expect(await field(studio, 'audit-verified').getAttribute('data-verified')).toBe('true');
    expect(results.auditVerified).toBe(true);
    expect(await field(studio, 'demo-results-out').textContent()).toBe(out);
    await studio.screenshot('demo-finished');
    expect(studio.problems).toEqual([]);
  }, 1_200_000);

  it('cancels a running demo and says so', async () => {
    const studio = await suite.open();
    used.push(studio);
    const { page } = studio;
    await studio.openScreen('Demo');
    await expect.poll(() => page.locator('#demo-out').inputValue()).not.toBe('');
    await page.locator('#demo-out').fill(join(work, 'cancelled'));
    await page.locator('[data-action="start"]').click();
    const job = field(studio, 'demo-job');
    // Cancel while the emulator is being built (stage 2): the keys stage is done by then.
    await expect.poll(() => page.locator('[data-field="demo-stages"] > li[data-stage="2"]').count(), { timeout: 300_000 }).toBe(1);
    await page.locator('[data-action="cancel"]').click();
    await expect.poll(() => job.getAttribute('data-status'), { timeout: 300_000 }).toBe('cancelled');
    expect(await field(studio, 'demo-cancelled').textContent()).toMatch(/^The demo was cancelled\. /);
    expect(await page.locator('#demo-live-title').textContent()).toBe('Cancelled: quick demo');
    // Nothing is left running: Start is offered again.
    expect(await page.locator('[data-action="cancel"]').count()).toBe(0);
    expect(await page.locator('[data-action="start"]').isEnabled()).toBe(true);
    await studio.screenshot('demo-cancelled');
    expect(studio.problems).toEqual([]);
  }, 600_000);
});
