import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSettingsStore, type SettingsChange } from '../../../electron/services/settings';
import { ServiceError } from '../../../electron/services/service-error';
import { useTempHomes } from './helpers';

const tempHome = useTempHomes();
const DEFAULTS = { role: null, userName: '', executionProvider: 'auto', threads: 'auto' };

describe('settings store', () => {
  it('gives the defaults when there is no file, and does not create one by reading', () => {
    const home = tempHome();
    expect(createSettingsStore(home).get()).toEqual(DEFAULTS);
    expect(readdirSync(home)).toEqual([]);
  });

  it('round-trips through the file: a new store over the same folder reads what was saved', () => {
    const home = tempHome();
    const saved = createSettingsStore(home).set({ role: 'auditor', userName: 'Ada', threads: 4, executionProvider: 'cpu' });
    expect(saved).toEqual({ role: 'auditor', userName: 'Ada', threads: 4, executionProvider: 'cpu' });
    expect(createSettingsStore(home).get()).toEqual(saved);
    expect(JSON.parse(readFileSync(join(home, 'settings.json'), 'utf8'))).toEqual(saved);
  });

  it('changes only the settings named in a change', () => {
    const home = tempHome();
    const store = createSettingsStore(home);
    store.set({ userName: 'Ada', threads: 4 });
    expect(store.set({ threads: 'auto' })).toEqual({ ...DEFAULTS, userName: 'Ada', threads: 'auto' });
  });

  it('writes atomically: no temporary files are left next to settings.json', () => {
    const home = tempHome();
    const store = createSettingsStore(home);
    for (let i = 1; i <= 5; i++) store.set({ threads: i });
    expect(readdirSync(home)).toEqual(['settings.json']);
  });

  it('creates the data folder when it does not exist yet', () => {
    const home = join(tempHome(), 'nested', 'home');
    createSettingsStore(home).set({ role: 'model-owner' });
    expect(existsSync(join(home, 'settings.json'))).toBe(true);
  });

  it.each([
    [{ threads: 0 }, 'Threads must be "auto" or a whole number from 1 to 1024.'],
    [{ threads: 1025 }, 'Threads must be "auto" or a whole number from 1 to 1024.'],
    [{ role: 'owner' }, 'Role must be model owner, data owner or auditor.'],
    [{ colour: 'blue' }, '"colour" is not a known field.'],
    [{ colour: 'blue', size: 3 }, '"colour", "size" are not known fields.'],
  ])('refuses %j with a sentence and leaves the file as it was', (patch, sentence) => {
    const home = tempHome();
    const store = createSettingsStore(home);
    store.set({ threads: 2 });
    const before = readFileSync(store.file, 'utf8');
    expect(() => store.set(patch as never)).toThrow(new ServiceError(sentence));
    expect(readFileSync(store.file, 'utf8')).toBe(before);
  });

  it('keeps keys a newer version wrote', () => {
    const home = tempHome();
    writeFileSync(join(home, 'settings.json'), JSON.stringify({ threads: 2, theme: 'dark' }));
    const store = createSettingsStore(home);
    expect(store.get()).toEqual({ ...DEFAULTS, threads: 2 });
    store.set({ userName: 'Ada' });
    expect(JSON.parse(readFileSync(store.file, 'utf8'))).toEqual({ ...DEFAULTS, threads: 2, userName: 'Ada', theme: 'dark' });
  });

  it.each([
    ['{ broken', /is not valid JSON/],
    ['[1, 2]', /does not hold a JSON object/],
    ['{"threads": -1}', /holds a value that is not valid: Threads must be "auto" or a whole number from 1 to 1024\. Fix it/],
  ])('reports an unreadable file %j in a sentence naming the file', (content, pattern) => {
    const home = tempHome();
    writeFileSync(join(home, 'settings.json'), content);
    const store = createSettingsStore(home);
    expect(() => store.get()).toThrow(ServiceError);
    expect(() => store.get()).toThrow(pattern);
    expect(() => store.get()).toThrow(join(home, 'settings.json'));
  });

  it('tells onChange what changed, and only when something did', () => {
    const changes: SettingsChange[] = [];
    const store = createSettingsStore(tempHome(), { onChange: (c) => changes.push(c) });
    store.set({ userName: 'Ada', threads: 2 });
    store.set({ threads: 2 });
    store.set({ role: 'data-owner', threads: 2 });
    expect(changes.map((c) => c.changed)).toEqual([['userName', 'threads'], ['role']]);
    expect(changes[1]!.before.role).toBe(null);
    expect(changes[1]!.after.role).toBe('data-owner');
  });
});
