// Table images through the forwarding workers (no ports, so no root): a worker writes its image at
// a stop, the next worker forwards from it before any apply (a trace through its core is
// translated), deletes it as it reads it, and reports the control plane's catch-up; an image
// for another store revision or node configuration is refused with the reason and the worker
// waits held for the normal restore. The store's revision changes with every commit and is read
// without opening the store for use.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerDataplane } from '../dist/src/daemon/worker-dataplane.js';
import { ControlPlaneCore } from '../dist/src/api/controlplane.js';
import { twoPodObjects } from './lib/two-pod-objects.js';
import { StateStore } from '../dist/src/state/store.js';
import Database from 'better-sqlite3';
import { imageFile } from '../dist/src/daemon/table-image-file.js';

const init = (extra = {}) => ({ worker: 0, workers: 1, ports: [], nodeAddresses: ['192.168.100.2'], core: { flows: 1024 }, probeIntervalMs: 1000, portBackend: 'relay', ...extra });
const objects = twoPodObjects;
const probe = { src: '10.0.0.2', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80 };
const image = (dir, o = {}) => ({ image: { dir, revision: 'id:1', inputsHash: 'h', extraAgeMs: 0, neighbours: [], ...o } });

async function writtenImage(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-image-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dp = await WorkerDataplane.start([init()]);
  await new ControlPlaneCore(dp, null).apply(objects);
  const [w] = await dp.writeImages(dir, 'id:1', 'h');
  await dp.close();
  t.true(w.bytes > 0, JSON.stringify(w));
  return dir;
}

test('a held worker forwards from its image before any apply, deletes it, and reports the catch-up', async (t) => {
  const dir = await writtenImage(t);
  const file = join(dir, imageFile(0));
  t.is(statSync(file).mode & 0o777, 0o600);
  const dp = await WorkerDataplane.start([init({ startHeld: true, ...image(dir) })]);
  t.teardown(() => dp.close());
  const [r] = dp.imageResults();
  t.like(r, { worker: 0, used: true });
  t.false(existsSync(file), 'an image is used once: read and deleted');
  // no apply yet: the core's tables are the image's
  const tr = await dp.trace(probe);
  t.is(tr.verdict, 'forward');
  t.true(['10.244.1.11', '10.244.1.12'].includes(tr.output.dst));
  // the control plane catches up with the same state: byte-identical, nothing renumbered
  await new ControlPlaneCore(dp, null).apply(objects);
  t.like(dp.imageResults()[0].catchUp, { equal: true, remapped: 0, unmatched: 0 });
  t.is((await dp.counters()).global.slowpath_image_catchup_differs, 0);
  t.is((await dp.trace(probe)).verdict, 'forward');
  // and its own image can be written again at the next stop
  const [w] = await dp.writeImages(dir, 'id:2', 'h');
  t.true(w.bytes > 0);
});

test('an image of another store revision or node configuration, or damaged, is refused with the reason; the worker stays held', async (t) => {
  for (const [o, why] of [[{ revision: 'id:2' }, /saved state changed/], [{ inputsHash: 'other' }, /node configuration changed/], [{ revision: null }, /no revision/]]) {
    const dir = await writtenImage(t);
    const dp = await WorkerDataplane.start([init({ startHeld: true, ...image(dir, o) })]);
    const [r] = dp.imageResults();
    t.false(r.used);
    t.regex(r.problem, why);
    t.false(existsSync(join(dir, imageFile(0))));
    // nothing programmed: the normal restore's apply comes first
    t.not((await dp.trace(probe)).verdict, 'forward');
    await dp.close();
  }
  // damaged on disk: found while it is read into place, and nothing points at what was read
  for (const [damage, why] of [[(b) => { b[b.length - 10] ^= 1; return b; }, /checksum mismatch/], [(b) => b.subarray(0, b.length - 5), /truncated/], [(b) => { b[0] = 0; return b; }, /magic/]]) {
    const dir = await writtenImage(t);
    const file = join(dir, imageFile(0));
    writeFileSync(file, damage(readFileSync(file)));
    const dp = await WorkerDataplane.start([init({ startHeld: true, ...image(dir) })]);
    const [r] = dp.imageResults();
    t.false(r.used);
    t.regex(r.problem, why);
    t.not((await dp.trace(probe)).verdict, 'forward');
    // the normal restore works on that core
    await new ControlPlaneCore(dp, null).apply(objects);
    t.is((await dp.trace(probe)).verdict, 'forward');
    await dp.close();
  }
  // no file at all
  const dp = await WorkerDataplane.start([init({ startHeld: true, ...image(mkdtempSync(join(tmpdir(), 'wdp-image-'))) })]);
  t.like(dp.imageResults()[0], { used: false, problem: 'none' });
  await dp.close();
});

