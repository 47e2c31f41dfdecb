// A full sync that comes as several requests (the bench's 100k Services arrive as 9 POSTs under the
// body limit): the first a full compile, the next ones incremental onto a growing state, each
// received by column, with one-endpoint changes (objects) between them. A forwarding worker keeps
// the backends as received (BackendStore: column batches, some rows since replaced by objects), and
// a regrow rewrites every backend from those batches' current rows and the objects. The tables
// after every apply are exactly the worker's Ir, and every backend entry, frontend entry and Maglev
// table is byte for byte what a core given the whole Ir in one apply writes.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { Core } from '../dist/src/core/host.js';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { encodeDiff } from '../dist/src/ir/diff-wire.js';
import { encodeBackendColumns } from '../dist/src/ir/backend-columns.js';
import { BackendStore } from '../dist/src/ir/backend-store.js';
import { applyReceived, keepBackendsAsReceived } from '../dist/src/daemon/worker-apply.js';
import { checkCore, coreMaglev } from './lib/table-check.js';
import { model } from './lib/service-batch-gen.js';

const SMALL = { frontends: 2, backends: 2, maglevWords: 64, cidrs: 1, routes: 1 };
const NODE = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeName: 'node-a', nodeAddresses: ['192.168.0.1'] } };

const service = (i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'default' },
  spec: { clusterIP: `10.96.${i >> 8}.${i & 255}`, ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }] } });
const slice = (i, first = `10.244.${i >> 6}.${(i & 63) * 4 + 1}`) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `s${i}-a`, namespace: 'default', labels: { 'kubernetes.io/service-name': `s${i}` } },
  addressType: 'IPv4', ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
  endpoints: [first, `10.244.${i >> 6}.${(i & 63) * 4 + 2}`, `10.244.${i >> 6}.${(i & 63) * 4 + 3}`].map((a) => ({ addresses: [a], conditions: { ready: true } })),
});
const objects = (from, to) => { const o = []; for (let i = from; i < to; i++) o.push(service(i), slice(i)); return o; };

/** The diff as a worker receives it: its backends by column when `byColumn` (a large apply), else as encodeDiff sends it. */
function wireOf(d, byColumn) {
  const w = encodeDiff(d);
  if (byColumn) w.backendsUpsert = encodeBackendColumns(d.backendsUpsert);
  return structuredClone(w);
}

/** Set `which`'s entry of frontend / backend `id` (64 bytes), the Maglev offset zeroed, and the frontend's Maglev words. */
function entries(core, ir) {
  const dv = core.dv, base = core.map.tableSets[core.cfg32(L.CFG_GEN) & 1];
  const fe = dv.getUint32(base + L.TSH_FRONT_OFF, true), be = dv.getUint32(base + L.TSH_BACKEND_OFF, true);
  const out = {};
  for (const id of [...ir.backends.keys()].sort((a, b) => a - b)) out[`b${id}`] = Buffer.from(core.u8.slice(be + id * L.BE_SIZE, be + (id + 1) * L.BE_SIZE)).toString('hex');
  for (const id of [...ir.frontends.keys()].sort((a, b) => a - b)) {
    const e = fe + id * L.FE_SIZE;
    const row = core.u8.slice(e, e + L.FE_SIZE);
    row.fill(0, L.FE_MAGLEV_OFF, L.FE_MAGLEV_OFF + 4);
    out[`f${id}`] = Buffer.from(row).toString('hex');
    out[`m${id}`] = Buffer.from(coreMaglev(core, base, id).bytes).toString('hex');
  }
  return out;
}

/** The worker's tables are its Ir, and its entries those of a core given the compiler's whole Ir in one apply. */
function same(t, core, c, what) {
  checkCore(t, core, core.ir);
  const once = Core.create({ flows: 64, capacities: SMALL });
  once.applyIr(c.ir);
  t.deepEqual(entries(core, core.ir), entries(once, c.ir), what);
}

test('a sync in requests with endpoint changes between them: every regrow rewrites the received column batches and objects into exactly the tables of one full write', (t) => {
  const c = new Compiler({ maglevWorker: 'never' });
  const core = Core.create({ flows: 64, capacities: SMALL });
  keepBackendsAsReceived(core);
  applyReceived(core, wireOf(c.change({ upsert: model([NODE]) }).diff, false));
  let regrows = 0, from = 0, moved = 0;
  for (const n of [40, 40, 60, 150, 300]) {
    const bases = core.map.tableSets.join();
    applyReceived(core, wireOf(c.change({ upsert: model(objects(from, from + n)) }).diff, true));
    if (core.map.tableSets.join() !== bases) regrows++;
    from += n;
    same(t, core, c, `${from} services, the batch applied`);
    // one-endpoint changes: their backends come as objects and replace rows of the batches
    for (let i = 0; i < from; i += 7) {
      const d = c.change({ upsert: model([slice(i, `10.245.${moved >> 8}.${(moved & 255) || 1}`)]) }).diff;
      moved++;
      applyReceived(core, wireOf(d, false));
    }
    same(t, core, c, `${from} services, endpoints moved`);
  }
  t.true(core.ir.backends instanceof BackendStore, 'the worker keeps its backends as received');
  t.true(regrows >= 3, `regrows ${regrows}`);
  t.true(moved > 50);
});
