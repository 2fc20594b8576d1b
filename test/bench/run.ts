// `npm run bench`: runs every bench section and writes bench/report.json and bench/report.md,
// laid out in issue 10's five parts (parts.ts).
// Options: --threads N (default: all cores), --warmup N / --reps N (default 3 / 10 for the small
// sections, 2 / 5 for the LoRA, roofline and forward sections at the three model sizes), --quick
// (smoke run: the LoRA, roofline, forward and overhead sections at d 256 only, 1 warm-up, 2
// repetitions; the other parts are marked as not measured), --lora-only [--size 512,768] (only the
// LoRA-vs-PyTorch and roofline sections, at the listed hidden sizes (default all three), with the
// profile of the largest; written to test-results/bench-lora/, never over bench/report.md).
// Nothing here asserts a threshold; the report states figures and ratios measured in one run.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultThreads } from '../../native-models/runtime/providers';
import { benchAttentionTrainStep } from './attention-train-step';
import { benchForwardEval } from './forward-eval';
import { benchLoraTrainStep, SEQ, SIZES, type LoraBenchResult } from './lora-train-step';
import { benchOverheads } from './overheads';
import { writeBenchReport } from './parts';
import { machineInfo, stats, type BenchReport, type BenchSection, type Cell } from './report';
import { rooflineSection } from './roofline';

function intFlag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`--${name} needs a whole number of at least 1 (got "${process.argv[i + 1] ?? ''}").`);
    process.exit(2);
  }
  return v;
}

const threads = intFlag('threads', defaultThreads());
const quick = process.argv.includes('--quick');
const loraOnly = process.argv.includes('--lora-only');
const onlySizes = (() => {
  const i = process.argv.indexOf('--size');
  if (i < 0) return SIZES;
  const want = (process.argv[i + 1] ?? '').split(',').map(Number);
  const picked = SIZES.filter((s) => want.includes(s.hidden));
  if (picked.length !== want.length) {
    console.error(`--size takes hidden sizes among ${SIZES.map((s) => s.hidden).join(', ')}, comma-separated (got "${process.argv[i + 1] ?? ''}").`);
    process.exit(2);
  }
  return picked;
})();
const warmup = intFlag('warmup', 3);
const reps = intFlag('reps', 10);
// The model-size sections: steps of seconds each, so fewer repetitions unless asked.
const sizedWarmup = quick ? 1 : intFlag('warmup', 2);
const sizedReps = quick ? 2 : intFlag('reps', 5);
const load = () => loadavg().map((x) => x.toFixed(2)).join(' / ');
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Accepts what another section's function returns: one section, several, or a bare object. */
function asSections(id: string, title: string, r: unknown): BenchSection[] {
  const one = (x: unknown): BenchSection => {
    // The caller's id wins (one module measured at two settings gives two sections); the module's
    // own title, when it has one, says more than the caller's.
    if (x && typeof x === 'object' && Array.isArray((x as BenchSection).rows)) return { title, ...(x as Partial<BenchSection>), id } as BenchSection;
    const flat: Record<string, Cell> = {};
    for (const [k, v] of Object.entries((x ?? {}) as Record<string, unknown>)) flat[k] = typeof v === 'number' || typeof v === 'string' || v === null ? v : JSON.stringify(v);
    return { id, title, rows: [flat] };
  };
  return Array.isArray(r) ? r.map(one) : [one(r)];
}

async function main(): Promise<void> {
  const started = performance.now();
  const machineExtra: Record<string, Cell> = { 'load average at start (1 / 5 / 15 min)': load() };
  const sections: BenchSection[] = [];
  const summary: string[] = [];
  const modelRoot = mkdtempSync(join(tmpdir(), 'offsite-bench-models-'));
  try {
    await sizedSections(sections, summary, machineExtra, modelRoot);
  } finally {
    rmSync(modelRoot, { recursive: true, force: true });
  }
  if (!quick && !loraOnly) await smallSections(sections, machineExtra, summary);

  machineExtra['load average at end (1 / 5 / 15 min)'] = load();
  machineExtra['bench wall time (min)'] = Math.round((performance.now() - started) / 600) / 100;
  machineExtra['machine sharing'] = 'shared with other engineers running builds and tests during the run: absolute figures vary with their load; compare the ratios, taken per repetition';
  machineExtra.mode = quick ? 'quick (smoke run)' : loraOnly ? `LoRA + roofline only (${onlySizes.map((s) => s.label).join(', ')})` : 'full';
  const report: BenchReport = { generatedAt: new Date().toISOString(), machine: machineInfo(machineExtra), sections };
  // A smoke or partial run must not replace the committed full report.
  const partial = quick ? 'test-results/bench-quick' : loraOnly ? 'test-results/bench-lora' : null;
  const out = partial ? `${repoRoot}${partial}/` : `${repoRoot}bench/`;
  writeBenchReport(report, summary, `${out}report.json`, `${out}report.md`);
  for (const s of sections) {
    console.log(`\n${s.title}`);
    for (const row of s.rows) console.log(`  ${Object.values(row).map((v) => v ?? '—').join('  ')}`);
  }
  if (summary.length) console.log(`\nSummary:\n${summary.map((l) => `  - ${l}`).join('\n')}`);
  console.log(`\nWrote ${partial ?? 'bench'}/report.json and report.md (${machineExtra['bench wall time (min)']} min).`);
}

