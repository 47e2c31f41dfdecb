// A port removed while its worker is still opening it (src/daemon/worker.ts addPort/removePort):
// the removal is answered once the open has ended and the port is closed — never before, so the
// daemon does not free the index of a port the worker is about to open — and the port is never
// read: the add fails ("removed while it was being opened"), no port is listed, its TAP is gone,
// and the worker counts it (slowpath_port_open_abandoned). Another add of the same port while it
// is being closed is refused. The open is a relay TAP's set-up, held by an `ip` stub on PATH
// (`ip link set tapq up` waits while the gate file exists; bounded: 60 s), in a namespace the
// test creates.
import test from 'ava';
import { existsSync } from 'node:fs';
import { holdingIpStub } from './lib/ip-stub.js';
import { WorkerDataplane } from '../dist/src/daemon/worker-dataplane.js';
import { NetnsLab } from '../dist/src/netns.js';
import { rootGate } from './lib/root-gate.js';
import { waitFor } from './lib/topology.js';

const gate = rootGate(test, { tools: ['python3'] });

gate.serial('a port removed while its worker opens it is closed when the open ends; the removal is answered then', async (t) => {
  const lab = new NetnsLab('wpo');
  const stub = holdingIpStub('link set tapq up');
  let dp, adding, removing;
  try {
    const ns = lab.namespace('a');
    const path = process.env.PATH;
    process.env.PATH = `${stub.dir}:${path}`;   // the worker (its env copied at start) runs the stub
    try {
      dp = await WorkerDataplane.start([{ worker: 0, workers: 1, ports: [], nodeAddresses: ['192.168.100.2'], core: { flows: 1024 }, probeIntervalMs: 1000, portBackend: 'relay', portNetns: ns }]);
    } finally { process.env.PATH = path; }
    const spec = { index: 3, name: 'pod-q', type: 'tap', ifname: 'tapq', mac: '02:00:00:00:00:33', role: 'pod', gateways: ['10.244.0.1'], learn: true, probe: [] };
    const settled = {};
    adding = dp.addPort(0, spec);
    adding.then(() => { settled.add = 'opened'; }, (e) => { settled.add = e.message; });
    await waitFor('the TAP\'s set-up held', () => existsSync(stub.reached), 30000);
    removing = dp.removePort(0, 3);
    removing.then(() => { settled.remove = 'ok'; }, (e) => { settled.remove = e.message; });
    // a request behind the removal: answered after it, so a removal answered at once has been
    t.deepEqual(await dp.ports(), [], 'nothing listed while it opens');
    t.is(settled.remove, undefined, 'the removal waits for the open under way');
    const again = await dp.addPort(0, spec).then(() => 'opened', (e) => e.message);
    t.regex(again, /still being closed/);
    stub.release();
    await Promise.allSettled([adding, removing]);
    t.regex(settled.add, /removed while it was being opened/);
    t.is(settled.remove, 'ok');
    t.deepEqual(await dp.ports(), [], 'the port opened late is not there');
    t.is((await dp.counters()).global.slowpath_port_open_abandoned, 1);
    await waitFor('its TAP gone', () => lab.exec(ns, 'ip', ['link', 'show', 'tapq']).code !== 0, 20000);
    // the index and the names are free again: the port opens as any other
    const info = await dp.addPort(0, spec);
    t.is(info.index, 3);
    t.is(info.kind, 'relay-tap');
    await dp.removePort(0, 3);
  } finally {
    stub.release();
    await Promise.allSettled([adding, removing].filter(Boolean));
    await dp?.close();
    await lab.destroy();
    stub.remove();
  }
});
