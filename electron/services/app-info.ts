// What the app runs on: versions, execution provider (chosen, and why), threads, data folder.
// Shown by `offsite info` and on the Settings screen; the same facts go into audit events.
import { arch, platform } from 'node:os';
import type { AppInfo, ExecutionProviderRequest, Settings } from '../ipc/contract';
import { chooseProvider, defaultThreads, onnxruntimeVersion } from '../../native-models/runtime/providers';
import { appVersion } from './version';

export interface AppInfoOverrides {
  /** Overrides the execution-provider setting (the CLI's --ep). */
  executionProvider?: ExecutionProviderRequest;
  /** Overrides the threads setting (the CLI's --threads). */
  threads?: number;
}

export function appInfo(home: string, settings: Settings, overrides: AppInfoOverrides = {}): AppInfo {
  const choice = chooseProvider(overrides.executionProvider ?? settings.executionProvider);
  const cores = defaultThreads();
  const fromSetting = overrides.threads ?? (settings.threads === 'auto' ? undefined : settings.threads);
  return {
    version: appVersion(),
    onnxruntime: onnxruntimeVersion(),
    node: process.versions.node,
    electron: process.versions.electron ?? null,
    platform: platform(),
    arch: arch(),
    executionProviders: { available: choice.available, requested: choice.requested, chosen: choice.chosen, reason: choice.reason },
    threads: fromSetting ?? cores,
    threadsSource: fromSetting === undefined ? 'default' : 'setting',
    cores,
    dataFolder: home,
  };
}
