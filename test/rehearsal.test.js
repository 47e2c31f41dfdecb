// The rehearsal of the one-object change after a large apply (src/api/rehearsal.ts): it runs once
// the control plane is idle, never while a transaction is queued or running, changes nothing (the
// compiler's model and Ir, the dataplane, the store's revision), and is skipped when nothing is
// stored to rehearse with.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlaneCore } from '../dist/src/api/controlplane.js';
import { rehearsalObject } from '../dist/src/api/rehearsal.js';
import { StateStore } from '../dist/src/state/store.js';
import { makeServiceSet } from '../dist/src/bench/peers/service-set.js';
import { benchObjects } from '../dist/src/bench/control.js';

/** A dataplane that records every diff it is given; `hold()` keeps the next apply pending. */
function recordingDataplane() {
  let gen = 0, held = null;
  return {
    applied: [],
    hold() { let release; held = new Promise((r) => { release = r; }); return () => release(); },
    async apply(diff) {
      this.applied.push(diff);
      if (held) { const h = held; held = null; await h; }
      return { generation: ++gen, programmedAtNs: Number(process.hrtime.bigint()) };
    },
    generation: () => gen,
    async counters() { throw new Error('not used'); },
    async conntrack() { return []; },
    async trace() { throw new Error('not used'); },
    async close() {},
  };
}

/** `services` Services with a slice of 3 endpoints each, and the node config (600: 1,201 objects, a large apply). */
const large = (services = 600) => benchObjects(makeServiceSet({ services, endpoints: 3 }));

/** What a rehearsal must leave as it was: the model (every stored object's raw), the Ir's sizes
 * and the ids' high-water marks. */
function snapshot(cp) {
  const c = cp.compiler;
  return JSON.stringify({
    services: c.listServices().map((s) => s.raw), slices: c.listSlices().map((s) => s.raw), node: c.getNode()?.raw ?? null,
    frontends: c.ir.frontends.size, backends: c.ir.backends.size,
  });
}

const settle = async (cp, runs) => {
  // (the rehearsal starts after a setImmediate and runs as a transaction: wait until it has run and
  // the control plane is idle again; bounded)
  for (let i = 0; i < 200 && !(cp.rehearsal.runs >= runs && cp.idle); i++) await new Promise((r) => setTimeout(r, 5));
};

test('the rehearsal object is a stored slice of a Service with its first endpoint\'s readiness flipped', (t) => {
  const slices = [
    { service: null, raw: { endpoints: [{ addresses: ['10.0.0.1'] }] } },
    { service: 'default/a', raw: { endpoints: [] } },
    { service: 'default/b', raw: { kind: 'EndpointSlice', endpoints: [{ addresses: ['10.0.0.2'], conditions: { serving: true } }, { addresses: ['10.0.0.3'] }] } },
  ];
  t.deepEqual(rehearsalObject(slices), { kind: 'EndpointSlice', endpoints: [{ addresses: ['10.0.0.2'], conditions: { serving: true, ready: false } }, { addresses: ['10.0.0.3'] }] });
  t.deepEqual(rehearsalObject([{ service: 'default/c', raw: { endpoints: [{ addresses: ['10.0.0.4'], conditions: { ready: false } }] } }]).endpoints[0].conditions, { ready: true });
  t.deepEqual(slices[2].raw.endpoints[0].conditions, { serving: true }, 'the stored object is not modified');
  t.is(rehearsalObject(slices.slice(0, 2)), null, 'no slice of a Service with an endpoint: nothing to rehearse');
  t.is(rehearsalObject([]), null);
});

