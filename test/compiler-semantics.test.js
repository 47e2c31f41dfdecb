// What the compiler produces for specific Kubernetes situations (kube-proxy semantics).
import test from 'ava';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import { parseManifests } from '../dist/src/model/load.js';
import * as L from '../dist/assembly/layout.js';
import { maglevIds } from '../dist/src/ir/ir.js';
import { maglevTable } from '../dist/src/compiler/maglev.js';

const node = (extra = {}) => ({
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: {
    nodeAddresses: ['192.168.0.1', 'fd00:1::1'],
    neighbours: [{ address: '10.244.1.5', port: 3, mac: '02:00:00:00:00:35', localMac: '02:00:00:00:00:03' }],
    routes: [
      { prefix: '10.244.1.0/24', port: 1, nextHopMac: '02:00:00:00:00:11', localMac: '02:00:00:00:00:01' },
      { prefix: '10.244.0.0/16', port: 2, nextHopMac: '02:00:00:00:00:22', localMac: '02:00:00:00:00:02' },
    ],
    ...extra,
  },
});
const svc = (spec, meta = {}, status) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop', ...meta }, spec, ...(status ? { status } : {}) });
const slice = (endpoints, ports = [{ name: 'http', port: 8080 }], name = 'web-1', addressType = 'IPv4') => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
  metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } }, addressType, endpoints, ports,
});
const ep = (addr, nodeName, conditions) => ({ addresses: [addr], ...(nodeName ? { nodeName } : {}), ...(conditions ? { conditions } : {}) });

function compile(...raws) {
  const c = new Compiler();
  const ch = c.change({ upsert: validateAll(raws) });
  return { c, ch, fronts: [...c.ir.frontends.values()], backs: [...c.ir.backends.values()] };
}
const byKind = (fronts, kind) => fronts.filter((f) => f.kind === kind);
const addrsOf = (c, f) => f.backends.map((id) => c.ir.backends.get(id).addr).sort();

test('LoadBalancer: one frontend per address kind, flags per kube-proxy semantics', (t) => {
  const { c, fronts } = compile(node(), svc({
    type: 'LoadBalancer', clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
    externalIPs: ['198.51.100.1'], loadBalancerSourceRanges: ['203.0.113.0/24', '2001:db8::/32'],
  }, {}, { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } }), slice([ep('10.244.1.7', 'node-a'), ep('10.244.2.8', 'node-b')]));
  const cip = byKind(fronts, 'ClusterIP'), np = byKind(fronts, 'NodePort'), lb = byKind(fronts, 'LoadBalancer'), ext = byKind(fronts, 'ExternalIP');
  t.is(cip.length, 1); t.is(lb.length, 1); t.is(ext.length, 1);
  t.deepEqual(np.map((f) => f.addr), ['192.168.0.1']); // IPv6 node address skipped: the service is IPv4-only
  t.is(cip[0].flags, 0);
  t.is(np[0].flags, L.FEF_EXTERNAL | L.FEF_MASQUERADE);
  t.is(np[0].port, 30080);
  t.is(lb[0].flags, L.FEF_EXTERNAL | L.FEF_MASQUERADE | L.FEF_SOURCE_RANGES);
  t.deepEqual(lb[0].sourceRanges, ['203.0.113.0/24']); // other-family ranges cannot match: left out
  t.is(ext[0].flags, L.FEF_EXTERNAL | L.FEF_MASQUERADE, 'externalIPs are not guarded by the ranges (nftables proxier)');
  for (const f of fronts) t.deepEqual(addrsOf(c, f), ['10.244.1.7', '10.244.2.8']);
  t.is(cip[0].maglev.length, 251);
  t.is(c.ir.snatV4, '192.168.0.1');
});

test('NodePort frontends only on the NodeConfig\'s nodePortAddresses (unset: every node address); the other node addresses stay node addresses (SNAT source, no Service frontend)', (t) => {
  const nodePort = svc({ type: 'NodePort', clusterIP: '10.96.0.1', ipFamilyPolicy: 'PreferDualStack', clusterIPs: ['10.96.0.1', 'fd00:96::1'], ipFamilies: ['IPv4', 'IPv6'], ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }] });
  const npAddrs = (n) => byKind(compile(n, nodePort, slice([ep('10.244.1.7', 'node-a')])).fronts, 'NodePort').map((f) => f.addr).sort();
  const addresses = ['192.168.0.1', '192.168.0.2', 'fd00:1::1'];
  t.deepEqual(npAddrs(node({ nodeAddresses: addresses })), ['192.168.0.1', '192.168.0.2', 'fd00:1::1'], 'absent: every node address');
  t.deepEqual(npAddrs(node({ nodeAddresses: addresses, nodePortAddresses: ['192.168.0.2'] })), ['192.168.0.2'], 'only the listed one');
  t.deepEqual(npAddrs(node({ nodeAddresses: addresses, nodePortAddresses: [] })), [], 'an empty list: none');
  const { c } = compile(node({ nodeAddresses: addresses, nodePortAddresses: ['192.168.0.2'] }), nodePort);
  t.is(c.ir.snatV4, '192.168.0.1', 'the masquerade source is still the first node address');
  // the list changing on a compiled service moves its NodePort frontends
  const c2 = new Compiler();
  c2.change({ upsert: validateAll([node({ nodeAddresses: addresses, nodePortAddresses: ['192.168.0.1'] }), nodePort]) });
  const ch = c2.change({ upsert: validateAll([node({ nodeAddresses: addresses, nodePortAddresses: ['192.168.0.2', 'fd00:1::1'] })]) });
  t.deepEqual([...c2.ir.frontends.values()].filter((f) => f.kind === 'NodePort').map((f) => f.addr).sort(), ['192.168.0.2', 'fd00:1::1']);
  t.truthy(ch);
});

