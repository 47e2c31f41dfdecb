// A restart's restore of sessionAffinity entries (src/core/flow-export.ts importFlows, IrIds):
// the entries are a Service port's, keyed by its ClusterIP frontend, and one holds while some
// frontend of the port lists its backend (docs/core.md "Stale pins"; kube-proxy keeps an
// endpoint's affinity set while some chain of the port reaches it). With internalTrafficPolicy
// Local and a NodePort of policy Cluster, a client pinned through the NodePort to a remote
// endpoint has an entry keyed by the ClusterIP whose own set lacks that endpoint: the restore
// keeps it, and the client's next NodePort connection goes back to it.
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import { Core } from '../dist/src/core/host.js';
import { exportFlows, importFlows } from '../dist/src/core/flow-export.js';
import { MAC, L } from './lib/packets.js';

const OPTS = { flows: 1024, batchMax: 64, affinitySlots: 1024 };
const LOCAL = '10.244.1.5', REMOTE = '10.244.2.5';
const PORTS = [{ index: 1, name: 'pods', mac: '02:00:00:00:00:01' }, { index: 3, name: 'uplink', mac: MAC.node }];
const objects = () => validateAll([
  { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
    spec: { nodeAddresses: ['192.168.0.1'], routes: [{ prefix: '10.244.0.0/16', port: 1, nextHopMac: '02:00:00:00:00:11', localMac: '02:00:00:00:00:01' }] } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' },
    spec: { type: 'NodePort', clusterIP: '10.96.0.1', sessionAffinity: 'ClientIP', internalTrafficPolicy: 'Local', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', ports: [{ port: 8080 }],
    endpoints: [{ addresses: [LOCAL], nodeName: 'node-a' }, { addresses: [REMOTE], nodeName: 'node-b' }],
    metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } } },
]);
const CLIENTS = Array.from({ length: 24 }, (_, i) => `172.20.0.${i + 1}`);
const toNodePort = (src, sport) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, proto: 'TCP', src, dst: '192.168.0.1', sport, dport: 30080, flags: 'S' });

function mkCore() {
  const c = new Compiler();
  c.change({ upsert: objects() });
  const core = Core.create(OPTS);
  core.applyIr(c.ir);
  return core;
}

test('internalTrafficPolicy Local, NodePort Cluster: a pin on a remote endpoint (keyed by the ClusterIP, outside its set) is restored and holds through the NodePort', (t) => {
  const a = mkCore();
  const first = a.run(CLIENTS.map((c) => toNodePort(c, 5000)), 1000, 3).map((r) => parseFrame(r.frame).dst);
  const remote = CLIENTS.filter((_, i) => first[i] === REMOTE);
  t.true(remote.length > 0 && remote.length < CLIENTS.length, `both endpoints picked (${remote.length} remote)`);
  const recs = exportFlows(a, PORTS, 1001);
  t.is(recs.affinity.length, CLIENTS.length * L.AFF_SIZE);

  const b = mkCore();
  const stats = importFlows(b, recs, PORTS, 0, 20);
  t.is(stats.affinity, CLIENTS.length, `every pin restored (${JSON.stringify(stats.dropped)})`);
  const again = b.run(remote.map((c) => toNodePort(c, 6000)), 30, 3);
  t.deepEqual(again.map((r) => parseFrame(r.frame).dst), remote.map(() => REMOTE), 'the NodePort follows the restored pins');
  t.is(b.counters().global.aff_hit, remote.length);
});