test('after a large apply it runs once, when idle, and changes nothing: model, Ir, dataplane, store revision', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-rehearsal-'));
  const store = new StateStore(dir);
  store.open();
  t.teardown(() => { store.close(); rmSync(dir, { recursive: true, force: true }); });
  const dp = recordingDataplane();
  const cp = new ControlPlaneCore(dp, store);
  const seen = [];
  cp.observer.onSync = (i) => seen.push(i);
  await cp.apply(large());
  t.is(dp.applied.length, 1);
  const before = snapshot(cp), rev = store.revision(), gen = dp.generation(), updated = cp.lastUpdated;
  await settle(cp, 1);
  t.is(cp.rehearsal.runs, 1);
  t.is(snapshot(cp), before, 'the model and the Ir are as the large apply left them');
  t.is(dp.applied.length, 1, 'nothing posted to the dataplane');
  t.is(dp.generation(), gen);
  t.is(store.revision(), rev, 'nothing written to the store');
  t.is(seen.length, 1, 'no sync counted');
  t.is(cp.lastUpdated, updated);
  // the change it rehearsed, made for real afterwards, is a change (the rehearsal did not leave it applied)
  const obj = rehearsalObject(cp.compiler.eachSlice());
  const r = await cp.apply([obj]);
  t.is(r.objects[0].action, 'configured');
  t.true(r.diff.counts.backendsUpsert + r.diff.counts.frontendsUpsert > 0, 'the flipped readiness reprograms the service');
  t.is(dp.applied.length, 2);
  // a small apply schedules no rehearsal
  await settle(cp, 2);
  t.is(cp.rehearsal.runs, 1);
});

test('it never runs while a transaction is queued or running: a real apply that comes first goes first', async (t) => {
  const dp = recordingDataplane();
  const cp = new ControlPlaneCore(dp, null);
  await cp.apply(large()); // schedules the rehearsal (after a setImmediate)
  // a real change arrives before the rehearsal's turn, and its dataplane apply is held
  const release = dp.hold();
  const objs = large();
  const slice = objs[2];
  const change = cp.apply([{ ...slice, endpoints: [{ ...slice.endpoints[0], addresses: ['10.255.0.1'] }, ...slice.endpoints.slice(1)] }]);
  t.false(cp.idle);
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 10));
  t.is(cp.rehearsal.runs, 0, 'not while the real change is in flight');
  release();
  const r = await change;
  t.is(r.objects[0].action, 'configured');
  await settle(cp, 1);
  t.is(cp.rehearsal.runs, 1, 'once the control plane is idle again');
  t.is(dp.applied.length, 2, 'the rehearsal posted nothing');
});

test('skipped when nothing is stored to rehearse with: services without slices', async (t) => {
  const dp = recordingDataplane();
  const cp = new ControlPlaneCore(dp, null);
  // services alone (no slice): a large apply, nothing to rehearse with
  const svcsOnly = large(1200).filter((o) => o.kind !== 'EndpointSlice');
  await cp.apply(svcsOnly);
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 10));
  t.is(cp.rehearsal.runs, 0);
  t.true(cp.idle);
  // scheduled by hand (as the daemon does once it forwards from a restored state): nothing either
  cp.rehearsal.schedule();
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 10));
  t.is(cp.rehearsal.runs, 0);
});

test('scheduled by hand after a restore (as the daemon does once it forwards), it runs once and changes nothing', async (t) => {
  const dp = recordingDataplane();
  const src = new ControlPlaneCore(recordingDataplane(), null);
  await src.apply(large(50)); // a small state to restore from
  const cp = new ControlPlaneCore(dp, null);
  await cp.restore({ objects: [...src.compiler.listServices(), ...src.compiler.listSlices(), src.compiler.getNode()], load: { problems: [], source: 'store', state: { node: src.compiler.getNode() } } });
  t.is(dp.applied.length, 1);
  const before = snapshot(cp);
  await new Promise((r) => setTimeout(r, 50));
  t.is(cp.rehearsal.runs, 0, 'a restore alone schedules none (the daemon does, once it forwards)');
  cp.rehearsal.schedule();
  cp.rehearsal.schedule(); // (twice in a row: one rehearsal)
  await settle(cp, 1);
  await new Promise((r) => setTimeout(r, 50));
  t.is(cp.rehearsal.runs, 1);
  t.is(snapshot(cp), before);
  t.is(dp.applied.length, 1);
});
