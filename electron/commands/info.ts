import { appVersion } from '../services/version';
import { chooseProvider, defaultThreads, onnxruntimeVersion, type ProviderRequest } from '../../native-models/runtime/providers';
import { UsageError, type Command } from './types';

export const infoCommand: Command = {
  name: 'info',
  summary: 'versions, execution providers, threads and the data folder',
  usage: '  offsite info [--json] [--ep auto|cpu|cuda] [--threads N]',
  options: { ep: { type: 'string' }, threads: { type: 'string' } },
  async run(cmd, io) {
    const ep = (cmd.values.ep as string | undefined) ?? 'auto';
    if (!['auto', 'cpu', 'cuda'].includes(ep)) throw new UsageError(`--ep must be auto, cpu or cuda, not "${ep}".`);
    const threadsFlag = cmd.values.threads as string | undefined;
    const threads = threadsFlag === undefined ? defaultThreads() : Number(threadsFlag);
    if (!Number.isInteger(threads) || threads < 1) throw new UsageError(`--threads must be a positive whole number, not "${threadsFlag}".`);
    const choice = chooseProvider(ep as ProviderRequest);
    const info = {
      version: appVersion(),
      onnxruntime: onnxruntimeVersion(),
      node: process.versions.node,
      executionProviders: { available: choice.available, requested: choice.requested, chosen: choice.chosen, reason: choice.reason },
      threads,
      home: cmd.home,
    };
    if (cmd.json) io.out(JSON.stringify(info));
    else
      io.out(
        [
          `Offsite Studio ${info.version}`,
          `onnxruntime-node ${info.onnxruntime} on Node ${info.node}`,
          `execution provider: ${choice.chosen} (${choice.reason})`,
          `threads: ${threads}`,
          `data folder: ${cmd.home}`,
        ].join('\n'),
      );
    return 0;
  },
};
