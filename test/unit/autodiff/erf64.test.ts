import { describe, expect, it } from 'vitest';
import { erf } from './erf64';

// Reference values from CPython's math.erf (the C library's erf), printed with repr.
const REFERENCE: [number, number][] = [
  [-4.5, -0.9999999998033839],
  [-3, -0.9999779095030014],
  [-2.5, -0.999593047982555],
  [-1.7, -0.9837904585907745],
  [-0.5, -0.5204998778130465],
  [-1e-8, -1.1283791670955126e-8],
  [0, 0],
  [1e-8, 1.1283791670955126e-8],
  [0.1, 0.1124629160182849],
  [0.5, 0.5204998778130465],
  [1, 0.8427007929497149],
  [1.25, 0.9229001282564582],
  [2, 0.9953222650189527],
  [2.4999, 0.9995928300996666],
  [2.5, 0.999593047982555],
  [2.75, 0.9998993780778803],
  [3, 0.9999779095030014],
  [3.5, 0.9999992569016276],
  [4, 0.9999999845827421],
  [5, 0.9999999999984626],
  [5.9, 0.9999999999999999],
];

describe('host float64 erf (the reference for the Erf rule check)', () => {
  for (const [x, want] of REFERENCE) {
    it(`erf(${x})`, () => {
      // A few ulp: far below what a 1e-6 gradient check needs, but tight enough to catch a wrong branch.
      expect(Math.abs(erf(x) - want)).toBeLessThanOrEqual(4e-16 * Math.max(1, Math.abs(want)) + 1e-300);
      if (want !== 0) expect(Math.abs(erf(x) - want) / Math.abs(want)).toBeLessThanOrEqual(1e-15);
    });
  }

  it('is odd and saturates', () => {
    for (const x of [0.3, 1.9, 2.6, 4.2]) expect(erf(-x)).toBe(-erf(x));
    expect(erf(7)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
    expect(Number.isNaN(erf(NaN))).toBe(true);
  });
});
