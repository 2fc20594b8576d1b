// The Evaluate screen end to end: the built renderer in Chromium, window.offsite wired into the
// real gateway and services; the evaluation runs in a worker thread on a tiny random LLaMA written
// by the PyTorch oracle script, and the result shows in the list and the results table.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importDataset } from '../../electron/services/datasets';
import { jsonl, mcItems, tinyModels } from '../integration/eval/helpers';
import { useStudioSuite } from './harness';

const suite = useStudioSuite();
let files: string;
let model: string;

beforeAll(async () => {
  files = mkdtempSync(join(tmpdir(), 'offsite-e2e-eval-'));
  model = (await tinyModels(join(files, 'models'))).bytes;
});
afterAll(() => rmSync(files, { recursive: true, force: true }));

describe('Evaluate screen (Chromium, real gateway)', () => {
  it('runs a multiple-choice evaluation on a tiny model and shows it in the list and the results table', async () => {
    const studio = await suite.open();
    const { page } = studio;
    const data = join(files, 'tiny-mc.jsonl');
    writeFileSync(data, jsonl(mcItems(8, 11)));
    const imported = await importDataset(studio.home, data, { audit: studio.services.audit });
    await studio.openScreen('Evaluate');
    await expect.poll(() => page.locator('[data-field="no-results"]').count()).toBe(1);
    await expect.poll(() => page.locator('[data-field="metric"]').textContent()).toContain('Multiple choice');

    await page.getByLabel('Model folder or file').fill(model);
    await page.getByLabel('Batch size').fill('4');
    await page.getByRole('button', { name: 'Run evaluation' }).click();
    const outcome = page.locator('[data-field="outcome"]');
    await expect.poll(() => outcome.textContent(), { timeout: 120_000 }).toMatch(/^Evaluation finished: acc \d\.\d{4}, acc_norm \d\.\d{4} over 8 items on tiny-mc\.jsonl\.$/);

    // The audit trail holds the result; the screen shows the same numbers.
    const events = studio.services.audit.log({ action: 'evaluation.finished' });
    expect(events.length).toBe(1);
    const result = events[0]!.payload.details.result as { acc: number; acc_norm: number };
    expect(events[0]!.payload.inputs.data).toEqual({ sha256: imported.dataset.id, size: imported.dataset.summary.bytes });
    const row = page.locator('table.evaluations tbody tr').first();
    await expect.poll(() => row.getAttribute('data-status')).toBe('finished');
    expect(await row.locator('[data-field="scores"]').textContent()).toBe(`acc ${(result.acc * 100).toFixed(1)}%, acc_norm ${(result.acc_norm * 100).toFixed(1)}% (8 items)`);
    const acc = page.locator(`table.results tr[data-metric="acc"]`);
    await expect.poll(() => acc.locator('td[data-column="fullZS"]').textContent()).toBe(`${(result.acc * 100).toFixed(1)}%`);
    expect(await acc.locator('td[data-column="emuZS"]').textContent()).toBe('—');
    expect(await acc.locator('td[data-column="utility"]').textContent()).toBe('—');
    expect(await page.locator('table.results thead th').allTextContents()).toEqual(['Task', 'Metric', 'Full ZS', 'Emu ZS', 'Emu FT', 'Plug-in', 'Full FT', 'Utility gap', 'Privacy gap']);
    await studio.screenshot('evaluate-finished');
    expect(studio.problems).toEqual([]);
  });

  it('says in a sentence why an evaluation cannot start', async () => {
    const studio = await suite.open();
    const { page } = studio;
    const data = join(files, 'lm.jsonl');
    writeFileSync(data, jsonl([{ text: 'the cat sat' }]));
    await importDataset(studio.home, data, { audit: studio.services.audit });
    await studio.openScreen('Evaluate');
    await expect.poll(() => page.locator('[data-field="metric"]').textContent()).toContain('Perplexity');
    await page.getByLabel('Model folder or file').fill(join(files, 'no-such-model'));
    await page.getByRole('button', { name: 'Run evaluation' }).click();
    await expect.poll(() => page.locator('[data-field="error"]').textContent()).toMatch(/^The model .*no-such-model does not exist; give a model folder/);
    expect(studio.services.audit.log({ action: 'evaluation.finished' })).toEqual([]);
    expect(studio.problems).toEqual([]);
  });
});
