// `offsite plugin`: the model owner plugs a returned adapter (an adapter package, verified here, or
// a plain adapter folder) into the full model and exports the tuned model as a Hugging Face folder.
import { JobCancelledError, PackageVerificationError, plugInAdapter } from '../services/emulators';
import { trustedKeysFor } from '../services/emulator-trust';
import { list } from './flags';
import { CancelledError, EXIT, UsageError, VerificationError, type Command } from './types';

const USAGE = [
  '  offsite plugin --model MODEL --adapter DIR --out DIR [--merge] [--emulator PKG] [--trust PUBKEY]... [--allow-unsigned --reason TEXT] [--json]',
  '',
  '  --adapter DIR      an adapter package (verified: signature, trusted signer, hashes) or a PEFT / full-layer adapter folder',
  '  --emulator PKG     the emulator the adapter was tuned on: its layer map places the adapter layers in the full model',
  '                     (default: the imported emulator the adapter package names, if this data folder has it)',
  '  --merge            merge LoRA into the weights (otherwise the LoRA adapter is written to OUT/adapter with the',
  '                     full model\'s layer indices); full-layer adapters always replace their blocks',
  '  --json: {out, format, merged, layerMapping:[{adapterLayer, modelLayer}], changedWeights, files, event}',
].join('\n');


export const pluginCommand: Command = {
  name: 'plugin',
  summary: 'plug a returned adapter into the full model (LoRA merged or full layers replaced) and export the tuned model',
  usage: USAGE,
  options: {
    model: { type: 'string' },
    adapter: { type: 'string' },
    out: { type: 'string' },
    emulator: { type: 'string' },
    merge: { type: 'boolean' },
    trust: { type: 'string', multiple: true },
    'allow-unsigned': { type: 'boolean' },
    reason: { type: 'string' },
  },
  async run(cmd, io) {
    const v = cmd.values;
    for (const f of ['model', 'adapter', 'out'] as const) {
      if (typeof v[f] !== 'string' || v[f] === '') throw new UsageError(`offsite plugin needs --${f} (${USAGE.split('\n')[0]!.trim()}).`);
    }
    const allow = v['allow-unsigned'] === true;
    const reason = typeof v.reason === 'string' ? v.reason.trim() : '';
    if (allow && !reason) throw new UsageError('--allow-unsigned needs --reason TEXT saying why this adapter is accepted without a trusted signature (it goes into the audit log).');
    const trustedKeys = trustedKeysFor(cmd.home, list(v.trust));
    let done;
    try {
      done = await plugInAdapter(cmd.home, {
        model: v.model as string,
        adapter: v.adapter as string,
        out: v.out as string,
        emulator: typeof v.emulator === 'string' ? v.emulator : null,
        merge: v.merge === true,
        trustedKeys,
        ...(allow ? { override: { reason } } : {}),
      }, { signal: io.signal });
    } catch (e) {
      if (e instanceof PackageVerificationError) throw new VerificationError(e.message);
      if (e instanceof JobCancelledError) throw new CancelledError(e.message);
      throw e;
    }
    const r = done.result;
    if (cmd.json) io.out(JSON.stringify({ out: r.out, format: r.format, merged: r.merged, layerMapping: r.layerMapping, changedWeights: r.changedWeights, files: r.files, event: done.event }));
    else
      io.out(
        [
          `Tuned model written to ${r.out} (${r.files.join(', ')})`,
          `${r.format === 'full-layers' ? 'full adapter layers replaced' : r.merged ? 'LoRA merged' : 'LoRA kept as OUT/adapter'}: ${r.layerMapping.map((m) => `adapter layer ${m.adapterLayer} → model layer ${m.modelLayer}`).join(', ')}`,
          `audit event #${done.event.seq} plugin.finished`,
        ].join('\n'),
      );
    return EXIT.ok;
  },
};
