// The restart plumbing of WorkerDataplane without ports (no root needed): each worker exports its
// own records, saved records go back to the worker of the same index, records of a worker the new
// configuration does not have are counted (workerGone) rather than lost silently, and a held
// worker answers control messages.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { WorkerDataplane } from '../dist/src/daemon/worker-dataplane.js';
import { Core } from '../dist/src/core/host.js';
import { exportFlows } from '../dist/src/core/flow-export.js';
import { frame } from '../dist/src/packet/build.js';
import { backend, frontend, mkIr, MAC } from './lib/packets.js';

const init = (worker, workers) => ({
  worker, workers, ports: [], nodeAddresses: ['192.168.100.2'], core: { flows: 1024 }, probeIntervalMs: 1000, portBackend: 'relay', startHeld: true,
});

/** Three established flows of a core of our own, as a worker would have saved them. */
function savedRecords() {
  const bs = [backend({ id: 1, addr: '10.1.0.1', port: 8080 })];
  const core = Core.create({ flows: 64, batchMax: 16 });
  core.applyIr(mkIr({ frontends: [frontend({ id: 1, addr: '10.96.0.10', port: 80 }, bs)], backends: bs }));
  core.run([1, 2, 3].map((i) => frame({ src: `10.0.0.${i}`, dst: '10.96.0.10', proto: 'TCP', sport: 4000, dport: 80, flags: 'A', srcMac: MAC.client, dstMac: MAC.node })), 100, 0);
  return exportFlows(core, [{ index: 0, name: 'uplink', mac: MAC.node }], 101);
}

test('records go back to the worker of their index; a missing worker is counted, a held worker still answers', async (t) => {
  const dp = await WorkerDataplane.start([init(0, 1)]);
  t.teardown(() => dp.close());
  const { workers: out } = await dp.exportFlows();
  t.is(out.length, 1);
  t.like(out[0], { worker: 0, frontends: [], backends: [], ports: [] });
  t.is(out[0].flows.length, 0);
  const recs = savedRecords();
  t.is(recs.flows.length, 3 * L.CT_SIZE);
  // worker 0 exists but has no service (flows would be kept without one) and no port named
  // "uplink"; worker 1 is gone
  const s = await dp.importFlows([{ ...recs, worker: 0 }, { ...recs, worker: 1 }], 0);
  t.deepEqual(s, { flows: 0, affinity: 0, staleBackends: 0, dropped: { portGone: 3, workerGone: 3 } });
  // forwarding: the export runs in slices between batches and still completes
  await dp.setForwarding(true);
  t.is((await dp.exportFlows()).workers.length, 1);
  await dp.setForwarding(false);
  t.deepEqual(await dp.conntrack(), []);
});
