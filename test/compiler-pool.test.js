// Maglev fills of a full compile on a worker thread (src/compiler/maglev-pool.ts): the tables are
// the same bytes whether the worker, the compiler's thread or both filled them; a worker that is
// gone, or that dies holding a job, costs time and never a wrong or empty table.
import test from 'ava';
import { makeServiceSet, intToIp } from '../dist/src/bench/peers/service-set.js';
import { benchObjects } from '../dist/src/bench/control.js';
import { validateAll } from '../dist/src/model/schema.js';
import { compileAll, Compiler } from '../dist/src/compiler/compiler.js';
import { MaglevJobs, stopMaglevWorker } from '../dist/src/compiler/maglev-pool.js';
import { maglevIndexTableAt, maglevSlotWidth } from '../dist/src/compiler/maglev.js';
import { maglevIndexTable, jobsWithDyingWorker } from './lib/maglev-tables.js';
import { slabAllocator } from '../dist/src/compiler/slab.js';
import { Slab } from '../dist/src/compiler/slab.js';
import { mulberry32 } from '../dist/src/util/rng.js';

/** Services with 0..300 endpoints (1- and 2-byte tables, empty and one-backend sets), some dual-stack. */
function objects(seed, services) {
  const rnd = mulberry32(seed);
  const out = [];
  for (let i = 0; i < services; i++) {
    const n = [0, 1, 2, 10, 11, 40, 257, 300][Math.floor(rnd() * 8)];
    const set = makeServiceSet({ services: 1, endpoints: Math.max(1, n), vipBase: `10.96.${i >> 8}.${i & 255}`, podBase: `10.${128 + (i >> 12)}.${(i >> 4) & 255}.${(i & 15) * 16}` });
    const [svc, slice] = benchObjects(set).slice(1);
    svc.metadata.name = slice.metadata.labels['kubernetes.io/service-name'] = `svc-${i}`;
    slice.metadata.name = `svc-${i}-x`;
    if (n === 0) slice.endpoints = [];
    else slice.endpoints = slice.endpoints.slice(0, n).map((e, k) => (k % 7 === 3 ? { ...e, conditions: { ready: false, serving: true, terminating: true } } : e));
    out.push(svc, slice);
  }
  return out;
}

const tables = (c) => [...c.ir.frontends.values()].map((f) => [f.id, f.backends.join(','), f.maglev.BYTES_PER_ELEMENT, Array.from(f.maglev).join(',')]);

test.serial('the worker fills the same tables the compiler would (random sets, both widths)', (t) => {
  for (const seed of [1, 2, 3]) {
    const objs = validateAll(objects(seed, 300));
    const inline = compileAll(objs, { maglevWorker: 'never' });
    const pooled = compileAll(objs, { maglevWorker: 'always' });
    t.deepEqual(tables(pooled), tables(inline));
    t.true(pooled.ir.frontends.size === 300);
    // the pooled tables live in shared slabs (so the worker could write them), the others not
    const widths = new Set(tables(pooled).map((r) => r[2]));
    t.deepEqual([...widths].sort(), [1, 2], 'both table widths were exercised');
  }
});

test.serial('a full 10k-service compile through the worker equals the inline one, and the worker did fill tables', (t) => {
  const objs = validateAll(benchObjects(makeServiceSet({ services: 10000, endpoints: 10 })));
  const c = new Compiler(); // 'auto': 100k backends is past POOL_MIN_BACKENDS
  const ch = c.change({ upsert: objs });
  t.truthy(ch.maglevWorker, 'the worker was used');
  t.is(ch.maglevWorker.tables, 10000);
  t.true(ch.maglevWorker.filledByWorker > 0, `the worker filled ${ch.maglevWorker.filledByWorker} of 10000 tables`);
  t.deepEqual(tables(c), tables(compileAll(objs, { maglevWorker: 'never' })));
});

