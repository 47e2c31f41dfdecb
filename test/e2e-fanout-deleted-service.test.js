// Several workers on one interface, end to end (`workers: 2`, every port `fanout: true`): what a
// Service's deletion and a refused Service do with two workers, against what kube-proxy does on
// one kernel.
// - A long upload (one TCP connection) from a pod to a LoadBalancer IP or a NodePort (node address)
//   goes on after its Service is deleted, as under kube-proxy the established conntrack entry
//   keeps translating. The pod's port places its frames by destination (the fanout program), on
//   another worker than the pod's, which holds the flow: steering must send them back to it
//   (assembly/steer.ts, the retired set and the SNAT-range rule).
// - One client's packets to a refused ClusterIP — to its port without endpoints (keyed by the
//   client) and to a port it does not define (keyed by the address, the other worker) — get the
//   kernel's burst of 6 answers between both workers (the node's buckets: shared-reject-limit.ts).
// The addresses are chosen so that the owner function (owner.ts, 2 workers) puts the client and
// the destination on different workers.
import test from 'ava';
import { e2eSuite, api, serviceYaml, sliceYaml, readyEndpoints, waitFor, sleep, NODE_V4 } from './lib/topology.js';
import { uploadThroughDeletion } from './lib/fanout-checks.js';
import { ownerOf } from '../dist/src/daemon/flow-placement.js';
import { parseAddr } from '../dist/src/util/addr.js';

const suite = e2eSuite(test, {
  kind: 'fd',
  pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'afpacket' }],
  configure(config) {
    config.workers = 2;
    for (const p of config.ports) p.fanout = true;
  },
});
const serial = suite.serial;
const owner = (a) => ownerOf(parseAddr(a).bytes, 0, 0, 2);

const LB_IP = '192.0.2.10';
const NODE_PORT = 30714;   // the node address is the masquerade address: a frame to it is keyed by this port unless the core knows better
const REFUSED_VIP = '10.96.9.10';
const counters = async () => (await api(suite.topo, 'GET', '/api/v1/counters')).json;

const podsBC = () => readyEndpoints(suite.topo.pods.slice(1, 3));
const port = [{ name: 'http', port: 8080, protocol: 'TCP' }];

for (const k of [
  { name: 'lb-gone', what: 'a LoadBalancer IP', url: `http://${LB_IP}/`, dst: LB_IP, svc: (name) => serviceYaml({ name, type: 'LoadBalancer', clusterIP: '10.96.9.20', lbIngress: [LB_IP], ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30711, protocol: 'TCP' }] }) },
  { name: 'np-gone', what: 'a NodePort on the node address', url: `http://${NODE_V4}:${NODE_PORT}/`, dst: NODE_V4, port: NODE_PORT, svc: (name) => serviceYaml({ name, type: 'NodePort', clusterIP: '10.96.9.21', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: NODE_PORT, protocol: 'TCP' }] }) },
]) {
  serial(`a pod's long upload to ${k.what} goes on after its Service is deleted (as kube-proxy's conntrack entry keeps translating), with the pod and the address on different workers`, async (t) => {
    const topo = suite.topo;
    const pod = topo.pods[0];
    t.not(owner(pod.ip), owner(k.dst), 'the pod port places the frames on the address\'s worker, not the pod\'s');
    if (k.port) t.not(owner(pod.ip), ownerOf(parseAddr(k.dst).bytes, 0, k.port, 2), 'keyed as a masqueraded reply on that port, they would go to the other worker too');
    await suite.apply([k.svc(k.name), sliceYaml({ name: `${k.name}-1`, service: k.name, ports: port, endpoints: podsBC() })]);
    await uploadThroughDeletion(t, topo, pod.ns, k.url, k.name);
  });
}

serial('one client\'s packets to a refused ClusterIP, over both workers, get the kernel\'s 6 answers', async (t) => {
  const topo = suite.topo;
  const client = '10.0.0.2';
  t.not(owner(client), owner(REFUSED_VIP), 'the client\'s packets to the undefined port go to the other worker');
  await suite.apply([serviceYaml({ name: 'refused', clusterIP: REFUSED_VIP, ports: [{ name: 'udp', port: 80, targetPort: 5353, protocol: 'UDP' }] })]);
  await sleep(1200);   // the client's bucket is full again (a second after any answer)
  const before = await counters();
  const r = await topo.lab.execAsync(topo.ns.client, process.execPath, ['-e', `
    const dgram = require('dgram');
    let refused = 0, sent = 0, t0 = Date.now(), span = 0;
    for (let i = 0; i < 20; i++) {
      const s = dgram.createSocket('udp4');
      s.on('message', () => {});
      s.on('error', (e) => { if (e.code === 'ECONNREFUSED') refused++; });
      s.connect(i % 2 ? 81 : 80, ${JSON.stringify(REFUSED_VIP)}, () => s.send('x', () => { if (++sent === 20) span = Date.now() - t0; }));
    }
    setTimeout(() => { console.log(JSON.stringify({ refused, span })); process.exit(0); }, 2000);`], { timeoutMs: 10000 });
  const got = JSON.parse(r.stdout.trim().split('\n').pop());
  const sum = (c) => (c.reasons.reject_no_endpoints ?? 0) + (c.reasons.reject_invalid_port ?? 0) + (c.reasons.drop_reject_rate_limited ?? 0);
  const after = await waitFor('all 20 counted', async () => { const c = await counters(); return sum(c) - sum(before) >= 20 && c; }, 10000);
  const answered = (after.reasons.reject_no_endpoints ?? 0) - (before.reasons.reject_no_endpoints ?? 0) + (after.reasons.reject_invalid_port ?? 0) - (before.reasons.reject_invalid_port ?? 0);
  const per = after.workers.map((w, i) => (w.reasons.reject_no_endpoints ?? 0) + (w.reasons.reject_invalid_port ?? 0) + (w.reasons.drop_reject_rate_limited ?? 0)
    - (before.workers[i].reasons.reject_no_endpoints ?? 0) - (before.workers[i].reasons.reject_invalid_port ?? 0) - (before.workers[i].reasons.drop_reject_rate_limited ?? 0));
  t.log(got, `answered ${answered}; decided per worker ${per}`);
  t.true(per.every((n) => n > 0), `both workers decided (${per})`);
  t.true(answered >= 6, `the burst of 6 (${answered})`);
  t.true(answered <= 6 + Math.floor(got.span / 1000) + (got.span >= 500 ? 1 : 0), `at most the kernel's 6 at once (${answered} in ${got.span} ms)`);
  t.is(got.refused, answered, 'each answer reached its socket');
});
