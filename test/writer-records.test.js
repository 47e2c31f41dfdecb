// The table writer's own records by column (src/core/front-records.ts, src/core/id-set.ts) against
// plain Maps and Sets: random sets and deletes of ids far past the first capacity (the columns
// grow by doubling, or start sized for a regrow), an id reused by another frontend after a delete,
// IdSet.of with repeated ids and ids on every bit of a word.
import test from 'ava';
import fc from 'fast-check';
import { FrontRecords } from '../dist/src/core/front-records.js';
import { IdSet } from '../dist/src/core/id-set.js';
import { Core } from '../dist/src/core/host.js';
import { maglevRangeWords } from '../dist/src/core/maglev-range.js';
import { backend, frontend, mkIr } from './lib/ir-fixture.js';

const frontArb = fc.record({
  id: fc.oneof(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 5000 })),
  kind: fc.constantFrom('ClusterIP', 'NodePort', 'ExternalIP', 'LoadBalancer', 'ClusterPolicy'),
  addr: fc.constantFrom('10.96.0.1', '10.96.0.2', 'fd00::1'),
  port: fc.constantFrom(1, 80, 65535),
  proto: fc.constantFrom('TCP', 'UDP', 'SCTP'),
  maglev: fc.integer({ min: 0, max: 3 }),
  backends: fc.integer({ min: 0, max: 300 }),
  ranges: fc.integer({ min: 0, max: 2 }),
  mOff: fc.integer({ min: 0, max: 1 << 20 }),
  cOff: fc.integer({ min: 0, max: 1000 }),
});
const opArb = fc.oneof(frontArb.map((f) => ({ set: f })), fc.integer({ min: 0, max: 5000 }).map((id) => ({ del: id })));

const irFront = (g) => ({ id: g.id, kind: g.kind, addr: g.addr, family: g.addr.includes(':') ? 6 : 4, port: g.port, proto: g.proto,
  maglev: new Uint8Array(g.maglev), backends: Array.from({ length: g.backends }, (_, i) => i + 1), sourceRanges: Array.from({ length: g.ranges }, () => '10.0.0.0/8') });

test('FrontRecords keeps what a Map of records would, across growth and id reuse', (t) => {
  fc.assert(fc.property(fc.option(fc.integer({ min: 0, max: 3000 })), fc.array(opArb, { maxLength: 60 }), (sized, ops) => {
    const r = sized === null ? new FrontRecords() : FrontRecords.sized(sized);
    const m = new Map();
    for (const op of ops) {
      if (op.set) { const f = irFront(op.set); r.set(f, op.set.mOff, op.set.cOff); m.set(f.id, { f, mOff: op.set.mOff, cOff: op.set.cOff }); }
      else { r.delete(op.del); m.delete(op.del); }
      t.is(r.size, m.size);
    }
    const ids = [];
    r.forEachId((id) => ids.push(id));
    t.deepEqual(ids, [...m.keys()].sort((a, b) => a - b));
    for (let id = 0; id <= 5001; id += id < 80 ? 1 : 97) t.is(r.has(id), m.has(id), `has ${id}`);
    for (const [id, { f, mOff, cOff }] of m) {
      t.deepEqual([r.kindOf(id), r.addrOf(id), r.familyOf(id), r.portOf(id), r.protoOf(id)], [f.kind, f.addr, f.family, f.port, f.proto]);
      t.deepEqual([r.maglevOff(id), r.maglevLen(id), r.cidrOff(id), r.cidrLen(id)], [mOff, maglevRangeWords(f.maglev.length, f.backends.length), cOff, f.sourceRanges.length]);
      t.true(r.sameKey(id, f));
      // another key: another address, port, protocol or family, or in / out of the service map
      t.false(r.sameKey(id, { ...f, port: f.port === 80 ? 81 : 80 }));
      t.false(r.sameKey(id, { ...f, proto: f.proto === 'TCP' ? 'UDP' : 'TCP' }));
      t.false(r.sameKey(id, { ...f, addr: f.addr === '10.96.0.1' ? '10.96.0.2' : '10.96.0.1', family: 4 }));
      t.is(r.sameKey(id, { ...f, kind: f.kind === 'ClusterPolicy' ? 'ClusterIP' : 'ClusterPolicy' }), false);
      t.is(r.sameKey(id, { ...f, kind: f.kind === 'NodePort' ? 'ExternalIP' : f.kind === 'ClusterPolicy' ? 'ClusterPolicy' : 'NodePort' }), true, 'the kind is not part of the key');
    }
    return true;
  }), { numRuns: 300, seed: 77 });
});

