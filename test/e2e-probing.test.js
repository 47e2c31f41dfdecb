// End to end, neighbour probing that cannot starve and neighbours that age out. The pods here
// never send anything on their own, so the dataplane learns them only by probing for them.
//   * 40 unresolvable endpoints (addresses nobody has) are applied before the live pods: probing
//     used to take the first 32 unresolved backends every round, so the live pods behind them were
//     never asked for and their Service never answered. Now every round continues where the last
//     stopped: the live pods resolve within ceil(42/32) probe intervals.
//   * A learned pod whose interface goes away fails its unicast re-verification (reachable ->
//     stale -> probe -> failed, neighbourReachableMs 1000 here) and is unrouted; when it comes
//     back, broadcast probing finds it again.
import test from 'ava';
import { e2eSuite, api, curlOk, serviceYaml, sliceYaml, sleep, logged } from './lib/topology.js';

const suite = e2eSuite(test, {
  pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'afpacket' }],
  configure: (config) => { config.neighbourReachableMs = 1000; config.probeIntervalMs = 200; },
});
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

const backends = async (service) => (await api(topo, 'GET', `/api/v1/backends?service=${encodeURIComponent(service)}`)).json.items;
async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) { last = await fn(); if (last) return last; await sleep(100); }
  throw new Error(`timed out waiting for ${what}`);
}

serial('with 40 unresolvable endpoints ahead of them, live pods are still probed and served', async (t) => {
  const dead = Array.from({ length: 40 }, (_, i) => `10.244.9.${i + 1}`);
  await apply([
    serviceYaml({ name: 'dead', clusterIP: '10.96.3.1', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'dead-1', service: 'dead', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: dead.map((a) => ({ addresses: [a], conditions: { ready: true } })) }),
  ]);
  await sleep(600); // the dead ones have the probe rounds to themselves for a while
  await apply([
    serviceYaml({ name: 'live', clusterIP: '10.96.3.2', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'live-1', service: 'live', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true } })) }),
  ]);
  const t0 = Date.now();
  // bound: ceil(42 / 32) = 2 rounds of 200 ms; allow generously for a loaded machine
  await until('the live pods to resolve', async () => (await backends('default/live')).every((b) => b.outPort !== null && b.outPort !== undefined), 10000);
  t.log(`live pods resolved after ${Date.now() - t0} ms`);
  const r = await curlOk(topo, topo.ns.client, 'http://10.96.3.2/');
  t.is(r.code, 0, r.stderr);
  t.true((await backends('default/dead')).every((b) => b.outPort === null || b.outPort === undefined), 'nobody answered for the dead ones');
  const c = (await api(topo, 'GET', '/api/v1/counters')).json.global;
  t.true(c.slowpath_probe_broadcast >= 42, `every unresolved address was asked for: ${c.slowpath_probe_broadcast}`);
});

serial('a learned neighbour is re-verified by unicast probes, lost when it stops answering, found again when it is back', async (t) => {
  const pod = topo.pods[1];
  await until('pod-b resolved', async () => (await backends('default/live')).find((b) => b.addr === pod.ip)?.outPort != null);
  // it answers the unicast re-verification probes: still resolved several reachable times later
  const before = (await api(topo, 'GET', '/api/v1/counters')).json.global.slowpath_probe_unicast ?? 0;
  await sleep(2500);
  // (the probe rounds, every 200 ms, lag on a loaded machine: the probe is waited for)
  const global = async () => (await api(topo, 'GET', '/api/v1/counters')).json.global;
  const mid = await until('a unicast re-verification probe', async () => { const g = await global(); return (g.slowpath_probe_unicast ?? 0) > before && g; }, 10000).catch(global);
  t.true((mid.slowpath_probe_unicast ?? 0) > before, 'stale neighbours are re-verified');
  t.not((await backends('default/live')).find((b) => b.addr === pod.ip).outPort, null);
  t.falsy(mid.slowpath_neighbour_failed, 'a pod that answers never fails');
  // the pod's interface goes down: its address stops answering
  topo.lab.exec(pod.ns, 'ip', ['link', 'set', pod.ifname, 'down']);
  await until('pod-b unrouted', async () => (await backends('default/live')).find((b) => b.addr === pod.ip)?.outPort == null, 15000);
  t.true((await api(topo, 'GET', '/api/v1/counters')).json.global.slowpath_neighbour_failed >= 1);
  await logged(topo, /neighbour lost/);
  // back: broadcast probing finds it again (its routes went with the link: put them back)
  topo.lab.exec(pod.ns, 'ip', ['link', 'set', pod.ifname, 'up']);
  topo.lab.exec(pod.ns, 'ip', ['route', 'replace', '10.244.0.1', 'dev', pod.ifname]);
  topo.lab.exec(pod.ns, 'ip', ['route', 'replace', 'default', 'via', '10.244.0.1', 'dev', pod.ifname]);
  await until('pod-b found again', async () => (await backends('default/live')).find((b) => b.addr === pod.ip)?.outPort != null, 15000);
  const seen = new Set();
  for (let i = 0; i < 30 && seen.size < 2; i++) {
    const r = await curlOk(topo, topo.ns.client, 'http://10.96.3.2/', 3);
    if (r.code === 0) seen.add(r.body.trim());
  }
  t.deepEqual([...seen].sort(), ['pod-a', 'pod-b']);
});
