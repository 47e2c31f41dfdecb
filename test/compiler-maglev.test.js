// The compiler's fast Maglev builder must produce exactly the reference table of the paper (test/lib/maglev-reference.js).
// It has two phases (see src/compiler/maglev.ts): 4-slot probe blocks, then, for N >= 2F backends
// (F = floor(sqrt(M) / 2)), a scan of the last F free slots by modular inverse.
import test from 'ava';
import fc from 'fast-check';
import { maglevTable } from '../dist/src/compiler/maglev.js';
import { maglevIndexTable } from './lib/maglev-tables.js';
import { slabAllocator } from '../dist/src/compiler/slab.js';
import { buildMaglev, MAGLEV_SIZES } from './lib/maglev-reference.js';

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

// Every listed size, with backend counts on both sides of phase 2's N >= 2F gate (so the
// inverse-based tail runs at every M, including 65521 where k·skip^-1 passes 2^32), plus 1 and 2
// backends and M far above N, where phase 1 alone must walk long runs of taken slots.
test('maglevTable equals buildMaglev at every table size, both phases', (t) => {
  for (const m of MAGLEV_SIZES) {
    const gate = 2 * Math.floor(Math.sqrt(m) / 2);
    const counts = [...new Set([1, 2, 3, 10, gate - 1, gate, 200, gate + 40])].filter((n) => n >= 1 && n <= m / 4);
    for (const n of counts) {
      fc.assert(fc.property(
        fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 65535 })),
          { minLength: n, maxLength: n, selector: ([a, b, p]) => `${a}.${b}:${p}` }),
        (eps) => {
          const keys = eps.map(([a, b, p]) => `10.1.${a}.${b}:${p}`);
          const ids = eps.map((_, i) => i * 3 + 1);
          const fast = maglevTable(ids, keys, m), ref = buildMaglev(ids, keys, m);
          if (fast.length !== ref.length) return false;
          for (let i = 0; i < ref.length; i++) if (fast[i] !== ref[i]) return false;
          return true;
        }), { numRuns: m > 10000 ? 2 : 4, seed: m + n });
      t.pass(`M=${m} N=${n}`);
    }
  }
});

test('maglevIndexTable: the same table as indexes into the key-ordered backends, 1 or 2 bytes a slot', (t) => {
  fc.assert(fc.property(
    fc.uniqueArray(fc.tuple(fc.integer({ min: 1, max: 255 }), fc.integer({ min: 1, max: 65535 })), { minLength: 1, maxLength: 40, selector: ([a, p]) => `${a}:${p}` }),
    fc.constantFrom(...MAGLEV_SIZES.slice(0, 3)),
    (eps, m) => {
      const sorted = eps.map(([a, p]) => [`10.0.0.${a}`, p]).sort((x, y) => { const a = `${x[0]}:${x[1]}`, b = `${y[0]}:${y[1]}`; return a < b ? -1 : a > b ? 1 : 0; });
      const ids = sorted.map((_, i) => 1000 + i * 7);
      const idx = maglevIndexTable(sorted.map((e) => e[0]), sorted.map((e) => e[1]), m);
      t.is(idx.BYTES_PER_ELEMENT, 1);
      t.deepEqual(Array.from(idx, (k) => ids[k]), Array.from(maglevTable(ids, sorted.map(([a, p]) => `${a}:${p}`), m)));
      return true;
    }), { numRuns: 200, seed: 6 });
  // 300 backends: two bytes a slot; a slab allocator hands out aligned views
  // in key order ("addr:port" strings), as the compiler passes them: 10.1.0.10:80 sorts before 10.1.0.1:80
  const addrs = Array.from({ length: 300 }, (_, i) => `10.1.${i >> 8}.${i & 255}`).sort((a, b) => (`${a}:80` < `${b}:80` ? -1 : 1));
  const ports = addrs.map(() => 80);
  const alloc = slabAllocator(1 << 16);
  alloc(3, 1); // leave the slab at an odd offset
  const wide = maglevIndexTable(addrs, ports, 8191, alloc);
  t.is(wide.BYTES_PER_ELEMENT, 2);
  t.is(wide.byteOffset % 2, 0);
  const ids = addrs.map((_, i) => i + 1);
  t.deepEqual(Array.from(wide, (k) => ids[k]), Array.from(maglevTable(ids, addrs.map((a, i) => `${a}:${ports[i]}`), 8191)));
});