/** Parts 1, 2, 4 (forward) and 5 (copies, messaging) at the three model sizes (d 256 only with --quick). */
async function sizedSections(sections: BenchSection[], summary: string[], machineExtra: Record<string, Cell>, modelRoot: string): Promise<void> {
  const sizes = quick ? [SIZES[0]!] : onlySizes;
  const profile = sizes[sizes.length - 1]!;
  console.error(`bench: LoRA train step vs PyTorch + roofline, ${threads} thread(s), ${sizedWarmup} warm-up + ${sizedReps} repetitions, ${sizes.map((s) => s.label).join(', ')}…`);
  const lora: LoraBenchResult = await benchLoraTrainStep({ threads, warmup: sizedWarmup, reps: sizedReps, sizes, modelRoot, profile, singleThread: threads > 1 ? (quick ? SIZES[0]! : loraOnly ? (sizes.find((s) => s.hidden === 512) ?? null) : SIZES[1]!) : null });
  sections.push(lora.section);
  const roof = rooflineSection(lora.roofline, threads, [
    'The probe is a 2048³ MatMul (48 MB working set, threads in lock-step); the roofline is its fastest run, and every measurement of a repetition is separated from the next by a 250 ms pause, because onnxruntime\'s and OpenBLAS\'s worker threads spin-wait after their work and on 2 cores that spinning lands on whatever runs next. A fraction near or above 1 says the step\'s MatMuls, smaller and cache-resident ([batch·seq, d] × [d, d]), run as fast as the large probe does: the step is MatMul-bound (see the profile in the LoRA section).',
    'What limits the fraction: the train step is not only MatMuls (see the profile in the LoRA section: the elementwise work of SwiGLU, softmax, norms and residual sums in forward and backward runs as separate memory-bound kernels), and its MatMuls are smaller and skinnier (d × d weights, [batch·seq, d] activations, per-head attention products) than the 2048³ reference.',
  ]);
  sections.push(roof);
  if (loraOnly) {
    for (const r of lora.section.rows) summary.push(`LoRA train step ${r.model}, ${r.threads} thread(s): ours ${r['ours ms (median, min–max)']} ms, ${r['ours tokens/s']} tokens/s vs PyTorch ${r['PyTorch tokens/s']} → ${r['tokens/s ratio ours ÷ PyTorch']}×.`);
    for (const r of roof.rows) summary.push(`Roofline ${r.model}: ${r['train step GFLOP/s']} GFLOP/s ÷ ORT MatMul ${r['ORT MatMul GFLOP/s']} GFLOP/s = ${r['fraction of roofline']}.`);
    return;
  }
  for (const r of lora.section.rows) summary.push(`LoRA train step ${r.model}, ${r.threads} thread(s): ours ${r['ours tokens/s']} tokens/s vs PyTorch ${r['PyTorch tokens/s']} → ${r['tokens/s ratio ours ÷ PyTorch']}× (per-repetition ${r['per-rep ratio min–max']}).`);
  for (const r of roof.rows) summary.push(`Roofline ${r.model}: ${r['train step GFLOP/s']} GFLOP/s ÷ ORT MatMul ${r['ORT MatMul GFLOP/s']} GFLOP/s = ${r['fraction of roofline']} (target ≥ 0.40 at d 768 / 12 layers).`);
  machineExtra['torch BLAS (LoRA peer)'] = `${lora.blas.openblas ? `${lora.blas.openblas.config}, core ${lora.blas.openblas.core}` : lora.blas.libraries.join(', ')}; libraries ${lora.blas.libraries.join(', ')}`;

  console.error(`bench: forward-only evaluation vs PyTorch…`);
  const fwd = await benchForwardEval({ threads, warmup: sizedWarmup, reps: sizedReps, sizes, modelRoot });
  sections.push(fwd);
  for (const r of fwd.rows) summary.push(`Forward evaluation ${r.model}: ours ${r['ours tokens/s']} tokens/s vs PyTorch ${r['PyTorch tokens/s']} → ${r['tokens/s ratio ours ÷ PyTorch']}×.`);

  console.error('bench: overheads (host↔session copies, worker messaging)…');
  const ref = lora.results.find((r) => r.size.hidden === 512 && r.threads === threads) ?? lora.results[0]!;
  sections.push(...(await benchOverheads({
    threads,
    reps: Math.max(10, sizedReps * 4),
    io: lora.results.filter((r) => r.threads === threads).map((r) => ({ model: r.size.label, trainable: r.trainable, batch: r.size.batch, seq: SEQ, stepMs: stats(r.oursMs).median })),
    messagingReference: { model: ref.size.label, stepMs: stats(ref.oursMs).median, layers: ref.size.layers },
  })));
}

