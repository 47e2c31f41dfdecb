// Kubernetes service rules of issue 14 in the core and the reference model (frame for frame, byte
// for byte) and in the compiler/model that feed them: sessionAffinity re-picks after expiry, drop
// (traffic policy) versus reject (no endpoints), services another proxy serves, IPv4 with leading
// zeros. The same rules with real clients through the daemon: test/e2e-semantics-*.test.js.
import test from 'ava';
import { Core } from '../dist/src/core/host.js';
import { ReferenceModel } from '../dist/src/reference/model.js';
import * as B from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import { backend, frontend, mkIr, runBoth, firstMismatch, MAC, L } from './lib/packets.js';

const T0 = 1_000_000;
const cli = (s) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, ...s });

function both(ir, opts = {}) {
  const core = Core.create({ flows: 4096, batchMax: 64, affinitySlots: 1024, ...opts });
  core.applyIr(ir);
  const model = new ReferenceModel(ir, { flows: 4096, affinitySlots: 1024, ...opts });
  return { core, model };
}

test('sessionAffinity: sticks while the entry lives; over several expiries the client reaches more than one backend', (t) => {
  const bes = [1, 2, 3].map((i) => backend({ id: i, addr: `10.1.0.${i}`, port: 8080, outPort: 10 + i }));
  const fe = frontend({ id: 1, addr: '10.96.0.10', port: 80, flags: L.FEF_AFFINITY, affinityTimeoutMs: 1000 }, bes);
  const { core, model } = both(mkIr({ frontends: [fe], backends: bes }));
  const picked = new Set();
  let sport = 20000;
  for (let epoch = 0; epoch < 12; epoch++) {
    const start = T0 + epoch * 5000; // 5 s apart: the 1 s entry has expired each time
    const seen = new Set();
    for (let k = 0; k < 4; k++) {
      // new connections (new source ports) within the timeout: all to the epoch's backend
      const pairs = runBoth(core, model, [cli({ proto: 'TCP', src: '10.0.0.5', dst: '10.96.0.10', sport: sport++, dport: 80, flags: 'S' })], start + k * 200, 3, { trace: true });
      t.is(firstMismatch(pairs), undefined);
      t.is(pairs[0].core.reason, 'fwd_nat');
      seen.add(parseFrame(B.fromHex(pairs[0].core.hex)).dst);
    }
    t.is(seen.size, 1, `epoch ${epoch}: one backend while the entry lives`);
    picked.add([...seen][0]);
  }
  t.true(picked.size > 1, `after expiries the client was re-picked (got ${[...picked]})`);
  t.is(core.counters().global.aff_new, 12);
  t.is(core.counters().global.aff_hit, 36);
});

test('no usable endpoint: reject only without endpoints; a traffic policy that leaves none drops with its own reason', (t) => {
  const none = frontend({ id: 1, addr: '10.96.0.1', port: 80 }, []);
  const itp = frontend({ id: 2, addr: '10.96.0.2', port: 80, flags: L.FEF_POLICY_DROP }, []);
  const etp = frontend({ id: 3, addr: '192.168.0.1', port: 30080, kind: 'NodePort', flags: L.FEF_POLICY_DROP | L.FEF_EXTERNAL }, []);
  const { core, model } = both(mkIr({ frontends: [none, itp, etp] }));
  const frames = [];
  for (const [dst, dport] of [['10.96.0.1', 80], ['10.96.0.2', 80], ['192.168.0.1', 30080]]) {
    frames.push(cli({ proto: 'TCP', src: '10.0.0.5', dst, sport: 4000, dport, flags: 'S' }));
    frames.push(cli({ proto: 'UDP', src: '10.0.0.5', dst, sport: 4000, dport }));
  }
  // (UDP to the TCP-only frontends is no service: routed or to host, the same in both)
  const pairs = runBoth(core, model, frames, T0, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined);
  t.deepEqual(pairs.filter((_, i) => i % 2 === 0).map((p) => `${p.core.verdict}/${p.core.reason}`),
    ['reject/reject_no_endpoints', 'drop/drop_itp_no_local', 'drop/drop_etp_no_local']);
  const r = core.counters().reasons;
  t.is(r.drop_itp_no_local, 1);
  t.is(r.drop_etp_no_local, 1);
  t.is(r.reject_no_endpoints, 1);
});

