// The compiler's fast Maglev builder must produce exactly the reference table of src/core/maglev.ts.
import test from 'ava';
import fc from 'fast-check';
import { maglevTable } from '../dist/src/compiler/maglev.js';
import { buildMaglev, MAGLEV_SIZES } from '../dist/src/core/maglev.js';

test('maglevTable equals buildMaglev for random backend sets and sizes', (t) => {
  fc.assert(fc.property(
    fc.uniqueArray(fc.tuple(fc.integer({ min: 1, max: 255 }), fc.integer({ min: 1, max: 65535 })), { maxLength: 40, selector: ([a, p]) => `${a}:${p}` }),
    fc.constantFrom(...MAGLEV_SIZES.slice(0, 4)),
    (eps, m) => {
      const keys = eps.map(([a, p]) => `10.0.0.${a}:${p}`);
      const ids = eps.map((_, i) => i * 7 + 3);
      const fast = maglevTable(ids, keys, m), ref = buildMaglev(ids, keys, m);
      t.is(fast.length, ref.length);
      t.deepEqual(Array.from(fast), Array.from(ref));
      return true;
    }), { numRuns: 200, seed: 3 });
});

test('maglevTable is independent of the order backends are listed in', (t) => {
  const keys = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', 'fd00::1:80'];
  const ids = [4, 9, 2, 7];
  const a = maglevTable(ids, keys, 251);
  const b = maglevTable([...ids].reverse(), [...keys].reverse(), 251);
  t.deepEqual(Array.from(a), Array.from(b));
  const counts = new Map();
  for (const x of a) counts.set(x, (counts.get(x) ?? 0) + 1);
  t.deepEqual([...counts.keys()].sort((x, y) => x - y), [2, 4, 7, 9]);
  for (const n of counts.values()) t.true(n >= 251 / 4 - 2 && n <= 251 / 4 + 2, `share ${n}`);
});
