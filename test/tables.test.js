// The table writer: after any sequence of diffs, both table sets are byte-identical (left-right
// invariant), the service map finds exactly the current frontends (probing like the core does),
// and frontend/backend entries decode back to the Ir. Growth past capacities keeps all of it true.
import test from 'ava';
import fc from 'fast-check';
import * as L from '../dist/assembly/layout.js';
import { Core } from '../dist/src/core/host.js';
import { diffIr } from '../dist/src/ir/diff.js';
import { defaultMaglevSize } from './lib/maglev-reference.js';
import { backend, frontend, mkIr } from './lib/ir-fixture.js';
import { formatAddr } from '../dist/src/util/addr.js';
import { checkCore, coreMaglev, lookup, setBytes } from './lib/table-check.js';

/** The Ir of a random spec: frontend f over the backends (in id order) its `mask` bits select,
 * with a Maglev table of defaultMaglevSize (none without backends). */
function makeIr(spec) {
  const bes = spec.backends.map((b) => backend({ ...b, service: 's', dstMac: '02:00:00:00:00:0' + (b.id % 10), srcMac: '02:00:00:00:01:01' }))
    .sort((x, y) => x.id - y.id);
  const fes = spec.frontends.map((f) => {
    const use = bes.filter((_, i) => (f.mask >> (i % 16)) & 1);
    const o = { id: f.id, service: 'ns/s' + f.id, addr: f.addr, port: f.port, proto: f.proto, sourceRanges: f.ranges };
    return use.length ? frontend(o, use, defaultMaglevSize(use.length)) : frontend({ ...o, maglev: new Uint32Array(0) }, use);
  });
  return mkIr({ frontends: fes, backends: bes });
}

const addrArb = fc.oneof(
  fc.tuple(fc.constant('10.96.'), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 6 })).map(([p, a, b]) => `${p}${a}.${b}`),
  fc.integer({ min: 1, max: 6 }).map((x) => `fd00::${x}`),
);
const specArb = fc.record({
  frontends: fc.uniqueArray(fc.record({
    id: fc.integer({ min: 1, max: 40 }), addr: addrArb, port: fc.integer({ min: 1, max: 4 }),
    proto: fc.constantFrom('TCP', 'UDP', 'SCTP'), mask: fc.integer({ min: 0, max: 0xffff }),
    ranges: fc.constantFrom([], ['10.0.0.0/8'], ['10.0.0.0/8', '192.168.0.0/16']),
  }), { selector: (f) => `${f.addr}|${f.port}|${f.proto}`, maxLength: 30 })
    .map((fs) => { const seen = new Set(); return fs.filter((f) => !seen.has(f.id) && seen.add(f.id)); }),
  backends: fc.uniqueArray(fc.record({ id: fc.integer({ min: 1, max: 60 }), addr: fc.constantFrom('10.0.1.1', '10.0.1.2', 'fd01::1'), port: fc.integer({ min: 1, max: 9 }) }), { selector: (b) => b.id, maxLength: 20 }),
});

test('left-right writer keeps both sets identical and the service map exact over random diffs', (t) => {
  fc.assert(fc.property(fc.array(specArb, { minLength: 1, maxLength: 6 }), (specs) => {
    const core = Core.create({ flows: 64, capacities: { frontends: 8, backends: 8, maglevWords: 2048, cidrs: 4, routes: 4 } });
    let gen = core.generation;
    for (const s of specs) {
      const ir = makeIr(s);
      core.applyIr(ir);
      t.is(core.generation, gen + 1);
      gen = core.generation;
      checkCore(t, core, ir);
    }
  }), { numRuns: 60 });
});

test('an unchanged Ir is an empty diff and changing one backend touches one entry', (t) => {
  const spec = { frontends: [{ id: 1, addr: '10.96.0.1', port: 80, proto: 'TCP', mask: 3, ranges: [] }],
    backends: [{ id: 1, addr: '10.0.1.1', port: 8080 }, { id: 2, addr: '10.0.1.2', port: 8080 }] };
  const core = Core.create({ flows: 64 });
  core.applyIr(makeIr(spec));
  const d = diffIr(core.ir, makeIr(spec));
  t.deepEqual([d.frontendsUpsert.length, d.backendsUpsert.length, d.frontendsRemove.length, d.backendsRemove.length], [0, 0, 0, 0]);
  const changed = makeIr(spec);
  changed.backends.get(2).state = L.BES_TERMINATING_SERVING;
  const d2 = core.applyIr(changed);
  t.is(d2.backendsUpsert.length, 1);
  t.is(d2.frontendsUpsert.length, 0);
  checkCore(t, core, changed);
});