test('externalTrafficPolicy Local: external frontends use local endpoints and do not masquerade', (t) => {
  const { c, fronts } = compile(node(), svc({
    type: 'NodePort', clusterIP: '10.96.0.1', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
  }), slice([ep('10.244.1.7', 'node-a'), ep('10.244.2.8', 'node-b')]));
  const np = byKind(fronts, 'NodePort')[0];
  t.is(np.flags, L.FEF_EXTERNAL);
  t.deepEqual(addrsOf(c, np), ['10.244.1.7']);
  t.deepEqual(addrsOf(c, byKind(fronts, 'ClusterIP')[0]), ['10.244.1.7', '10.244.2.8']);
});

test('internalTrafficPolicy Local: the cluster IP uses only local endpoints; none local = reject', (t) => {
  const { c, fronts } = compile(node(), svc({ clusterIP: '10.96.0.1', internalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    slice([ep('10.244.2.8', 'node-b')]));
  const cip = byKind(fronts, 'ClusterIP')[0];
  t.deepEqual(cip.backends, []);
  t.is(cip.maglev.length, 0);
  t.is(c.ir.backends.size, 1); // the endpoint is still a backend: flows to it keep their state
});

test('endpoint states: ready set first, serving-terminating as fallback, every endpoint is a backend', (t) => {
  const eps = [
    ep('10.244.1.1', 'node-a', { ready: false, serving: true, terminating: true }),
    ep('10.244.1.2', 'node-a', { ready: false, serving: false, terminating: true }),
    ep('10.244.1.3', 'node-a', { ready: false }),
  ];
  const a = compile(node(), svc({ clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }), slice(eps));
  const f = a.fronts[0];
  t.is(f.flags & L.FEF_FALLBACK, L.FEF_FALLBACK);
  t.deepEqual(addrsOf(a.c, f), ['10.244.1.1']);
  const states = Object.fromEntries(a.backs.map((b) => [b.addr, b.state]));
  t.deepEqual(states, { '10.244.1.1': L.BES_TERMINATING_SERVING, '10.244.1.2': L.BES_NOT_SERVING, '10.244.1.3': L.BES_NOT_SERVING });
  // one ready endpoint (conditions unset = ready): no fallback, only it is selected
  const b = compile(node(), svc({ clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }), slice([...eps, ep('10.244.1.4')]));
  t.is(b.fronts[0].flags & L.FEF_FALLBACK, 0);
  t.deepEqual(addrsOf(b.c, b.fronts[0]), ['10.244.1.4']);
  t.is(b.backs.length, 4);
});

test('named targetPort resolves per EndpointSlice port; ports are matched by name and protocol', (t) => {
  const { c, fronts, backs } = compile(node(), svc({
    clusterIP: '10.96.0.1',
    ports: [{ name: 'http', port: 80, targetPort: 'web' }, { name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 }],
  }),
  slice([ep('10.244.1.1')], [{ name: 'http', port: 8080 }, { name: 'dns', protocol: 'UDP', port: 5353 }], 'web-1'),
  slice([ep('10.244.1.2')], [{ name: 'http', port: 9090 }, { name: 'dns', protocol: 'TCP', port: 5353 }], 'web-2'));
  const http = fronts.find((f) => f.portName === 'http'), dns = fronts.find((f) => f.portName === 'dns');
  t.deepEqual(http.backends.map((id) => `${c.ir.backends.get(id).addr}:${c.ir.backends.get(id).port}`).sort(), ['10.244.1.1:8080', '10.244.1.2:9090']);
  t.deepEqual(dns.backends.map((id) => `${c.ir.backends.get(id).addr}:${c.ir.backends.get(id).port}`), ['10.244.1.1:5353']); // web-2 lists dns as TCP only
  t.is(dns.proto, 'UDP');
  t.is(backs.length, 3);
});

test('backend next hop: exact neighbour, then longest prefix; unresolved gets PORT_NONE and a warning', (t) => {
  const { backs, ch } = compile(node(), svc({ clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    slice([ep('10.244.1.5'), ep('10.244.1.6'), ep('10.244.9.9'), ep('10.1.0.1')]));
  const by = Object.fromEntries(backs.map((b) => [b.addr, b]));
  t.like(by['10.244.1.5'], { outPort: 3, dstMac: '02:00:00:00:00:35', srcMac: '02:00:00:00:00:03' });
  t.like(by['10.244.1.6'], { outPort: 1, dstMac: '02:00:00:00:00:11' });
  t.like(by['10.244.9.9'], { outPort: 2, dstMac: '02:00:00:00:00:22' });
  t.is(by['10.1.0.1'].outPort, L.PORT_NONE);
  t.true(ch.warnings.some((w) => w.includes('10.1.0.1') && w.includes('drop_no_route')));
  // what a daemon does meanwhile (src/daemon/hold-queue.ts, docs/running.md "Neighbours"), not
  // "packets to them are dropped": it probes for the address and holds a new flow's first packets
  t.deepEqual(ch.warnings, ['Service shop/web: no neighbour or route for 1 endpoint address(es) (10.1.0.1) yet: '
    + 'a daemon asks for them (ARP/ND) every probeIntervalMs and holds a new flow\'s first packets to them (3 per address, up to 3 s) '
    + 'until one answers; packets beyond those are dropped (drop_no_route)']);
});

test('ids are stable across updates and freed ids are reused oldest-first', (t) => {
  const c = new Compiler();
  const s = svc({ clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080 }] });
  c.change({ upsert: validateAll([node(), s, slice([ep('10.244.1.1'), ep('10.244.1.2'), ep('10.244.1.3')])]) });
  const idOf = (addr) => [...c.ir.backends.values()].find((b) => b.addr === addr)?.id;
  const before = { a: idOf('10.244.1.1'), b: idOf('10.244.1.2'), c: idOf('10.244.1.3') };
  const feId = [...c.ir.frontends.keys()][0];
  const ch = c.change({ upsert: validateAll([slice([ep('10.244.1.1'), ep('10.244.1.3')])]) });
  t.is(idOf('10.244.1.1'), before.a);
  t.is(idOf('10.244.1.3'), before.c);
  t.deepEqual(ch.diff.backendsRemove, [before.b]);
  t.deepEqual(ch.diff.backendsUpsert, []); // the two survivors did not change
  t.deepEqual(ch.diff.frontendsUpsert.map((f) => f.id), [feId]);
  t.is(ch.servicesRecompiled, 1);
  c.change({ upsert: validateAll([slice([ep('10.244.1.1'), ep('10.244.1.3'), ep('10.244.1.4')])]) });
  t.is(idOf('10.244.1.4'), before.b); // the freed id comes back
  // re-applying the same objects changes nothing
  const again = c.change({ upsert: validateAll([s, slice([ep('10.244.1.1'), ep('10.244.1.3'), ep('10.244.1.4')])]) });
  t.deepEqual([again.diff.frontendsUpsert, again.diff.frontendsRemove, again.diff.backendsUpsert, again.diff.backendsRemove], [[], [], [], []]);
});

test('maglev-table-size annotation sets the table size', (t) => {
  const { fronts } = compile(node(), svc({ clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }, { annotations: { 'wdp.io/maglev-table-size': '4093' } }),
    slice([ep('10.244.1.1')]));
  t.is(fronts[0].maglev.length, 4093);
  t.true(maglevIds(fronts[0]).every((id) => id === fronts[0].backends[0]));
});

test('dual stack: one ClusterIP frontend per family, each with backends of its family', (t) => {
  const { c, fronts } = compile(node(), svc({ clusterIPs: ['fd00:96::1', '10.96.0.1'], ipFamilies: ['IPv6', 'IPv4'], ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    slice([ep('10.244.1.1')]), slice([ep('fd00:244::1')], undefined, 'web-v6', 'IPv6'));
  const v4 = fronts.find((f) => f.family === 4), v6 = fronts.find((f) => f.family === 6);
  t.deepEqual(addrsOf(c, v4), ['10.244.1.1']);
  t.deepEqual(addrsOf(c, v6), ['fd00:244::1']);
  t.is(v6.addr, 'fd00:96::1');
});

test('headless and ExternalName services program nothing', (t) => {
  const objs = parseManifests(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: None, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: shop}
spec: {type: ExternalName, externalName: example.com}
`);
  const { c } = compile(...objs, slice([ep('10.244.1.1')]));
  t.is(c.ir.frontends.size, 0);
  t.is(c.ir.backends.size, 0);
  t.is(c.serviceCount(), 2);
});

test('one endpoint change at 2000 services recompiles one service', (t) => {
  const c = new Compiler();
  const raws = [node()];
  for (let i = 0; i < 2000; i++) {
    raws.push({ ...svc({ clusterIP: `10.96.${i >> 8}.${i & 255}`, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }, { name: `s${i}` }) });
    raws.push({ ...slice([ep(`10.244.${i >> 8}.${i & 255}`)], undefined, `s${i}-1`), metadata: { name: `s${i}-1`, namespace: 'shop', labels: { 'kubernetes.io/service-name': `s${i}` } } });
  }
  c.change({ upsert: validateAll(raws) });
  t.is(c.ir.frontends.size, 2000);
  const upd = { ...slice([ep('10.244.0.7'), ep('10.244.0.8')], undefined, 's7-1'), metadata: { name: 's7-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 's7' } } };
  const ch = c.change({ upsert: validateAll([upd]) });
  t.is(ch.servicesRecompiled, 1);
  t.is(ch.diff.frontendsUpsert.length, 1);
  t.is(ch.diff.backendsUpsert.length, 1);
});

test('without a NodeConfig: backends get PORT_NONE, one warning for the whole change, no NodePort frontends', (t) => {
  const c = new Compiler();
  const ch = c.change({ upsert: validateAll([
    svc({ type: 'NodePort', clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }] }),
    slice([ep('10.244.1.1'), ep('10.244.1.2')]),
  ]) });
  t.deepEqual(ch.warnings, ['no NodeConfig applied: 2 backend(s) have no next hop; packets to them are dropped (drop_no_route) until one is applied']);
  t.true([...c.ir.backends.values()].every((b) => b.outPort === L.PORT_NONE));
  t.deepEqual([...c.ir.frontends.values()].map((f) => f.kind), ['ClusterIP']);
  // the node config arrives: NodePort frontends appear, backends resolve, routes and SNAT are set
  const n = c.change({ upsert: validateAll([node()]) });
  t.deepEqual(n.warnings, []);
  t.deepEqual(n.diff.frontendsUpsert.map((f) => f.kind).sort(), ['NodePort']);
  t.deepEqual(n.diff.backendsUpsert.map((b) => b.outPort).sort(), [1, 1]);
  t.is(n.diff.routes.filter((r) => !r.localSource).length, 3);
  // and the node's own addresses become the local-traffic detector's "node itself" entries
  t.deepEqual(n.diff.routes.filter((r) => r.localSource).map((r) => `${r.localSource} ${r.prefix}`), ['node 192.168.0.1/32', 'node fd00:1::1/128']);
  t.deepEqual(n.diff.snat, { v4: '192.168.0.1', v6: 'fd00:1::1' });
});

test('a port with more endpoints than the insertion sort takes: backends and Maglev table in "addr:port" key order, IPv4 and IPv6', (t) => {
  // 90 endpoints listed in a scrambled order; addresses that are prefixes of others (10.1.1.1, 10.1.1.10, 10.1.1.100)
  const v4 = Array.from({ length: 90 }, (_, i) => `10.1.${1 + (i % 3)}.${[1, 10, 100, 2, 25, 250, 9, 99, 199, 3][i % 10] + Math.floor(i / 30)}`);
  const v6 = Array.from({ length: 70 }, (_, i) => `fd00::${(i * 37 % 70 + 1).toString(16)}`);
  const scramble = (xs) => xs.map((x, i) => [(i * 53) % xs.length, x]).sort((a, b) => a[0] - b[0]).map((e) => e[1]);
  for (const [addrs, type, family, ip] of [[v4, 'IPv4', 'IPv4', '10.96.0.9'], [v6, 'IPv6', 'IPv6', 'fd00:96::9']]) {
    const { c, fronts } = compile(node(), svc({ clusterIP: ip, ipFamilies: [family], ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
      slice(scramble([...new Set(addrs)]).map((a) => ep(a)), [{ name: 'http', port: 8080 }], 'web-1', type));
    const [f] = fronts;
    const keys = f.backends.map((id) => `${c.ir.backends.get(id).addr}:8080`);
    t.deepEqual(keys, [...keys].sort(), `${type}: backends in key order`);
    t.is(keys.length, new Set(addrs).size);
    t.deepEqual(Array.from(maglevIds(f)), Array.from(maglevTable(f.backends, keys, f.maglev.length)), `${type}: the table buildMaglev would build`);
  }
});

test('conditions: serving unset reads as true (kube-proxy), so {ready: false, terminating: true} is a serving-terminating fallback', (t) => {
  const { c, fronts } = compile(node(), svc({ clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    slice([ep('10.244.1.7', 'node-a', { ready: false, terminating: true }), ep('10.244.2.8', 'node-b', { ready: false, serving: false, terminating: true })]));
  const f = byKind(fronts, 'ClusterIP')[0];
  t.deepEqual(addrsOf(c, f), ['10.244.1.7'], 'the endpoint without a serving condition carries the service');
  t.is(f.flags & L.FEF_FALLBACK, L.FEF_FALLBACK);
  t.is(c.ir.backends.get(f.backends[0]).state, L.BES_TERMINATING_SERVING);
});

test('LoadBalancer ingress with ipMode Proxy is not programmed (KEP-1860); ipMode VIP or unset is', (t) => {
  const { fronts } = compile(node(), svc({ type: 'LoadBalancer', clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }] },
    {}, { loadBalancer: { ingress: [{ ip: '192.0.2.1', ipMode: 'Proxy' }, { ip: '192.0.2.2', ipMode: 'VIP' }, { ip: '192.0.2.3' }] } }),
  slice([ep('10.244.1.7', 'node-a')]));
  t.deepEqual(byKind(fronts, 'LoadBalancer').map((f) => f.addr).sort(), ['192.0.2.2', '192.0.2.3']);
});

test('topology hints: the cluster-wide set keeps the endpoints hinted for the node zone when every ready endpoint has hints', (t) => {
  const hinted = (addr, nodeName, zones, conditions) => ({ ...ep(addr, nodeName, conditions), ...(zones ? { hints: { forZones: zones.map((name) => ({ name })) } } : {}) });
  const spec = { type: 'NodePort', clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }] };
  const eps = [hinted('10.244.1.7', 'node-a', ['zone-a']), hinted('10.244.2.8', 'node-b', ['zone-b']), hinted('10.244.2.9', 'node-b', ['zone-a', 'zone-b'])];
  const zoned = compile(node({ zone: 'zone-a' }), svc(spec), slice(eps));
  for (const f of zoned.fronts) t.deepEqual(addrsOf(zoned.c, f), ['10.244.1.7', '10.244.2.9'], `${f.kind}: the zone's endpoints`);
  // no zone on the node, a zone no endpoint is hinted for, or one ready endpoint without hints: all
  for (const [n, e] of [[node(), eps], [node({ zone: 'zone-c' }), eps], [node({ zone: 'zone-a' }), [...eps, hinted('10.244.3.1', 'node-c', null)]]]) {
    const r = compile(n, svc(spec), slice(e));
    t.is(addrsOf(r.c, byKind(r.fronts, 'ClusterIP')[0]).length, e.length);
  }
  // a not-ready endpoint without hints does not matter (only ready endpoints are looked at)
  const nr = compile(node({ zone: 'zone-a' }), svc(spec), slice([...eps, hinted('10.244.3.1', 'node-c', null, { ready: false })]));
  t.deepEqual(addrsOf(nr.c, byKind(nr.fronts, 'ClusterIP')[0]), ['10.244.1.7', '10.244.2.9']);
  // the Local set ignores hints: internalTrafficPolicy Local keeps node-a's endpoint only
  const local = compile(node({ zone: 'zone-b' }), svc({ ...spec, internalTrafficPolicy: 'Local' }), slice(eps));
  t.deepEqual(addrsOf(local.c, byKind(local.fronts, 'ClusterIP')[0]), ['10.244.1.7']);
  t.deepEqual(addrsOf(local.c, byKind(local.fronts, 'NodePort')[0]), ['10.244.2.8', '10.244.2.9'], 'eTP Cluster: zone-b only');
  // the serving-terminating fallback ignores hints
  const term = compile(node({ zone: 'zone-a' }), svc(spec), slice([hinted('10.244.2.8', 'node-b', ['zone-b'], { ready: false, serving: true, terminating: true })]));
  t.deepEqual(addrsOf(term.c, byKind(term.fronts, 'ClusterIP')[0]), ['10.244.2.8']);
  // a node zone change recompiles: the NodeConfig re-applied with another zone
  const c = zoned.c;
  c.change({ upsert: validateAll([node({ zone: 'zone-b' })]) });
  const cip = [...c.ir.frontends.values()].find((f) => f.kind === 'ClusterIP');
  t.deepEqual(addrsOf(c, cip), ['10.244.2.8', '10.244.2.9']);
  t.deepEqual(c.recompileAll().frontends.get(cip.id).backends, cip.backends);
});

test('slice ports match Service ports by name and protocol only (kube-proxy): a slice port named after the targetPort, or without a number, serves nothing', (t) => {
  const spec = { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 'web' }] };
  const named = compile(node(), svc(spec), slice([ep('10.244.1.1')], [{ name: 'web', port: 8080 }]));
  t.deepEqual(byKind(named.fronts, 'ClusterIP')[0].backends, [], 'the slice port "web" is not the Service port "http"');
  const noNumber = compile(node(), svc({ ...spec, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }), slice([ep('10.244.1.1')], [{ name: 'http' }]));
  t.deepEqual(byKind(noNumber.fronts, 'ClusterIP')[0].backends, []);
  t.true(noNumber.ch.warnings.some((w) => /gives no port number/.test(w)));
  const ok = compile(node(), svc(spec), slice([ep('10.244.1.1')], [{ name: 'http', port: 8080 }]));
  t.is(ok.c.ir.backends.get(byKind(ok.fronts, 'ClusterIP')[0].backends[0]).port, 8080);
});

test('loadBalancerSourceRanges per family: a family without ranges is not checked; external and LB IPs of a family the service lacks are not programmed', (t) => {
  const { fronts } = compile(node(), svc({
    type: 'LoadBalancer', clusterIPs: ['10.96.0.1', 'fd00:96::1'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack',
    ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }], loadBalancerSourceRanges: ['203.0.113.0/24'],
  }, {}, { loadBalancer: { ingress: [{ ip: '192.0.2.1' }, { ip: '2001:db8::1' }] } }),
  slice([ep('10.244.1.7', 'node-a')]), slice([ep('fd00:244::7', 'node-a')], undefined, 'web-6', 'IPv6'));
  const lb = byKind(fronts, 'LoadBalancer');
  t.is(lb.find((f) => f.addr === '192.0.2.1').flags & L.FEF_SOURCE_RANGES, L.FEF_SOURCE_RANGES);
  t.is(lb.find((f) => f.addr === '2001:db8::1').flags & L.FEF_SOURCE_RANGES, 0, 'no IPv6 ranges: IPv6 clients are not checked');
  const v4only = compile(node(), svc({ type: 'LoadBalancer', clusterIP: '10.96.0.2', externalIPs: ['198.51.100.1', '2001:db8::5'], ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }] },
    {}, { loadBalancer: { ingress: [{ ip: '192.0.2.2' }, { ip: '2001:db8::2' }] } }), slice([ep('10.244.1.7', 'node-a')]));
  t.deepEqual(v4only.fronts.filter((f) => f.kind === 'LoadBalancer' || f.kind === 'ExternalIP').map((f) => f.addr).sort(), ['192.0.2.2', '198.51.100.1']);
});

