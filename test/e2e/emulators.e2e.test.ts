// The Emulators screen end to end: the built renderer in Chromium, window.offsite wired into the
// real gateway and services, a fresh data folder per page, and emulator packages written by the
// real package writer (signed with a key made here).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { trustKeyFile } from '../../electron/services/keys';
import { writePackage, type LayerMapEntry, type LayerRole } from '../../native-models/formats/package';
import { emulatorManifest, keyPair, sha256, stageEmulatorFiles } from '../unit/packages/helpers';
import { useStudioSuite, type Studio } from './harness';

const suite = useStudioSuite();
const work = mkdtempSync(join(tmpdir(), 'offsite-e2e-emu-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const owner = keyPair(work, 'model-owner.key');

// A 16-layer model: 2 + 2 adapter layers, and in the middle 3 harmonizers, 1 dropped layer,
// 5 rank-compressed and 3 plain kept blocks.
const ROLES: LayerRole[] = [
  'adapter', 'adapter',
  'kept', 'kept-compressed', 'harmonizer', 'kept-compressed', 'kept', 'harmonizer', 'kept-compressed', 'dropped', 'kept-compressed', 'harmonizer', 'kept', 'kept-compressed',
  'adapter', 'adapter',
];
const LAYER_MAP: LayerMapEntry[] = (() => {
  let next = 0;
  return ROLES.map((role, layer) => ({ layer, role, index: role === 'dropped' ? null : next++ }));
})();

let made = 0;
async function emulatorPackage(signed: boolean) {
  const dir = join(work, `pkg-${++made}`);
  const written = await writePackage(dir, {
    producer: { app: 'Offsite Studio', version: '0.1.0-e2e' },
    signingKey: signed ? owner.key : null,
    fill: stageEmulatorFiles,
    manifest: emulatorManifest({
      sourceModel: { sha256: 'cd'.repeat(32), name: 'TinyStories-16L', modelType: 'llama', layers: 16 },
      layerMap: LAYER_MAP,
      triplet: { adapterLayers: [2, 2], alpha: 0.25, beta: 0.5 },
      recommendedTuning: { peft: 'lora', rank: 8, alpha: 16, lr: 0.0003, steps: 200, sampler: 'ist' },
      reference: {
        emuZS: [
          { task: 'tinystories-val', metric: 'ppl', value: 18.42 },
          { task: 'piqa', metric: 'acc_norm', value: 0.561 },
        ],
        fullZS: [{ task: 'tinystories-val', metric: 'ppl', value: 12.07 }],
      },
    }),
    created: new Date('2025-03-04T10:20:00.000Z'),
  });
  return written;
}

const field = (studio: Studio, name: string) => studio.page.locator(`[data-field="${name}"]`);
const libraryEntries = (home: string) => (existsSync(join(home, 'emulators')) ? readdirSync(join(home, 'emulators')) : []);

async function checkPackage(studio: Studio, dir: string) {
  const { page } = studio;
  await page.getByLabel('Package folder').fill(dir);
  await page.getByRole('button', { name: 'Check package' }).click();
  const report = field(studio, 'report');
  await expect.poll(() => report.locator('li[data-step]').count()).toBeGreaterThan(0);
  return report;
}

const stepStatuses = (report: ReturnType<typeof field>) =>
  report.locator('li[data-step]').evaluateAll((lis) => lis.map((li) => [li.getAttribute('data-step'), li.getAttribute('data-status')]));

describe('Emulators screen (Chromium, real gateway)', () => {
  it('checks a trusted package (every step passed), imports it, lists it and shows its layer map and details', async () => {
    const studio = await suite.open();
    const { page } = studio;
    const pkg = await emulatorPackage(true);
    trustKeyFile(studio.services.audit, owner.pub, 'Model owner (e2e)');
    await studio.openScreen('Emulators');
    await expect.poll(() => field(studio, 'no-emulators').count()).toBe(1);

    const report = await checkPackage(studio, pkg.dir);
    expect(await stepStatuses(report)).toEqual(
      ['folder', 'manifest', 'signature', 'signer', 'paths', 'limits', 'files', 'hashes'].map((s) => [s, 'passed']),
    );
    expect(await report.locator('.outcome-title').textContent()).toBe('Every check passed');
    expect(await field(studio, 'manifest-sha256').textContent()).toBe(pkg.manifestSha256);
    expect(await field(studio, 'signer').textContent()).toContain(`${pkg.signerKeyId}`);
    expect(await field(studio, 'signer').textContent()).toContain('trusted: Model owner (e2e)');
    expect(await report.locator('li[data-step="hashes"] .step-detail').textContent()).toMatch(/^All 4 files match their size and SHA-256/);
    expect(await field(studio, 'override').count()).toBe(0);
    expect(libraryEntries(studio.home)).toEqual([]); // a check imports nothing
    await studio.screenshot('emulators-report-ok');

    const importButton = report.getByRole('button', { name: 'Import emulator' });
    expect(await importButton.isEnabled()).toBe(true);
    await importButton.click();
    await expect.poll(() => field(studio, 'success').textContent()).toMatch(
      /^TinyStories-16L emulator was imported: the app’s own copy passed every check again, and the import is recorded in the audit trail \(event #\d+\)\.$/,
    );
    // The import's own report: the staged copy, then the same eight steps.
    expect((await stepStatuses(report)).map(([s, st]) => `${s}:${st}`)).toEqual(
      ['staging', 'folder', 'manifest', 'signature', 'signer', 'paths', 'limits', 'files', 'hashes'].map((s) => `${s}:passed`),
    );
    expect(libraryEntries(studio.home)).toEqual([pkg.manifestSha256]);
    const events = studio.services.audit.log({ action: 'emulator.imported' });
    expect(events).toHaveLength(1);
    expect(events[0]!.payload.details).toMatchObject({ manifest_sha256: pkg.manifestSha256, signer_key_id: pkg.signerKeyId, signer_trusted: true });

    const row = page.locator(`tr[data-emulator-id="${pkg.manifestSha256}"]`);
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.locator('.name').textContent()).toBe('TinyStories-16L');
    expect(await row.locator('[data-field="triplet"]').textContent()).toBe('2 / 2, α 0.25, β 0.5');
    expect(await row.locator('[data-field="signer"]').textContent()).toContain('trusted: Model owner (e2e)');

    // The details open on import: the layer map has one cell per original layer, by role.
    const details = field(studio, 'details');
    await expect.poll(() => details.locator('li[data-layer]').count()).toBe(16);
    const cells = await details.locator('li[data-layer]').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-role')));
    expect(cells).toEqual(ROLES);
    expect(await details.locator('li[data-layer="4"]').textContent()).toContain('Layer 4: harmonizer, replaced by a small harmonizer network (emulator block 4)');
    expect(await details.locator('li[data-layer="9"]').textContent()).toContain('Layer 9: dropped, left out of the emulator');
    expect(await field(studio, 'layer-map-summary').textContent()).toBe(
      '16 original layers become 15 emulator blocks: 4 adapter, 3 kept, 5 kept and compressed, 3 replaced by harmonizers, 1 dropped. The adapter layers are the bottom 2 and the top 2.',
    );
    expect(await details.locator('[data-legend]').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-legend')))).toEqual(['adapter', 'kept', 'kept-compressed', 'harmonizer', 'dropped']);
    expect(await field(studio, 'triplet').last().textContent()).toContain('The bottom 2 and top 2 layers are the adapter you tune; α = 0.25 of the 12 middle layers are replaced by harmonizers');
    const tuning = await field(studio, 'recommended-tuning').locator('tr').evaluateAll((trs) => trs.map((tr) => tr.textContent));
    expect(tuning).toEqual(['peftlora', 'rank8', 'alpha16', 'lr0.0003', 'steps200', 'samplerist']);
    const reference = await field(studio, 'reference').locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(reference).toEqual([
      ['tinystories-val', 'ppl', '18.42', '12.07'],
      ['piqa', 'acc_norm', '0.561', '—'],
    ]);
    const weights = details.locator('tr[data-file="model.safetensors"]');
    expect(await weights.locator('code.hash').textContent()).toBe(sha256(readFileSync(join(pkg.dir, 'model.safetensors'))));
    expect(await field(studio, 'details-signer').textContent()).toContain('trusted: Model owner (e2e)');
    await studio.screenshot('emulators-details');

    // Survives a reload: the list comes from the data folder.
    await studio.reload();
    await studio.openScreen('Emulators');
    await expect.poll(() => page.locator(`tr[data-emulator-id="${pkg.manifestSha256}"]`).count()).toBe(1);
    expect(studio.problems).toEqual([]);
  });

  it('shows which file of a tampered package failed and why, offers no import and no override, and imports nothing', async () => {
    const studio = await suite.open();
    const pkg = await emulatorPackage(true);
    trustKeyFile(studio.services.audit, owner.pub, 'Model owner (e2e)');
    const weights = join(pkg.dir, 'model.safetensors');
    const bytes = readFileSync(weights);
    bytes[bytes.length - 3] ^= 0x01; // one bit of one weight
    writeFileSync(weights, bytes);

    await studio.openScreen('Emulators');
    const report = await checkPackage(studio, pkg.dir);
    const statuses = Object.fromEntries(await stepStatuses(report));
    expect(statuses).toMatchObject({ signature: 'passed', signer: 'passed', files: 'passed', hashes: 'failed' });
    expect(await report.locator('.outcome-title').textContent()).toBe('Verification failed');
    const finding = report.locator('li[data-step="hashes"] .finding');
    expect(await finding.count()).toBe(1);
    expect(await finding.getAttribute('data-rule')).toBe('package.hash-mismatch');
    expect(await finding.getAttribute('data-file')).toBe('model.safetensors');
    expect(await finding.locator('.finding-sentence').textContent()).toBe(
      'model.safetensors does not match its SHA-256 in the manifest: the package was changed after it was signed, or damaged on the way.',
    );
    expect(await finding.locator('.finding-action').textContent()).toBe(
      'What to do: Ask the model owner for a fresh copy of the package. A damaged package or a bad signature cannot be overridden.',
    );
    expect(await finding.locator('.finding-rule').textContent()).toBe('Rule package.hash-mismatch · file model.safetensors');
    expect(await report.getByRole('button', { name: 'Import emulator' }).isDisabled()).toBe(true);
    expect(await field(studio, 'import-help').textContent()).toContain('Nothing can be imported until every check passes.');
    expect(await field(studio, 'override').count()).toBe(0);
    await studio.screenshot('emulators-report-tampered');

    expect(libraryEntries(studio.home)).toEqual([]);
    expect(studio.services.audit.log({ action: 'emulator.*' })).toEqual([]);
    expect(await field(studio, 'no-emulators').count()).toBe(1);
    expect(studio.problems).toEqual([]);
  });

  it('imports an unsigned package only on an explicit override with a reason, which the audit log keeps; then removes it', async () => {
    const studio = await suite.open();
    const { page } = studio;
    const pkg = await emulatorPackage(false);
    await studio.openScreen('Emulators');
    const report = await checkPackage(studio, pkg.dir);
    expect(await report.locator('.outcome-title').textContent()).toBe('Intact, but not signed');
    expect(Object.fromEntries(await stepStatuses(report))).toMatchObject({ signature: 'failed', signer: 'skipped', hashes: 'passed' });
    expect(await report.locator('li[data-step="signature"] .finding').getAttribute('data-rule')).toBe('package.unsigned');

    const importButton = report.getByRole('button', { name: 'Import on override' });
    const override = field(studio, 'override');
    expect(await importButton.isDisabled()).toBe(true);
    const reasonBox = page.getByLabel('Reason (recorded in the audit log)');
    expect(await reasonBox.isDisabled()).toBe(true);
    await override.getByRole('checkbox').check();
    expect(await importButton.isDisabled()).toBe(true); // no reason yet
    expect(await field(studio, 'reason-needed').textContent()).toBe('Give a reason to import on an override.');
    await reasonBox.fill('   ');
    expect(await importButton.isDisabled()).toBe(true);
    const reason = 'Handed over in person by the model owner on a sealed drive.';
    await reasonBox.fill(reason);
    await studio.screenshot('emulators-override');
    expect(libraryEntries(studio.home)).toEqual([]);
    await importButton.click();
    await expect.poll(() => field(studio, 'success').count()).toBe(1);
    expect((await stepStatuses(report)).find(([s]) => s === 'signature')![1]).toBe('overridden');
    expect(await report.locator('.outcome-title').textContent()).toBe('Intact, accepted on your override');

    const events = studio.services.audit.log({ action: 'emulator.imported' });
    expect(events).toHaveLength(1);
    expect(events[0]!.reason).toBe(reason);
    expect(events[0]!.payload.details.override).toEqual({ because: 'unsigned' });
    const row = page.locator(`tr[data-emulator-id="${pkg.manifestSha256}"]`);
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.locator('[data-field="signer"]').textContent()).toContain('unsigned');
    expect(await row.locator('[data-field="signer"]').textContent()).toContain('imported on override');
    await expect.poll(() => field(studio, 'override-reason').textContent()).toContain(reason);

    await page.getByRole('button', { name: `Remove TinyStories-16L (${pkg.manifestSha256.slice(0, 12)})` }).click();
    await expect.poll(() => field(studio, 'no-emulators').count()).toBe(1);
    expect(libraryEntries(studio.home)).toEqual([]);
    expect(studio.services.audit.log({ action: 'emulator.removed' })).toHaveLength(1);
    expect(await field(studio, 'details').count()).toBe(0);
    expect(studio.problems).toEqual([]);
  });
});