test('a Maglev table naming no backend is rejected before anything is written: indexed tables of each width, an id table with id 0', (t) => {
  const core = Core.create({ flows: 64 });
  const good = makeIr({ frontends: [{ id: 1, addr: '10.96.0.1', port: 80, proto: 'TCP', mask: 3, ranges: [] }], backends: [{ id: 1, addr: '10.0.1.1', port: 80 }, { id: 2, addr: '10.0.1.2', port: 80 }] });
  core.applyIr(good);
  const gen = core.generation;
  const tryTable = (maglev, indexed, message) => {
    const bad = makeIr({ frontends: [{ id: 1, addr: '10.96.0.1', port: 80, proto: 'TCP', mask: 3, ranges: [] }, { id: 2, addr: '10.96.0.2', port: 80, proto: 'TCP', mask: 3, ranges: [] }], backends: [{ id: 1, addr: '10.0.1.1', port: 80 }, { id: 2, addr: '10.0.1.2', port: 80 }] });
    const f = bad.frontends.get(2);
    f.maglev = maglev; f.maglevIndexed = indexed;
    t.throws(() => core.applyIr(bad), { message });
    t.is(core.generation, gen);
    checkCore(t, core, good);
  };
  // frontend 2 has 2 backends: index 2 names none (the last slot, so every slot before it is read)
  tryTable(Uint8Array.of(0, 1, 0, 1, 2), true, /frontend 2: Maglev slot names backend index 2 of 2/);
  tryTable(Uint16Array.of(1, 0, 300), true, /frontend 2: Maglev slot names backend index 300 of 2/);
  tryTable(Uint32Array.of(0, 70000, 1), true, /frontend 2: Maglev slot names backend index 70000 of 2/);
  tryTable(Uint32Array.of(1, 2, 0, 1), false, /frontend 2: Maglev table contains backend id 0/);
  // the same slots within range are written: u8 indexes (two backends) whichever width the table
  // came in, a zero to the word's end, then the backend list and room for two more ids
  for (const m of [Uint8Array.of(1, 0, 1), Uint16Array.of(0, 1, 1), Uint32Array.of(1, 1, 0)]) {
    const core = Core.create({ flows: 64 });
    const ok = makeIr({ frontends: [{ id: 1, addr: '10.96.0.1', port: 80, proto: 'TCP', mask: 3, ranges: [] }], backends: [{ id: 1, addr: '10.0.1.1', port: 80 }, { id: 2, addr: '10.0.1.2', port: 80 }] });
    const f = ok.frontends.get(1);
    f.maglev = m; f.maglevIndexed = true;
    core.applyIr(ok);
    const { ids, bytes } = coreMaglev(core, core.map.tableSets[core.cfg32(L.CFG_GEN) & 1], 1);
    t.deepEqual([...ids], [...m].map((k) => f.backends[k]));
    t.deepEqual([...bytes], [...m, 0, ...new Uint8Array(Uint32Array.of(...f.backends, 0, 0).buffer)]);
  }
  // a table of backend ids is written as indexes into the backend list; an id the list does not hold is refused
  tryTable(Uint32Array.of(1, 2, 3), false, /frontend 2: Maglev table names backend id 3, not in its backend list/);
});

test('invalid addresses in a diff are rejected before anything is written', (t) => {
  const core = Core.create({ flows: 64 });
  const good = makeIr({ frontends: [{ id: 1, addr: '10.96.0.1', port: 80, proto: 'TCP', mask: 1, ranges: [] }], backends: [{ id: 1, addr: '10.0.1.1', port: 80 }] });
  core.applyIr(good);
  const gen = core.generation;
  const bad = makeIr({ frontends: [{ id: 1, addr: '10.96.0.1', port: 80, proto: 'TCP', mask: 1, ranges: [] }, { id: 2, addr: '10.96.0.2', port: 80, proto: 'TCP', mask: 1, ranges: [] }], backends: [{ id: 1, addr: '10.0.1.1', port: 80 }] });
  bad.frontends.get(2).addr = '10.96.0.300';
  t.throws(() => core.applyIr(bad), { message: /invalid IP address/ });
  t.is(core.generation, gen);
  checkCore(t, core, good);
  // an address of the other family than its frontend's (its service-map key would name neither)
  bad.frontends.get(2).addr = 'fd00::2';
  t.throws(() => core.applyIr(bad), { message: /frontend 2: address fd00::2 is not IPv4/ });
  t.is(core.generation, gen);
  checkCore(t, core, good);
});

