// kube-proxy's UDP conntrack cleanup when a frontend goes away (src/core/udp-cleanup.ts,
// docs/core.md "Flows of endpoints that stop serving or go away"). kube-proxy
// (pkg/proxy/conntrack/cleanup.go) deletes UDP entries by a current UDP service IP or node port
// whose reply source is not a serving endpoint, and those of Service ports deleted in the sync
// (kubernetes#141371; a family's proxier sees a Service that lost its cluster IP of that family as
// deleted). An entry to an address that left a live Service port (an external IP removed, the port
// no longer a NodePort) is never looked at again: the kernel keeps translating it to its endpoint,
// whatever becomes of the endpoint. Driven through the compiler, the core and the reference model
// side by side (core = model, frame for frame).
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import { Core } from '../dist/src/core/host.js';
import { ReferenceModel } from '../dist/src/reference/model.js';
import { runBoth, firstMismatch, MAC } from './lib/packets.js';

const OPTS = { flows: 1024, batchMax: 16 };
const hop = { port: 1, nextHopMac: '02:00:00:00:00:11', localMac: '02:00:00:00:00:01' };
const node = {
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: {
    nodeAddresses: ['192.168.0.1', 'fd00:ff::1'], serviceCIDRs: ['10.96.0.0/16', 'fd00:96::/112'],
    routes: [{ prefix: '10.244.0.0/16', ...hop }, { prefix: 'fd00:244::/64', ...hop }, { prefix: '172.20.0.0/16', ...hop }, { prefix: '2001:db8:1::/64', ...hop }],
  },
};
const svc = (spec = {}) => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name: 'dns', namespace: 'x' },
  spec: {
    type: 'NodePort', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:96::10'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'PreferDualStack',
    externalIPs: ['192.0.2.10', '2001:db8::10'], ports: [{ port: 53, protocol: 'UDP', targetPort: 5353, nodePort: 30053 }], ...spec,
  },
});
const slice = (fam, addrs) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: fam, ports: [{ port: 5353, protocol: 'UDP' }],
  endpoints: addrs.map((a) => ({ addresses: [a], nodeName: 'node-a' })),
  metadata: { name: `dns-${fam.toLowerCase()}`, namespace: 'x', labels: { 'kubernetes.io/service-name': 'dns' } },
});
const OLD = ['10.244.1.5', 'fd00:244::5'], NEW = ['10.244.1.6', 'fd00:244::6'];
const pods = (p) => [slice('IPv4', [p[0]]), slice('IPv6', [p[1]])];

function setup() {
  const c = new Compiler();
  c.change({ upsert: validateAll([node, svc(), ...pods(OLD)]) });
  const core = Core.create(OPTS);
  core.applyIr(c.ir);
  const model = new ReferenceModel(c.ir, OPTS);
  let now = 1_000_000;
  const apply = (batch) => { const ch = c.change(batch); core.applyDiff(ch.diff, c.ir); model.setIr(c.ir); };
  const send = (t, frames) => {
    now += 100;
    const pairs = runBoth(core, model, frames, now, 1, { trace: true });
    t.is(firstMismatch(pairs), undefined, 'core = model');
    return pairs.map((p) => ({ reason: p.core.reason, p: p.core.hex ? parseFrame(B.fromHex(p.core.hex)) : undefined }));
  };
  return { core, model, apply, send, active: () => core.counters().global.ct_active };
}

const ask = (src, dst, sport, dport = 53) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, proto: 'UDP', src, dst, sport, dport });
const answer = (from, to, dport) => B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, proto: 'UDP', src: from, dst: to, sport: 5353, dport });
// the four addresses of the port: external IPs of each family, the IPv6 ClusterIP, the NodePort
const FLOWS = () => [
  ask('172.20.0.1', '192.0.2.10', 1000), ask('2001:db8:1::1', '2001:db8::10', 1001),
  ask('2001:db8:1::1', 'fd00:96::10', 1002), ask('172.20.0.1', '192.168.0.1', 1003, 30053),
];

test('an external IP removed from a live port: its UDP flows keep their endpoint, also once it is replaced; its old pod\'s answers still translate', (t) => {
  const s = setup();
  t.deepEqual(s.send(t, FLOWS()).map((r) => r.p.dst), [OLD[0], OLD[1], OLD[1], OLD[0]]);
  s.apply({ upsert: validateAll([svc({ externalIPs: [] })]) });
  t.deepEqual(s.send(t, FLOWS()).map((r) => r.p.dst), [OLD[0], OLD[1], OLD[1], OLD[0]], 'kept while the endpoint serves');
  s.apply({ upsert: validateAll(pods(NEW)) });
  const r = s.send(t, FLOWS());
  t.deepEqual(r.map((x) => x.reason), ['fwd_nat', 'fwd_nat', 'fwd_nat', 'fwd_nat']);
  t.deepEqual(r.map((x) => x.p.dst), [OLD[0], OLD[1], NEW[1], NEW[0]], 'the removed addresses keep the old pods; the port\'s own addresses move to the new ones');
  // (masqueraded: externalTrafficPolicy Cluster) the old pod answers the address and port it saw
  const back = s.send(t, [B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, proto: 'UDP', src: OLD[0], dst: r[0].p.src, sport: 5353, dport: r[0].p.sport })]);
  t.is(back[0].reason, 'fwd_reply');
  t.is(back[0].p.src, '192.0.2.10', 'the old pod\'s answer still comes from the removed address');
  t.is(back[0].p.dst, '172.20.0.1');
  // a new client of the removed address: no service there any more
  t.not(s.send(t, [ask('172.20.0.2', '192.0.2.10', 2000)])[0].reason, 'fwd_nat');
});

