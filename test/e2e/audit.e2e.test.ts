// The Audit screen, auditor mode and Settings → trusted keys end to end: the built renderer in
// Chromium, `window.offsite` wired into the real gateway and services, a fresh data folder per page.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { channelFlags, channels } from '../../electron/ipc/contract';
import { auditorModeRefusal } from '../../electron/ipc/gateway';
import { readPublicKey, writeKeyPair } from '../../electron/services/keys';
import { useStudioSuite, type Studio } from './harness';

const suite = useStudioSuite();

const field = (studio: Studio, name: string) => studio.page.locator(`[data-field="${name}"]`);
const rows = (studio: Studio) => studio.page.locator('ol.events button.event-row');

/** The row as stored, read with a connection of the test's own. */
function storedRow(home: string, seq: number): { hash: string; prev_hash: string } {
  const db = new Database(join(home, 'audit.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT hash, prev_hash FROM audit_events WHERE seq = ?').get(seq) as { hash: string; prev_hash: string };
  } finally {
    db.close();
  }
}

/** What a forger with file access does: drop the guard trigger and edit a row. */
function tamper(home: string, sql: string): void {
  const raw = new Database(join(home, 'audit.sqlite'));
  try {
    raw.exec(sql);
  } finally {
    raw.close();
  }
}

async function verify(studio: Studio): Promise<string> {
  await studio.page.getByRole('button', { name: 'Verify the log' }).click();
  const banner = studio.page.locator('[data-verdict]');
  await banner.waitFor();
  return (await banner.getAttribute('data-verdict'))!;
}