test('a caller that mutates one shared Ir in place (as the compiler does) still gets old keys removed', (t) => {
  const core = Core.create({ flows: 64 });
  const live = makeIr({ frontends: [
    { id: 1, addr: '10.96.0.1', port: 80, proto: 'TCP', mask: 1, ranges: [] },
    { id: 2, addr: '10.96.0.2', port: 53, proto: 'UDP', mask: 1, ranges: [] }],
  backends: [{ id: 1, addr: '10.0.1.1', port: 80 }] });
  core.applyDiff({ frontendsUpsert: [...live.frontends.values()], frontendsRemove: [], backendsUpsert: [...live.backends.values()], backendsRemove: [] }, live);
  checkCore(t, core, live);
  // port of frontend 1 changes, frontend 2 disappears — mutate the same object, then apply the diff
  const f1 = { ...live.frontends.get(1), port: 8080 };
  live.frontends.set(1, f1);
  live.frontends.delete(2);
  core.applyDiff({ frontendsUpsert: [f1], frontendsRemove: [2], backendsUpsert: [], backendsRemove: [] }, live);
  const active = core.cfg32(L.CFG_GEN) & 1;
  t.is(lookup(core, active, '10.96.0.1', 80, 'TCP'), 0, 'old port no longer matches');
  t.is(lookup(core, active, '10.96.0.2', 53, 'UDP'), 0, 'removed frontend no longer matches');
  checkCore(t, core, live);
});

test('a regrow copies the second set from the first: an Ir with plain Maps in descending id order', (t) => {
  // the copy covers backends up to the highest id, which a plain Map need not list last
  const spec = { frontends: [{ id: 3, addr: '10.96.0.3', port: 80, proto: 'TCP', mask: 0xff, ranges: ['10.0.0.0/8'] }, { id: 1, addr: '10.96.0.1', port: 53, proto: 'UDP', mask: 0x0f, ranges: [] }],
    backends: [12, 11, 9, 7, 5, 3, 2, 1].map((id) => ({ id, addr: `10.0.2.${id}`, port: 8000 + id })) };
  const idMapIr = makeIr(spec);
  const ir = { frontends: new Map([...idMapIr.frontends].reverse()), backends: new Map(spec.backends.map((b) => [b.id, idMapIr.backends.get(b.id)])), routes: [] };
  t.deepEqual([...ir.backends.keys()], [12, 11, 9, 7, 5, 3, 2, 1]);
  const core = Core.create({ flows: 64, capacities: { frontends: 2, backends: 2, maglevWords: 256, cidrs: 1, routes: 1 } });
  core.applyIr(ir); // past every capacity: a regrow
  checkCore(t, core, ir);
});

test('a regrow writes every frontend of the Ir even when the diff that caused it lists one twice', (t) => {
  const spec = { frontends: [{ id: 1, addr: '10.96.0.1', port: 80, proto: 'TCP', mask: 0x3, ranges: [] }, { id: 3, addr: '10.96.0.3', port: 80, proto: 'TCP', mask: 0x3, ranges: [] }],
    backends: [1, 2].map((id) => ({ id, addr: `10.0.2.${id}`, port: 8080 })) };
  const ir = makeIr(spec);
  const f1 = ir.frontends.get(1);
  // as many upserts as the Ir has frontends, but not all of them: the regrow must not trust it
  const diff = { frontendsUpsert: [f1, f1], frontendsRemove: [], backendsUpsert: [...ir.backends.values()], backendsRemove: [] };
  const core = Core.create({ flows: 64, capacities: { frontends: 1, backends: 1, maglevWords: 16, cidrs: 1, routes: 1 } });
  core.applyDiff(diff, ir); // past every capacity: a regrow
  checkCore(t, core, ir);
});

// ---- backends by column (what a worker receives), and the regrow's copy of the second set ------

const { BackendColumnList, encodeBackendColumns } = await import('../dist/src/ir/backend-columns.js');
const byColumn = (backs) => new BackendColumnList(structuredClone(encodeBackendColumns(backs)));
const wholeSets = (core) => [0, 1].map((i) => Buffer.from(setBytes(core, i)));

