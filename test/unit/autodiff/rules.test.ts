import { describe, expect, it } from 'vitest';
import { registeredOps } from '../../../native-models/autodiff';
import { HOST_CASES, NN_CASES, RULE_CASES } from './cases';
import { checkCase, checkHostCase, forwardOps, hostCaseOps } from './gradcheck';

const DEFAULT_TOL = 1e-6;

describe('gradient rules match central finite differences (float64)', () => {
  for (const c of RULE_CASES) {
    it(c.name, async () => {
      const r = await checkCase(c);
      expect(r.perInput.length).toBeGreaterThan(0);
      expect(r.maxError).toBeLessThanOrEqual(c.tol ?? DEFAULT_TOL);
    });
  }

  // The op's float64 forward has no ORT kernel: the rule's backward runs alone in ORT (the forward
  // node pruned) and the finite differences use a double-precision host forward.
  for (const c of HOST_CASES) {
    it(c.name, async () => {
      const r = await checkHostCase(c);
      for (const op of r.ops) expect(r.ranOps).not.toContain(op);
      expect(r.maxError).toBeLessThanOrEqual(c.tol ?? DEFAULT_TOL);
    });
  }

  it('the table covers every registered rule', () => {
    const covered = new Set([...RULE_CASES.flatMap((c) => [...forwardOps(c)]), ...HOST_CASES.flatMap((c) => [...hostCaseOps(c)])]);
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
