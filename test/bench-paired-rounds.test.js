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

test('quantile: nearest rank below, the last sample for q = 1, null for none', (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);   // 1..100
  t.is(quantileSorted(xs, 0.5), 51);
  t.is(quantileSorted(xs, 0.99), 100);
  t.is(quantileSorted(xs, 0), 1);
  t.is(quantileSorted(xs, 1), 100);
  t.is(quantileSorted([], 0.5), null);
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

test('bootstrap range: null with fewer than three paired rounds', (t) => {
  t.is(bootstrapRatioRange([[1], [2]], [[1], [2]], 0.5), null);
  t.is(bootstrapRatioRange([[1], null, [2], [3]], [[1], [1], null, [1]], 0.5), null);
});