function bigSpec(n, gen = 0) {
  return {
    frontends: Array.from({ length: 12 }, (_, i) => ({ id: i + 1, addr: i % 4 ? `10.96.1.${i}` : `fd00::96:${i}`, port: 80 + gen, proto: 'TCP', mask: 0x7fff >> (i % 5), ranges: i % 3 ? [] : ['10.0.0.0/8'] })),
    backends: Array.from({ length: n }, (_, i) => ({ id: i + 1, addr: (i + gen) % 7 ? `10.0.${(i >> 8) & 255}.${(i + gen) & 255}` : `fd01::${i + gen}`, port: 8000 + ((i + gen) % 100) })),
  };
}
/** The Ir of bigSpec with per-backend states, next hops and node names varied. */
function bigIr(n, gen = 0) {
  const ir = makeIr(bigSpec(n, gen));
  for (const b of ir.backends.values()) {
    b.state = [L.BES_READY, L.BES_TERMINATING_SERVING, L.BES_NOT_SERVING][(b.id + gen) % 3];
    b.outPort = (b.id + gen) % 5 === 0 ? L.PORT_NONE : 1 + ((b.id + gen) % 3);
    b.portName = b.id % 2 ? 'http' : '';
    if (b.id % 4 === 1) b.nodeName = `node-${gen}`;
  }
  return ir;
}

test('backends by column are written byte for byte as the same backends as objects: a regrow, then a diff over rows in place', (t) => {
  const caps = { frontends: 4, backends: 16, maglevWords: 1024, cidrs: 2, routes: 2 };
  const asObjects = Core.create({ flows: 64, capacities: caps }), asColumns = Core.create({ flows: 64, capacities: caps });
  const ir = bigIr(700);
  const fronts = [...ir.frontends.values()], backs = [...ir.backends.values()];
  asObjects.applyDiff({ frontendsUpsert: fronts, frontendsRemove: [], backendsUpsert: backs, backendsRemove: [] }, ir);
  asColumns.applyDiff({ frontendsUpsert: fronts, frontendsRemove: [], backendsUpsert: byColumn(backs), backendsRemove: [] }, ir);
  t.deepEqual(wholeSets(asColumns), wholeSets(asObjects));
  checkCore(t, asColumns, ir);
  // every backend changes in place (no growth): IPv4 <-> IPv6, ports, states, next hops
  const next = bigIr(700, 1);
  const changed = [...next.backends.values()];
  const gen = asObjects.generation;
  asObjects.applyDiff({ frontendsUpsert: [], frontendsRemove: [], backendsUpsert: changed, backendsRemove: [] }, next);
  asColumns.applyDiff({ frontendsUpsert: [], frontendsRemove: [], backendsUpsert: byColumn(changed), backendsRemove: [] }, next);
  t.is(asColumns.generation, gen + 1, 'no regrow: written over the rows in place');
  t.deepEqual(wholeSets(asColumns), wholeSets(asObjects));
  const be = asColumns.dv.getUint32(asColumns.map.tableSets[0] + L.TSH_BACKEND_OFF, true);
  t.is(formatAddr(asColumns.u8, 6, be + 7 * L.BE_SIZE), 'fd01::7', 'an IPv4 row rewritten as IPv6');
});

test('an invalid address among backends by column is rejected before anything is written', (t) => {
  const core = Core.create({ flows: 64 });
  const ir = bigIr(600);
  const backs = [...ir.backends.values()];
  core.applyDiff({ frontendsUpsert: [...ir.frontends.values()], frontendsRemove: [], backendsUpsert: byColumn(backs), backendsRemove: [] }, ir);
  const before = wholeSets(core), gen = core.generation;
  const bad = backs.map((b, i) => (i === 599 ? { ...b, addr: '10.0.0.256' } : { ...b, port: 1 }));
  t.throws(() => core.applyDiff({ frontendsUpsert: [], frontendsRemove: [], backendsUpsert: byColumn(bad), backendsRemove: [] }, ir), { message: /invalid IP address/ });
  t.is(core.generation, gen);
  t.deepEqual(wholeSets(core), before);
});

