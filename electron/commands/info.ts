// `offsite info`: the same facts as the Settings screen (app.info), from the same service. The
// settings in the data folder apply; --ep and --threads override them for this one report.
import { appInfo } from '../services/app-info';
import { createSettingsStore } from '../services/settings';
import { ServiceError } from '../services/service-error';
import { EXECUTION_PROVIDER_REQUESTS, MAX_THREADS, type ExecutionProviderRequest } from '../ipc/contract';
import { UsageError, type Command } from './types';

export const infoCommand: Command = {
  name: 'info',
  summary: 'versions, execution providers, threads and the data folder',
  usage: '  offsite info [--json] [--ep auto|cpu|cuda] [--threads N]',
  options: { ep: { type: 'string' }, threads: { type: 'string' } },
  async run(cmd, io) {
    const ep = cmd.values.ep as string | undefined;
    if (ep !== undefined && !(EXECUTION_PROVIDER_REQUESTS as readonly string[]).includes(ep)) {
      throw new UsageError(`--ep must be auto, cpu or cuda, not "${ep}".`);
    }
    const threadsFlag = cmd.values.threads as string | undefined;
    const threads = threadsFlag === undefined ? undefined : Number(threadsFlag);
    if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS)) {
      throw new UsageError(`--threads must be a whole number from 1 to ${MAX_THREADS}, not "${threadsFlag}".`);
    }
    let settings;
    try {
      settings = createSettingsStore(cmd.home).get();
    } catch (e) {
      if (e instanceof ServiceError) throw new UsageError(e.message);
      throw e;
    }
    const info = appInfo(cmd.home, settings, { executionProvider: ep as ExecutionProviderRequest | undefined, threads });
    if (cmd.json) io.out(JSON.stringify({ ...info, home: cmd.home }));
    else
      io.out(
        [
          `Offsite Studio ${info.version}`,
          `onnxruntime-node ${info.onnxruntime} on Node ${info.node} (${info.platform} ${info.arch})`,
          `execution provider: ${info.executionProviders.chosen} (${info.executionProviders.reason})`,
          `threads: ${info.threads}${info.threadsSource === 'default' ? ` (all ${info.cores} cores)` : ` (of ${info.cores} cores)`}`,
          `data folder: ${info.dataFolder}`,
        ].join('\n'),
      );
    return 0;
  },
};
