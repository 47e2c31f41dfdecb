// The statistics of interleaved rounds (src/bench/paired-rounds.ts): the rotation of the order,
// quantiles by nearest rank below, pooling, per-round ratios and the bootstrap range over rounds.
import test from 'ava';
import { rotation, quantileSorted, pooledQuantile, pairedRounds, pairedPooledRatio, roundRatios, bootstrapRatioRange } from '../dist/src/bench/paired-rounds.js';
import { mulberry32 } from '../dist/src/util/rng.js';

test('rotation: each contender runs in each position once over n rounds', (t) => {
  t.deepEqual(rotation(3, 0), [0, 1, 2]);
  t.deepEqual(rotation(3, 1), [1, 2, 0]);
  t.deepEqual(rotation(3, 5), [2, 0, 1]);
  const firsts = [0, 1, 2, 3].map((r) => rotation(4, r)[0]);
  t.deepEqual([...firsts].sort(), [0, 1, 2, 3]);
  t.deepEqual(rotation(0, 3), []);
});

test('quantile: nearest rank (at least q·n samples at or below), the last sample for q = 1, null for none', (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);   // 1..100
  t.is(quantileSorted(xs, 0.5), 50);
  t.is(quantileSorted(xs, 0.99), 99);   // not the largest: that is the p100
  t.is(quantileSorted(xs, 0.07), 7);    // (0.07 × 100 is 7.000000000000001 in floating point)
  t.is(quantileSorted(xs, 0.995), 100);
  t.is(quantileSorted(xs, 0), 1);
  t.is(quantileSorted(xs, 1), 100);
  t.is(quantileSorted([], 0.5), null);
  // small n: the p50 of two is the smaller, of one the one; the p99 of ten the largest
  t.is(quantileSorted([1, 2], 0.5), 1);
  t.is(quantileSorted([3], 0.5), 3);
  t.is(quantileSorted(Array.from({ length: 10 }, (_, i) => i), 0.99), 9);
  const thousand = Array.from({ length: 1000 }, (_, i) => i);
  t.is(thousand.length - thousand.indexOf(quantileSorted(thousand, 0.99)), 11);   // the 11th-worst
});

test('pooled quantile: chunks merged and sorted, missing chunks skipped', (t) => {
  t.is(pooledQuantile([[5, 1], null, [3, 2, 4]], 0.5), 3);
  t.is(pooledQuantile([[10], [1, 2, 3]], 0.99), 10);
  t.is(pooledQuantile([null, []], 0.5), null);
});

test('paired pooled ratio: only the rounds both ran, so a baseline that sat out the loaded rounds is not compared with them', (t) => {
  // the load doubles from round 3 on; the baseline failed after round 2 (it sat out the rest)
  const a = [[2, 2], [2, 2], [4, 4], [4, 4]];
  const b = [[1, 1], [1, 1], null, null];
  t.deepEqual(pairedRounds(a, b), [0, 1]);
  t.is(pairedPooledRatio(a, b, 0.99), 2);   // the rounds both ran: 2 / 1
  t.not(pooledQuantile(a, 0.99) / pooledQuantile(b, 0.99), 2);   // (unpaired: 4 / 1)
  t.is(pairedPooledRatio([[1], null], [null, [1]], 0.5), null);   // no round in common
  t.is(pairedPooledRatio([[1]], [[0]], 0.5), null);
});

test('round ratios: per round, null where either side has no chunk', (t) => {
  const a = [[2, 4], [10], null, [6]];
  const b = [[1, 2], [5], [1], []];
  t.deepEqual(roundRatios(a, b, 0.99), [2, 2, null, null]);
  t.deepEqual(roundRatios([[1]], [[0]], 0.5), [null]);   // no division by zero
});

test('bootstrap range: deterministic, contains the pooled ratio, narrows to a point when every round agrees', (t) => {
  const rnd = mulberry32(7);
  const rounds = 10;
  const a = [], b = [];
  for (let r = 0; r < rounds; r++) {
    const load = 1 + r % 3;   // rounds differ (load drift), the pairs share it
    a.push(Array.from({ length: 200 }, () => 2 * load * (1 + rnd())));
    b.push(Array.from({ length: 200 }, () => load * (1 + rnd())));
  }
  const g = bootstrapRatioRange(a, b, 0.99, { iterations: 200, level: 0.9, seed: 3 });
  t.truthy(g);
  t.is(g.rounds, rounds);
  t.true(g.lo <= g.hi);
  const pooled = pooledQuantile(a, 0.99) / pooledQuantile(b, 0.99);
  t.true(g.lo <= pooled && pooled <= g.hi, `${g.lo} <= ${pooled} <= ${g.hi}`);
  t.deepEqual(bootstrapRatioRange(a, b, 0.99, { iterations: 200, level: 0.9, seed: 3 }), g);
  // identical samples in every round: every resample gives the same ratio
  const same = Array.from({ length: 5 }, () => [1, 2, 3, 4]);
  const twice = same.map((c) => c.map((v) => 2 * v));
  const p = bootstrapRatioRange(twice, same, 0.5, { iterations: 50 });
  t.is(p.lo, 2);
  t.is(p.hi, 2);
});

test('bootstrap range: equal tails, so swapping the contenders gives the reciprocal range', (t) => {
  const rnd = mulberry32(11);
  const a = [], b = [];
  for (let r = 0; r < 6; r++) {
    a.push(Array.from({ length: 30 }, () => 1 + rnd()));
    b.push(Array.from({ length: 30 }, () => 1 + rnd()));
  }
  for (const [level, iterations] of [[0.5, 4], [0.5, 40], [0.9, 400], [0.8, 100], [0, 4]]) {
    const ab = bootstrapRatioRange(a, b, 0.5, { iterations, level, seed: 5 });
    const ba = bootstrapRatioRange(b, a, 0.5, { iterations, level, seed: 5 });
    t.true(ab.lo <= ab.hi, `${level}/${iterations}: ${ab.lo} <= ${ab.hi}`);
    t.true(Math.abs(ba.lo - 1 / ab.hi) < 1e-12 && Math.abs(ba.hi - 1 / ab.lo) < 1e-12, `${level}/${iterations}: [${ba.lo}, ${ba.hi}] vs 1 / [${ab.lo}, ${ab.hi}]`);
  }
});

test('bootstrap range: null with fewer than three paired rounds', (t) => {
  t.is(bootstrapRatioRange([[1], [2]], [[1], [2]], 0.5), null);
  t.is(bootstrapRatioRange([[1], null, [2], [3]], [[1], [1], null, [1]], 0.5), null);
});
