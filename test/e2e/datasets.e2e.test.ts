// The Datasets screen end to end: the built renderer in Chromium, window.offsite wired into the
// real gateway and services, a fresh data folder per page.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { useStudioSuite } from './harness';

const suite = useStudioSuite();
const files = mkdtempSync(join(tmpdir(), 'offsite-e2e-data-'));
afterAll(() => rmSync(files, { recursive: true, force: true }));

const VALID = [
  { instruction: 'Name the capital of France.', output: 'Paris' },
  { instruction: 'Add the numbers.', input: '2 and 3', output: '5' },
  { instruction: 'Say hello politely.', output: 'Hello, nice to meet you.' },
]
  .map((r) => JSON.stringify(r))
  .join('\n');

const MALFORMED = ['{"text": "The first document."}', '{"text": "The second document."}', '{"text": 42}', '{"text": "fine"}', 'not json at all'].join('\n');

function write(name: string, content: string): { path: string; sha256: string } {
  const path = join(files, name);
  writeFileSync(path, content);
  return { path, sha256: createHash('sha256').update(content).digest('hex') };
}

describe('Datasets screen (Chromium, real gateway)', () => {
  it('checks a valid file (format, rows, hash), imports it into the data folder, lists it and audits it', async () => {
    const studio = await suite.open();
    const { page } = studio;
    const file = write('sft.jsonl', VALID);
    await studio.openScreen('Datasets');
    await expect.poll(() => page.locator('[data-field="no-datasets"]').textContent()).toBe('No datasets imported yet.');

    await page.getByLabel('Data file', { exact: true }).fill(file.path);
    await page.getByRole('button', { name: 'Check file' }).click();
    const summary = page.locator('[data-field="summary"]');
    await expect.poll(() => summary.locator('[data-field="sha256"]').textContent()).toBe(file.sha256);
    expect(await summary.getByRole('heading', { level: 2 }).textContent()).toBe('sft.jsonl');
    expect(await summary.locator('[data-field="format"]').textContent()).toContain('instruction');
    expect((await summary.locator('[data-field="examples"]').textContent())?.trim()).toMatch(/^3\b/);
    const rows = summary.locator('table.preview tbody tr');
    expect(await rows.count()).toBe(3);
    expect(await summary.locator('table.preview thead th').allTextContents()).toEqual(['Line', 'instruction', 'input', 'output']);
    expect(await rows.nth(1).locator('td').allTextContents()).toEqual(['2', 'Add the numbers.', '2 and 3', '5']);
    expect(await summary.getByRole('alert').count()).toBe(0);
    await studio.screenshot('datasets-checked');

    await summary.getByRole('button', { name: 'Import dataset' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toMatch(/^sft\.jsonl was imported: 3 examples, recorded in the audit trail \(event #\d+\)\.$/);
    const row = page.locator(`tr[data-dataset-id="${file.sha256}"]`);
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.locator('td').first().textContent()).toBe('sft.jsonl');

    // The checked copy sits in the data folder under its hash, byte for byte the same.
    const stored = join(studio.home, 'datasets', file.sha256, 'data.jsonl');
    expect(existsSync(stored)).toBe(true);
    expect(readFileSync(stored, 'utf8')).toBe(VALID);
    expect(readdirSync(join(studio.home, 'datasets'))).toEqual([file.sha256]); // no staging left behind
    const events = studio.services.audit.log({ action: 'dataset.imported' });
    expect(events.length).toBe(1);
    expect(events[0]!.payload.outputs).toEqual({ dataset: file.sha256 });
    expect(events[0]!.payload.details).toMatchObject({ name: 'sft.jsonl', rows: 3, format: 'instruction' });
    await studio.screenshot('datasets-imported');

    // Survives a reload: the list comes from the data folder.
    await studio.reload();
    await studio.openScreen('Datasets');
    await expect.poll(() => page.locator(`tr[data-dataset-id="${file.sha256}"]`).count()).toBe(1);

    // Remove: the copy goes, the audit trail keeps the import and records the removal.
    await page.getByRole('button', { name: 'Remove sft.jsonl' }).click();
    await expect.poll(() => page.locator('[data-field="no-datasets"]').count()).toBe(1);
    expect(existsSync(join(studio.home, 'datasets', file.sha256))).toBe(false);
    expect(studio.services.audit.log({ action: 'dataset.removed' }).length).toBe(1);
    expect(studio.problems).toEqual([]);
  });

  it('shows every problem of a malformed file with its line number and imports nothing', async () => {
    const studio = await suite.open();
    const { page } = studio;
    const file = write('broken.jsonl', MALFORMED);
    await studio.openScreen('Datasets');
    await page.getByLabel('Data file', { exact: true }).fill(file.path);
    await page.getByRole('button', { name: 'Check file' }).click();

    const issues = page.locator('[data-field="issues"]');
    await expect.poll(() => issues.locator('li').count()).toBe(2);
    expect(await issues.locator('li').first().getAttribute('data-line')).toBe('3');
    expect(await issues.locator('li').first().textContent()).toBe('Line 3: "text" must be text, but it is a number.');
    expect(await issues.locator('li').nth(1).textContent()).toMatch(/^Line 5 is not valid JSON \(.+\); each line must be one complete JSON object\.$/);
    expect(await issues.locator('.issues-title').textContent()).toMatch(/This file has 2 problems; fix\s+them in the file and check it again\. Nothing was imported\./);
    expect(await page.getByRole('button', { name: 'Import dataset' }).count()).toBe(0);
    await studio.screenshot('datasets-malformed');

    // Even asked directly, the main process refuses and names the line.
    const direct = await page.evaluate(
      (p) => (globalThis as unknown as { offsite: { datasets: { import(r: { path: string }): Promise<unknown> } } }).offsite.datasets.import({ path: p }),
      file.path,
    );
    expect(direct).toEqual({
      ok: false,
      error: {
        code: 'failed',
        message: 'broken.jsonl was not imported because it has problems. Line 3: "text" must be text, but it is a number. There is 1 more problem; inspect the file to see them all.',
      },
    });
    expect(existsSync(join(studio.home, 'datasets')) ? readdirSync(join(studio.home, 'datasets')) : []).toEqual([]);
    expect(studio.services.audit.log({ action: 'dataset.imported' })).toEqual([]);
    expect(await page.locator('[data-field="no-datasets"]').textContent()).toBe('No datasets imported yet.');
    expect(studio.problems).toEqual([]);
  });

  it('says in a sentence when the path is not a file or not a full path', async () => {
    const studio = await suite.open();
    const { page } = studio;
    await studio.openScreen('Datasets');
    await page.getByLabel('Data file', { exact: true }).fill(join(files, 'missing.jsonl'));
    await page.getByRole('button', { name: 'Check file' }).click();
    await expect.poll(() => page.locator('[data-field="error"]').textContent()).toBe(`There is no file at ${join(files, 'missing.jsonl')}; check the path and try again.`);
    await page.getByLabel('Data file', { exact: true }).fill('train.jsonl');
    await page.getByRole('button', { name: 'Check file' }).click();
    await expect.poll(() => page.locator('[data-field="error"]').textContent()).toContain('must be a full path, such as /media/usb/train.jsonl');
    expect(studio.problems).toEqual([]);
  });
});
