// The emulatorBuild.* and plugin.run channels through the real gateway and services: a tiny
// ScaleOT build started over IPC with job.progress events (kind "emulator.build") carrying the
// loss and the evolving replaceability scores, its history in emulatorBuild.status, the package
// and its emulator.built audit event; a build cancelled mid-way; a signed adapter imported and
// plugged in with the emulator found from emulator.built; request sentences; auditor mode.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_DEFAULTS } from '../../../native-models/scaleot/build';
import { readSafetensors } from '../../../native-models/formats/safetensors';
import { toFloat32 } from '../../../native-models/formats/dtypes';
import { channelFlags } from '../../../electron/ipc/contract';
import { auditorModeRefusal } from '../../../electron/ipc/gateway';
import { ADAPTER_SHIFT, ownerInputs, signedAdapter } from './build-helpers';
import { useGatewayStudios, type Emitted } from './helpers';

const { studio, tempHome } = useGatewayStudios();

let work: string;
let model: string;
let distill: string;
beforeAll(async () => {
  // Shared by every test (temp data folders go after each test).
  work = mkdtempSync(join(tmpdir(), 'offsite-build-ipc-'));
  ({ model, distill } = await ownerInputs(work));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const sha256File = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('emulatorBuild.* and plugin.run', () => {
  it('builds a ScaleOT emulator over IPC with live scores, then plugs a signed adapter back in', async () => {
    const s = studio();
    expect(await s.call('emulatorBuild.defaults')).toMatchObject({ method: BUILD_DEFAULTS.method, adapterLayers: BUILD_DEFAULTS.adapterLayers, alpha: BUILD_DEFAULTS.alpha, beta: BUILD_DEFAULTS.beta, groupSize: BUILD_DEFAULTS.groupSize, steps: BUILD_DEFAULTS.steps });
    expect(await s.call('emulatorBuild.status', {})).toBeNull();

    const out = join(work, 'emulator');
    const started = await s.call('emulatorBuild.start', { model, out, distillData: distill, method: 'scaleot', adapterLayers: [2, 2], alpha: 0.5, beta: 0.5, groupSize: 4, steps: 12, batchSize: 4, seqLen: 32 });
    expect(started.out).toBe(out);
    expect(started.jobId).toMatch(/^build-[0-9a-f]{12}$/);
    // A second build while one runs is refused with a sentence.
    expect((await s.refusal('emulatorBuild.start', { model, out: join(work, 'other'), distillData: distill })).message).toMatch(/already being built/);

    const finished = await s.until('job.finished', (p) => p.jobId === started.jobId);
    expect(finished.outcome, finished.message).toBe('done');
    expect(finished.message).toContain(out);

    const progress = s.emitted.filter((e): e is Extract<Emitted, { event: 'job.progress' }> => e.event === 'job.progress' && e.payload.jobId === started.jobId).map((e) => e.payload);
    expect(progress.every((p) => p.kind === 'emulator.build')).toBe(true);
    const steps = progress.filter((p) => p.stage === 'step');
    expect(steps.map((p) => p.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(steps.every((p) => typeof p.metrics.loss === 'number' && p.total === 12)).toBe(true);
    // Middle layers 2..5 in one group of 4: every step replaces round(0.5·4) = 2 of them.
    expect(steps.every((p) => p.series!.middle!.join() === '2,3,4,5' && p.series!.replacedNow!.length === 2)).toBe(true);
    const importance = progress.filter((p) => p.stage === 'importance');
    expect(importance.length).toBeGreaterThanOrEqual(1);
    expect(importance[0]!.series!.scores!.some((v) => v !== 0)).toBe(true);
    expect(progress.some((p) => p.stage === 'evaluated' && typeof p.metrics.emuZsPpl === 'number')).toBe(true);

    const status = (await s.call('emulatorBuild.status', { jobId: started.jobId }))!;
    expect(status.status).toBe('done');
    expect(status.losses).toHaveLength(12);
    expect(status.losses.every(Number.isFinite)).toBe(true);
    expect(status.scoreHistory.length).toBe(importance.length);
    expect(status.scoreHistory[0]!.scores).toEqual(Object.fromEntries(['2', '3', '4', '5'].map((l, i) => [l, importance[0]!.series!.scores![i]])));
    const r = status.result!;
    expect(r.out).toBe(out);
    expect(r.layerMap.map((e) => e.role).filter((x) => x === 'adapter')).toHaveLength(4);
    expect(r.layerMap.filter((e) => e.role === 'harmonizer').map((e) => e.layer).sort()).toEqual([...r.replaced].sort());
    expect(r.replaced).toHaveLength(2);
    // The final choice: the two highest replaceability scores.
    const ranked = Object.entries(r.scores).sort((a, b) => b[1] - a[1] || Number(b[0]) - Number(a[0])).slice(0, 2).map(([l]) => Number(l)).sort();
    expect(r.replaced).toEqual(ranked);
    expect(status.wouldReplace).toEqual(r.replaced);
    expect(r.parameterCount).toBeLessThan(r.sourceParameterCount);
    expect(r.packageBytes).toBeGreaterThan(0);
    expect(r.sourceBytes).toBeGreaterThan(r.packageBytes);
    expect(r.emuZsPpl).toBeGreaterThan(1);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(r.emuZsPpl).toBe(manifest.reference.emuZS[0].value);
    expect(r.fullZsPpl).toBe(manifest.reference.fullZS[0].value);
    expect(r.manifestSha256).toBe(sha256File(join(out, 'manifest.json')));
    const built = s.services.audit.log({ action: 'emulator.built' });
    expect(built.map((e) => e.seq)).toEqual([r.auditSeq]);
    expect(built[0]!.payload.outputs.emulator).toBe(r.manifestSha256);

    // The data owner's signed adapter comes back; the model owner trusts the key and imports it.
    const adapter = await signedAdapter(join(work, 'data-owner'), out, tempHome());
    await s.call('keys.trust', { path: adapter.pub, label: 'data owner' });
    const imported = await s.call('adapters.import', { path: adapter.pkg });
    expect(imported.ok).toBe(true);
    const list = await s.call('adapters.list');
    expect(list.map((a) => a.id)).toEqual([imported.id]);
    expect(list[0]!.emulator).toMatchObject({ manifestSha256: r.manifestSha256, importedHere: false });

    const tuned = join(work, 'tuned');
    const plugged = await s.call('plugin.run', { model, adapterId: imported.id, out: tuned, merge: true });
    expect(plugged.out).toBe(tuned);
    expect(plugged.format).toBe('full-layers');
    // The emulator was found from emulator.built (it is not imported here).
    expect(plugged.emulatorPath).toBe(out);
    expect(plugged.inputs.emulator).toBe(r.manifestSha256);
    expect(plugged.adapterSigner).toMatchObject({ trusted: true });
    const adapterLayers = r.layerMap.filter((e) => e.role === 'adapter');
    expect(plugged.layerMapping).toEqual(adapterLayers.map((e) => ({ adapterLayer: e.index, modelLayer: e.layer })));
    for (const f of plugged.files) expect(f.sha256, f.path).toBe(sha256File(join(tuned, f.path)));
    const audited = s.services.audit.log({ action: 'plugin.finished' });
    expect(audited.map((e) => e.seq)).toEqual([plugged.auditSeq]);
    expect((audited[0]!.payload.outputs.model as { sha256: string }).sha256).toBe(plugged.sha256);
    // The tuned model's adapter layers carry the adapter's weights; a middle layer is the original.
    const before = (await readSafetensors(join(model, 'model.safetensors'))).tensors;
    const after = (await readSafetensors(join(tuned, 'model.safetensors'))).tensors;
    const w = (m: typeof before, l: number) => toFloat32(m.get(`model.layers.${l}.self_attn.q_proj.weight`)!);
    const top = adapterLayers.at(-1)!.layer;
    expect(w(after, top)[0]).toBeCloseTo(w(before, top)[0]! + ADAPTER_SHIFT, 5);
    expect(w(after, 3)).toEqual(w(before, 3));

    // Errors are sentences.
    expect((await s.refusal('plugin.run', { model, adapterId: imported.id, out: tuned })).message).toBe(`${tuned} already exists; choose a new folder for the tuned model.`);
    expect((await s.refusal('plugin.run', { model, out: join(work, 'x') })).message).toBe('Choose either an imported adapter or an adapter folder, not both and not neither.');
    expect((await s.refusal('plugin.run', { model, adapterId: 'f'.repeat(64), out: join(work, 'x') })).message).toMatch(/^No imported adapter has the id f{64}/);
  }, 600_000);

  it('cancels a running build: no package, job.finished cancelled, emulator.build_cancelled', async () => {
    const s = studio();
    const out = join(work, 'cancelled');
    const { jobId } = await s.call('emulatorBuild.start', { model, out, distillData: distill, steps: 5000, batchSize: 4, seqLen: 32 });
    await s.until('job.progress', (p) => p.jobId === jobId && p.stage === 'step');
    expect(await s.call('emulatorBuild.cancel', { jobId })).toEqual({ jobId, cancelled: true });
    const end = await s.until('job.finished', (p) => p.jobId === jobId);
    expect(end.outcome).toBe('cancelled');
    const status = (await s.call('emulatorBuild.status', {}))!;
    expect(status.jobId).toBe(jobId);
    expect(status.status).toBe('cancelled');
    expect(status.step).toBeLessThan(5000);
    expect(existsSync(out)).toBe(false);
    expect(s.services.audit.log({ action: 'emulator.build_cancelled' })).toHaveLength(1);
    expect(await s.call('emulatorBuild.cancel', { jobId })).toEqual({ jobId, cancelled: false });
  }, 300_000);

  it('answers bad requests with sentences before starting anything', async () => {
    const s = studio();
    const base = { model, out: join(work, 'never'), distillData: distill };
    expect((await s.refusal('emulatorBuild.start', { ...base, model: 'model' })).message).toBe('The path of the full model must be a full path, such as /models/tinyllama.');
    expect((await s.refusal('emulatorBuild.start', { ...base, alpha: 2 })).message).toBe('The replace ratio α must be a number from 0 to 1.');
    expect((await s.refusal('emulatorBuild.start', { ...base, beta: 0 })).message).toBe('The rank ratio β must be a number above 0 and at most 1.');
    expect((await s.refusal('emulatorBuild.start', { ...base, method: 'magic' })).message).toBe('The method must be scaleot (ScaleOT) or uniform (uniform LayerDrop).');
    expect((await s.refusal('emulatorBuild.start', { ...base, distillData: join(work, 'missing.jsonl') })).message).toBe(`The distillation text ${join(work, 'missing.jsonl')} does not exist.`);
    expect((await s.refusal('emulatorBuild.start', { ...base, signKey: join(work, 'none.key') })).message).toMatch(/^The signing key .* does not exist; create one with offsite keygen/);
    expect((await s.refusal('emulatorBuild.start', { ...base, out: work })).message).toBe(`${work} already exists; choose a new folder for the emulator package.`);
    expect((await s.refusal('emulatorBuild.cancel', { jobId: 'build-000000000000' })).message).toBe('No emulator build has the id build-000000000000 in this session.');
    expect(await s.call('emulatorBuild.status', {})).toBeNull();
  });

  it('marks start, cancel and plug-in as mutating; auditor mode refuses them', async () => {
    expect(Object.entries(channelFlags).filter(([c, f]) => (c.startsWith('emulatorBuild.') || c.startsWith('plugin.')) && f.mutates).map(([c]) => c).sort()).toEqual(['emulatorBuild.cancel', 'emulatorBuild.start', 'plugin.run']);
    const owner = studio();
    const exportFile = join(owner.home, 'handover.json');
    await owner.call('audit.export', { out: exportFile });
    const s = studio();
    await s.call('audit.open', { path: exportFile });
    for (const [channel, request] of [
      ['emulatorBuild.start', { model, out: join(work, 'y'), distillData: distill }],
      ['emulatorBuild.cancel', { jobId: 'build-000000000000' }],
      ['plugin.run', { model, adapterPath: work, out: join(work, 'y') }],
    ] as const) {
      expect(await s.refusal(channel, request), channel).toEqual({ code: 'read-only', message: auditorModeRefusal(channel) });
    }
    expect(existsSync(join(work, 'y'))).toBe(false);
    expect(await s.call('emulatorBuild.defaults')).toMatchObject({ steps: BUILD_DEFAULTS.steps });
  });
});