test('service CIDRs: an address no service owns is dropped (drop_no_service_ip), not routed; services inside are served', (t) => {
  const bes = [backend({ id: 1, addr: '10.1.0.1', port: 8080, outPort: 11 })];
  const fe = frontend({ id: 1, addr: '10.96.0.10', port: 80 }, bes);
  const routes = [
    { prefix: '0.0.0.0/0', outPort: 5, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
    { prefix: '10.96.0.0/16', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', serviceCidr: true },
    { prefix: 'fd00:96::/112', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', serviceCidr: true },
  ];
  const { core, model } = both(mkIr({ frontends: [fe], backends: bes, routes }));
  const frames = [
    cli({ proto: 'TCP', src: '10.0.0.5', dst: '10.96.0.10', sport: 4000, dport: 80, flags: 'S' }),  // the service
    cli({ proto: 'TCP', src: '10.0.0.5', dst: '10.96.3.3', sport: 4000, dport: 80, flags: 'S' }),   // unallocated
    cli({ proto: 'UDP', src: '10.0.0.5', dst: '10.96.3.3', sport: 4000, dport: 53 }),
    cli({ proto: 'ICMP', src: '10.0.0.5', dst: '10.96.3.3', icmpType: 8 }),
    cli({ proto: 'UDP', src: 'fd00::5', dst: 'fd00:96::7', sport: 4000, dport: 53 }),
    cli({ proto: 'TCP', src: '10.0.0.5', dst: '10.97.0.1', sport: 4000, dport: 80, flags: 'S' }),   // outside: routed
  ];
  const pairs = runBoth(core, model, frames, T0, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined);
  t.deepEqual(pairs.map((p) => p.core.reason), ['fwd_nat', 'drop_no_service_ip', 'drop_no_service_ip', 'drop_no_service_ip', 'drop_no_service_ip', 'fwd_routed']);
  t.is(core.counters().reasons.drop_no_service_ip, 4);
});

test('a ClusterIP on a port or protocol its Service does not define is rejected (reject_invalid_port); other frontend kinds are not', (t) => {
  const bes = [backend({ id: 1, addr: '10.1.0.1', port: 8080, outPort: 11 }), backend({ id: 2, addr: 'fd00:1::1', port: 8080, outPort: 11 })];
  const fronts = [
    frontend({ id: 1, addr: '10.96.0.10', port: 80 }, [bes[0]]),
    frontend({ id: 2, addr: 'fd00:96::10', port: 80 }, [bes[1]]),
    frontend({ id: 3, addr: '198.51.100.7', port: 80, kind: 'ExternalIP', flags: L.FEF_EXTERNAL }, [bes[0]]),
  ];
  const routes = [{ prefix: '0.0.0.0/0', outPort: 5, dstMac: MAC.rtDst, srcMac: MAC.rtSrc }];
  const { core, model } = both(mkIr({ frontends: fronts, backends: bes, routes }));
  const frames = [
    cli({ proto: 'TCP', src: '10.0.0.5', dst: '10.96.0.10', sport: 4000, dport: 80, flags: 'S' }),   // the service port
    cli({ proto: 'TCP', src: '10.0.0.5', dst: '10.96.0.10', sport: 4000, dport: 81, flags: 'S' }),   // another port
    cli({ proto: 'UDP', src: '10.0.0.5', dst: '10.96.0.10', sport: 4000, dport: 80 }),               // another protocol
    cli({ proto: 'SCTP', src: '10.0.0.5', dst: '10.96.0.10', sport: 4000, dport: 80 }),
    cli({ proto: 'TCP', src: '10.0.0.5', dst: '10.96.0.10', sport: 4000, dport: 81, flags: 'R' }),   // a RST is never answered
    cli({ proto: 'UDP', src: 'fd00::5', dst: 'fd00:96::10', sport: 4000, dport: 53 }),
    cli({ proto: 'TCP', src: '10.0.0.5', dst: '198.51.100.7', sport: 4000, dport: 81, flags: 'S' }), // external IP: routed
  ];
  const pairs = runBoth(core, model, frames, T0, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined);
  t.deepEqual(pairs.map((p) => `${p.core.verdict}/${p.core.reason}`), [
    'forward/fwd_nat', 'reject/reject_invalid_port', 'reject/reject_invalid_port', 'reject/reject_invalid_port',
    'drop/drop_rst_no_endpoints', 'reject/reject_invalid_port', 'forward/fwd_routed',
  ]);
  // the nftables proxier's bare reject: an ICMP port unreachable for TCP too, quoting the SYN
  const err = parseFrame(B.fromHex(pairs[1].core.hex));
  t.like(err, { src: '10.96.0.10', dst: '10.0.0.5', proto: 1, icmpType: 3, icmpCode: 3, inner: { proto: 6, sport: 4000, dport: 81 } });
  t.is(core.counters().reasons.reject_invalid_port, 4);
  // the service goes: its address is no ClusterIP any more (routed)
  core.applyIr(mkIr({ frontends: fronts.slice(1), backends: bes, routes }));
  model.setIr(mkIr({ frontends: fronts.slice(1), backends: bes, routes }));
  const after = runBoth(core, model, [frames[1]], T0 + 1, 3);
  t.is(firstMismatch(after), undefined);
  t.is(after[0].core.reason, 'fwd_routed');
});

// ---- the compiler's side ---------------------------------------------------------------------------
const node = (extra = {}) => ({
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: { nodeAddresses: ['192.168.0.1'], routes: [{ prefix: '10.244.0.0/16', port: 1, nextHopMac: '02:00:00:00:00:11', localMac: '02:00:00:00:00:01' }], ...extra },
});
const svc = (spec, meta = {}) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop', ...meta }, spec });
const slice = (endpoints) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', endpoints, ports: [{ port: 8080 }],
  metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
});
const ep = (addr, nodeName, conditions) => ({ addresses: [addr], nodeName, ...(conditions ? { conditions } : {}) });
const fronts = (c) => [...c.ir.frontends.values()];

test('compiler: Local traffic policies with endpoints only elsewhere set FEF_POLICY_DROP; no endpoints at all leaves reject', (t) => {
  const spec = { type: 'NodePort', clusterIP: '10.96.0.1', internalTrafficPolicy: 'Local', externalTrafficPolicy: 'Local', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] };
  const c = new Compiler();
  c.change({ upsert: validateAll([node(), svc(spec), slice([ep('10.244.2.5', 'node-b')])]) });
  // (the ClusterPolicy frontend is the cluster-wide set in-cluster sources of the NodePort get)
  const policy = () => fronts(c).filter((f) => f.kind !== 'ClusterPolicy');
  t.is(fronts(c).find((f) => f.kind === 'ClusterPolicy').backends.length, 1);
  for (const f of policy()) {
    t.is(f.backends.length, 0, f.kind);
    t.truthy(f.flags & L.FEF_POLICY_DROP, `${f.kind}: endpoints elsewhere -> drop`);
  }
  // a not-serving endpoint is no endpoint (kube-proxy's hasEndpoints counts ready or serving ones)
  c.change({ upsert: validateAll([slice([ep('10.244.2.5', 'node-b', { ready: false, serving: false })])]) });
  for (const f of fronts(c)) t.is(f.flags & L.FEF_POLICY_DROP, 0, `${f.kind}: no endpoints -> reject`);
  // a local endpoint: normal frontend
  c.change({ upsert: validateAll([slice([ep('10.244.2.5', 'node-b'), ep('10.244.1.5', 'node-a')])]) });
  for (const f of policy()) { t.is(f.flags & L.FEF_POLICY_DROP, 0); t.is(f.backends.length, 1); }
});