test('a regrow\'s second set copied from the first equals the second set written again', (t) => {
  const caps = { frontends: 2, backends: 8, maglevWords: 256, cidrs: 1, routes: 1 };
  for (const [n, asColumns] of [[300, false], [900, true]]) {
    const copied = Core.create({ flows: 64, capacities: caps }), written = Core.create({ flows: 64, capacities: caps });
    written.tables.secondSetByCopy = false;
    const ir = bigIr(n);
    ir.routes = [{ prefix: '10.0.0.0/8', outPort: 1, dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:02' }, { prefix: '10.9.0.0/16', outPort: 1, dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:02', localSource: 'pod' }];
    const backs = [...ir.backends.values()];
    for (const core of [copied, written]) {
      const before = core.map.tableSets[0];
      core.applyDiff({ frontendsUpsert: [...ir.frontends.values()], frontendsRemove: [], backendsUpsert: asColumns ? byColumn(backs) : backs, backendsRemove: [], routes: ir.routes }, ir);
      t.not(core.map.tableSets[0], before, 'a regrow');
    }
    t.deepEqual(copied.map.tableSets, written.map.tableSets);
    const [a0, a1] = wholeSets(copied), [b0, b1] = wholeSets(written);
    t.true(a0.equals(b0), 'first sets equal');
    t.true(a1.equals(b1), 'second sets equal: the copy is the replay');
    const hdr = (core, i) => Buffer.from(core.u8.slice(core.map.tableSets[i], core.map.tableSets[i] + L.TSH_SIZE));
    t.true(hdr(copied, 1).equals(hdr(written, 1)), 'second headers equal');
    checkCore(t, copied, ir);
    // then a diff that rewrites most rows without a regrow (the copy pays): fewer routes, every
    // backend changed, a frontend removed, one moved to a larger Maglev table
    const next = bigIr(n, 1);
    next.frontends.delete(5);
    const f3 = next.frontends.get(3);
    next.frontends.set(3, { ...f3, maglev: Uint32Array.from({ length: f3.maglev.length * 2 + 1 }, (_, k) => f3.maglev[k % f3.maglev.length]) });
    next.routes = [ir.routes[0]];
    const changed = [...next.backends.values()];
    for (const core of [copied, written]) {
      const sets = [...core.map.tableSets], gen = core.generation;
      core.applyDiff({ frontendsUpsert: [...next.frontends.values()], frontendsRemove: [5], backendsUpsert: asColumns ? byColumn(changed) : changed, backendsRemove: [], routes: next.routes }, next);
      t.deepEqual(core.map.tableSets, sets, 'no regrow');
      t.is(core.generation, gen + 1);
    }
    const [c0, c1] = wholeSets(copied), [d0, d1] = wholeSets(written);
    t.true(c0.equals(d0) && c1.equals(d1), 'a large diff\'s second set copied equals it replayed');
    t.true(hdr(copied, 0).equals(hdr(written, 0)) && hdr(copied, 1).equals(hdr(written, 1)));
    checkCore(t, copied, next);
    // and a one-backend change is replayed, not copied, with the same bytes either way
    const one = { ...next.backends.get(2), port: 4242 };
    next.backends.set(2, one);
    for (const core of [copied, written]) core.applyDiff({ frontendsUpsert: [], frontendsRemove: [], backendsUpsert: [one], backendsRemove: [] }, next);
    t.deepEqual(wholeSets(copied), wholeSets(written));
  }
});

test('a deferred second set (deferSecondSet): the live set is the same at once, the other one is copied in slices or by the next apply, and both end as the sets written without deferral', (t) => {
  const caps = { frontends: 2, backends: 8, maglevWords: 256, cidrs: 1, routes: 1 };
  const now = Core.create({ flows: 64, capacities: caps }), later = Core.create({ flows: 64, capacities: caps });
  later.tables.deferSecondSet = true;
  const live = (core) => Buffer.from(setBytes(core, core.cfg32(L.CFG_GEN) & 1));
  const ir = bigIr(900);
  const backs = [...ir.backends.values()];
  for (const core of [now, later]) core.applyDiff({ frontendsUpsert: [...ir.frontends.values()], frontendsRemove: [], backendsUpsert: byColumn(backs), backendsRemove: [], routes: [] }, ir);
  t.true(later.tables.copyPending, 'a regrow leaves its second set to copy');
  t.false(now.tables.copyPending);
  t.deepEqual(later.map.tableSets, now.map.tableSets);
  t.is(later.cfg32(L.CFG_GEN) & 1, now.cfg32(L.CFG_GEN) & 1);
  t.true(live(later).equals(live(now)), 'the set the core reads is complete before the copy');
  t.false(wholeSets(later)[0].equals(wholeSets(later)[1]), 'the other one is not (yet)');
  let steps = 0;
  while (later.tables.copyStep(4096)) steps++;
  t.true(steps > 3, `copied in ${steps + 1} slices of 4 KiB`);
  t.false(later.tables.copyPending);
  t.deepEqual(wholeSets(later), wholeSets(now), 'both sets as written without deferral');
  checkCore(t, later, ir);
  // a large diff (copied, not replayed), then a one-backend change before any slice was copied:
  // the apply completes the copy first, then writes the change into the set it completed
  const next = bigIr(900, 1);
  const changed = [...next.backends.values()];
  for (const core of [now, later]) core.applyDiff({ frontendsUpsert: [...next.frontends.values()], frontendsRemove: [], backendsUpsert: byColumn(changed), backendsRemove: [], routes: [] }, next);
  t.true(later.tables.copyPending, 'a large diff leaves its copy too');
  t.true(live(later).equals(live(now)));
  const one = { ...next.backends.get(2), port: 4242 };
  next.backends.set(2, one);
  for (const core of [now, later]) core.applyDiff({ frontendsUpsert: [], frontendsRemove: [], backendsUpsert: [one], backendsRemove: [] }, next);
  t.false(later.tables.copyPending, 'a one-backend change is replayed on both sets');
  t.deepEqual(wholeSets(later), wholeSets(now));
  checkCore(t, later, next);
});

