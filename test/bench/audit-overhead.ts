// Bench: what recording per-step training metrics through the audit log's batched writer costs a
// training loop. A CPU-bound step (a Float32Array matmul of ~5–20 ms) runs with and without
// recordMetrics each step; repetitions alternate, and medians are compared. The lead's
// `npm run bench` calls benchAuditOverhead(); `npx tsx test/bench/audit-overhead.ts` runs it alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { openAudit } from '../../electron/services/audit';

export interface AuditOverheadOptions {
  /** Steps per repetition (default 300: more than one batch of 256 rows is written inside the loop). */
  steps?: number;
  repetitions?: number;
  /** Matrix size n of the simulated step (n×n · n×n). */
  size?: number;
  layers?: number;
}

export interface AuditOverheadResult {
  steps: number;
  repetitions: number;
  layers: number;
  /** Median wall time of one simulated training step without metrics, ms. */
  stepMs: number;
  /** Median wall time of a repetition without / with metrics, ms. */
  withoutMs: number;
  withMs: number;
  /** (with − without) / without, percent, from the wall-time medians (noisy on a busy machine). */
  overheadPercent: number;
  /** The same from this process's CPU time, which other processes' load disturbs far less. */
  cpuOverheadPercent: number;
  /** Time spent inside recordMetrics and the final flush, as a share of the loop, percent (median). */
  directOverheadPercent: number;
  /** Rows written to run_metrics in the last repetition (checks the writer really wrote). */
  rowsWritten: number;
}

function matmul(a: Float32Array, b: Float32Array, c: Float32Array, n: number): void {
  c.fill(0);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      const row = k * n;
      const out = i * n;
      for (let j = 0; j < n; j++) c[out + j]! += aik * b[row + j]!;
    }
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function benchAuditOverhead(options: AuditOverheadOptions = {}): Promise<AuditOverheadResult> {
  const steps = options.steps ?? 300;
  const repetitions = options.repetitions ?? 7;
  const n = options.size ?? 128;
  const layers = options.layers ?? 24;
  const a = new Float32Array(n * n).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const b = new Float32Array(n * n).map((_, i) => ((i * 104_729) % 1000) / 1000 - 0.5);
  const c = new Float32Array(n * n);
  const home = mkdtempSync(join(tmpdir(), 'offsite-bench-audit-'));
  const audit = openAudit(home, { executionProvider: 'cpu' });
  const without: number[] = [];
  const withMetrics: number[] = [];
  const cpuWithout: number[] = [];
  const cpuWith: number[] = [];
  const direct: number[] = [];
  const stepTimes: number[] = [];
  let rowsWritten = 0;
  try {
    matmul(a, b, c, n); // warm-up: JIT
    for (let rep = 0; rep < repetitions; rep++) {
      // Alternate which variant runs first, so drift in machine load hits both alike.
      for (const record of rep % 2 === 0 ? [false, true] : [true, false]) {
        const runId = `bench-${rep}-${record ? 'with' : 'without'}`;
        let inWriter = 0;
        const importance = new Array<number>(layers).fill(1 / layers);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        for (let step = 0; step < steps; step++) {
          const s0 = performance.now();
          matmul(a, b, c, n);
          const loss = Math.abs(c[step % c.length]!) + 1;
          if (!record) stepTimes.push(performance.now() - s0);
          else {
            const w0 = performance.now();
            importance[step % layers] = loss;
            audit.recordMetrics(runId, [{ step, loss, lr: 1e-3, tokensPerSecond: 1000, selected: [step % layers, (step + 7) % layers], importance }]);
            inWriter += performance.now() - w0;
          }
        }
        if (record) {
          const w0 = performance.now();
          audit.flushMetrics();
          inWriter += performance.now() - w0;
        }
        const total = performance.now() - t0;
        const cpu = process.cpuUsage(c0);
        (record ? cpuWith : cpuWithout).push(cpu.user + cpu.system);
        if (record) {
          withMetrics.push(total);
          direct.push((inWriter / total) * 100);
          rowsWritten = audit.metrics(runId).length;
        } else without.push(total);
      }
    }
  } finally {
    audit.close();
    rmSync(home, { recursive: true, force: true });
  }
  const withoutMs = median(without);
  const withMs = median(withMetrics);
  return {
    steps,
    repetitions,
    layers,
    stepMs: median(stepTimes),
    withoutMs,
    withMs,
    overheadPercent: ((withMs - withoutMs) / withoutMs) * 100,
    cpuOverheadPercent: ((median(cpuWith) - median(cpuWithout)) / median(cpuWithout)) * 100,
    directOverheadPercent: median(direct),
    rowsWritten,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchAuditOverhead();
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
