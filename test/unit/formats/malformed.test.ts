// Every malformed file of the generated set is refused by `offsite inspect` with exit 2 and a
// one-line message naming the broken rule, quickly and without large allocations (acceptance of
// issue 4: hostile files are rejected before any of their claimed data is read).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { makeMalformed, type MalformedCase } from '../../fixtures/formats/make-malformed';
import { describePath } from '../../../native-models/formats/describe';
import { FormatError } from '../../../native-models/formats/errors';
import { offsite, tempDir } from './helpers';

// The generator is deterministic, so the case list is known when tests are collected.
const tmp = tempDir('offsite-malformed-');
const cases: MalformedCase[] = makeMalformed(tmp.dir);
const timings = new Map<string, number>();
let baseline = 0;
let baselineMaxRss = 0;
let peakGrowth = 0;

beforeAll(async () => {
  await offsite('inspect', join(tmp.dir, cases[0]!.name)); // load modules before measuring
  baseline = process.memoryUsage().arrayBuffers;
  baselineMaxRss = process.resourceUsage().maxRSS * 1024;
});
afterAll(() => tmp.cleanup());

describe('offsite inspect refuses malformed files', () => {
  it('covers every rule the issue lists', () => {
    const rules = new Set(cases.map((c) => c.rule));
    for (const r of [
      'safetensors.header-past-end',
      'safetensors.header-too-large',
      'safetensors.overlap',
      'safetensors.hole',
      'safetensors.size-mismatch',
      'safetensors.header.duplicate-key',
      'safetensors.header.not-utf8',
      'safetensors.unknown-dtype',
      'safetensors.truncated',
      'safetensors.header.not-object',
      'safetensors.too-short',
    ]) {
      expect(rules, r).toContain(r);
    }
  });

  for (const c of cases) {
    it(`${c.name}: ${c.what}`, async () => {
      const path = join(tmp.dir, c.name);
      const t0 = performance.now();
      const r = await offsite('inspect', path);
      const ms = performance.now() - t0;
      timings.set(c.name, ms);
      peakGrowth = Math.max(peakGrowth, process.memoryUsage().arrayBuffers - baseline);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      const lines = r.err.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(c.phrase);
      expect(lines[0]).not.toMatch(/Internal error|    at /);
      // The stable rule id, straight from the reader.
      const e = await describePath(path).then(() => undefined, (x: unknown) => x);
      expect(e).toBeInstanceOf(FormatError);
      expect((e as FormatError).rule).toBe(c.rule);
      expect(ms).toBeLessThan(1000);
    });
  }

  it('allocated less than 50 MB across the whole set', () => {
    expect(timings.size).toBe(cases.length);
    // Sampled right after each run (before the garbage collector could hide a big buffer) ...
    expect(peakGrowth).toBeLessThan(50 * 1024 * 1024);
    // ... and the process's peak resident size over the whole set.
    expect(process.resourceUsage().maxRSS * 1024 - baselineMaxRss).toBeLessThan(50 * 1024 * 1024);
  });
});