test('loadBalancerSourceRanges holding the node IP also admit the LB IPs as sources, per family (nftables proxier allowFromNode)', (t) => {
  // kube-proxy's per-family proxier: a range of family F containing its node IP of F (the Node's
  // primary IP of F, else 127.0.0.1 / ::1) adds the service's LB VIPs of F to the firewall's
  // allowed sources (a VIP looped back by the node has itself as source)
  const lbSvc = (ranges, ingress) => svc({
    type: 'LoadBalancer', clusterIPs: ['10.96.0.1', 'fd00:96::1'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack',
    ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }], loadBalancerSourceRanges: ranges,
  }, {}, { loadBalancer: { ingress } });
  const slices = [slice([ep('10.244.1.7', 'node-a')]), slice([ep('fd00:244::7', 'node-a')], undefined, 'web-6', 'IPv6')];
  const ingress = [{ ip: '192.0.2.1' }, { ip: '192.0.2.3', ipMode: 'VIP' }, { ip: '192.0.2.9', ipMode: 'Proxy' }, { ip: '2001:db8::1' }, { ip: '203.0.113.5' }];
  const rangesOf = (fronts) => Object.fromEntries(byKind(fronts, 'LoadBalancer').map((f) => [f.addr, f.sourceRanges]));
  // the IPv4 range holds the node IP 192.168.0.1: the IPv4 VIPs not already in a range are added
  // (203.0.113.5 is); the IPv6 range does not hold fd00:1::1: nothing added there
  const v4 = ['192.168.0.0/24', '203.0.113.0/24'];
  const both = compile(node(), lbSvc([...v4, '2001:db8:ff::/48'], ingress), ...slices);
  const withVips = [...v4, '192.0.2.1/32', '192.0.2.3/32'];
  t.deepEqual(rangesOf(both.fronts), { '192.0.2.1': withVips, '192.0.2.3': withVips, '203.0.113.5': withVips, '2001:db8::1': ['2001:db8:ff::/48'] });
  // the IPv6 range holds the node's IPv6 address: its VIPs are added; the IPv4 range holds no node IP
  const six = compile(node(), lbSvc(['198.51.100.0/24', 'fd00:1::/64'], ingress), ...slices);
  t.deepEqual(rangesOf(six.fronts)['2001:db8::1'], ['fd00:1::/64', '2001:db8::1/128']);
  t.deepEqual(rangesOf(six.fronts)['192.0.2.1'], ['198.51.100.0/24']);
  // the node IP is the first node address of the family, or the NodeConfig's nodeIPs
  const second = compile(node({ nodeAddresses: ['192.168.9.1', '192.168.0.1'] }), lbSvc(v4, ingress), ...slices);
  t.deepEqual(rangesOf(second.fronts)['192.0.2.1'], v4, '192.168.0.1 is not the node IP');
  const named = compile(node({ nodeAddresses: ['192.168.9.1', '192.168.0.1'], nodeIPs: ['fd00:1::1', '192.168.0.1'] }), lbSvc(v4, ingress), ...slices);
  t.deepEqual(rangesOf(named.fronts)['192.0.2.1'], withVips);
  // no node address of the family: kube-proxy's node IP is the loopback address
  const loop = compile(node({ nodeAddresses: ['fd00:1::1'] }), lbSvc(['127.0.0.0/8'], ingress), ...slices);
  t.deepEqual(rangesOf(loop.fronts)['192.0.2.1'], ['127.0.0.0/8', '192.0.2.1/32', '192.0.2.3/32', '203.0.113.5/32']);
  // a change of the node IP recompiles the guarded frontends
  const c = both.c;
  const ch = c.change({ upsert: validateAll([node({ nodeAddresses: ['192.168.9.1', 'fd00:1::1'] })]) });
  t.deepEqual(ch.diff.frontendsUpsert.filter((f) => f.kind === 'LoadBalancer' && f.family === 4).map((f) => f.sourceRanges), [v4, v4, v4]);
});

