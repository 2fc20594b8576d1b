// Thinning of long chart series (LineChart): one redraw costs the same at 2,000 steps as at 500.

/** Min and max of each bucket, in step order, so spikes survive thinning to about `max` points. */
export function decimate(xs: number[], ys: number[], max: number): [number[], number[]] {
  const n = xs.length;
  if (n <= max) return [xs.slice(), ys.slice()];
  const buckets = Math.max(1, Math.floor(max / 2));
  const size = n / buckets;
  const ox: number[] = [];
  const oy: number[] = [];
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor(b * size);
    const to = Math.min(n, Math.floor((b + 1) * size));
    let lo = from;
    let hi = from;
    for (let i = from; i < to; i++) {
      if (Number.isNaN(ys[i]!)) continue;
      if (!(ys[i]! >= ys[lo]!)) lo = i;
      if (!(ys[i]! <= ys[hi]!)) hi = i;
    }
    const [a, c] = lo <= hi ? [lo, hi] : [hi, lo];
    ox.push(xs[a]!);
    oy.push(ys[a]!);
    if (c !== a) {
      ox.push(xs[c]!);
      oy.push(ys[c]!);
    }
  }
  if (ox[ox.length - 1] !== xs[n - 1]) {
    ox.push(xs[n - 1]!);
    oy.push(ys[n - 1]!);
  }
  return [ox, oy];
}
