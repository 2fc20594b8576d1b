// A double-precision erf on the host, the reference for checking the Erf gradient rule in float64:
// onnxruntime-node's CPU provider has no float64 Erf kernel, so the forward cannot run in ORT.
//
//   |x| < 2.5:  erf x = (2/√π) e^(−x²) Σₙ 2ⁿ x^(2n+1) / (2n+1)!!   (all terms one sign: no cancellation)
//   |x| ≥ 2.5:  erf x = 1 − erfc x,  erfc x = (e^(−x²)/√π) / (x + (1/2)/(x + 1/(x + (3/2)/(x + …))))
// Both are accurate to a few ulp; erfc is tiny past 2.5, so 1 − erfc loses nothing that matters.

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) <= 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/** erfc for x ≥ 2.5 by the Laplace continued fraction, evaluated bottom-up (converges fast there). */
function erfcContinuedFraction(x: number): number {
  let f = x;
  for (let k = 120; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a < 2.5) return erfSeries(x);
  if (a > 6) return Math.sign(x); // erfc(6) ≈ 2e-17, below half an ulp of 1
  const r = 1 - erfcContinuedFraction(a);
  return x < 0 ? -r : r;
}