/** Publishes the tables of `sets` (arrays of "addr:port" keys split) on `jobs`; returns them. */
function publishAll(jobs, alloc, sets) {
  return sets.map(({ addrs, ports, m }) => maglevIndexTable(addrs, ports, m, alloc, addrs.length, jobs));
}
function randomSets(seed, count) {
  const rnd = mulberry32(seed);
  return Array.from({ length: count }, (_, i) => {
    const n = 2 + Math.floor(rnd() * 30);
    const addrs = Array.from({ length: n }, (_, j) => `10.${i & 255}.${j}.${1 + Math.floor(rnd() * 200)}`).sort();
    return { addrs: [...new Set(addrs)], ports: new Array(n).fill(8080), m: 251 };
  }).map((s) => ({ ...s, ports: s.ports.slice(0, s.addrs.length) }));
}

test.serial('with the worker gone, drain() fills every table itself', async (t) => {
  const sets = randomSets(7, 200);
  const want = sets.map((s) => Array.from(maglevIndexTable(s.addrs, s.ports, s.m)));
  const jobs = MaglevJobs.create(256, 8192);
  t.truthy(jobs, 'a worker could be started');
  await stopMaglevWorker(); // before any job is published: nobody but drain() claims them
  const got = publishAll(jobs, slabAllocator(1 << 20, true), sets);
  jobs.drain();
  t.is(jobs.filledHere, sets.length);
  t.deepEqual(got.map((x) => Array.from(x)), want);
});

test.serial('jobs claimed by a worker that never finishes them are filled by the watchdog', (t) => {
  const sets = randomSets(8, 50);
  const want = sets.map((s) => Array.from(maglevIndexTable(s.addrs, s.ports, s.m)));
  const { jobs, claimAndDrop } = jobsWithDyingWorker(64, 4096); // the stand-in's claims are the only ones
  t.truthy(jobs);
  const got = publishAll(jobs, slabAllocator(1 << 20, true), sets);
  let dropped = 0;
  while (dropped < 20 && claimAndDrop()) dropped++; // the "worker" takes 20 jobs and dies
  t.is(dropped, 20);
  const t0 = performance.now();
  jobs.drain();
  t.true(performance.now() - t0 >= 150, 'drain waited for the stalled jobs before filling them');
  t.is(jobs.filledHere, 50, '30 claimed by drain, 20 rescued');
  t.deepEqual(got.map((x) => Array.from(x)), want);
});

/** Sets of IPv4 backends as u32 addresses and their dotted quads: octets of 1, 2 and 3 digits,
 * 0.0.0.0 and 255.255.255.255, ports of 1 to 5 digits. */
function v4Sets(seed, count) {
  const rnd = mulberry32(seed);
  const edge = [0, 0xffffffff, 0x0a000001, 0x01020304, 0x64646464, 0xc0a80a0b];
  const ports = [1, 9, 10, 99, 100, 999, 1000, 8080, 9999, 10000, 65535];
  return Array.from({ length: count }, (_, i) => {
    const n = 2 + Math.floor(rnd() * 20);
    const v4 = [...new Set(Array.from({ length: n }, (_, j) => (i === 0 && j < edge.length ? edge[j] : Math.floor(rnd() * 2 ** 32)) >>> 0))];
    const port = ports[i % ports.length];
    const addrs = v4.map(intToIp);
    return { v4, addrs, ports: v4.map(() => port), m: [251, 1021][i & 1] };
  });
}

/** Publishes v4Sets' tables on `jobs` with their keys as numbers, into runs of a shared slab
 * (what the compiler does); after drain(), got() reads the tables. */
function publishV4(jobs, sets) {
  const slab = new Slab(1 << 20, true);
  const runs = sets.map((s) => {
    const n = s.addrs.length, off = slab.carve(s.m, maglevSlotWidth(n)), view = slab.view;
    maglevIndexTableAt(s.addrs, s.ports, s.m, n, view, off, jobs, s.v4);
    return { view, off, m: s.m };
  });
  return { jobs, got: () => runs.map((r) => Array.from(r.view.subarray(r.off, r.off + r.m))) };
}
const inlineTables = (sets) => sets.map((s) => Array.from(maglevIndexTable(s.addrs, s.ports, s.m)));