describe('Audit screen (Chromium, real gateway)', () => {
  it('shows a settings change in the timeline with its hashes, says intact, then broken at the edited seq', async () => {
    const studio = await suite.open();
    const { page } = studio;
    await studio.openScreen('Settings');
    await page.getByLabel('Your name').fill('Ada Lovelace');
    await page.getByLabel('Threads').fill('2');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Settings saved.').waitFor();
    // Two more changes, so there is an event before and after the one edited below.
    studio.services.settings.set({ executionProvider: 'cpu' });
    studio.services.settings.set({ threads: 3 });

    await studio.openScreen('Audit');
    await expect.poll(() => rows(studio).count()).toBe(3);
    expect(await field(studio, 'audit-event-count').textContent()).toBe('3');
    const oldest = rows(studio).nth(2);
    expect(await oldest.locator('.event-action').textContent()).toBe('settings.changed');
    expect(await oldest.locator('.event-summary').textContent()).toBe('userName: "" → "Ada Lovelace"; threads: "auto" → 2');
    expect(await oldest.locator('.event-meta').textContent()).toContain('Ada Lovelace (');

    await oldest.click();
    const details = page.getByRole('region', { name: 'Event #1' });
    await details.waitFor();
    const stored = storedRow(studio.home, 1);
    expect(await details.locator('.hash-value code').allTextContents()).toEqual([stored.hash, stored.prev_hash]);
    await expect.poll(() => field(studio, 'event-integrity').textContent()).toBe('Hash and link check out for this event.');

    expect(await verify(studio)).toBe('intact');
    const intact = (await page.locator('[data-verdict] .verdict-title').textContent())!.replace(/\s+/g, ' ').trim();
    expect(intact).toBe(`The log is intact: 3 events, chain head ${storedRow(studio.home, 3).hash.slice(0, 12)}…${storedRow(studio.home, 3).hash.slice(-4)}, no signed checkpoint yet (exporting the log signs one).`);
    await studio.screenshot('audit-normal');

    tamper(studio.home, `DROP TRIGGER audit_events_no_update; UPDATE audit_events SET reason = 'edited later' WHERE seq = 2;`);
    expect(await verify(studio)).toBe('broken');
    expect(await field(studio, 'first-bad-seq').textContent()).toBe('2');
    const broken = (await page.locator('[data-verdict]').textContent())!.replace(/\s+/g, ' ');
    expect(broken).toContain('The log is broken at seq 2: event seq 2 does not match its hash (it was changed after it was written).');
    expect(broken).toContain('Events from seq 2 on cannot be relied on. Do not try to repair the log');
    await page.getByRole('button', { name: 'Show event #2' }).click();
    await page.getByRole('region', { name: 'Event #2' }).waitFor();
    await expect.poll(() => field(studio, 'event-integrity').textContent()).toContain('This event does not match its hash');
    await studio.screenshot('audit-broken');
    expect(studio.problems).toEqual([]);
    studio.services.close();
  });

  it('moves through the timeline with the keyboard and pages through many events', async () => {
    const studio = await suite.open();
    const audit = studio.services.audit;
    audit.transaction(() => {
      for (let i = 1; i <= 250; i++) audit.append('dataset.imported', { details: { name: `part-${i}.jsonl` } });
    });
    await studio.openScreen('Audit');
    await expect.poll(() => rows(studio).count()).toBe(100);
    expect(await studio.page.getByText('Events 1–100 of 250, newest first').count()).toBe(1);

    await rows(studio).first().focus();
    await studio.page.keyboard.press('Enter');
    await studio.page.getByRole('region', { name: 'Event #250' }).waitFor();
    await studio.page.keyboard.press('ArrowDown');
    await studio.page.getByRole('region', { name: 'Event #249' }).waitFor();
    expect(await rows(studio).nth(1).getAttribute('aria-current')).toBe('true');
    await studio.page.keyboard.press('PageDown');
    await studio.page.getByRole('region', { name: 'Event #150' }).waitFor();
    expect(await studio.page.evaluate(() => (globalThis as unknown as { document: { activeElement: { dataset: { seq: string } } } }).document.activeElement.dataset.seq)).toBe('150');

    await studio.page.getByLabel('Search').fill('part-7.jsonl');
    await expect.poll(() => rows(studio).count()).toBe(1);
    expect(await rows(studio).first().getAttribute('data-seq')).toBe('7');
    expect(studio.problems).toEqual([]);
    studio.services.close();
  });

  it('exports to the path given, then opens the export in auditor mode where nothing can be started', async () => {
    const studio = await suite.open();
    const { page } = studio;
    studio.services.settings.set({ userName: 'Dana', threads: 2 });
    studio.services.audit.append('dataset.imported', { inputs: { data: 'a'.repeat(64) }, details: { name: 'private.jsonl' } });
    const folder = join(studio.home, 'usb');
    mkdirSync(folder);
    const out = join(folder, 'audit-export.json');

    await studio.openScreen('Audit');
    await page.getByLabel('Export file', { exact: true }).fill(out);
    await page.getByRole('button', { name: 'Export', exact: true }).click();
    await field(studio, 'export-result').waitFor();
    const written = [await field(studio, 'export-json').textContent(), await field(studio, 'export-html').textContent(), await field(studio, 'export-checkpoint').textContent()];
    expect(written).toEqual([out, join(folder, 'audit-export.html'), join(folder, 'audit-export.checkpoint.json')]);
    for (const f of written) expect(statSync(f!).size).toBeGreaterThan(0);
    expect((JSON.parse(readFileSync(out, 'utf8')) as { format: string }).format).toBe('offsite-audit-export');
    // The export is itself recorded, and the timeline shows it.
    await expect.poll(() => rows(studio).first().locator('.event-action').textContent()).toBe('audit.exported');

    await page.getByText('Review another audit record read-only (auditor mode)').click();
    await page.getByLabel('Audit database or export file').fill(out);
    await page.getByRole('button', { name: 'Open read-only' }).click();
    await expect.poll(() => field(studio, 'audit-source-path').textContent()).toBe(out);
    const nav = page.getByRole('navigation', { name: 'Main' });
    await expect.poll(() => nav.getByRole('link').allTextContents()).toEqual(['Models', 'Audit', 'Settings']);
    expect((await field(studio, 'role').textContent())!.replace(/\s+/g, ' ').trim()).toBe('Role Auditor read-only');
    await expect.poll(() => page.locator('.event-summary').allTextContents()).toContain('private.jsonl');
    expect(await page.getByLabel('Export file', { exact: true }).count()).toBe(0);
    expect(await verify(studio)).toBe('intact');
    await studio.screenshot('audit-auditor-mode');

    // Tune and Build emulator are out of reach, and say why.
    for (const [hash, label] of [
      ['#/tune', 'Tune'],
      ['#/build', 'Build emulator'],
    ] as const) {
      await page.evaluate((h) => ((globalThis as unknown as { location: { hash: string } }).location.hash = h), hash);
      await page.getByRole('heading', { name: `${label} is not available in auditor mode.` }).waitFor();
    }
    expect(await page.getByRole('main').textContent()).toContain('the app refuses every action that would tune, build, import, export or change settings and keys');
    await studio.screenshot('auditor-mode-tune-blocked');

    // The gateway itself refuses every channel that starts or changes anything, whatever the page sends.
    const mutating = channels.filter((c) => channelFlags[c].mutates);
    const answers = await page.evaluate(async (list) => {
      const api = (globalThis as unknown as { offsite: Record<string, Record<string, (r?: unknown) => Promise<{ ok: boolean; error?: { code: string; message: string } }>>> }).offsite;
      const out: Array<[string, string | undefined, string | undefined]> = [];
      for (const c of list) {
        const [ns, method] = c.split('.') as [string, string];
        const r = await api[ns]![method]!({});
        out.push([c, r.error?.code, r.error?.message]);
      }
      return out;
    }, mutating);
    expect(answers).toEqual(mutating.map((c) => [c, 'read-only', auditorModeRefusal(c)]));
    expect(studio.services.settings.get().threads).toBe(2);

    // Settings stays readable but cannot be changed.
    await studio.openScreen('Settings');
    expect(await page.getByRole('button', { name: 'Save settings' }).isDisabled()).toBe(true);
    expect(await page.getByText('Auditor mode is on: settings can be read but not changed.').count()).toBe(1);

    await studio.openScreen('Audit');
    await page.getByRole('button', { name: 'Leave auditor mode' }).click();
    await expect.poll(() => nav.getByRole('link').count()).toBe(11);
    await studio.openScreen('Settings');
    expect(await page.getByRole('button', { name: 'Save settings' }).isDisabled()).toBe(false);
    expect(studio.problems).toEqual([]);
    studio.services.close();
  });

  it('Settings lists, adds, removes and generates trusted keys; each change is in the audit trail', async () => {
    const studio = await suite.open();
    const { page } = studio;
    const publisher = writeKeyPair(join(studio.home, 'publisher.key'));
    const pasted = writeKeyPair(join(studio.home, 'colleague.key'));
    await studio.openScreen('Settings');
    await field(studio, 'keys-empty').waitFor();
    expect(await field(studio, 'data-folder').textContent()).toBe(studio.home);

    await page.getByLabel('Public key file or key text').fill(publisher.publicPath);
    await page.getByLabel('Label (optional)').first().fill('ACME model owner');
    await page.getByRole('button', { name: 'Trust this key' }).click();
    await page.getByText(`Key ${publisher.keyId} (ACME model owner) is now trusted.`).waitFor();

    await page.getByLabel('Public key file or key text').fill(readFileSync(pasted.publicPath, 'utf8'));
    await page.getByRole('button', { name: 'Trust this key' }).click();
    await page.getByText(`Key ${pasted.keyId} (${pasted.keyId}) is now trusted.`).waitFor();

    await page.getByLabel('Public key file or key text').fill(publisher.privatePath);
    await page.getByRole('button', { name: 'Trust this key' }).click();
    await page.getByText(`${publisher.privatePath} is a private key; give the public key instead (KEYFILE.pub), and keep the private key to yourself.`).waitFor();
    await page.getByLabel('Public key file or key text').fill('');

    const mine = join(studio.home, 'my-signing.key');
    await page.getByLabel('Private key file').fill(mine);
    await page.getByLabel('Label (optional)').nth(1).fill('Workstation 7 signing key');
    await page.getByRole('button', { name: 'Generate key pair' }).click();
    await field(studio, 'generated-key').waitFor();
    const generatedId = readPublicKey(`${mine}.pub`).keyId;
    expect(await field(studio, 'generated-key').textContent()).toContain(`Key ${generatedId} generated and trusted.`);
    expect(statSync(mine).mode & 0o777).toBe(0o600);

    const table = page.getByRole('table', { name: 'Trusted keys' });
    await expect.poll(() => table.locator('tbody tr').count()).toBe(3);
    expect(await table.locator('tbody tr td:nth-child(2)').allTextContents()).toEqual(['ACME model owner', pasted.keyId, 'Workstation 7 signing key']);
    await studio.screenshot('settings-keys');

    await page.getByRole('button', { name: `Remove trusted key ${pasted.keyId} (${pasted.keyId})` }).click();
    await expect.poll(() => table.locator('tbody tr').count()).toBe(2);
    const actions = studio.services.audit.log().map((e) => e.action);
    expect(actions).toEqual(['key.trusted', 'key.trusted', 'key.generated', 'key.trusted', 'key.untrusted']);
    expect(existsSync(`${mine}.pub`)).toBe(true);
    expect(studio.problems).toEqual([]);
    studio.services.close();
  });
});
