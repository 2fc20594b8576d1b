// The model owner's screens end to end in Chromium over the real gateway: build a ScaleOT emulator
// of a tiny model from the Build emulator form (live step, loss curve and replaceability bars
// update; the final layer map, size and Emu ZS / Full ZS figures show), then import the signed
// adapter a data owner returns and plug it into the full model from the Plug-in screen.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trustKeyFile } from '../../electron/services/keys';
import { ownerInputs, signedAdapter } from '../unit/ipc/build-helpers';
import { useStudioSuite, type Studio } from './harness';

const suite = useStudioSuite();
let work: string;
let model: string;
let distill: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'offsite-e2e-build-'));
  ({ model, distill } = await ownerInputs(work));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const field = (studio: Studio, name: string) => studio.page.locator(`[data-field="${name}"]`);
const sha256File = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('Build emulator and Plug-in screens (Chromium, real gateway)', () => {
  it('builds an emulator with live scores, then plugs a returned adapter into the full model', async () => {
    const studio = await suite.open();
    const { page } = studio;
    await studio.openScreen('Build emulator');
    // The form starts from BUILD_DEFAULTS (read through emulatorBuild.defaults).
    await expect.poll(() => page.locator('#build-steps').inputValue()).toBe('200');
    expect(await page.locator('#build-alpha').inputValue()).toBe('0.5');
    expect(await page.locator('#build-bottom').inputValue()).toBe('2');

    // A relative path is refused with a sentence before anything starts.
    await page.locator('#build-model').fill('model');
    await page.locator('#build-distill').fill(distill);
    await page.locator('#build-out').fill(join(work, 'emulator'));
    await page.locator('[data-action="start"]').click();
    await expect.poll(() => field(studio, 'error').textContent()).toBe('The path of the full model must be a full path, such as /models/tinyllama.');

    const out = join(work, 'emulator');
    await page.locator('#build-model').fill(model);
    await page.locator('#build-steps').fill('60');
    await studio.screenshot('build-form');
    await page.locator('[data-action="start"]').click();

    const job = field(studio, 'build-job');
    await expect.poll(() => job.getAttribute('data-status'), { timeout: 60_000 }).toBe('running');
    // Live: the step counter and the loss curve advance while the build runs.
    await expect.poll(async () => Number(await job.getAttribute('data-step')), { timeout: 120_000 }).toBeGreaterThan(0);
    await expect.poll(async () => Number(await field(studio, 'loss-chart').getAttribute('data-points')), { timeout: 60_000 }).toBeGreaterThan(0);
    expect(await page.locator('[data-field="scores"] li[data-layer]').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-layer')))).toEqual(['2', '3', '4', '5']);
    await studio.screenshot('build-running');

    await expect.poll(() => job.getAttribute('data-status'), { timeout: 300_000 }).toBe('done');
    expect(await field(studio, 'build-step').textContent()).toBe('Step 60 of 60');
    // Six importance updates (every 10 steps) drew six rows of the score history.
    expect(await field(studio, 'score-history').getAttribute('data-rows')).toBe('6');
    const shown = Object.fromEntries(await page.locator('[data-field="scores"] li[data-layer]').evaluateAll((lis) => lis.map((li) => [li.getAttribute('data-layer'), Number(li.getAttribute('data-score'))])));
    const built = studio.services.audit.log({ action: 'emulator.built' });
    expect(built).toHaveLength(1);
    const scores = built[0]!.payload.details.scores as Record<string, number>;
    expect(Object.keys(shown).sort()).toEqual(Object.keys(scores).sort());
    for (const [l, v] of Object.entries(scores)) expect(shown[l]).toBeCloseTo(v, 10);
    expect(Object.values(scores).some((v) => v !== 0)).toBe(true);

    // The final layer map, size and reference figures.
    const roles = await page.locator('[data-field="build-result"] [data-field="layer-map"] li[data-role]').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-role')));
    const replaced = built[0]!.payload.details.replaced as number[];
    expect(roles).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((l) => (l < 2 || l > 5 ? 'adapter' : replaced.includes(l) ? 'harmonizer' : 'kept-compressed')));
    expect(await field(studio, 'package-location').textContent()).toBe(out);
    expect(await field(studio, 'manifest-sha256').textContent()).toBe(sha256File(join(out, 'manifest.json')));
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    const ref = await field(studio, 'reference').locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.querySelector('td')!.textContent));
    expect(ref).toEqual([manifest.reference.fullZS[0].value.toFixed(3), manifest.reference.emuZS[0].value.toFixed(3)]);
    const params = built[0]!.payload.details as { parameters: number; source_parameters: number };
    expect(await field(studio, 'parameters').textContent()).toContain(`${params.parameters.toLocaleString('en-US')} of ${params.source_parameters.toLocaleString('en-US')}`);
    await studio.screenshot('build-finished');

    // The data owner returns a signed adapter; the model owner trusts their key.
    const adapter = await signedAdapter(join(work, 'data-owner'), out, join(work, 'data-owner-home'));
    trustKeyFile(studio.services.audit, adapter.pub, 'data owner');

    await studio.openScreen('Plug-in');
    await expect.poll(() => field(studio, 'no-adapters').count()).toBe(1);
    await page.locator('#adapter-import-path').fill(adapter.pkg);
    await page.locator('[data-action="import-adapter"]').click();
    await expect.poll(() => field(studio, 'import-success').count(), { timeout: 60_000 }).toBe(1);
    const list = field(studio, 'adapter-list');
    await expect.poll(() => list.locator('tbody tr').count()).toBe(1);
    expect(await list.locator('[data-field="signer"]').textContent()).toContain('trusted (data owner)');

    // An output folder that exists is refused with a sentence.
    await page.locator('#plugin-model').fill(model);
    await page.locator('#plugin-out').fill(work);
    await page.locator('[data-action="plugin-run"]').click();
    await expect.poll(() => field(studio, 'plugin-error').textContent(), { timeout: 60_000 }).toBe(`${work} already exists; choose a new folder for the tuned model.`);

    const tuned = join(work, 'tuned');
    await page.locator('#plugin-out').fill(tuned);
    await page.locator('[data-action="plugin-run"]').click();
    await expect.poll(() => field(studio, 'plugin-result').count(), { timeout: 120_000 }).toBe(1);
    expect(await field(studio, 'plugin-out').textContent()).toBe(tuned);
    // ScaleOT keeps one block per layer (harmonizers stand in place), so block j is layer j.
    expect(await field(studio, 'layer-mapping').textContent()).toBe('emulator block 0 → model layer 0, emulator block 1 → model layer 1, emulator block 6 → model layer 6, emulator block 7 → model layer 7');
    const files = await field(studio, 'plugin-files').locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.querySelector('td')!.textContent!, tr.querySelector('code')!.textContent!]));
    expect(files.map(([f]) => f)).toContain('model.safetensors');
    for (const [f, h] of files) expect(h, f).toBe(sha256File(join(tuned, f!)));
    const finished = studio.services.audit.log({ action: 'plugin.finished' });
    expect(finished).toHaveLength(1);
    expect(await field(studio, 'plugin-sha256').textContent()).toBe((finished[0]!.payload.outputs.model as { sha256: string }).sha256);
    await studio.screenshot('plugin-finished');
    expect(studio.problems).toEqual([]);
  }, 900_000);
});