test('loadBalancerSourceRanges guard an LB IP that is an externalIP of the service too (the nftables proxier keys its firewall by the LB IP and port)', (t) => {
  // kube-proxy's firewall-ips map holds every LB VIP and port whatever else the address is; wdp
  // programs the address once (as the ExternalIP, emitted first): that frontend takes the ranges
  const { fronts } = compile(node(), svc({
    type: 'LoadBalancer', clusterIP: '10.96.0.1', externalIPs: ['192.0.2.1', '198.51.100.1'], loadBalancerSourceRanges: ['203.0.113.0/24'],
    ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
  }, {}, { loadBalancer: { ingress: [{ ip: '192.0.2.1' }, { ip: '192.0.2.2' }] } }), slice([ep('10.244.1.7', 'node-a')]));
  const at = (addr) => fronts.filter((f) => f.addr === addr).map((f) => ({ kind: f.kind, guarded: (f.flags & L.FEF_SOURCE_RANGES) !== 0, ranges: f.sourceRanges }));
  t.deepEqual(at('192.0.2.1'), [{ kind: 'ExternalIP', guarded: true, ranges: ['203.0.113.0/24'] }]);
  t.deepEqual(at('192.0.2.2'), [{ kind: 'LoadBalancer', guarded: true, ranges: ['203.0.113.0/24'] }]);
  t.deepEqual(at('198.51.100.1'), [{ kind: 'ExternalIP', guarded: false, ranges: [] }], 'an externalIP alone is not guarded');
});

