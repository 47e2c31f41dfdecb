// FrontendTable (the compiler's column store of frontends) behaves as a Map<number, IrFrontend>;
// frontends put() as runs of a shared slab read back as their own; a lazy full-compile diff reads
// the same frontends as real ones — until the table moves on. Slab.carve hands out aligned,
// disjoint runs.
import test from 'ava';
import fc from 'fast-check';
import { FrontendTable } from '../dist/src/compiler/frontend-table.js';
import { Slab } from '../dist/src/compiler/slab.js';
import { L } from '../dist/src/ir/ir.js';

const frontendArb = fc.record({
  id: fc.oneof(fc.integer({ min: 1, max: 3000 }), fc.constantFrom(1023, 1024, 1025, 2048, 4097)),
  service: fc.constantFrom('default/a', 'default/b', 'shop/web'),
  portName: fc.constantFrom('', 'http', 'dns'),
  kind: fc.constantFrom('ClusterIP', 'NodePort', 'ExternalIP', 'LoadBalancer'),
  addr: fc.constantFrom('10.96.0.1', '192.168.1.5', 'fd00::10'),
  family: fc.constantFrom(4, 6),
  port: fc.integer({ min: 1, max: 65535 }),
  proto: fc.constantFrom('TCP', 'UDP', 'SCTP'),
  flags: fc.integer({ min: 0, max: 0xff }),
  affinityTimeoutMs: fc.constantFrom(0, 10800000),
  sourceRanges: fc.constantFrom([], ['10.0.0.0/8'], ['10.0.0.0/8', '192.168.0.0/16']),
  n: fc.integer({ min: 0, max: 5 }),
  indexed: fc.boolean(),
}).map(({ n, indexed, ...f }) => {
  const backends = Array.from({ length: n }, (_, i) => 100 + i * 3);
  const m = n ? 7 : 0;
  const maglev = indexed ? Uint8Array.from({ length: m }, (_, i) => i % n) : Uint32Array.from({ length: m }, (_, i) => backends[i % n]);
  return indexed ? { ...f, backends, maglev, maglevIndexed: true } : { ...f, backends, maglev };
});

/** A frontend as plain data (typed arrays as arrays) for deepEqual. */
const plain = (f) => ({ ...f, maglev: Array.from(f.maglev) });

test('set / get / delete / iterate agree with a Map', (t) => {
  fc.assert(fc.property(fc.array(fc.oneof(frontendArb, fc.integer({ min: 1, max: 3000 }), fc.constantFrom(1024, 4097)), { maxLength: 60 }), (ops) => {
    const ft = new FrontendTable(), m = new Map();
    for (const op of ops) {
      if (typeof op === 'number') { t.is(ft.delete(op), m.delete(op)); continue; }
      ft.set(op.id, op); m.set(op.id, op);
    }
    t.is(ft.size, m.size);
    const sorted = [...m.entries()].sort((a, b) => a[0] - b[0]);
    t.deepEqual([...ft.keys()], sorted.map(([id]) => id));
    t.deepEqual([...ft.values()].map(plain), sorted.map(([, f]) => plain(f)));
    for (const [id, f] of sorted) {
      t.true(ft.has(id));
      t.deepEqual(plain(ft.get(id)), plain(f));
      t.is(ft.portNameOf(id), f.portName); t.is(ft.kindOf(id), f.kind); t.is(ft.addrOf(id), f.addr);
      t.is(ft.maglevLengthOf(id), f.maglev.length); t.is(ft.sourceRangeCountOf(id), f.sourceRanges.length);
    }
    t.false(ft.has(0)); t.is(ft.get(99999), undefined);
    return true;
  }), { numRuns: 300, seed: 11 });
});

test('frontends put() as runs of one slab read back as their own ids and tables', (t) => {
  const slab = new Slab(1 << 16);
  const ft = new FrontendTable();
  const owner = { service: 'default/web', portName: 'http' };
  const want = [];
  for (let id = 1; id <= 50; id++) {
    const n = 1 + (id % 4), m = 13;
    const idsOff = slab.carve(n, 4), ids = slab.view;
    for (let i = 0; i < n; i++) ids[idsOff + i] = id * 10 + i;
    const magOff = slab.carve(m, 1), mag = slab.view;
    for (let i = 0; i < m; i++) mag[magOff + i] = (i * 7 + id) % n;
    ft.put(id, owner, 'ClusterIP', `10.96.0.${id}`, 4, 80, 'TCP', L.FEF_AFFINITY, 1000, [], { ids, idsOff, idsLen: n, mag, magOff, magLen: m, indexed: true });
    want.push({
      id, service: 'default/web', portName: 'http', kind: 'ClusterIP', addr: `10.96.0.${id}`, family: 4, port: 80, proto: 'TCP',
      flags: L.FEF_AFFINITY, affinityTimeoutMs: 1000, sourceRanges: [],
      backends: Array.from({ length: n }, (_, i) => id * 10 + i), maglev: Array.from({ length: m }, (_, i) => (i * 7 + id) % n), maglevIndexed: true,
    });
  }
  t.deepEqual([...ft.values()].map(plain), want);
  // the materialised table is a view of exactly its run
  const f7 = ft.get(7);
  t.is(f7.maglev.length, 13);
  t.true(Array.isArray(f7.backends));
});

test('rows of frontends 1..n are built on the first read, kept, and refuse stale first reads', (t) => {
  const ft = new FrontendTable();
  const f = (id) => ({ id, service: 'default/a', portName: '', kind: 'ClusterIP', addr: `10.96.0.${id}`, family: 4, port: 80, proto: 'TCP', flags: 0, affinityTimeoutMs: 0, sourceRanges: [], backends: [5], maglev: new Uint8Array(3), maglevIndexed: true });
  ft.set(1, f(1)); ft.set(2, f(2));
  const rows = ft.rows(2);
  t.deepEqual([...rows].map(plain), [plain(f(1)), plain(f(2))]);
  const kept = [];
  rows.forEach((x) => kept.push(x));
  t.is(kept[0], [...rows][0]); // built once: the same objects on every read
  const stale = ft.rows(2);
  ft.delete(2);
  t.throws(() => stale.slice(), { message: /after the compiler changed again/ });
  t.deepEqual(rows.slice().map(plain), [plain(f(1)), plain(f(2))]); // read before the change: kept
});

test('Slab.carve: aligned, disjoint, zeroed runs; a new buffer when full; big runs get their own', (t) => {
  const slab = new Slab(1024);
  const runs = [];
  for (const [n, w] of [[3, 1], [5, 4], [7, 2], [1, 1], [9, 4], [100, 1], [60, 4], [200, 2], [40, 4]]) {
    const off = slab.carve(n, w), v = slab.view;
    t.is(v.BYTES_PER_ELEMENT, w);
    t.is((v.byteOffset + off * w) % w, 0);
    for (let i = 0; i < n; i++) { t.is(v[off + i], 0); v[off + i] = runs.length + 1; }
    runs.push({ v, off, n, w, mark: runs.length + 1 });
  }
  for (const r of runs) for (let i = 0; i < r.n; i++) t.is(r.v[r.off + i], r.mark, `run ${r.mark} overwritten`);
  t.true(new Set(runs.map((r) => r.v.buffer)).size > 1, 'filled one buffer and started another');
  const big = slab.carve(300, 1); // more than a quarter of 1024 bytes
  t.is(big, 0); t.is(slab.view.length, 300); t.is(slab.view.buffer.byteLength, 300);
});
