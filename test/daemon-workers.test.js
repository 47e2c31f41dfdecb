// `workers: 2`: two forwarding threads, each owning a group of ports (client + two pods, remote
// + one pod). Flows that stay within a group work in both; the counters API sums both workers;
// a frame routed to another worker's port is counted (slowpath_foreign_port), not lost silently.
import test from 'ava';
import {
  curlOk, rootGate, startTwoWorkerTopology, destroyTopology, api, curl, serviceYaml, sliceYaml, readyEndpoints, twoWorkerServices, sleep, waitFor, NODE_V4,
} from './lib/topology.js';

const gate = rootGate(test);
const root = gate.ok;
const serial = gate.serial;

let topo;
test.before(async () => {
  if (!root) return;
  topo = await startTwoWorkerTopology();
});
test.after.always(async () => { await destroyTopology(topo); });


serial('each worker forwards the flows of its own ports; counters are summed over workers', async (t) => {
  const [a, b, c] = topo.pods;
  const r = await api(topo, 'POST', '/api/v1/apply', twoWorkerServices(topo));
  t.is(r.status, 200, r.text);
  const seen = new Set();
  t.is((await curlOk(topo, topo.ns.client, 'http://10.96.4.10/', 25)).code, 0);
  for (let i = 0; i < 16; i++) seen.add((await curl(topo, topo.ns.client, 'http://10.96.4.10/')).body.trim());
  t.deepEqual([...seen].sort(), ['pod-a', 'pod-b']);
  const remote = await curlOk(topo, topo.ns.remote, `http://${NODE_V4}:30400/`, 25);
  t.is(remote.code, 0, `${remote.stderr}\n${topo.daemonLog.slice(-2000)}`);
  t.is(remote.body.trim(), 'pod-c');
  const ct = await api(topo, 'GET', '/api/v1/conntrack');
  const backends = new Set(ct.json.items.map((f) => f.backend));
  t.true(backends.has(c.ip) && (backends.has(a.ip) || backends.has(b.ip)), 'flows from both workers are listed');
});

serial('a flow whose backend sits behind another worker is counted as slowpath_foreign_port', async (t) => {
  const [, , c] = topo.pods;
  await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'cross', clusterIP: '10.96.4.12', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'cross-1', service: 'cross', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: readyEndpoints([c]) }),
  ]);
  const before = (await api(topo, 'GET', '/api/v1/counters')).json.global.slowpath_foreign_port ?? 0;
  const r = await curl(topo, topo.ns.client, 'http://10.96.4.12/', { timeout: 2 });
  t.not(r.code, 0);
  // (counted when the worker gets to the frames: waited for, not read once)
  const foreign = async () => (await api(topo, 'GET', '/api/v1/counters')).json.global.slowpath_foreign_port ?? 0;
  const after = await waitFor('slowpath_foreign_port counted', async () => { const n = await foreign(); return n > before && n; }, 10000).catch(foreign);
  t.true(after > before, `foreign_port ${before} -> ${after}`);
});
