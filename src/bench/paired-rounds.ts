// Statistics of paired, interleaved rounds (runE2eInterleaved in e2e.ts): every contender measured
// in short chunks, the order rotating every round, so a load change on a shared machine lands on
// all of them alike. A chunk is the samples one contender got in one round; a contender's figure
// pools its chunks, and the spread of a ratio between two contenders is read from the rounds
// themselves (per-round ratios, and a bootstrap over whole rounds, which keeps the pairing and
// the load's correlation within a round — a range from independent samples would be too narrow,
// since the slow samples come in bursts).
import { mulberry32 } from '../util/rng.js';

/** The order of `n` contenders in round `round`: rotated by one each round, so over `n` rounds
 * each contender runs in each position once (none always right after the load-heavy one). */
export function rotation(n: number, round: number): number[] {
  return Array.from({ length: n }, (_, i) => (i + round) % n);
}

/** The `q` quantile of ascending `sorted` by nearest rank: the smallest sample with at least q·n
 * samples at or below it (rank ⌈q·n⌉, at least 1), so the p99 of 100 samples is the 99th, not the
 * largest, and the p50 of 2 the smaller. (q·n is taken a hair low: 0.07 × 100 is 7.000000000000001
 * in floating point, which is rank 7.) Null for none. The same definition every e2e figure uses. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number | null {
  const n = sorted.length;
  return n ? sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n - 1e-9) - 1))] : null;
}

/** The `q` quantile of the chunks pooled (missing chunks, null, are skipped). */
export function pooledQuantile(chunks: Array<ArrayLike<number> | null>, q: number): number | null {
  let n = 0;
  for (const c of chunks) n += c?.length ?? 0;
  const all = new Float64Array(n);
  let at = 0;
  for (const c of chunks) if (c) for (let i = 0; i < c.length; i++) all[at++] = c[i];
  all.sort();
  return quantileSorted(all, q);
}

/** Per round: the `q` quantile of `a`'s chunk over `b`'s, null where either has no samples that
 * round. With 1,000 samples a chunk's p99 is its 11th-worst sample: one round's ratio is a rough
 * figure; their spread is what shows how firm the pooled ratio is. */
export function roundRatios(a: Array<ArrayLike<number> | null>, b: Array<ArrayLike<number> | null>, q: number): Array<number | null> {
  return Array.from({ length: Math.max(a.length, b.length) }, (_, r) => {
    const x = a[r]?.length ? pooledQuantile([a[r]], q) : null, y = b[r]?.length ? pooledQuantile([b[r]], q) : null;
    return x !== null && y !== null && y > 0 ? x / y : null;
  });
}

/** The rounds where both `a` and `b` have samples: a ratio between them is paired only over
 * these (a contender that sat out rounds, having failed, is compared on the rounds it ran). */
export function pairedRounds(a: ArrayLike<ArrayLike<number> | null>, b: ArrayLike<ArrayLike<number> | null>): number[] {
  const both: number[] = [];
  for (let r = 0; r < Math.min(a.length, b.length); r++) if (a[r]?.length && b[r]?.length) both.push(r);
  return both;
}

/** The pooled `q`-quantile of `a` over that of `b`, both over the rounds where both have samples
 * (pairedRounds); null when there are none or `b`'s is not positive. */
export function pairedPooledRatio(a: Array<ArrayLike<number> | null>, b: Array<ArrayLike<number> | null>, q: number): number | null {
  const both = pairedRounds(a, b);
  const x = pooledQuantile(both.map((r) => a[r]), q), y = pooledQuantile(both.map((r) => b[r]), q);
  return x !== null && y !== null && y > 0 ? x / y : null;
}

export interface RatioRange { lo: number; hi: number; level: number; iterations: number; rounds: number }

/**
 * A `level` (e.g. 0.9) range of the pooled `q`-quantile ratio a / b, by resampling whole rounds
 * with replacement (both contenders' chunks of a drawn round go in together, keeping the pairing).
 * Only rounds where both have samples count; null with fewer than 3 such rounds (no spread to
 * speak of). Cost: `iterations` sorts of both pools (~1 ms per 10,000 samples each).
 */
export function bootstrapRatioRange(a: Array<ArrayLike<number> | null>, b: Array<ArrayLike<number> | null>, q: number,
  o: { iterations?: number; level?: number; seed?: number } = {}): RatioRange | null {
  const iterations = o.iterations ?? 400, level = o.level ?? 0.9;
  const both = pairedRounds(a, b);
  if (both.length < 3) return null;
  const rnd = mulberry32(o.seed ?? 1);   // the same data gives the same range on every run
  const ratios: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const pick = both.map(() => both[Math.floor(rnd() * both.length)]);
    const x = pooledQuantile(pick.map((r) => a[r]), q), y = pooledQuantile(pick.map((r) => b[r]), q);
    if (x !== null && y !== null && y > 0) ratios.push(x / y);
  }
  if (!ratios.length) return null;
  ratios.sort((u, v) => u - v);
  // equal tails: as many draws left out below lo as above hi
  const k = Math.min((ratios.length - 1) >> 1, Math.floor(((1 - level) / 2) * ratios.length + 1e-9));
  return { lo: ratios[k], hi: ratios[ratios.length - 1 - k], level, iterations, rounds: both.length };
}