test('a port that is no NodePort any more keeps its node port flows, also once the endpoint is replaced', (t) => {
  const s = setup();
  s.send(t, FLOWS());
  s.apply({ upsert: validateAll([svc({ type: 'ClusterIP', ports: [{ port: 53, protocol: 'UDP', targetPort: 5353 }] })]) });
  s.apply({ upsert: validateAll(pods(NEW)) });
  const r = s.send(t, FLOWS());
  t.is(r[3].reason, 'fwd_nat');
  t.is(r[3].p.dst, OLD[0], 'the node port flow keeps its old pod');
  t.is(r[2].p.dst, NEW[1], 'the ClusterIP flow moved (cleaned by the ClusterIP)');
});

test('a cluster IP family removed: that family\'s UDP flows are freed at the apply, as its proxier deletes the Service', (t) => {
  const s = setup();
  s.send(t, FLOWS());
  t.is(s.active(), 4);
  s.apply({ upsert: validateAll([svc({ clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' })]) });
  t.is(s.active(), 2, 'the two IPv6 flows are gone');
  const r = s.send(t, FLOWS());
  t.is(r[0].p.dst, OLD[0]);
  t.is(r[1].reason, 'host_no_match', 'the IPv6 external IP is no service\'s: the no-service path (no route to it here: the host)');
  t.is(r[2].reason, 'drop_no_service_ip', 'the IPv6 ClusterIP is unallocated');
  t.is(r[3].p.dst, OLD[0]);
  // the old IPv6 pod's answer is no reply of the Service
  t.is(s.send(t, [answer(OLD[1], '2001:db8:1::1', 1002)])[0].p.src, OLD[1]);
});

test('a deleted Service: every UDP flow of it is freed at the apply', (t) => {
  const s = setup();
  s.send(t, FLOWS());
  s.apply({ remove: [{ kind: 'Service', namespace: 'x', name: 'dns' }] });
  t.is(s.active(), 0);
  const r = s.send(t, FLOWS());
  t.deepEqual(r.map((x) => x.reason), ['host_no_match', 'host_no_match', 'drop_no_service_ip', 'host_no_match']);
});

// A restart: a flow whose Service was deleted while the daemon was down is never cleaned by
// kube-proxy either (its first sync knows no such Service). The catch-up over a table image
// gives such a flow frontend 0, as the import of saved flows does: a UDP one is an orphan, kept on
// its pod while a route reaches it.
test('a UDP flow whose Service was deleted while the daemon was down: frontend 0 after the table image\'s catch-up, kept on its pod', async (t) => {
  const { LocalDataplane } = await import('../dist/src/core/dataplane.js');
  const { ControlPlaneCore } = await import('../dist/src/api/controlplane.js');
  const { exportFlows, importFlows } = await import('../dist/src/core/flow-export.js');
  const { captureImage, decodeImage, ImageResume } = await import('../dist/src/core/table-image.js');
  const { nodeConfigObject, serviceObject, sliceObject } = await import('../dist/src/bench/control.js');
  const PORTS = [{ index: 0, name: 'uplink', mac: '02:00:00:00:00:aa' }, { index: 1, name: 'pods', mac: '02:77:64:70:00:01' }];
  const WHO = { worker: 0, workers: 1, revision: 'r:1', inputsHash: 'h1', announced: [] };
  const mk = (name, vip) => ({ namespace: 'x', name, clusterIP: vip, portName: 'dns', proto: 'UDP', port: 53, targetPort: 5353, endpoints: [{ addr: `10.128.0.${vip.split('.')[3]}`, port: 5353 }] });
  const keep = mk('keep', '10.96.0.11'), gone = mk('gone', '10.96.0.12');
  const q = (s) => B.frame({ src: '192.168.200.7', dst: s.clusterIP, proto: 'UDP', sport: 4000, dport: 53 });
  const a = new LocalDataplane({ flows: 256 });
  await new ControlPlaneCore(a, null).apply([nodeConfigObject(), ...[keep, gone].flatMap((s) => [serviceObject(s), sliceObject(s)])]);
  t.deepEqual(a.core.run([q(keep), q(gone)], 1000, 0).map((r) => r.reason), ['fwd_nat', 'fwd_nat']);
  const image = captureImage(a.core, WHO), saved = exportFlows(a.core, PORTS, 1000);
  const b = new LocalDataplane({ flows: 256 });
  const { meta, payload } = decodeImage(image);
  const resume = new ImageResume(b.core, meta, payload);
  importFlows(b.core, saved, PORTS, 500, 50, resume.ids());
  // the catch-up: the saved state without the Service deleted meanwhile
  await new ControlPlaneCore(b, null).apply([nodeConfigObject(), serviceObject(keep), sliceObject(keep)]);
  t.is(resume.afterApply().unmatched, 1);
  const flow = b.core.flows({}, 1100).find((f) => f.vip === gone.clusterIP);
  t.is(flow.frontendId, 0, 'no frontend names it');
  const [r] = b.core.run([q(gone)], 1100, 0);
  t.is(r.reason, 'fwd_nat', 'kept on its pod, as the kernel keeps an entry kube-proxy never looks at');
  t.is(parseFrame(r.frame).dst, gone.endpoints[0].addr);
});