/** The sections that existed before the model-size sections (attention block, audit, IST, generation). */
async function smallSections(sections: BenchSection[], machineExtra: Record<string, Cell>, summary: string[]): Promise<void> {
  console.error(`bench: attention train step, ${threads} thread(s), ${warmup} warm-up + ${reps} repetitions…`);
  const att = await benchAttentionTrainStep({ threads, warmup, reps });
  Object.assign(machineExtra, att.machine);
  sections.push(att.section);

  // Sections owned by other areas join here when their module is present.
  const audit = new URL('./audit-overhead.ts', import.meta.url);
  if (existsSync(fileURLToPath(audit))) {
    console.error('bench: audit log overhead…');
    const mod = (await import(audit.href)) as { benchAuditOverhead?: () => unknown };
    if (typeof mod.benchAuditOverhead !== 'function') throw new Error('test/bench/audit-overhead.ts does not export benchAuditOverhead().');
    sections.push(...asSections('audit-overhead', 'Audit log overhead', await mod.benchAuditOverhead()));
  }

  const ist = new URL('./ist.ts', import.meta.url);
  if (existsSync(fileURLToPath(ist))) {
    console.error(`bench: IST vs all-layers LoRA train step, ${threads} thread(s)…`);
    const mod = (await import(ist.href)) as { benchIst?: (o: { threads: number; warmup: number; reps: number }) => Promise<unknown> };
    if (typeof mod.benchIst !== 'function') throw new Error('test/bench/ist.ts does not export benchIst().');
    sections.push(...asSections('ist', 'IST train step vs all layers', await mod.benchIst({ threads, warmup, reps: Math.max(20, reps) })));
  }

  const generation = new URL('./generation.ts', import.meta.url);
  if (existsSync(fileURLToPath(generation))) {
    console.error('bench: generation with vs without the key/value cache (1 thread and all threads)…');
    const mod = (await import(generation.href)) as { benchGeneration?: (o: { threads: number; reps: number; tokens: number }) => Promise<unknown> };
    if (typeof mod.benchGeneration !== 'function') throw new Error('test/bench/generation.ts does not export benchGeneration().');
    const one = asSections('generation-1t', 'Generation: key/value cache vs full recompute, 1 thread', await mod.benchGeneration({ threads: 1, reps: Math.max(15, reps), tokens: 64 }));
    sections.push(...one);
    for (const r of one[0]?.rows.filter((row) => String(row.model).startsWith('stories260K (')) ?? []) {
      summary.push(`Generation, stories260K, ${r.newTokens} tokens from BOS, 1 thread: with the key/value cache ${r.msPerTokenCache} ms per token over the run vs ${r.msPerTokenNoCache} ms without → ${r.speedup}× (best runs ${r.speedupBest}×); the ${r.newTokens}th token alone ${r.msLastTokenCache} vs ${r.msLastTokenNoCache} ms → ${r.speedupLastToken}×; same tokens: ${r.sameTokens}.`);
    }
    if (threads > 1) sections.push(...asSections(`generation-${threads}t`, `Generation: key/value cache vs full recompute, ${threads} threads`, await mod.benchGeneration({ threads, reps: Math.max(15, reps), tokens: 64 })));
  }
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