test('compiler: a service labelled for another proxy or headless is not programmed; (un)labelling programs/removes it', (t) => {
  const spec = { clusterIP: '10.96.0.1', ports: [{ port: 80, targetPort: 8080 }] };
  const c = new Compiler();
  c.change({ upsert: validateAll([node(), svc(spec, { labels: { 'service.kubernetes.io/service-proxy-name': 'other' } }), slice([ep('10.244.1.5', 'node-a')])]) });
  t.is(fronts(c).length, 0, 'another proxy\'s service');
  const d1 = c.change({ upsert: validateAll([svc(spec)]) });
  t.is(fronts(c).length, 1, 'label removed: programmed');
  t.is(d1.diff.frontendsUpsert.length, 1);
  c.change({ upsert: validateAll([svc(spec, { labels: { 'service.kubernetes.io/headless': '' } })]) });
  t.is(fronts(c).length, 0, 'headless label: removed');
  // the node config names this proxy: services labelled with that name are served
  c.change({ upsert: validateAll([node({ serviceProxyName: 'wdp' }), svc(spec, { labels: { 'service.kubernetes.io/service-proxy-name': 'wdp' } })]) });
  t.is(fronts(c).length, 1, 'labelled with our name');
  c.change({ upsert: validateAll([svc(spec, { labels: { 'service.kubernetes.io/service-proxy-name': 'other' } })]) });
  t.is(fronts(c).length, 0);
});

test('compiler: NodeConfig serviceCIDRs become service-CIDR routes after the node routes (a node route of the same prefix wins)', (t) => {
  const c = new Compiler();
  c.change({ upsert: validateAll([node({ serviceCIDRs: ['10.96.0.0/12', 'fd00:96::/112', '10.244.0.0/16'] })]) });
  const rs = c.ir.routes.filter((r) => !r.localSource).map((r) => `${r.prefix}${r.serviceCidr ? ' svc' : ''}`);
  t.deepEqual(rs, ['fd00:96::/112 svc', '10.244.0.0/16', '10.96.0.0/12 svc']);
  c.change({ upsert: validateAll([node()]) });
  t.deepEqual(c.ir.routes.filter((r) => !r.localSource).map((r) => r.prefix), ['10.244.0.0/16']);
});

test('model: IPv4 with leading zeros is decimal wherever the API server accepts it (ParseIPSloppy), never octal', (t) => {
  const objs = validateAll([
    node({ nodeAddresses: ['192.168.000.001'] }),
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: {
      type: 'LoadBalancer', clusterIP: '10.96.250.011', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }],
      externalIPs: ['198.51.100.010'], loadBalancerSourceRanges: ['010.0.0.0/8'] },
    status: { loadBalancer: { ingress: [{ ip: '203.0.113.08' }] } } },
    slice([ep('10.244.001.010', 'node-a')]),
  ]);
  const s = objs[1];
  t.deepEqual(s.clusterIPs, ['10.96.250.11']);
  t.deepEqual(s.externalIPs, ['198.51.100.10']);
  t.deepEqual(s.lbIngress, ['203.0.113.8']);
  t.deepEqual(s.sourceRanges, ['10.0.0.0/8']);
  t.deepEqual(objs[2].endpoints[0].addresses, ['10.244.1.10']);
  const c = new Compiler();
  c.change({ upsert: objs });
  t.deepEqual(fronts(c).map((f) => f.addr).sort(), ['10.96.250.11', '192.168.0.1', '198.51.100.10', '203.0.113.8']);
  t.deepEqual([...c.ir.backends.values()].map((b) => b.addr), ['10.244.1.10']);
  // still refused: parts above 255, five parts, empty parts
  for (const bad of ['10.96.250.256', '10.96.0.0.1', '10..0.1', '0x0a.0.0.1']) {
    t.throws(() => validateAll([svc({ clusterIP: bad, ports: [{ port: 80 }] })]), undefined, bad);
  }
});