test('a family the service has no cluster IP of gets no frontend, whatever ipFamilies lists (kube-proxy: the family\'s proxier skips a service without a cluster IP of its family)', (t) => {
  // ipFamilies [IPv4, IPv6] with one IPv4 cluster IP (wdp allocates nothing, the API server would
  // have added the IPv6 one): no IPv6 NodePort, external or LB frontend
  const { fronts } = compile(node(), svc({
    type: 'LoadBalancer', clusterIP: '10.96.0.1', ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'PreferDualStack',
    externalIPs: ['198.51.100.1', '2001:db8::5'], ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
  }, {}, { loadBalancer: { ingress: [{ ip: '192.0.2.1' }, { ip: '2001:db8::1' }] } }),
  slice([ep('10.244.1.7', 'node-a')]), slice([ep('fd00:244::7', 'node-a')], undefined, 'web-6', 'IPv6'));
  t.deepEqual(fronts.map((f) => `${f.kind} ${f.addr}`).sort(), ['ClusterIP 10.96.0.1', 'ExternalIP 198.51.100.1', 'LoadBalancer 192.0.2.1', 'NodePort 192.168.0.1']);
});

test('node hints (trafficDistribution PreferSameNode): every ready endpoint hinted for nodes and one for this node: those only; else zone hints apply', (t) => {
  const hinted = (addr, nodeName, nodes, zones) => ({ ...ep(addr, nodeName), hints: { ...(nodes ? { forNodes: nodes.map((name) => ({ name })) } : {}), ...(zones ? { forZones: zones.map((name) => ({ name })) } : {}) } });
  const spec = { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080 }] };
  const eps = [hinted('10.244.1.7', 'node-a', ['node-a'], ['zone-a']), hinted('10.244.2.8', 'node-b', ['node-b'], ['zone-a']), hinted('10.244.3.9', 'node-c', ['node-c'], ['zone-b'])];
  const same = compile(node({ zone: 'zone-a' }), svc(spec), slice(eps));
  t.deepEqual(addrsOf(same.c, byKind(same.fronts, 'ClusterIP')[0]), ['10.244.1.7'], 'this node\'s endpoint');
  // no endpoint hinted for node-a: zone hints
  const other = compile(node({ zone: 'zone-a' }), svc(spec), slice(eps.slice(1)));
  t.deepEqual(addrsOf(other.c, byKind(other.fronts, 'ClusterIP')[0]), ['10.244.2.8']);
  // one ready endpoint without node hints: zone hints
  const partial = compile(node({ zone: 'zone-b' }), svc(spec), slice([...eps, hinted('10.244.3.10', 'node-c', null, ['zone-b'])]));
  t.deepEqual(addrsOf(partial.c, byKind(partial.fronts, 'ClusterIP')[0]), ['10.244.3.10', '10.244.3.9']);
});

