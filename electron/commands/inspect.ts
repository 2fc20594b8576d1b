import { FormatError } from '../../native-models/formats/errors';
import { describePath } from '../../native-models/formats/describe';
import { UsageError, type Command } from './types';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'describe a model folder, safetensors file, llama2.c checkpoint or PEFT adapter',
  usage: '  offsite inspect PATH [--json]',
  options: {},
  async run(cmd, io) {
    if (cmd.positionals.length !== 1) {
      throw new UsageError(`offsite inspect takes exactly one PATH, got ${cmd.positionals.length} (offsite inspect PATH [--json]).`);
    }
    const path = cmd.positionals[0]!;
    let result;
    try {
      result = await describePath(path);
    } catch (e) {
      // Malformed input is bad input: exit 2 with the reader's one-line reason (it names the rule).
      if (e instanceof FormatError) throw new UsageError(e.message);
      throw e;
    }
    if (cmd.json) io.out(JSON.stringify(result.description));
    else io.out(`${path}\n${result.text}`);
    return 0;
  },
};
