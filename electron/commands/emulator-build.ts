// `offsite emulator build`: the model owner compresses a full model into a signed emulator package
// (ScaleOT Dynamic LayerReplace + Selective Rank Compression, or the uniform LayerDrop baseline),
// in a job worker, with progress on stderr and an emulator.built audit event.
import { SRC_PROJECTIONS, type SrcProjection } from '../../native-models/scaleot/src';
import { BUILD_DEFAULTS, type BuildProgress } from '../../native-models/scaleot/build';
import { buildEmulatorPackage, JobCancelledError, type EmulatorBuildRequest } from '../services/emulators';
import { intFlag, numberFlag } from './flags';
import { CancelledError, EXIT, UsageError, type Command } from './types';

const USAGE = [
  '  offsite emulator build --model MODEL --out PKG --distill-data FILE [options] [--json]',
  '',
  '  --model MODEL            full model: Hugging Face folder or llama2.c .bin',
  '  --out PKG                new package folder',
  '  --distill-data FILE      the model owner\'s distillation text (JSONL/CSV); 10% is held out for the Emu ZS reference perplexity',
  '  --method scaleot|uniform ScaleOT Dynamic LayerReplace with harmonizers (default) or uniform LayerDrop',
  '  --adapter-layers B,T     bottom and top adapter layers, exact copies the data owner tunes (default 2,2)',
  '  --replace-ratio α        fraction of each group of middle layers replaced by harmonizers (uniform: dropped) (default 0.5)',
  '  --rank-ratio β           Selective Rank Compression of kept middle attention projections, rank ceil(β·min) (default 0.5; 1 = off)',
  '  --src-projections LIST   projections SRC compresses (default q_proj,k_proj,v_proj,o_proj)',
  '  --group-size g           consecutive middle layers per group (default 4)',
  '  --steps N                harmonizer training steps (uniform: KD steps with --kd) (default 200)',
  '  --interval K             steps between importance updates (default 10)',
  '  --candidates R           candidate replacement sets per importance update (default 3)',
  '  --score-lr x             importance learning rate lr_rl (default 10)',
  '  --harmonizer-width n     harmonizer hidden width (default max(8, d/16))',
  '  --lr x                   harmonizer (or KD) learning rate, AdamW (default 0.002)',
  '  --batch-size n, --seq-len n, --seed n',
  '  --kd                     add KD to the full model: lm_weight·lm + kd_weight·kd (off by default: slower)',
  '  --lm-weight x, --kd-weight x   KD loss weights (default 1, 30)',
  '  --sign-key KEYFILE       sign the package (offsite keygen); unsigned without it',
  '  --ep auto|cpu|cuda, --threads N',
  '  --json: {out, manifestSha256, signerKeyId, method, layerMap, scores, replaced, dropped, emuZsPpl, fullZsPpl, src, event}',
].join('\n');

const FLAGS = {
  model: { type: 'string' },
  out: { type: 'string' },
  'distill-data': { type: 'string' },
  method: { type: 'string' },
  'adapter-layers': { type: 'string' },
  'replace-ratio': { type: 'string' },
  'rank-ratio': { type: 'string' },
  'src-projections': { type: 'string' },
  'group-size': { type: 'string' },
  steps: { type: 'string' },
  interval: { type: 'string' },
  candidates: { type: 'string' },
  'score-lr': { type: 'string' },
  'harmonizer-width': { type: 'string' },
  lr: { type: 'string' },
  'batch-size': { type: 'string' },
  'seq-len': { type: 'string' },
  seed: { type: 'string' },
  kd: { type: 'boolean' },
  'lm-weight': { type: 'string' },
  'kd-weight': { type: 'string' },
  'sign-key': { type: 'string' },
  ep: { type: 'string' },
  threads: { type: 'string' },
} as const;

function progressLine(p: BuildProgress): string | null {
  const fmt = (s: Record<number, number>) => Object.entries(s).map(([l, v]) => `${l}:${v.toFixed(3)}`).join(' ');
  switch (p.kind) {
    case 'status':
      return p.message;
    case 'started':
      return `${p.method}: ${p.layers} layers, middle ${p.middle.join(',')}, groups ${p.groups.map((g) => `[${g.join(',')}]`).join(' ')}, ${p.steps} steps`;
    case 'step':
      return p.step % 10 === 0 || p.step === p.steps - 1 ? `step ${p.step + 1}/${p.steps} loss ${p.loss.toFixed(4)}${p.replaced.length ? ` replaced ${p.replaced.join(',')}` : ''}${Object.keys(p.scores).length ? ` replaceability ${fmt(p.scores)}` : ''}` : null;
    case 'importance':
      return `importance at step ${p.step + 1}: candidate losses ${p.losses.map((l) => l.toFixed(4)).join(', ')} → replaceability ${fmt(p.scores)}`;
    case 'src':
      return p.done === p.total || p.done % 8 === 0 ? `SRC ${p.done}/${p.total} projections` : null;
    case 'evaluated':
      return `${p.what === 'emuZS' ? 'Emu ZS' : 'Full ZS'} perplexity ${p.ppl.toFixed(3)} (${p.tokens} tokens)`;
  }
}