// ---- externalTrafficPolicy Local for in-cluster sources (kube-proxy's local-traffic detector) -------
const LOCAL_ROUTES = [
  { prefix: '0.0.0.0/0', outPort: 5, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
  { prefix: '10.244.0.0/16', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', localSource: 'pod' },
  { prefix: '192.168.0.1/32', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', localSource: 'node' },
];

test('externalTrafficPolicy Local: pods and the node itself reach every endpoint (the node masqueraded); outside clients only local ones, or a drop', (t) => {
  const local = backend({ id: 1, addr: '10.244.1.5', port: 8080, outPort: 11 });
  const remote = backend({ id: 2, addr: '10.244.2.5', port: 8080, outPort: 12 });
  const remote2 = backend({ id: 3, addr: '10.244.3.5', port: 8080, outPort: 12 });
  const fronts = [
    frontend({ id: 1, addr: '10.96.0.1', port: 80 }, [local, remote]),                        // ClusterIP (policy Cluster)
    frontend({ id: 2, addr: '192.168.0.1', port: 30080, kind: 'NodePort', flags: L.FEF_EXTERNAL, clusterFront: 1 }, [local]),
    frontend({ id: 3, addr: '10.96.0.2', port: 80 }, [remote2]),                               // a service with no local endpoint
    frontend({ id: 4, addr: '198.51.100.7', port: 80, kind: 'LoadBalancer', flags: L.FEF_EXTERNAL | L.FEF_POLICY_DROP | L.FEF_NODE_SOURCE_DROP, clusterFront: 3 }, []),
    frontend({ id: 5, addr: '192.168.0.1', port: 30081, kind: 'NodePort', flags: L.FEF_EXTERNAL | L.FEF_POLICY_DROP, clusterFront: 3 }, []),
  ];
  const { core, model } = both(mkIr({ frontends: fronts, backends: [local, remote, remote2], routes: LOCAL_ROUTES, snatV4: '192.168.0.1' }));
  const outside = '203.0.113.9', pod = '10.244.1.7', nodeIp = '192.168.0.1';
  const frames = [];
  for (let i = 0; i < 24; i++) {
    frames.push(cli({ proto: 'TCP', src: outside, dst: '192.168.0.1', sport: 10000 + i, dport: 30080, flags: 'S' }));
    frames.push(cli({ proto: 'TCP', src: pod, dst: '192.168.0.1', sport: 10000 + i, dport: 30080, flags: 'S' }));
    frames.push(cli({ proto: 'TCP', src: nodeIp, dst: '192.168.0.1', sport: 10000 + i, dport: 30080, flags: 'S' }));
  }
  frames.push(cli({ proto: 'TCP', src: outside, dst: '198.51.100.7', sport: 5000, dport: 80, flags: 'S' }));
  frames.push(cli({ proto: 'TCP', src: '198.18.0.1', dst: '198.51.100.7', sport: 5000, dport: 80, flags: 'S' }));
  frames.push(cli({ proto: 'TCP', src: pod, dst: '198.51.100.7', sport: 5000, dport: 80, flags: 'S' }));
  frames.push(cli({ proto: 'TCP', src: nodeIp, dst: '198.51.100.7', sport: 5000, dport: 80, flags: 'S' }));
  frames.push(cli({ proto: 'TCP', src: outside, dst: '192.168.0.1', sport: 5000, dport: 30081, flags: 'S' }));
  frames.push(cli({ proto: 'TCP', src: pod, dst: '192.168.0.1', sport: 5002, dport: 30081, flags: 'S' }));
  frames.push(cli({ proto: 'TCP', src: nodeIp, dst: '192.168.0.1', sport: 5001, dport: 30081, flags: 'S' }));
  const pairs = runBoth(core, model, frames, T0, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined);
  const out = (p) => parseFrame(B.fromHex(p.core.hex));
  const byKind = { outside: new Set(), pod: new Set(), node: new Set() };
  for (let i = 0; i < 72; i++) {
    const p = pairs[i], kind = ['outside', 'pod', 'node'][i % 3], o = out(p);
    t.is(p.core.reason, 'fwd_nat', `${kind} ${i}`);
    byKind[kind].add(o.dst);
    // the outside client and the pod keep their address (not masqueraded); the node is masqueraded
    t.is(o.src, kind === 'node' ? '192.168.0.1' : kind === 'outside' ? outside : pod);
    if (kind === 'outside') { t.is(p.core.trace.front, 2); t.falsy(p.core.trace.stages & L.TS_LOCAL_SOURCE); }
    else { t.is(p.core.trace.front, 1, 'short-circuited to the ClusterIP frontend'); t.truthy(p.core.trace.stages & L.TS_LOCAL_SOURCE); }
  }
  t.deepEqual([...byKind.outside], ['10.244.1.5'], 'outside: the local endpoint only');
  t.deepEqual([...byKind.pod].sort(), ['10.244.1.5', '10.244.2.5'], 'pod: every endpoint');
  t.deepEqual([...byKind.node].sort(), ['10.244.1.5', '10.244.2.5'], 'node: every endpoint');
  // no local endpoint: outside traffic drops (drop_etp_no_local), pods reach the remote one; the
  // node itself is dropped on the LB IP (the nftables proxier's pre-DNAT output filter) but
  // short-circuited (masqueraded) on the NodePort
  t.deepEqual(pairs.slice(72).map((p) => p.core.reason), ['drop_etp_no_local', 'drop_etp_no_local', 'fwd_nat', 'drop_etp_no_local', 'drop_etp_no_local', 'fwd_nat', 'fwd_nat']);
  t.like(out(pairs[74]), { src: pod, dst: '10.244.3.5' });
  t.like(out(pairs[77]), { src: pod, dst: '10.244.3.5' });
  t.like(out(pairs[78]), { src: '192.168.0.1', dst: '10.244.3.5', dport: 8080 });
  t.is(core.counters().reasons.drop_etp_no_local, 4);
  // the replies go back through the flows: to the pod unchanged, to the node un-masqueraded
  const replies = [pairs[74], pairs[78]].map((p) => { const o = out(p); return B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, proto: 'TCP', src: o.dst, dst: o.src, sport: o.dport, dport: o.sport, flags: 'SA' }); });
  const back = runBoth(core, model, replies, T0 + 1, 12, { trace: true });
  t.is(firstMismatch(back), undefined);
  t.deepEqual(back.map((p) => p.core.reason), ['fwd_reply', 'fwd_reply']);
  t.like(out(back[0]), { src: '198.51.100.7', dst: pod, sport: 80, dport: 5000 });
  t.like(out(back[1]), { src: '192.168.0.1', dst: nodeIp, sport: 30081, dport: 5001 });
});

test('externalTrafficPolicy Local: without local-source entries (no detector) every source gets the local set; pod entries win over node ones', (t) => {
  const local = backend({ id: 1, addr: '10.244.1.5', port: 8080, outPort: 11 });
  const remote = backend({ id: 2, addr: '10.244.2.5', port: 8080, outPort: 12 });
  const fronts = [
    frontend({ id: 1, addr: '10.96.0.1', port: 80 }, [remote]),
    frontend({ id: 2, addr: '198.51.100.7', port: 80, kind: 'LoadBalancer', flags: L.FEF_EXTERNAL, clusterFront: 1 }, [local]),
  ];
  const noDetector = mkIr({ frontends: fronts, backends: [local, remote], routes: LOCAL_ROUTES.slice(0, 1), snatV4: '192.168.0.1' });
  const { core, model } = both(noDetector);
  const f = cli({ proto: 'TCP', src: '10.244.1.7', dst: '198.51.100.7', sport: 5000, dport: 80, flags: 'S' });
  let pairs = runBoth(core, model, [f], T0, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined);
  t.like(parseFrame(B.fromHex(pairs[0].core.hex)), { src: '10.244.1.7', dst: '10.244.1.5' });
  // a pod CIDR that also holds a node address: the pod rule first (not masqueraded), as kube-proxy's chain order
  const both2 = [LOCAL_ROUTES[0], { ...LOCAL_ROUTES[2], prefix: '10.244.1.7/32' }, { ...LOCAL_ROUTES[1] }];
  const ir = mkIr({ frontends: fronts, backends: [local, remote], routes: both2, snatV4: '192.168.0.1' });
  core.applyIr(ir); model.setIr(ir);
  pairs = runBoth(core, model, [cli({ proto: 'TCP', src: '10.244.1.7', dst: '198.51.100.7', sport: 5001, dport: 80, flags: 'S' })], T0 + 1, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined);
  t.like(parseFrame(B.fromHex(pairs[0].core.hex)), { src: '10.244.1.7', dst: '10.244.2.5' });
});

test('ICMP echo to an allocated ClusterIP is rejected (port unreachable, reject_cluster_ip_proto); other ICMP and unallocated addresses are not', (t) => {
  const bes = [backend({ id: 1, addr: '10.1.0.1', port: 8080, outPort: 11 }), backend({ id: 2, addr: 'fd00:1::1', port: 8080, outPort: 11 })];
  const fronts = [
    frontend({ id: 1, addr: '10.96.0.10', port: 80 }, [bes[0]]),
    frontend({ id: 2, addr: 'fd00:96::10', port: 80 }, [bes[1]]),
    frontend({ id: 3, addr: '198.51.100.7', port: 80, kind: 'ExternalIP', flags: L.FEF_EXTERNAL }, [bes[0]]),
  ];
  const routes = [
    { prefix: '0.0.0.0/0', outPort: 5, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
    { prefix: '10.96.0.0/16', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', serviceCidr: true },
  ];
  const { core, model } = both(mkIr({ frontends: fronts, backends: bes, routes }));
  const frames = [
    cli({ proto: 'ICMP', src: '10.0.0.5', dst: '10.96.0.10', icmpType: 8 }),     // echo request: rejected
    cli({ proto: 'ICMP', src: '10.0.0.5', dst: '10.96.0.10', icmpType: 13 }),    // timestamp request: rejected
    cli({ proto: 'ICMP', src: '10.0.0.5', dst: '10.96.0.10', icmpType: 0 }),     // echo reply: not new to conntrack -> service CIDR drop
    cli({ proto: 'ICMP', src: 'fd00::5', dst: 'fd00:96::10', icmpType: 128 }), // ICMPv6 echo request: rejected
    cli({ proto: 'ICMP', src: '10.0.0.5', dst: '10.96.3.3', icmpType: 8 }),      // unallocated: dropped
    cli({ proto: 'ICMP', src: '10.0.0.5', dst: '198.51.100.7', icmpType: 8 }),   // an external IP: not a ClusterIP, routed
  ];
  const pairs = runBoth(core, model, frames, T0, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined);
  t.deepEqual(pairs.map((p) => `${p.core.verdict}/${p.core.reason}`), [
    'reject/reject_cluster_ip_proto', 'reject/reject_cluster_ip_proto', 'drop/drop_no_service_ip',
    'reject/reject_cluster_ip_proto', 'drop/drop_no_service_ip', 'forward/fwd_routed',
  ]);
  const un = parseFrame(B.fromHex(pairs[0].core.hex));
  t.like(un, { src: '10.96.0.10', dst: '10.0.0.5', proto: 1, icmpType: 3, icmpCode: 3 });
  t.is(core.counters().reasons.reject_cluster_ip_proto, 3);
});

test('compiler: externalTrafficPolicy Local frontends name their port\'s ClusterIP, or with internalTrafficPolicy Local a ClusterPolicy frontend; the detector entries follow detectLocalMode', (t) => {
  const spec = { type: 'LoadBalancer', clusterIP: '10.96.0.1', externalTrafficPolicy: 'Local', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] };
  const lb = { loadBalancer: { ingress: [{ ip: '198.51.100.7' }] } };
  const c = new Compiler();
  c.change({ upsert: validateAll([node({ clusterCIDRs: ['10.244.0.0/16'], podCIDRs: ['10.244.1.0/24'] }), { ...svc(spec), status: lb }, slice([ep('10.244.2.5', 'node-b'), ep('10.244.1.5', 'node-a')])]) });
  const byKind = Object.fromEntries(fronts(c).map((f) => [f.kind, f]));
  t.is(byKind.NodePort.clusterFront, byKind.ClusterIP.id);
  t.is(byKind.LoadBalancer.clusterFront, byKind.ClusterIP.id);
  t.is(byKind.ClusterIP.clusterFront, undefined);
  t.is(byKind.ClusterIP.backends.length, 2);
  t.is(byKind.LoadBalancer.backends.length, 1);
  const local = () => c.ir.routes.filter((r) => r.localSource).map((r) => `${r.localSource} ${r.prefix}`);
  t.deepEqual(local(), ['pod 10.244.0.0/16', 'node 192.168.0.1/32']);
  c.change({ upsert: validateAll([node({ clusterCIDRs: ['10.244.0.0/16'], podCIDRs: ['10.244.1.0/24'], detectLocalMode: 'NodeCIDR' })]) });
  t.deepEqual(local(), ['pod 10.244.1.0/24', 'node 192.168.0.1/32']);
  // both policies Local: the ClusterIP holds local endpoints only; a ClusterPolicy frontend (no
  // service-map key) holds the cluster-wide set the external addresses name
  c.change({ upsert: validateAll([{ ...svc({ ...spec, internalTrafficPolicy: 'Local' }), status: lb }]) });
  const k1 = Object.fromEntries(fronts(c).map((f) => [f.kind, f]));
  t.deepEqual(fronts(c).map((f) => f.kind).sort(), ['ClusterIP', 'ClusterPolicy', 'LoadBalancer', 'NodePort']);
  t.is(k1.ClusterIP.backends.length, 1);
  t.is(k1.ClusterPolicy.backends.length, 2);
  t.is(k1.ClusterPolicy.addr, '10.96.0.1');
  t.is(k1.NodePort.clusterFront, k1.ClusterPolicy.id);
  t.is(k1.LoadBalancer.clusterFront, k1.ClusterPolicy.id);
  t.is(k1.ClusterIP.clusterFront, undefined);
  // through the core: a pod reaches the ClusterPolicy's remote endpoint, the ClusterIP stays local,
  // a packet to the ClusterIP never lands on the ClusterPolicy frontend
  {
    const ir = c.ir, core = Core.create({ flows: 256, batchMax: 64 });
    core.applyIr(ir);
    const model = new ReferenceModel(ir, { flows: 256 });
    const frames = [];
    for (let i = 0; i < 16; i++) {
      frames.push(cli({ proto: 'TCP', src: '10.244.1.7', dst: '198.51.100.7', sport: 7000 + i, dport: 80, flags: 'S' }));
      frames.push(cli({ proto: 'TCP', src: '10.244.1.7', dst: '10.96.0.1', sport: 8000 + i, dport: 80, flags: 'S' }));
    }
    const pairs = runBoth(core, model, frames, T0, 3, { trace: true });
    t.is(firstMismatch(pairs), undefined);
    const dsts = (odd) => [...new Set(pairs.filter((_, i) => i % 2 === odd).map((p) => parseFrame(B.fromHex(p.core.hex)).dst))].sort();
    t.deepEqual(dsts(0), ['10.244.1.5', '10.244.2.5'], 'LB IP from a pod: cluster-wide');
    t.deepEqual(dsts(1), ['10.244.1.5'], 'ClusterIP (internalTrafficPolicy Local): local only');
    t.true(pairs.every((p, i) => p.core.trace.front === (i % 2 ? k1.ClusterIP.id : k1.ClusterPolicy.id)));
  }
  // no local endpoint: the node itself is dropped on the LB IP, short-circuited on the NodePort
  c.change({ upsert: validateAll([{ ...svc(spec), status: lb }, slice([ep('10.244.2.5', 'node-b')])]) });
  const k2 = Object.fromEntries(fronts(c).map((f) => [f.kind, f]));
  t.truthy(k2.LoadBalancer.flags & L.FEF_NODE_SOURCE_DROP);
  t.falsy(k2.NodePort.flags & L.FEF_NODE_SOURCE_DROP);
  t.is(k2.NodePort.clusterFront, k2.ClusterIP.id);
  // policy Cluster: nothing named (every source gets every endpoint anyway)
  c.change({ upsert: validateAll([{ ...svc({ ...spec, externalTrafficPolicy: 'Cluster' }), status: lb }]) });
  for (const f of fronts(c)) t.is(f.clusterFront, undefined, f.kind);
});

test('externalTrafficPolicy Local, detectLocalMode PodPort: a frame that arrived on a pod port is a pod\'s, whatever its address', (t) => {
  const local = backend({ id: 1, addr: '10.244.1.5', port: 8080, outPort: 11 });
  const remote = backend({ id: 2, addr: '10.244.2.5', port: 8080, outPort: 12 });
  const fronts = [
    frontend({ id: 1, addr: '10.96.0.1', port: 80 }, [remote]),
    frontend({ id: 2, addr: '198.51.100.7', port: 80, kind: 'LoadBalancer', flags: L.FEF_EXTERNAL, clusterFront: 1 }, [local]),
  ];
  const none = { dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' };
  const routes = [{ prefix: '0.0.0.0/0', outPort: 7, localSource: 'podPort', ...none }, { prefix: '192.168.0.1/32', outPort: L.PORT_NONE, localSource: 'node', ...none }];
  const { core, model } = both(mkIr({ frontends: fronts, backends: [local, remote], routes, snatV4: '192.168.0.1' }));
  const f = (sport) => cli({ proto: 'TCP', src: '172.20.0.9', dst: '198.51.100.7', sport, dport: 80, flags: 'S' });
  const pairs = runBoth(core, model, [{ frame: f(6000), inPort: 7 }, { frame: f(6001), inPort: 3 }], T0, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined);
  t.like(parseFrame(B.fromHex(pairs[0].core.hex)), { src: '172.20.0.9', dst: '10.244.2.5' }, 'on the pod port: the cluster front, not masqueraded');
  t.like(parseFrame(B.fromHex(pairs[1].core.hex)), { src: '172.20.0.9', dst: '10.244.1.5' }, 'on another port: outside, the local set');
  t.truthy(pairs[0].core.trace.stages & L.TS_LOCAL_SOURCE);
  t.falsy(pairs[1].core.trace.stages & L.TS_LOCAL_SOURCE);
  // the compiler's side: NodeConfig podPorts under detectLocalMode PodPort
  const c = new Compiler();
  c.change({ upsert: validateAll([node({ detectLocalMode: 'PodPort', podPorts: [4, 2, 4], clusterCIDRs: ['10.244.0.0/16'] })]) });
  t.deepEqual(c.ir.routes.filter((r) => r.localSource).map((r) => `${r.localSource} ${r.localSource === 'podPort' ? r.outPort : r.prefix}`), ['podPort 2', 'podPort 4', 'node 192.168.0.1/32']);
});

test('a ClusterIP with a local-traffic detector masquerades what does not come from a pod (kube-proxy\'s off-cluster masquerade); the compiler sets it only with a detector', (t) => {
  const be = backend({ id: 1, addr: '10.244.2.5', port: 8080, outPort: 12 });
  const fe = frontend({ id: 1, addr: '10.96.0.1', port: 80, flags: L.FEF_MASQUERADE_OUTSIDE }, [be]);
  const { core, model } = both(mkIr({ frontends: [fe], backends: [be], routes: LOCAL_ROUTES, snatV4: '192.168.0.1' }));
  const frames = ['10.244.1.7', '203.0.113.9', '192.168.0.1'].map((src) => cli({ proto: 'TCP', src, dst: '10.96.0.1', sport: 4000, dport: 80, flags: 'S' }));
  const pairs = runBoth(core, model, frames, T0, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined);
  t.deepEqual(pairs.map((p) => parseFrame(B.fromHex(p.core.hex)).src), ['10.244.1.7', '192.168.0.1', '192.168.0.1'], 'pod kept; outside and node masqueraded');
  const spec = { clusterIP: '10.96.0.1', ports: [{ port: 80, targetPort: 8080 }] };
  const c = new Compiler();
  c.change({ upsert: validateAll([node(), svc(spec), slice([ep('10.244.2.5', 'node-b')])]) });
  t.is(fronts(c)[0].flags & L.FEF_MASQUERADE_OUTSIDE, 0, 'no detector: no masquerade (kube-proxy adds the rule only when it can tell)');
  c.change({ upsert: validateAll([node({ clusterCIDRs: ['10.244.0.0/16'] })]) });
  t.truthy(fronts(c)[0].flags & L.FEF_MASQUERADE_OUTSIDE);
});

// kube-proxy keeps sessionAffinity per service port: one affinity set per endpoint, consulted by
// the ClusterIP, NodePort, external and LoadBalancer IPs alike, so a client pinned through one
// of them is pinned through the others (pkg/proxy/nftables/proxier.go writeServiceToEndpointRules).
test('sessionAffinity is per service port: a client pinned through the ClusterIP keeps its backend through the NodePort and LB IP (both policies Cluster)', (t) => {
  const c = new Compiler();
  const spec = (extra = {}) => svc({
    type: 'LoadBalancer', clusterIP: '10.96.0.1', sessionAffinity: 'ClientIP', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }], ...extra,
  });
  const eps = slice(['10.244.1.5', '10.244.1.6', '10.244.1.7', '10.244.1.8', '10.244.1.9'].map((a) => ep(a, 'node-a')));
  const lb = (o) => ({ ...o, status: { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } } });
  c.change({ upsert: validateAll([node(), lb(spec()), eps]) });
  const byKind = (k) => fronts(c).find((f) => f.kind === k);
  const cluster = byKind('ClusterIP');
  for (const k of ['NodePort', 'LoadBalancer']) {
    t.truthy(byKind(k).flags & L.FEF_AFFINITY_SHARED, k);
    t.is(byKind(k).clusterFront, cluster.id, `${k} keys its affinity by the ClusterIP frontend`);
  }
  const { core, model } = both(c.ir);
  let sport = 30000;
  for (let i = 0; i < 12; i++) {
    const client = `10.9.0.${i + 1}`;
    const at = (dst, dport) => cli({ proto: 'TCP', src: client, dst, sport: sport++, dport, flags: 'S' });
    const pairs = runBoth(core, model, [at('10.96.0.1', 80), at('192.168.0.1', 30080), at('203.0.113.7', 80)], T0 + i, 3, { trace: true });
    t.is(firstMismatch(pairs), undefined);
    const dsts = pairs.map((p) => parseFrame(B.fromHex(p.core.hex)).dst);
    t.is(new Set(dsts).size, 1, `client ${client}: one backend through every IP of the port (${dsts})`);
    t.deepEqual(pairs.map((p) => p.core.trace.select), [L.TRSEL_MAGLEV, L.TRSEL_AFFINITY, L.TRSEL_AFFINITY].map((x) => x), `client ${client}`);
  }
  // with a Local policy the entries are still the port's (test/core-affinity-set.test.js): an
  // externalTrafficPolicy Local frontend names the ClusterIP as its cluster front (no
  // FEF_AFFINITY_SHARED: it short-circuits) and follows a pin only into its own set
  c.change({ upsert: validateAll([lb(spec({ externalTrafficPolicy: 'Local' }))]) });
  t.is(byKind('NodePort').flags & L.FEF_AFFINITY_SHARED, 0);
  t.is(byKind('NodePort').clusterFront, byKind('ClusterIP').id);
  t.truthy(byKind('NodePort').flags & L.FEF_AFFINITY_IN_SET);
  c.change({ upsert: validateAll([lb(spec({ internalTrafficPolicy: 'Local' }))]) });
  t.truthy(byKind('NodePort').flags & L.FEF_AFFINITY_SHARED);
  t.is(byKind('NodePort').clusterFront, byKind('ClusterIP').id);
  t.truthy(byKind('ClusterIP').flags & L.FEF_AFFINITY_IN_SET, 'the ClusterIP (its local endpoints) checks a pin against its set');
  t.is(byKind('NodePort').flags & L.FEF_AFFINITY_IN_SET, 0, 'the NodePort (every ready endpoint) need not');
  // and without affinity nothing is shared
  c.change({ upsert: validateAll([lb(spec({ sessionAffinity: 'None' }))]) });
  t.is(byKind('LoadBalancer').flags & L.FEF_AFFINITY_SHARED, 0);
});