test('the store revision: read alone, changed by every commit (staged on the writer thread too), never repeated by a new store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-rev-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.is(StateStore.peekRevision(dir), null);
  const s = new StateStore(dir);
  s.open();
  const r0 = s.revision();
  t.regex(r0, /^[0-9a-f-]{36}:0$/);
  t.is(StateStore.peekRevision(dir), r0);
  const svc = objects[1];
  s.commit({ upsert: [{ kind: 'Service', key: 'default/web', raw: svc }], remove: [] });
  const r1 = s.revision();
  t.not(r1, r0);
  t.is(StateStore.peekRevision(dir), r1);
  // a large write goes through the writer thread: its commit moves the revision as well
  s.stageOnThreadRows = 1;
  await s.stage({ upsert: [{ kind: 'Service', key: 'default/web', raw: { ...svc, spec: { ...svc.spec, clusterIP: '10.96.0.11' } } }], remove: [] }).commit();
  const r2 = s.revision();
  t.not(r2, r1);
  t.is(StateStore.peekRevision(dir), r2);
  s.close();
  const again = new StateStore(dir);
  again.open();
  t.is(again.revision(), r2);
  again.close();
  rmSync(join(dir, 'state.db'), { force: true }); rmSync(join(dir, 'state.db-wal'), { force: true }); rmSync(join(dir, 'state.db-shm'), { force: true });
  const fresh = new StateStore(dir);
  fresh.open();
  t.not(fresh.revision().split(':')[0], r2.split(':')[0]);
  fresh.close();
});

test('the store peeked at start: its revision with the NodeConfig saved at it (the node facts the image is keyed with), none when damaged', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-peek-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.deepEqual(StateStore.peek(dir), { revision: null, node: null });
  const s = new StateStore(dir);
  s.open();
  t.deepEqual(StateStore.peek(dir), { revision: s.revision(), node: null }, 'no NodeConfig saved');
  const node = (zone) => ({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'n' }, spec: { nodeName: 'n', nodeAddresses: ['192.168.100.2'], zone } });
  s.commit({ upsert: [{ kind: 'NodeConfig', key: '', raw: node('zone-a') }], remove: [] });
  t.deepEqual(StateStore.peek(dir), { revision: s.revision(), node: node('zone-a') });
  s.commit({ upsert: [{ kind: 'NodeConfig', key: '', raw: node('zone-b') }], remove: [] });
  const at = s.revision();
  t.deepEqual(StateStore.peek(dir), { revision: at, node: node('zone-b') });
  s.close();
  // a row that fails its checksum stands in for nothing (the real open refuses the store)
  const db = new Database(join(dir, 'state.db'));
  db.prepare("UPDATE objects SET body = replace(body, 'zone-b', 'zone-c') WHERE kind = 'NodeConfig'").run();
  db.close();
  t.like(StateStore.peek(dir), { node: null });
});

test('after an apply whose undo failed (the tables may differ from the saved state) no image is written, so none is trusted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-image-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dp = await WorkerDataplane.start([init({ worker: 0, workers: 2 }), init({ worker: 1, workers: 2 })]);
  t.teardown(() => dp.close());
  const cp = new ControlPlaneCore(dp, null);
  await cp.apply(objects.slice(0, 1));
  // worker 1 refuses the next apply; worker 0 takes it, and then refuses to be put back
  const real = dp.request.bind(dp);
  let applies = 0;
  dp.request = (h, msg, ...rest) => {
    if (msg.type === 'apply' && ++applies <= 3 && (h === dp.workers[1] || applies === 3)) return Promise.reject(new Error(`worker ${h.index}: table regrow failed`));
    return real(h, msg, ...rest);
  };
  const err = await t.throwsAsync(cp.apply(objects));
  t.regex(err.message, /could not be put back/);
  t.regex(dp.tablesInDoubt(), /an apply failed at the dataplane since the start/);
  // a later apply succeeds, yet worker 0's tables were never put back: still no image
  await cp.apply(objects);
  const written = await dp.writeImages(dir, 'id:1', 'h');
  t.is(written.length, 2);
  for (const w of written) t.regex(w.error, /not written: .*the tables may differ from the saved state/);
  t.false(existsSync(join(dir, imageFile(0))));
  t.false(existsSync(join(dir, imageFile(1))));
  // the next start finds none: the normal path
  const again = await WorkerDataplane.start([init({ startHeld: true, ...image(dir) })]);
  t.like(again.imageResults()[0], { used: false, problem: 'none' });
  await again.close();
});

test('an image is refused when a saved runtime port it was written with cannot be opened (its pod went away): the ports changed', async (t) => {
  const dir = await writtenImage(t);
  // the same inputs hash (the daemon computes it from the ports it asks the workers to open), but
  // the saved runtime port's interface is gone: the worker leaves it out, so the image's tables
  // name a port this worker does not have
  const gone = { index: 3, name: 'gone-pod', type: 'afpacket', ifname: 'nope-if-3', mac: '02:00:00:00:00:03', role: 'pod', gateways: [], learn: true, probe: [], optional: true };
  const dp = await WorkerDataplane.start([init({ startHeld: true, ports: [gone], ...image(dir) })]);
  t.teardown(() => dp.close());
  t.deepEqual(await dp.ports(), []);
  const [r] = dp.imageResults();
  t.false(r.used);
  t.regex(r.problem, /ports changed.*gone-pod/);
  t.false(existsSync(join(dir, imageFile(0))), 'a refused image is not left for another start');
  t.not((await dp.trace(probe)).verdict, 'forward');
  // the normal restore works on that core
  await new ControlPlaneCore(dp, null).apply(objects);
  t.is((await dp.trace(probe)).verdict, 'forward');
});