export const emulatorBuildCommand: Command = {
  name: 'emulator build',
  summary: 'build a signed emulator package from a full model (ScaleOT or uniform LayerDrop), with importance scores and reference perplexity',
  usage: USAGE,
  options: FLAGS,
  async run(cmd, io) {
    const v = cmd.values;
    for (const f of ['model', 'out', 'distill-data'] as const) {
      if (typeof v[f] !== 'string' || v[f] === '') throw new UsageError(`offsite emulator build needs --${f} (${USAGE.split('\n')[0]!.trim()}).`);
    }
    const method = (v.method as string | undefined) ?? 'scaleot';
    if (method !== 'scaleot' && method !== 'uniform') throw new UsageError(`--method must be scaleot or uniform, not "${method}".`);
    let adapterLayers = BUILD_DEFAULTS.adapterLayers;
    if (typeof v['adapter-layers'] === 'string') {
      const parts = v['adapter-layers'].split(',').map((s) => Number(s.trim()));
      if (parts.length !== 2 || !parts.every((n) => Number.isInteger(n) && n >= 0)) throw new UsageError(`--adapter-layers must be two whole numbers BOTTOM,TOP (e.g. 2,2), not "${v['adapter-layers']}".`);
      adapterLayers = [parts[0]!, parts[1]!];
    }
    let srcProjections = BUILD_DEFAULTS.srcProjections;
    if (typeof v['src-projections'] === 'string') {
      const list = v['src-projections'].split(',').map((s) => s.trim());
      const bad = list.find((p) => !SRC_PROJECTIONS.includes(p as SrcProjection));
      if (bad !== undefined || list.length === 0) throw new UsageError(`--src-projections lists ${SRC_PROJECTIONS.join(', ')}; "${bad ?? ''}" is not one of them.`);
      srcProjections = list as SrcProjection[];
    }
    const ep = (v.ep as string | undefined) ?? 'auto';
    if (!['auto', 'cpu', 'cuda'].includes(ep)) throw new UsageError(`--ep must be auto, cpu or cuda, not "${ep}".`);
    const req: EmulatorBuildRequest = {
      model: v.model as string,
      out: v.out as string,
      distillData: v['distill-data'] as string,
      method,
      adapterLayers,
      alpha: numberFlag(cmd, 'replace-ratio', BUILD_DEFAULTS.alpha, (n) => n >= 0 && n <= 1, 'a number from 0 to 1'),
      beta: numberFlag(cmd, 'rank-ratio', BUILD_DEFAULTS.beta, (n) => n > 0 && n <= 1, 'a number above 0 and at most 1'),
      srcProjections,
      groupSize: intFlag(cmd, 'group-size', BUILD_DEFAULTS.groupSize)!,
      steps: intFlag(cmd, 'steps', BUILD_DEFAULTS.steps, 0)!,
      interval: intFlag(cmd, 'interval', BUILD_DEFAULTS.interval)!,
      candidates: intFlag(cmd, 'candidates', BUILD_DEFAULTS.candidates, 2)!,
      scoreLr: numberFlag(cmd, 'score-lr', BUILD_DEFAULTS.scoreLr, (n) => n > 0, 'a number above 0'),
      hidden: intFlag(cmd, 'harmonizer-width', undefined) ?? null,
      lr: numberFlag(cmd, 'lr', BUILD_DEFAULTS.lr, (n) => n > 0, 'a number above 0'),
      batchSize: intFlag(cmd, 'batch-size', BUILD_DEFAULTS.batchSize)!,
      seqLen: intFlag(cmd, 'seq-len', undefined, 2) ?? null,
      seed: intFlag(cmd, 'seed', BUILD_DEFAULTS.seed, 0)!,
      kd: v.kd === true,
      lmWeight: numberFlag(cmd, 'lm-weight', BUILD_DEFAULTS.lmWeight, (n) => n >= 0, 'a number ≥ 0'),
      kdWeight: numberFlag(cmd, 'kd-weight', BUILD_DEFAULTS.kdWeight, (n) => n >= 0, 'a number ≥ 0'),
      signKey: typeof v['sign-key'] === 'string' ? v['sign-key'] : null,
      provider: ep as 'auto' | 'cpu' | 'cuda',
      threads: intFlag(cmd, 'threads', undefined) ?? null,
    };
    let built;
    try {
      built = await buildEmulatorPackage(cmd.home, req, {
        signal: io.signal,
        onProgress: (p) => {
          const line = progressLine(p);
          if (line) io.err(line);
        },
      });
    } catch (e) {
      if (e instanceof JobCancelledError) throw new CancelledError(e.message);
      throw e;
    }
    const r = built.result;
    if (cmd.json) {
      io.out(JSON.stringify({ out: r.out, manifestSha256: r.manifestSha256, signerKeyId: r.signerKeyId, method: r.method, sourceSha256: r.sourceSha256, layerMap: r.layerMap, scores: r.scores, replaced: r.replaced, dropped: r.dropped, emuZsPpl: r.emuZsPpl, fullZsPpl: r.fullZsPpl, src: r.src ? { beta: r.src.beta, projections: r.src.projections, keptAttentionBefore: r.src.keptAttentionBefore, keptAttentionAfter: r.src.keptAttentionAfter } : null, parameterCount: r.parameterCount, sourceParameterCount: r.sourceParameterCount, event: built.event }));
    } else {
      const roles = r.layerMap.map((e) => `${e.layer}:${e.role}`).join(' ');
      io.out(
        [
          `Emulator package written to ${r.out}`,
          `manifest sha256 ${r.manifestSha256}${r.signerKeyId ? `, signed by key ${r.signerKeyId}` : ', unsigned (no --sign-key)'}`,
          `layers ${roles}`,
          `Emu ZS perplexity ${r.emuZsPpl.toFixed(3)}, Full ZS ${r.fullZsPpl.toFixed(3)} (held-out distillation text)`,
          `parameters ${r.parameterCount} of ${r.sourceParameterCount}`,
          `audit event #${built.event.seq} emulator.built`,
        ].join('\n'),
      );
    }
    return EXIT.ok;
  },
};