// EndpointSlice merge rules of kube-proxy's endpointslicecache (addEndpoints, endpointSliceCacheKeys)
// and CategorizeEndpoints, one case each
const backKeys = (c, f) => f.backends.map((id) => `${c.ir.backends.get(id).addr}:${c.ir.backends.get(id).port}`).sort();
const webSpec = { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080 }] };

test('slices kube-proxy ignores: addressType FQDN, no kubernetes.io/service-name label, an empty one', (t) => {
  const fqdn = slice([{ addresses: ['web.example.com'] }], undefined, 'web-fqdn', 'FQDN');
  const unlabelled = { ...slice([ep('10.244.1.2')], undefined, 'web-u'), metadata: { name: 'web-u', namespace: 'shop' } };
  const empty = { ...slice([ep('10.244.1.3')], undefined, 'web-e'), metadata: { name: 'web-e', namespace: 'shop', labels: { 'kubernetes.io/service-name': '' } } };
  const { c, fronts, backs } = compile(node(), svc(webSpec), slice([ep('10.244.1.1')]), fqdn, unlabelled, empty);
  t.deepEqual(addrsOf(c, byKind(fronts, 'ClusterIP')[0]), ['10.244.1.1']);
  t.deepEqual(backs.map((b) => b.addr), ['10.244.1.1']);
});

