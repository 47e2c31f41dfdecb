// Several workers on one interface, end to end, with three (`workers: 3`, every port `fanout:
// true`): a pod's IPv6 connection to a Service deleted under it goes on, as kube-proxy's conntrack
// entry keeps translating. The fanout program places IPv6 frames on worker 0; the addresses are
// chosen so that the pod's worker (which holds its flow: keyed by the client) is 1 and the deleted
// address's is 2 — the pod's frames land on neither, and with the address gone nothing in the
// tables says they are a client's: steering sends them to the client's worker for a second look
// (assembly/steer.ts keptFlowOwner, STEER_RECHECK).
import test from 'ava';
import { e2eSuite, serviceYaml, sliceYaml } from './lib/topology.js';
import { uploadThroughDeletion } from './lib/fanout-checks.js';
import { ownerOf } from '../dist/src/daemon/flow-placement.js';
import { parseAddr } from '../dist/src/util/addr.js';

const WORKERS = 3;
const suite = e2eSuite(test, {
  kind: 'ftw',
  pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'afpacket' }],
  node: { clusterCIDRs: ['10.244.0.0/16'], serviceCIDRs: ['10.96.0.0/16', 'fd00:96::/64'] },
  configure(config) {
    config.workers = WORKERS;
    for (const p of config.ports) p.fanout = true;
  },
});
const serial = suite.serial;
const owner = (a) => ownerOf(parseAddr(a).bytes, 0, 0, WORKERS);
const v6 = { ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack' };
const http = [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }];

for (const k of [
  { name: 'lb6-gone', what: 'an IPv6 LoadBalancer IP', dst: 'fd00:9::4', svc: (name) => serviceYaml({ name, type: 'LoadBalancer', clusterIP: 'fd00:96::9:1', lbIngress: ['fd00:9::4'], extra: v6, ports: [{ ...http[0], nodePort: 30721 }] }) },
  { name: 'cip6-gone', what: 'an IPv6 ClusterIP', dst: 'fd00:96::9:3', svc: (name) => serviceYaml({ name, clusterIP: 'fd00:96::9:3', extra: v6, ports: http }) },
]) {
  serial(`three workers: a pod's long IPv6 upload to ${k.what} goes on after its Service is deleted, its frames landing on neither the pod's worker nor the address's`, async (t) => {
    const topo = suite.topo;
    const pod = topo.pods[0];
    t.is(owner(pod.ip6), 1, 'the pod\'s flow is on worker 1');
    t.is(owner(k.dst), 2, 'the address is worker 2\'s');
    const endpoints = topo.pods.slice(1, 3).map((p) => ({ addresses: [p.ip6], conditions: { ready: true }, nodeName: 'node-a' }));
    await suite.apply([k.svc(k.name), sliceYaml({ name: `${k.name}-1`, service: k.name, addressType: 'IPv6', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints })]);
    await uploadThroughDeletion(t, topo, pod.ns, `http://[${k.dst}]/`, k.name);
  });
}
