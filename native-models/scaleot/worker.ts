// Job worker entry for emulator building and plug-in (started by electron/services/emulators.ts
// with startJob): runs in a worker thread, streams progress, stops at the next step when cancelled.
import { runJob } from '../runtime/job-worker';
import { buildEmulator, type BuildOptions, type BuildProgress, type BuildResult } from './build';
import { plugIn, type PlugInOptions, type PlugInResult } from './plugin';

export type ScaleotJobInput = { kind: 'build'; options: BuildOptions & { signingKey: string | null } } | { kind: 'plugin'; options: PlugInOptions };
export type ScaleotJobResult = { kind: 'build'; result: BuildResult } | { kind: 'plugin'; result: PlugInResult };

runJob<ScaleotJobInput, BuildProgress, ScaleotJobResult>(async (input, ctx) => {
  if (input.kind === 'build') {
    return { kind: 'build', result: await buildEmulator(input.options, { progress: (p) => ctx.progress(p), cancelled: () => ctx.cancelled }) };
  }
  return { kind: 'plugin', result: await plugIn(input.options) };
});