test('FrontRecords grows by chunks: an id past the end adds columns and moves none of those already there', (t) => {
  const r = new FrontRecords(), f = (id) => ({ id, kind: 'ClusterIP', addr: '10.96.0.1', family: 4, port: 80, proto: 'TCP', maglev: new Uint8Array(3), backends: [1, 2], sourceRanges: [] });
  r.set(f(1), 7, 8);
  const first = r.chunks[0]; // (the columns of ids 0..4095)
  for (const id of [4095, 4096, 70000]) r.set(f(id), id, 1);
  t.is(r.chunks[0], first, 'the first ids\' columns are the same arrays (no copy)');
  t.is(r.chunks.length, (70000 >>> 12) + 1);
  const ids = [];
  r.forEachId((id) => ids.push(id));
  t.deepEqual(ids, [1, 4095, 4096, 70000]);
  t.deepEqual([r.maglevOff(1), r.cidrOff(1), r.maglevOff(70000), r.maglevLen(70000)], [7, 8, 70000, 5], 'a range: 3 u8 slots in one word, room for 4 ids');
  t.false(r.has(69999)); t.false(r.has(1 << 20)); t.false(r.has(-1)); t.false(r.has(1.5));
  t.throws(() => r.set(f(-1), 0, 0), { instanceOf: RangeError });
  t.is(FrontRecords.sized(10000).chunks.length, 3, 'sized: the chunks for ids up to 10000, at once');
});

test('IdSet.of holds each id once, whatever its bit in its word; add and delete go on from there', (t) => {
  fc.assert(fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 1 << 20 }), fc.constantFrom(31, 63, 32, 0)), { maxLength: 80 }),
    fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 20 }), (ids, more) => {
      const s = IdSet.of(ids, Math.max(0, ...ids)), m = new Set(ids);
      t.is(s.size, m.size);
      const got = [];
      s.forEach((id) => got.push(id));
      t.deepEqual(got, [...m].sort((a, b) => a - b));
      for (const id of more) {
        if (id % 3 === 0) { t.is(s.delete(id), m.delete(id)); } else { s.add(id); m.add(id); }
        t.is(s.size, m.size);
        t.is(s.has(id), m.has(id));
      }
      for (const id of m) t.true(s.has(id));
      return true;
    }), { numRuns: 300, seed: 78 });
  t.throws(() => IdSet.of([1, -1], 1), { instanceOf: RangeError });
});

test('IdSet.of takes the highest id from its caller and refuses an id it does not hold: above it, a fraction, a negative, NaN', (t) => {
  t.is(IdSet.of([3, 70, 5], 70).size, 3);
  t.is(IdSet.of([], 0).size, 0);
  for (const [ids, max] of [[[3, 71], 70], [[1, 1.5], 2], [[2, -1], 2], [[NaN], 5], [[1], -1], [[1], 1.5]]) {
    t.throws(() => IdSet.of(ids, max), { instanceOf: RangeError }, `${ids} / ${max}`);
  }
});

test('the table writer finds a diff\'s highest backend id once per apply (capacities, the copy\'s extents, the totals), not once for each', (t) => {
  const core = Core.create({ flows: 64, capacities: { frontends: 4, backends: 64, maglevWords: 1024, cidrs: 2, routes: 2 } });
  // a backend list (IrList) that counts the passes over its ids
  let passes = 0;
  const counted = (bs) => Object.assign(bs, { forEachId(fn) { passes++; for (const b of bs) fn(b.id); } });
  const bes = [1, 2, 3].map((id) => backend({ id, addr: `10.0.1.${id}`, port: 80 }));
  const ir = mkIr({ frontends: [frontend({ id: 1, addr: '10.96.0.1', port: 80 }, bes)], backends: bes });
  core.applyDiff({ frontendsUpsert: [...ir.frontends.values()], frontendsRemove: [], backendsUpsert: counted([...bes]), backendsRemove: [] }, ir);
  const changed = backend({ id: 2, addr: '10.0.1.9', port: 81 });
  ir.backends.set(2, changed);
  passes = 0;
  core.applyDiff({ frontendsUpsert: [], frontendsRemove: [], backendsUpsert: counted([changed]), backendsRemove: [] }, ir);
  t.is(passes, 2, 'one for the highest id, one recording the ids written');
  t.is(core.ir.backends.get(2).addr, '10.0.1.9');
});

test('a Maglev range is slots as wide as the list needs in whole words, then room for the backend list: a power of two, at least 4', (t) => {
  t.deepEqual([maglevRangeWords(0, 5), maglevRangeWords(251, 1), maglevRangeWords(251, 10), maglevRangeWords(251, 12), maglevRangeWords(3, 256), maglevRangeWords(3, 257), maglevRangeWords(5, 65537)],
    [0, 63 + 4, 63 + 16, 63 + 16, 1 + 256, 2 + 512, 5 + 131072]);
});