test('a first apply whose diff is not all of the Ir it names: the regrow sizes the tables for what it writes, the Ir', (t) => {
  // (capacities from a first diff's own totals, which are the Ir's when the diff is all of it)
  const ir = makeIr({ frontends: [1, 2, 3].map((id) => ({ id, addr: `10.96.0.${id}`, port: 80, proto: 'TCP', mask: 0xffff, ranges: ['10.0.0.0/8'] })),
    backends: Array.from({ length: 16 }, (_, i) => ({ id: i + 1, addr: `10.0.3.${i + 1}`, port: 8080 })) });
  const core = Core.create({ flows: 64, capacities: { frontends: 1, backends: 1, maglevWords: 64, cidrs: 1, routes: 1 } });
  core.applyDiff({ frontendsUpsert: [ir.frontends.get(1)], frontendsRemove: [], backendsUpsert: [ir.backends.get(1)], backendsRemove: [], routes: [] }, ir);
  checkCore(t, core, ir);
});

test('an empty or invalid MAC is rejected, as objects and by column, even after valid backends that share their MACs', (t) => {
  for (const asColumns of [false, true]) {
    for (const mac of ['', '02:00:00:00:00']) {
      const core = Core.create({ flows: 64 });
      const backs = [1, 2, 3].map((id) => backend({ id, addr: `10.0.0.${id}`, port: 80 }));
      backs[2] = { ...backs[2], dstMac: mac };
      const ir = mkIr({ frontends: [], backends: backs });
      t.throws(() => core.applyDiff({ frontendsUpsert: [], frontendsRemove: [], backendsUpsert: asColumns ? byColumn(backs) : backs, backendsRemove: [] }, ir), { message: /invalid MAC/ });
      t.is(core.generation, 0);
    }
  }
});

test('a frontend whose backend count changes within its list room keeps its Maglev range in place', (t) => {
  const spec = (mask) => ({ frontends: [{ id: 1, addr: '10.96.0.1', port: 80, proto: 'TCP', mask, ranges: [] }, { id: 2, addr: '10.96.0.2', port: 80, proto: 'TCP', mask: 3, ranges: [] }],
    backends: Array.from({ length: 16 }, (_, i) => ({ id: i + 1, addr: `10.0.3.${i + 1}`, port: 80 })) });
  const core = Core.create({ flows: 64 });
  const offOf = () => {
    const base = core.map.tableSets[core.cfg32(L.CFG_GEN) & 1], dv = core.dv;
    return dv.getUint32(dv.getUint32(base + L.TSH_FRONT_OFF, true) + L.FE_SIZE + L.FE_MAGLEV_OFF, true);
  };
  core.applyIr(makeIr(spec(0x3ff))); // 10 backends, 251 slots: room for 16 ids
  const off = offOf();
  for (const mask of [0x7ff, 0xfff, 0x1ff, 0x3ff]) { // 11, 12, 9, 10 backends, 251 slots each
    const ir = makeIr(spec(mask));
    core.applyIr(ir);
    checkCore(t, core, ir);
    t.is(offOf(), off, `${ir.frontends.get(1).backends.length} backends: the same range`);
  }
  // 16 backends: a larger table (509 slots), another range
  const ir = makeIr(spec(0xffff));
  core.applyIr(ir);
  checkCore(t, core, ir);
  t.not(offOf(), off);
});