// kube-proxy's firewall "allowFromNode" (pkg/proxy/nftables/proxier.go): a loadBalancerSourceRange
// holding the node IP also admits the LB IPs as sources — a node holding the VIP as a local address
// sends its own requests to it with the VIP as source
test('loadBalancerSourceRanges holding the node IP: a request with an LB IP as its source is served; other outsiders are dropped', (t) => {
  const lbSvc = (ranges) => ({ ...svc({ type: 'LoadBalancer', clusterIP: '10.96.0.1', loadBalancerSourceRanges: ranges, ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] }),
    status: { loadBalancer: { ingress: [{ ip: '203.0.113.7' }, { ip: '203.0.113.8' }] } } });
  const c = new Compiler();
  c.change({ upsert: validateAll([node(), lbSvc(['192.168.0.0/24']), slice([ep('10.244.1.5', 'node-a')])]) });
  const { core, model } = both(c.ir);
  const from = (src, dst, sport) => cli({ proto: 'TCP', src, dst, sport, dport: 80, flags: 'S' });
  const frames = [from('203.0.113.7', '203.0.113.7', 4000), from('203.0.113.8', '203.0.113.7', 4001), from('192.168.0.9', '203.0.113.8', 4002), from('203.0.113.9', '203.0.113.7', 4003)];
  const pairs = runBoth(core, model, frames, T0, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined);
  t.deepEqual(pairs.map((p) => p.core.reason), ['fwd_nat', 'fwd_nat', 'fwd_nat', 'drop_source_range']);
  // a range without the node IP admits no LB IP
  c.change({ upsert: validateAll([lbSvc(['192.168.1.0/24'])]) });
  const again = both(c.ir);
  const refused = runBoth(again.core, again.model, [from('203.0.113.7', '203.0.113.7', 4010)], T0, 3, { trace: true });
  t.is(firstMismatch(refused), undefined);
  t.is(refused[0].core.reason, 'drop_source_range');
});
