// The app shell end to end: the built renderer in Chromium, `window.offsite` wired into the real
// gateway and services, a fresh data folder per page.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseProvider } from '../../native-models/runtime/providers';
import { appInfo } from '../../electron/services/app-info';
import { DEFAULT_SETTINGS } from '../../electron/ipc/contract';
import { repoRoot, useStudioSuite, type Studio } from './harness';

const suite = useStudioSuite();

const SCREENS = ['Home', 'Emulators', 'Datasets', 'Tune', 'Evaluate', 'Build emulator', 'Plug-in', 'Models', 'Audit', 'Demo', 'Settings'];
// Every screen's feature has landed; a new screen without one goes here.
const PENDING: string[] = [];

function settingsOnDisk(home: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(home, 'settings.json'), 'utf8')) as Record<string, unknown>;
}

function field(studio: Studio, name: string) {
  return studio.page.locator(`[data-field="${name}"]`);
}

describe('app shell (Chromium, real gateway)', () => {
  it('navigates every screen; screens whose feature has not landed say so and name the command', async () => {
    const studio = await suite.open();
    const nav = studio.page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link').allTextContents()).toEqual(SCREENS);

    for (const label of SCREENS) {
      await studio.openScreen(label);
      await expect.poll(() => nav.getByRole('link', { name: label, exact: true }).getAttribute('aria-current')).toBe('page');
      const main = studio.page.getByRole('main');
      if (PENDING.includes(label)) {
        await expect.poll(() => main.getByRole('heading', { level: 2 }).first().textContent()).toBe('This feature is not available yet in this build of the app.');
        const commands = await main.locator('.commands code').allTextContents();
        expect(commands.length).toBeGreaterThan(0);
        for (const c of commands) expect(c).toMatch(/^offsite [a-z]/);
      }
      await studio.screenshot(label.toLowerCase().replace(/[^a-z]+/g, '-'));
    }
    expect(studio.problems).toEqual([]);
  });

  it('is keyboard-navigable: Tab reaches the navigation, Enter opens a screen and focus moves to its title', async () => {
    const studio = await suite.open();
    const { page } = studio;
    await page.keyboard.press('Tab'); // skip link
    expect(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { textContent: string } } }).document.activeElement.textContent)).toBe(
      'Skip to content',
    );
    await page.keyboard.press('Tab'); // Home
    await page.keyboard.press('Tab'); // Emulators
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#screen-title').textContent()).toBe('Emulators');
    await expect.poll(() => page.evaluate(() => (globalThis as unknown as { document: { activeElement: { id: string } } }).document.activeElement.id)).toBe('screen-title');
    expect(studio.problems).toEqual([]);
  });

  it('Settings shows the engine facts the Node side reports, through the gateway', async () => {
    const studio = await suite.open();
    await studio.openScreen('Settings');
    const nodeSide = appInfo(studio.home, DEFAULT_SETTINGS);
    const ortPackage = JSON.parse(readFileSync(join(repoRoot, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')) as { version: string };
    const choice = chooseProvider('auto');

    await expect.poll(() => field(studio, 'onnxruntime').textContent()).toBe(ortPackage.version);
    expect(nodeSide.onnxruntime).toBe(ortPackage.version);
    expect(await field(studio, 'provider').textContent()).toBe(choice.chosen.toUpperCase());
    expect(await field(studio, 'provider-reason').textContent()).toBe(choice.reason);
    expect((await field(studio, 'threads').textContent())?.trim()).toMatch(new RegExp(`^${nodeSide.threads}\\b`));
    // The data folder is a temp folder this test made: only the gateway can have told the page.
    expect(await field(studio, 'data-folder').textContent()).toBe(studio.home);
    expect(await field(studio, 'version').textContent()).toBe((JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version);
    await studio.screenshot('settings-engine');
    expect(studio.problems).toEqual([]);
  });

  it('Settings saves through the gateway to the data folder and shows validation errors as sentences', async () => {
    const studio = await suite.open();
    const { page } = studio;
    await studio.openScreen('Settings');
    await page.getByLabel('Your name', { exact: true }).fill('Ada Lovelace');
    await page.getByLabel('Execution provider', { exact: true }).selectOption('cpu');
    await page.getByLabel('Threads', { exact: true }).fill('3');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toBe('Settings saved.');
    expect(settingsOnDisk(studio.home)).toEqual({ role: null, userName: 'Ada Lovelace', executionProvider: 'cpu', threads: 3 });
    // The engine facts are asked for again and follow the new settings.
    await expect.poll(() => field(studio, 'provider-reason').textContent()).toBe('CPU requested.');
    await expect.poll(async () => (await field(studio, 'threads').textContent())?.trim()).toMatch(/^3 \(your setting/);

    await page.getByLabel('Threads', { exact: true }).fill('0');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('Threads must be "auto" or a whole number from 1 to 1024.');
    await studio.screenshot('settings-validation-error');
    await page.getByLabel('Threads', { exact: true }).fill('many');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('Threads must be "auto" or a whole number from 1 to 1024.');
    expect(settingsOnDisk(studio.home).threads).toBe(3);

    await studio.reload();
    await studio.openScreen('Settings');
    await expect.poll(() => page.getByLabel('Your name', { exact: true }).inputValue()).toBe('Ada Lovelace');
    expect(await page.getByLabel('Threads', { exact: true }).inputValue()).toBe('3');
    expect(studio.problems).toEqual([]);
  });

  it('Home keeps the chosen role in the settings and shows that role’s next steps', async () => {
    const studio = await suite.open();
    const { page } = studio;
    await expect.poll(() => page.getByText('Choose a role above to see the steps for it.').count()).toBe(1);
    await page.getByRole('radio', { name: /^Data owner/ }).check();
    await expect.poll(() => settingsOnDisk(studio.home).role).toBe('data-owner');
    const steps = page.locator('ol.steps li');
    await expect.poll(() => steps.first().textContent()).toContain('Import the emulator you received');
    await studio.screenshot('home-data-owner');

    await studio.reload();
    await expect.poll(() => page.getByRole('radio', { name: /^Data owner/ }).isChecked()).toBe(true);
    await page.getByRole('radio', { name: /^Auditor/ }).check();
    await expect.poll(() => settingsOnDisk(studio.home).role).toBe('auditor');
    await expect.poll(() => steps.first().textContent()).toContain('Open the audit database');
    expect(studio.problems).toEqual([]);
  });

  it('delivers main-process events to window.offsite.on listeners', async () => {
    const studio = await suite.open();
    await studio.page.evaluate(() => {
      const g = globalThis as unknown as { offsite: { on(e: string, l: (p: unknown) => void): () => void }; received: unknown[] };
      g.received = [];
      g.offsite.on('job.progress', (p) => g.received.push(p));
    });
    const progress = { jobId: 'run-1', kind: 'tune', step: 3, total: 10, message: 'Step 3 of 10', metrics: { loss: 2.5 } };
    studio.services.events.emit('job.progress', progress);
    await expect.poll(() => studio.page.evaluate(() => (globalThis as unknown as { received: unknown[] }).received)).toEqual([progress]);
    expect(studio.problems).toEqual([]);
  });

  it('says so in a sentence when the main process cannot be reached (no gateway, no engine facts)', async () => {
    const studio = await suite.open({
      invoke: async () => {
        throw new Error('main process gone');
      },
    });
    const { page } = studio;
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('could not reach the app’s main process');
    await studio.openScreen('Settings');
    expect(await field(studio, 'onnxruntime').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Save settings' }).isDisabled()).toBe(true);
    await studio.screenshot('settings-unreachable');
  });
});
