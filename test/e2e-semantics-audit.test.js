// End to end, with real clients through `wdp start` in namespaces, the differences from kube-proxy
// an audit of the nftables proxier found (docs/core.md "Kubernetes service rules"):
//   - an address listed twice, by a terminating pod and by a new pod the pod network gave it to, is
//     the new pod's (pkg/proxy/endpointslicecache.go addEndpoints prefers the copy that is not
//     terminating): while the new pod is not ready the Service has no endpoint and refuses; the
//     node of the new pod decides whether it is local;
//   - sessionAffinity holds a client to its pod only while that pod is in the chain's endpoints:
//     once it starts terminating (and others are ready) new connections go to a ready pod;
//   - loadBalancerSourceRanges padded with spaces or with host bits set are read as their prefixes
//     (serviceport.go: TrimSpace, ParseCIDRSloppy), the Service served.
// The node (node-a) has pod-a; pod-b is on node-b.
import test from 'ava';
import { curl, curlOk, e2eSuite, httpMany, serviceYaml, sliceYaml, NODE_V4 } from './lib/topology.js';

const suite = e2eSuite(test, { kind: 'aud', pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'tap' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

const PORTS = [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }];
const DRAINING = { ready: false, serving: true, terminating: true };
const STARTING = { ready: false, serving: false, terminating: false };
/** A slice of [pod, nodeName, conditions] entries. */
const slice = (name, service, eps) => sliceYaml({
  name, service, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: eps.map(([p, nodeName, conditions]) => ({ addresses: [p.ip], nodeName, conditions })),
});

serial('an address reused by a new pod that is not ready yet: the Service has no endpoint and refuses; ready, it serves', async (t) => {
  const [a] = topo.pods;
  // the old pod drains (serving, terminating) while the new pod with its address starts (slices
  // compile in name order: the draining copy is met first)
  await apply([
    serviceYaml({ name: 'reuse', clusterIP: '10.96.9.10', ports: PORTS }),
    slice('reuse-1-old', 'reuse', [[a, 'node-a', DRAINING]]),
    slice('reuse-2-new', 'reuse', [[a, 'node-a', STARTING]]),
  ]);
  const r = await curl(topo, topo.ns.client, 'http://10.96.9.10/', { timeout: 2 });
  t.is(r.code, 7, `kube-proxy takes the new pod's conditions: no endpoint, connection refused; got ${r.code} ${r.body ?? ''}`);
  await apply([slice('reuse-2-new', 'reuse', [[a, 'node-a', { ready: true }]])]);
  const ok = await curlOk(topo, topo.ns.client, 'http://10.96.9.10/');
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.body.trim(), 'pod-a');
});

serial('externalTrafficPolicy Local: a draining pod here whose address a pod on node-b took is not local: outside clients are dropped', async (t) => {
  const [a, b] = topo.pods;
  await apply([
    serviceYaml({ name: 'reloc', type: 'NodePort', clusterIP: '10.96.9.11', ports: [{ ...PORTS[0], nodePort: 30911 }], extra: { externalTrafficPolicy: 'Local' } }),
    slice('reloc-1-old', 'reloc', [[a, 'node-a', DRAINING], [b, 'node-b', { ready: true }]]),
    slice('reloc-2-new', 'reloc', [[a, 'node-b', { ready: true }]]),
  ]);
  const r = await curl(topo, topo.ns.remote, `http://${NODE_V4}:30911/`, { timeout: 2 });
  t.is(r.code, 28, `no endpoint on node-a: dropped (drop_etp_no_local); got ${r.code} ${r.body ?? ''}`);
  // the ClusterIP still reaches both (the cluster-wide set)
  const ok = await curlOk(topo, topo.ns.client, 'http://10.96.9.11/');
  t.is(ok.code, 0, ok.stderr);
});

serial('loadBalancerSourceRanges with spaces and host bits: the Service is served, the ranges read as their prefixes', async (t) => {
  const [a] = topo.pods;
  await apply([
    serviceYaml({
      name: 'lbr', type: 'LoadBalancer', clusterIP: '10.96.9.12', lbIngress: ['203.0.113.52'],
      extra: { loadBalancerSourceRanges: [' 10.0.0.77/24 '] }, ports: [{ ...PORTS[0], nodePort: 30912 }],
    }),
    slice('lbr-1', 'lbr', [[a, 'node-a', { ready: true }]]),
  ]);
  const ok = await curlOk(topo, topo.ns.client, 'http://203.0.113.52/');
  t.is(ok.code, 0, `the client (10.0.0.2) is in 10.0.0.0/24; got ${ok.code}: ${ok.stderr}`);
  t.is(ok.body.trim(), 'pod-a');
  const out = await curl(topo, topo.ns.remote, 'http://203.0.113.52/', { timeout: 2 });
  t.is(out.code, 28, `the remote client (192.168.100.10) is outside: dropped; got ${out.code}`);
});

serial('sessionAffinity: a client pinned to a pod that starts terminating opens its next connections to the ready pod', async (t) => {
  const [a, b] = topo.pods;
  const aff = { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } };
  await apply([
    serviceYaml({ name: 'stick', clusterIP: '10.96.9.13', ports: PORTS, extra: aff }),
    slice('stick-1', 'stick', [[a, 'node-a', { ready: true }], [b, 'node-b', { ready: true }]]),
  ]);
  const first = await httpMany(topo, topo.ns.client, 'http://10.96.9.13/', 6);
  const pinned = [...new Set(first.map((r) => r.pod))];
  t.is(pinned.length, 1, `pinned: ${JSON.stringify(first)}`);
  const [p, other] = pinned[0] === 'pod-a' ? [a, b] : [b, a];
  await apply([slice('stick-1', 'stick', [[p, p === a ? 'node-a' : 'node-b', DRAINING], [other, other === a ? 'node-a' : 'node-b', { ready: true }]])]);
  const after = await httpMany(topo, topo.ns.client, 'http://10.96.9.13/', 6);
  t.deepEqual(after.filter((r) => r.error), []);
  t.deepEqual([...new Set(after.map((r) => r.pod))], [other.name], 'the terminating pod is not in kube-proxy\'s chain while another is ready');
});