test('one address:port in several slices of one port is one backend; the same address at another port number is another', (t) => {
  const { c, fronts, backs } = compile(node(), svc(webSpec),
    slice([ep('10.244.1.1'), ep('10.244.1.2')], [{ name: 'http', port: 8080 }], 'web-1'),
    slice([ep('10.244.1.1')], [{ name: 'http', port: 8080 }], 'web-2'),
    slice([ep('10.244.1.1')], [{ name: 'http', port: 9090 }], 'web-3'));
  t.deepEqual(backKeys(c, byKind(fronts, 'ClusterIP')[0]), ['10.244.1.1:8080', '10.244.1.1:9090', '10.244.1.2:8080']);
  t.is(backs.length, 3);
});

test('addresses compare in canonical form (kube-proxy ParseIPSloppy(...).String()); only the first address of an endpoint counts', (t) => {
  const { c, fronts, backs } = compile(node(), svc({ ...webSpec, clusterIPs: ['10.96.0.1', 'fd00:96::1'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' }),
    slice([ep('fd00:244::7')], undefined, 'web-6a', 'IPv6'),
    slice([ep('FD00:244:0::0007')], undefined, 'web-6b', 'IPv6'),
    slice([{ addresses: ['10.244.1.1', '10.244.1.9'] }], undefined, 'web-4a'),
    slice([ep('010.244.001.001')], undefined, 'web-4b')); // legacy leading zeros: decimal, as ParseIPSloppy
  t.deepEqual(byKind(fronts, 'ClusterIP').map((f) => backKeys(c, f)).sort(), [['10.244.1.1:8080'], ['fd00:244::7:8080']]);
  t.is(backs.length, 2);
});

test('ready wins over terminating: {ready: true, terminating: true} is ready; unset conditions are ready', (t) => {
  const { c, fronts } = compile(node(), svc(webSpec),
    slice([ep('10.244.1.1', 'node-a', { ready: true, serving: true, terminating: true }), ep('10.244.1.2', 'node-a', { ready: false, serving: true, terminating: true }), ep('10.244.1.3')]));
  const f = byKind(fronts, 'ClusterIP')[0];
  t.deepEqual(addrsOf(c, f), ['10.244.1.1', '10.244.1.3']);
  t.is(f.flags & L.FEF_FALLBACK, 0);
});

test('Local traffic policy: local ready endpoints, else local serving-terminating ones even when remote ones are ready (CategorizeEndpoints)', (t) => {
  const spec = { ...webSpec, internalTrafficPolicy: 'Local' };
  const draining = { ready: false, serving: true, terminating: true };
  const a = compile(node(), svc(spec), slice([ep('10.244.1.1', 'node-a', draining), ep('10.244.2.1', 'node-b')]));
  const fa = byKind(a.fronts, 'ClusterIP')[0];
  t.deepEqual(addrsOf(a.c, fa), ['10.244.1.1']);
  t.is(fa.flags & L.FEF_FALLBACK, L.FEF_FALLBACK);
  const b = compile(node(), svc(spec), slice([ep('10.244.1.1', 'node-a', draining), ep('10.244.1.2', 'node-a'), ep('10.244.2.1', 'node-b')]));
  const fb = byKind(b.fronts, 'ClusterIP')[0];
  t.deepEqual(addrsOf(b.c, fb), ['10.244.1.2']);
  t.is(fb.flags & L.FEF_FALLBACK, 0);
  // the Cluster policy falls back only when no endpoint anywhere is ready
  const cl = compile(node(), svc(webSpec), slice([ep('10.244.1.1', 'node-a', draining), ep('10.244.2.1', 'node-b')]));
  t.deepEqual(addrsOf(cl.c, byKind(cl.fronts, 'ClusterIP')[0]), ['10.244.2.1']);
});

test('a slice port without a name serves the unnamed Service port (the API server defaults the name to "")', (t) => {
  const { c, fronts } = compile(node(), svc({ clusterIP: '10.96.0.1', ports: [{ port: 80, targetPort: 8080 }] }),
    slice([ep('10.244.1.1')], [{ port: 8080 }]));
  t.deepEqual(backKeys(c, byKind(fronts, 'ClusterIP')[0]), ['10.244.1.1:8080']);
});

test('EndpointSlices kube-proxy\'s informer leaves out (labelled service.kubernetes.io/headless, or another proxy\'s service-proxy-name) add no endpoints', (t) => {
  const labelled = (name, addr, labels) => {
    const s = slice([ep(addr, 'node-a')], undefined, name);
    s.metadata.labels = { ...s.metadata.labels, ...labels };
    return s;
  };
  const spec = { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080 }] };
  const { c, fronts } = compile(node(), svc(spec), slice([ep('10.244.1.7', 'node-a')]),
    labelled('web-h', '10.244.1.8', { 'service.kubernetes.io/headless': '' }),
    labelled('web-o', '10.244.1.9', { 'service.kubernetes.io/service-proxy-name': 'other' }));
  t.deepEqual(addrsOf(c, byKind(fronts, 'ClusterIP')[0]), ['10.244.1.7']);
  // a slice labelled with the name this node serves is its own, like such a Service
  const named = compile(node({ serviceProxyName: 'wdp' }), svc(spec), slice([ep('10.244.1.7', 'node-a')]),
    labelled('web-w', '10.244.1.8', { 'service.kubernetes.io/service-proxy-name': 'wdp' }),
    labelled('web-o', '10.244.1.9', { 'service.kubernetes.io/service-proxy-name': 'other' }));
  t.deepEqual(addrsOf(named.c, byKind(named.fronts, 'ClusterIP')[0]), ['10.244.1.7', '10.244.1.8']);
});

test('kube-proxy service rules: externalIPs follow externalTrafficPolicy; hostname-only ingress and allocateLoadBalancerNodePorts false add nothing; one port number per protocol', (t) => {
  const { c, fronts } = compile(node(), svc({
    type: 'LoadBalancer', clusterIP: '10.96.0.1', externalTrafficPolicy: 'Local', allocateLoadBalancerNodePorts: false, externalIPs: ['198.51.100.1'],
    ports: [{ name: 'dns-tcp', port: 53, protocol: 'TCP' }, { name: 'dns-udp', port: 53, protocol: 'UDP' }, { name: 'dns-sctp', port: 53, protocol: 'SCTP' }],
  }, {}, { loadBalancer: { ingress: [{ hostname: 'lb.example.com' }, { ip: '192.0.2.1', hostname: 'lb2.example.com' }] } }),
  slice([ep('10.244.1.7', 'node-a'), ep('10.244.2.8', 'node-b')], [{ name: 'dns-tcp', port: 53, protocol: 'TCP' }, { name: 'dns-udp', port: 53, protocol: 'UDP' }, { name: 'dns-sctp', port: 53, protocol: 'SCTP' }]));
  t.is(byKind(fronts, 'NodePort').length, 0, 'no nodePorts allocated: no NodePort frontends');
  t.deepEqual(byKind(fronts, 'LoadBalancer').map((f) => f.addr), ['192.0.2.1', '192.0.2.1', '192.0.2.1'], 'an ingress entry with only a hostname is not an address');
  for (const kind of ['ClusterIP', 'ExternalIP', 'LoadBalancer']) t.deepEqual(byKind(fronts, kind).map((f) => f.proto).sort(), ['SCTP', 'TCP', 'UDP'], kind);
  for (const f of byKind(fronts, 'ExternalIP')) {
    t.is(f.flags & (L.FEF_EXTERNAL | L.FEF_MASQUERADE), L.FEF_EXTERNAL, 'externalIPs are external traffic: eTP Local does not masquerade');
    t.deepEqual(addrsOf(c, f), ['10.244.1.7'], 'and uses local endpoints only');
  }
});
