// A Service whose cluster IP is one of the node's addresses gets no ClusterIP frontend (the node's
// own traffic to it stays the node's: docs/core.md Known differences (21), last sentence). Its
// NodePort frontend shares its session affinity with the port's ClusterIP frontend when both
// traffic policies are Cluster (FEF_AFFINITY_SHARED, docs/core.md "sessionAffinity per service
// port"), and an externalTrafficPolicy Local frontend sends pods to the cluster-wide set through
// FE_CLUSTER_FRONT: here neither ClusterIP frontend is there. The NodePort must still forward,
// keep its clients on their endpoint (ClientIP affinity) and, under Local, still send pods to
// every endpoint; with both policies Cluster its pins hold on every NodePort address of the port
// (one affinity per service port). Driven through the compiler, the core and the reference model (core = model).
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import { Core } from '../dist/src/core/host.js';
import { ReferenceModel } from '../dist/src/reference/model.js';
import { runBoth, firstMismatch, MAC } from './lib/packets.js';

const T0 = 1_000_000;
const OPTS = { flows: 4096, batchMax: 64, affinitySlots: 1024 };
const NODE = '192.168.0.1', OWNED = '192.168.0.9'; // OWNED: a node address, and the Service's cluster IP
const LOCAL = ['10.244.1.5', '10.244.1.6'], REMOTE = ['10.244.2.5', '10.244.2.6'];
const node = () => ({
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: {
    nodeAddresses: [NODE, OWNED], clusterCIDRs: ['10.244.0.0/16'], podCIDRs: ['10.244.1.0/24'],
    routes: [{ prefix: '10.244.0.0/16', port: 1, nextHopMac: '02:00:00:00:00:11', localMac: '02:00:00:00:00:01' }],
  },
});
const svc = (policies) => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' },
  spec: { type: 'NodePort', clusterIP: OWNED, sessionAffinity: 'ClientIP', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }], ...policies },
});
const slice = {
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', ports: [{ port: 8080 }],
  endpoints: [...LOCAL.map((a) => ({ addresses: [a], nodeName: 'node-a' })), ...REMOTE.map((a) => ({ addresses: [a], nodeName: 'node-b' }))],
  metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
};

/** SYNs from `clients` to the NodePort with source port `sport` at `now`: core = model; where each went. */
function connect(t, core, model, clients, sport, now, dst = NODE) {
  const frames = clients.map((src) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, proto: 'TCP', src, dst, sport, dport: 30080, flags: 'S' }));
  const pairs = runBoth(core, model, frames, now, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined, 'core = model');
  return pairs.map((p) => p.core.verdict === 'forward' ? parseFrame(B.fromHex(p.core.hex)).dst : `${p.core.verdict} ${p.core.reason}`);
}

const OUTSIDE = Array.from({ length: 24 }, (_, i) => `172.20.0.${i + 1}`);
const PODS = Array.from({ length: 24 }, (_, i) => `10.244.1.${i + 100}`);

for (const [name, policies, outsideSet] of [
  ['both policies Cluster', {}, [...LOCAL, ...REMOTE]],
  ['externalTrafficPolicy Local', { externalTrafficPolicy: 'Local' }, LOCAL],
  ['both policies Local', { externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Local' }, LOCAL],
]) {
  test(`${name}, the cluster IP a node address: no ClusterIP frontend; the NodePort forwards and keeps ClientIP affinity; pods reach every endpoint`, (t) => {
    const c = new Compiler();
    c.change({ upsert: validateAll([node(), svc(policies), slice]) });
    const kinds = [...c.ir.frontends.values()].map((f) => `${f.kind} ${f.addr}`);
    t.false(kinds.includes(`ClusterIP ${OWNED}`), 'no ClusterIP frontend on the node address');
    t.true(kinds.includes(`NodePort ${NODE}`));
    const core = Core.create(OPTS);
    core.applyIr(c.ir);
    const model = new ReferenceModel(c.ir, OPTS);
    // outside clients: forwarded to the set of the policy, spread over it, each client pinned:
    // a second connection from another source port goes to the same endpoint
    const first = connect(t, core, model, OUTSIDE, 40000, T0);
    t.true(first.every((d) => outsideSet.includes(d)), `outside: ${first.join(', ')}`);
    t.true(new Set(first).size > 1, 'outside clients spread over more than one endpoint');
    const again = connect(t, core, model, OUTSIDE, 40001, T0 + 1000);
    t.deepEqual(again, first, 'outside clients keep their endpoint (ClientIP affinity)');
    if (!policies.externalTrafficPolicy) {
      // both policies Cluster: one affinity per service port, as kube-proxy's per-endpoint sets —
      // the NodePort on the other node address (the cluster IP's own) keeps them too
      t.true(kinds.includes(`NodePort ${OWNED}`));
      t.deepEqual(connect(t, core, model, OUTSIDE, 40002, T0 + 1500, OWNED), first, 'pinned through the other NodePort address too');
    }
    // pods (the pod CIDR): every endpoint, under Local too (kube-proxy's short-circuit to the
    // cluster policy chain), pinned as well
    const pods = connect(t, core, model, PODS, 41000, T0 + 2000);
    t.true(pods.every((d) => [...LOCAL, ...REMOTE].includes(d)), `pods: ${pods.join(', ')}`);
    t.true(pods.some((d) => REMOTE.includes(d)), `pods reach remote endpoints: ${pods.join(', ')}`);
    t.deepEqual(connect(t, core, model, PODS, 41001, T0 + 3000), pods, 'pods keep their endpoint');
  });
}
