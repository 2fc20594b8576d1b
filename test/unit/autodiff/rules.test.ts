import { describe, expect, it } from 'vitest';
import { registeredOps } from '../../../native-models/autodiff';
import { NN_CASES, RULE_CASES } from './cases';
import { checkCase, forwardOps } from './gradcheck';

const DEFAULT_TOL = 1e-6;

describe('gradient rules match central finite differences (float64)', () => {
  for (const c of RULE_CASES) {
    it(c.name, async () => {
      const r = await checkCase(c);
      expect(r.perInput.length).toBeGreaterThan(0);
      expect(r.maxError).toBeLessThanOrEqual(c.tol ?? DEFAULT_TOL);
    });
  }

  it('the table covers every registered rule', () => {
    const covered = new Set(RULE_CASES.flatMap((c) => [...forwardOps(c)]));
    const missing = registeredOps().filter((op) => !covered.has(op));
    expect(missing).toEqual([]);
  });
});

describe('nn compositions match central finite differences (float64)', () => {
  for (const c of NN_CASES) {
    it(c.name, async () => {
      const r = await checkCase(c);
      expect(r.maxError).toBeLessThanOrEqual(c.tol ?? DEFAULT_TOL);
      // Every float input of these cases influences the output.
      expect(r.perInput.every((e) => e !== 'none')).toBe(true);
    });
  }
});