for (const workerGone of [false, true]) {
  test.serial(`IPv4 keys handed over as numbers hash like their strings (${workerGone ? 'drain fills them' : 'the worker fills them'})`, async (t) => {
    const sets = v4Sets(workerGone ? 12 : 11, 120);
    const jobs = MaglevJobs.create(256, 8192);
    t.truthy(jobs);
    if (workerGone) await stopMaglevWorker();
    const { got } = publishV4(jobs, sets);
    jobs.drain();
    t.is(jobs.published, sets.length, 'every table went through a job');
    if (workerGone) t.is(jobs.filledHere, sets.length);
    t.deepEqual(got(), inlineTables(sets));
  });
}

test.serial('the next compile reuses the job buffers once the worker let go of them, and its tables are right', async (t) => {
  const first = v4Sets(21, 80), second = v4Sets(22, 80);
  const build = (sets) => { const r = publishV4(MaglevJobs.create(128, 4096), sets); r.jobs.drain(); return r; };
  const a = build(first);
  let b;
  for (let i = 0; i < 100 && !(b?.jobs.reusedBuffers); i++) { // the worker acknowledges between compiles
    await new Promise((r) => setTimeout(r, 10));
    b = build(second);
  }
  t.true(b.jobs.reusedBuffers, 'a later compile took the spare buffers');
  t.deepEqual(b.got(), inlineTables(second));
  t.deepEqual(a.got(), inlineTables(first), 'the first compile\'s tables are untouched');
});

test.serial('the worker pre-touching a slab never changes what the compiler wrote there', async (t) => {
  const jobs = MaglevJobs.create(4, 64);
  t.truthy(jobs);
  const buf = new SharedArrayBuffer(8 << 20), v = new Uint8Array(buf);
  jobs.prefault(buf); // the worker touches every page while this thread writes them
  for (let i = 0; i < v.length; i++) v[i] = (i % 251) + 1;
  await new Promise((r) => setTimeout(r, 300)); // the worker has long finished
  jobs.abandon();
  let bad = 0;
  for (let i = 0; i < v.length; i++) if (v[i] !== (i % 251) + 1) bad++;
  t.is(bad, 0);
});

test.serial('a table outside a shared slab, or beyond the queue, is filled inline', (t) => {
  const sets = randomSets(9, 20);
  const want = sets.map((s) => Array.from(maglevIndexTable(s.addrs, s.ports, s.m)));
  const jobs = MaglevJobs.create(4, 64); // room for 4 jobs and 64 backends only
  const got = publishAll(jobs, slabAllocator(1 << 20, false), sets.slice(0, 10)) // not shared: inline
    .concat(publishAll(jobs, slabAllocator(1 << 20, true), sets.slice(10)));
  jobs.drain();
  t.deepEqual(got.map((x) => Array.from(x)), want);
});

test.serial('a big first sync starts the worker before it validates; a small one does not', async (t) => {
  const { warmMaglevWorker } = await import('../dist/src/compiler/compiler.js');
  const { maglevWorkerRunning } = await import('../dist/src/compiler/maglev-pool.js');
  await stopMaglevWorker();
  t.false(maglevWorkerRunning());
  warmMaglevWorker(benchObjects(makeServiceSet({ services: 100, endpoints: 10 }))); // 1,000 endpoints
  t.false(maglevWorkerRunning(), 'below POOL_MIN_BACKENDS nothing starts');
  warmMaglevWorker([{ kind: 'EndpointSlice', endpoints: 'bogus' }, null, 42]); // unvalidated input: counted, never checked
  t.false(maglevWorkerRunning());
  warmMaglevWorker(benchObjects(makeServiceSet({ services: 2000, endpoints: 10 }))); // 20,000 endpoints
  t.true(maglevWorkerRunning());
});
