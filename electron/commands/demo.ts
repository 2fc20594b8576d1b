// `offsite demo`: the whole offsite-tuning pipeline on the bundled demo assets (CLI.md). The
// pipeline and its assets are not in this build yet, so the command says so instead of faking it.
import { UsageError, type Command } from './types';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'the whole offsite-tuning pipeline on the bundled demo assets (not in this build yet)',
  usage: '  offsite demo [--out DIR] [--quick] [--json]',
  options: { out: { type: 'string' }, quick: { type: 'boolean' } },
  async run() {
    throw new UsageError(
      'The bundled demo is not available yet in this build; run "offsite info" to check the engine, and "offsite --help" for the commands this build has.',
    );
  },
};
