// What every screen shares: the settings and the engine facts, loaded through window.offsite.
import type { AppInfo, IpcError, Settings, SettingsPatch } from '../../../electron/ipc/contract';

class Studio {
  settings = $state<Settings | null>(null);
  info = $state<AppInfo | null>(null);
  /** A sentence saying why settings or engine facts could not be loaded. */
  loadError = $state<string | null>(null);

  async load(): Promise<void> {
    const [settings, info] = await Promise.all([window.offsite.settings.get(), window.offsite.app.info()]);
    if (settings.ok) this.settings = settings.value;
    if (info.ok) this.info = info.value;
    const failed = [settings, info].find((r) => !r.ok);
    this.loadError = failed && !failed.ok ? failed.error.message : null;
  }

  /** Saves a change; returns the gateway's error (its message is shown as written), or null. */
  async save(patch: SettingsPatch): Promise<IpcError | null> {
    const saved = await window.offsite.settings.set(patch);
    if (!saved.ok) return saved.error;
    this.settings = saved.value;
    // Threads and execution provider change what the engine will use: ask again.
    const info = await window.offsite.app.info();
    if (info.ok) this.info = info.value;
    else return info.error;
    return null;
  }
}

export const studio = new Studio();
