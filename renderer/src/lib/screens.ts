// The app's screens in navigation order. A screen whose feature has landed names its component;
// the others say plainly that the feature is not in this build yet and which `offsite` command
// will offer it. Replace `pending` with `component` when a feature lands.
import type { Component } from 'svelte';
import Audit from '../screens/Audit.svelte';
import Home from '../screens/Home.svelte';
import Settings from '../screens/Settings.svelte';
import Datasets from '../screens/Datasets.svelte';
import Evaluate from '../screens/Evaluate.svelte';
import Emulators from '../screens/Emulators.svelte';
import Tune from '../screens/Tune.svelte';
import BuildEmulator from '../screens/BuildEmulator.svelte';
import PlugIn from '../screens/PlugIn.svelte';
import Demo from '../screens/Demo.svelte';
import Models from '../screens/Models.svelte';

export type ScreenId = 'home' | 'emulators' | 'datasets' | 'tune' | 'evaluate' | 'build' | 'plugin' | 'models' | 'audit' | 'demo' | 'settings';

export interface Pending {
  /** What the screen will do, in one or two sentences. */
  purpose: string;
  /** The command line that will offer the same feature. */
  commands: string[];
}

export interface Screen {
  id: ScreenId;
  label: string;
  /** One line under the screen's title. */
  subtitle: string;
  component?: Component;
  pending?: Pending;
}

export const screens: Screen[] = [
  { id: 'home', label: 'Home', subtitle: 'Choose your role and see what to do next.', component: Home },
  {
    id: 'emulators',
    label: 'Emulators',
    subtitle: 'Import and verify emulator packages.',
    component: Emulators,
  },
  {
    id: 'datasets',
    label: 'Datasets',
    subtitle: 'Import, preview and hash your data files.',
    component: Datasets,
  },
  {
    id: 'tune',
    label: 'Tune',
    subtitle: 'Tune an adapter on the emulator with your data.',
    component: Tune,
  },
  {
    id: 'evaluate',
    label: 'Evaluate',
    subtitle: 'Measure the tuned adapter on local data.',
    component: Evaluate,
  },
  {
    id: 'build',
    label: 'Build emulator',
    subtitle: 'Compress a full model into a signed emulator.',
    component: BuildEmulator,
  },
  {
    id: 'plugin',
    label: 'Plug-in',
    subtitle: 'Plug a returned adapter into the full model.',
    component: PlugIn,
  },
  {
    id: 'models',
    label: 'Models',
    subtitle: 'Inspect a model and generate text from it.',
    component: Models,
  },
  {
    id: 'audit',
    label: 'Audit',
    subtitle: 'Read and verify the tamper-evident audit trail.',
    component: Audit,
  },
  {
    id: 'demo',
    label: 'Demo',
    subtitle: 'Run the whole offsite-tuning pipeline on the bundled demo model and data.',
    component: Demo,
  },
  { id: 'settings', label: 'Settings', subtitle: 'Engine, execution provider, threads and your name.', component: Settings },
];

export function screenById(id: string): Screen | undefined {
  return screens.find((s) => s.id === id);
}
