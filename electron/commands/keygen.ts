// `offsite keygen --out KEYFILE` — an Ed25519 key pair for signing packages and audit checkpoints.
import { resolve } from 'node:path';
import { openAudit } from '../services/audit';
import { generateKey } from '../services/keys';
import { ServiceError } from '../services/service-error';
import { EXIT, UsageError, type Command } from './types';

export const keygenCommand: Command = {
  name: 'keygen',
  summary: 'make an Ed25519 key pair: KEYFILE (private, mode 0600) and KEYFILE.pub',
  usage: '  offsite keygen --out KEYFILE [--json]',
  options: { out: { type: 'string' } },
  async run(cmd, io) {
    const outFlag = cmd.values.out as string | undefined;
    if (!outFlag) throw new UsageError('offsite keygen needs --out KEYFILE (where to write the private key).');
    const out = resolve(outFlag);
    const audit = openAudit(cmd.home);
    let generated;
    try {
      generated = generateKey(audit, out);
    } catch (e) {
      if (e instanceof ServiceError) throw new UsageError(e.message);
      throw e;
    } finally {
      audit.close();
    }
    if (cmd.json) io.out(JSON.stringify({ keyId: generated.keyId, privateKey: generated.privatePath, publicKey: generated.publicPath, seq: generated.seq }));
    else
      io.out(
        [
          `Key ${generated.keyId}`,
          `private key: ${generated.privatePath} (keep it secret; mode 0600)`,
          `public key:  ${generated.publicPath} (give this to whoever verifies your signatures)`,
        ].join('\n'),
      );
    return EXIT.ok;
  },
};
