// `offsite adapter sign | verify | import`: the data owner packages and signs a tuned adapter for
// the model owner; the model owner verifies and imports it (same strict verifier as emulators).
import { resolve } from 'node:path';
import { FormatError } from '../../native-models/formats/errors';
import { buildAdapterPackage } from '../services/packages';
import { ServiceError } from '../services/service-error';
import { packageCommands } from './emulator';
import { EXIT, UsageError, type Command } from './types';

const signUsage = '  offsite adapter sign --adapter DIR --emulator PKG --out PKG [--sign-key KEYFILE] [--json]';

export const adapterSignCommand: Command = {
  name: 'adapter sign',
  summary: 'package a tuned adapter (PEFT folder or full-layer safetensors) for the model owner, referencing the emulator, signed with your key',
  usage: `${signUsage}\n  Without --sign-key the package is unsigned (the model owner then needs an override to import it).`,
  options: { adapter: { type: 'string' }, emulator: { type: 'string' }, out: { type: 'string' }, 'sign-key': { type: 'string' } },
  async run(cmd, io) {
    const v = cmd.values;
    for (const flag of ['adapter', 'emulator', 'out'] as const) {
      if (typeof v[flag] !== 'string') throw new UsageError(`offsite adapter sign needs --${flag} (${signUsage.trim()}).`);
    }
    let written;
    try {
      written = await buildAdapterPackage(cmd.home, {
        adapterDir: resolve(v.adapter as string),
        emulatorDir: resolve(v.emulator as string),
        out: resolve(v.out as string),
        signingKey: typeof v['sign-key'] === 'string' ? resolve(v['sign-key']) : null,
      });
    } catch (e) {
      if (e instanceof FormatError || e instanceof ServiceError) throw new UsageError(e.message);
      if (e instanceof Error && /already exists and is not empty/.test(e.message)) throw new UsageError(e.message);
      throw e;
    }
    if (cmd.json) io.out(JSON.stringify({ out: written.dir, manifestSha256: written.manifestSha256, signerKeyId: written.signerKeyId, manifest: written.manifest, event: written.event }));
    else
      io.out(
        [
          `Adapter package written to ${written.dir}`,
          `manifest sha256 ${written.manifestSha256}`,
          written.signerKeyId ? `signed by key ${written.signerKeyId}` : 'unsigned (no --sign-key)',
          `audit event #${written.event.seq} adapter.exported`,
        ].join('\n'),
      );
    return EXIT.ok;
  },
};

export const adapterCommands: Command[] = [adapterSignCommand, ...packageCommands('adapter')];
