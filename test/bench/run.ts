// `npm run bench`: runs every bench section and writes bench/report.json and bench/report.md.
// Options: --threads N (default: all cores), --warmup N (default 3), --reps N (default 10).
// Nothing here asserts a threshold; the report states figures and ratios measured in one run.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultThreads } from '../../native-models/runtime/providers';
import { benchAttentionTrainStep } from './attention-train-step';
import { machineInfo, writeReport, type BenchReport, type BenchSection, type Cell } from './report';

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
const warmup = intFlag('warmup', 3);
const reps = intFlag('reps', 10);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Accepts what another section's function returns: one section, several, or a bare object. */
function asSections(id: string, title: string, r: unknown): BenchSection[] {
  const one = (x: unknown): BenchSection => {
    if (x && typeof x === 'object' && Array.isArray((x as BenchSection).rows)) return { id, title, ...(x as Partial<BenchSection>) } as BenchSection;
    const flat: Record<string, Cell> = {};
    for (const [k, v] of Object.entries((x ?? {}) as Record<string, unknown>)) flat[k] = typeof v === 'number' || typeof v === 'string' || v === null ? v : JSON.stringify(v);
    return { id, title, rows: [flat] };
  };
  return Array.isArray(r) ? r.map(one) : [one(r)];
}

async function main(): Promise<void> {
  const machineExtra: Record<string, Cell> = {};
  const sections: BenchSection[] = [];

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
    sections.push(...asSections('generation-1t', 'Generation: key/value cache vs full recompute, 1 thread', await mod.benchGeneration({ threads: 1, reps: Math.max(5, reps), tokens: 64 })));
    if (threads > 1) sections.push(...asSections(`generation-${threads}t`, `Generation: key/value cache vs full recompute, ${threads} threads`, await mod.benchGeneration({ threads, reps: Math.max(5, reps), tokens: 64 })));
  }

  const report: BenchReport = { generatedAt: new Date().toISOString(), machine: machineInfo(machineExtra), sections };
  const json = `${repoRoot}bench/report.json`;
  const md = `${repoRoot}bench/report.md`;
  writeReport(report, json, md);
  for (const s of sections) {
    console.log(`\n${s.title}`);
    for (const row of s.rows) console.log(`  ${Object.values(row).map((v) => v ?? '—').join('  ')}`);
  }
  console.log('\nWrote bench/report.json and bench/report.md.');
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
