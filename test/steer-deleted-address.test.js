// A TCP connection whose Service is deleted under it is kept (docs/core.md: it goes on to its old
// backend, as the kernel's conntrack entry keeps translating under kube-proxy). With several
// workers on one interface, its client's frames after the deletion have no frontend, so steering
// keys them by their destination unless it knows better (assembly/steer.ts keptFlowOwner). For a
// ClusterIP the service CIDR tells (soak-steer-deleted-service); for a LoadBalancer IP, an
// external IP or a node address (NodePort) nothing in the tables does after the apply, so the
// core keeps the addresses the applies removed (src/core/retired-fronts.ts) and steers a frame to
// one of them by its source, where its flow is.
// Placement as the kernel's fanout program does it: a pod port's frames by destination, an
// uplink's by source, IPv6 at random. Every client frame after the deletion must reach its backend.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { frame, ipPacket, icmpError } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { CLIENT_MAC, LOCAL_MAC, irFrom } from './lib/core-fixture.js';
import { workersOf } from './lib/steer-workers.js';
import { diffIr } from '../dist/src/ir/diff.js';
import { encodeDiff } from '../dist/src/ir/diff-wire.js';
import { applyReceived } from '../dist/src/daemon/worker-apply.js';
import { exportFlows, importFlows } from '../dist/src/core/flow-export.js';

const POD_PORT = 2, UPLINK = 0;
const backends = [{ id: 1, addr: '10.1.0.1', port: 8080 }, { id: 2, addr: '10.1.0.2', port: 8080 }, { id: 3, addr: '10.1.0.3', port: 8080 },
  { id: 4, addr: 'fd00:1::1', port: 8080 }, { id: 5, addr: 'fd00:1::2', port: 8080 }];
const routes = [
  { prefix: '10.96.0.0/16', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', serviceCidr: true },
  { prefix: '0.0.0.0/0', outPort: UPLINK, dstMac: '02:00:00:00:77:01', srcMac: '02:00:00:00:00:cc' },
  { prefix: '::/0', outPort: UPLINK, dstMac: '02:00:00:00:77:01', srcMac: '02:00:00:00:00:cc' },
];
const dns = { id: 9, addr: '10.96.0.11', port: 53, proto: 'UDP', backends: [1, 2, 3] };
const irWith = (fe, snat) => irFrom({ frontends: [fe, dns], backends, routes, ...snat });
const irWithout = (snat) => irFrom({ frontends: [dns], backends, routes, ...snat });

const pods = Array.from({ length: 40 }, (_, c) => `10.0.${c >> 4}.${(c & 15) + 2}`);
const outside = Array.from({ length: 40 }, (_, c) => `203.0.113.${c + 2}`);
const outside6 = Array.from({ length: 40 }, (_, c) => `2001:db8:9::${(c + 2).toString(16)}`);

const cases = [
  { name: 'a LoadBalancer IP from pod ports', fe: { kind: 'LoadBalancer', addr: '192.0.2.10', port: 80 }, clients: pods, inPort: POD_PORT, by: 'dst' },
  { name: 'an external IP from pod ports', fe: { kind: 'ExternalIP', addr: '198.51.100.7', port: 80 }, clients: pods, inPort: POD_PORT, by: 'dst' },
  { name: 'a node address (NodePort) from pod ports', fe: { kind: 'NodePort', addr: '172.18.0.2', port: 30080 }, clients: pods, inPort: POD_PORT, by: 'dst' },
  // the node address a NodePort is on is the masquerade (SNAT) address too: a frame to it is a
  // masqueraded reply only on a port of the SNAT range
  { name: 'the SNAT address (NodePort) from pod ports', fe: { kind: 'NodePort', addr: '172.18.0.2', port: 30080 }, snat: { snatV4: '172.18.0.2' }, clients: pods, inPort: POD_PORT, by: 'dst' },
  { name: 'the SNAT address (NodePort, masqueraded) from an uplink', fe: { kind: 'NodePort', addr: '172.18.0.2', port: 30080, flags: L.FEF_MASQUERADE }, snat: { snatV4: '172.18.0.2' }, clients: outside, inPort: UPLINK, by: 'src' },
  { name: 'a LoadBalancer IP from an uplink', fe: { kind: 'LoadBalancer', addr: '192.0.2.10', port: 80 }, clients: outside, inPort: UPLINK, by: 'src' },
  { name: 'an IPv6 LoadBalancer IP from an uplink', fe: { kind: 'LoadBalancer', addr: '2001:db8:1::10', port: 80, backends: [4, 5] }, clients: outside6, inPort: UPLINK, by: 'random' },
  { name: 'an IPv6 node address (NodePort) from pod ports', fe: { kind: 'NodePort', addr: 'fd00:18::2', port: 30080, backends: [4, 5] }, clients: outside6.map((a) => a.replace('2001:db8:9', 'fd00:0')), inPort: POD_PORT, by: 'random' },
];

// with more than two workers a frame may land on neither its client's worker nor its address's
// (IPv6 on an uplink, AF_XDP queues placed by RSS): placed at random too
const ofWorkers = (n) => (n === 2 ? cases : [...cases, ...cases.filter((k) => k.by !== 'random').map((k) => ({ ...k, name: `${k.name} (placed at random)`, by: 'random' })),
  { name: 'a deleted ClusterIP (placed at random)', fe: { addr: '10.96.0.20', port: 80 }, clients: pods, inPort: POD_PORT, by: 'random' }]);
const named = ['', '', 'two', 'three', 'four'];

for (const n of [2, 3, 4]) for (const k of ofWorkers(n)) {
  test(`${named[n]} workers: a connection to ${k.name} whose Service was deleted keeps meeting its flow`, (t) => {
    const fe = { id: 1, proto: 'TCP', backends: [1, 2, 3], ...k.fe };
    const { cores, run, steer, readElsewhere } = workersOf(() => irWith(fe, k.snat), n);
    const toFe = (client, flags) => ({ frame: frame({ src: client, dst: fe.addr, proto: 'TCP', sport: 40000, dport: fe.port, flags, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: k.inPort });
    const syn = run(k.clients.map((c) => toFe(c, 'S')), 1000, k.by);
    t.true(syn.every((o) => o.verdict === L.V_FORWARD), 'every SYN reaches a backend');
    // each connection by its source as it leaves (the node's SNAT address and port when masqueraded)
    const conn = (p) => `${p.src}|${p.sport}`;
    const backendOf = new Map(syn.map((o) => { const p = parseFrame(o.frame); return [conn(p), p.dst]; }));
    // the backends (pods: placed by destination) answer
    const sa = run(syn.map((o) => { const p = parseFrame(o.frame); return { frame: frame({ src: p.dst, dst: p.src, proto: 'TCP', sport: 8080, dport: p.sport, flags: 'SA', srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 1 }; }), 1001, 'dst');
    t.true(sa.every((o) => o.verdict === L.V_FORWARD && parseFrame(o.frame).src === fe.addr), 'every SYN-ACK translated back');
    if (fe.flags) t.true(syn.every((o) => parseFrame(o.frame).src === '172.18.0.2'), 'masqueraded');
    run(k.clients.map((c) => toFe(c, 'A')), 1002, k.by);
    t.is(cores.reduce((a, c) => a + c.counters().global.ct_active, 0), k.clients.length);

    // as a daemon's worker applies (its Ir patched to the next state before the table write)
    for (const c of cores) applyReceived(c, encodeDiff(diffIr(c.ir, irWithout(k.snat))));
    for (const flags of ['A', 'PA', 'FA']) {
      const out = run(k.clients.map((c) => toFe(c, flags)), 1003, k.by);
      const lost = out.filter((o) => { const p = parseFrame(o.frame); return o.verdict !== L.V_FORWARD || p.dst !== backendOf.get(conn(p)); });
      t.is(lost.length, 0, `${flags}: ${lost.length} of ${out.length} client frames missed their flow (went to a worker without it)`);
    }
    t.is(cores.reduce((a, c) => a + c.counters().global.ct_new, 0), k.clients.length, 'no flow created twice');
    // steer_handed_off counts a frame once however many hand-overs it took; the second ones are
    // steer_handed_on; every hand-over is received
    const sum = (k2) => steer.reduce((a, s) => a + s.stats[k2], 0);
    t.is(sum('handedOff'), readElsewhere(), 'each frame that left its worker counted once');
    t.is(sum('handedOff') + sum('handedOn'), sum('received'));
    if (n === 2) t.is(sum('handedOn'), 0);
  });
}

for (const n of [2, 3, 4]) test(`${named[n]} workers: a client at an address an apply removed from the frontends keeps the replies of its connections, from local and remote backends`, (t) => {
  const CLIENT = '198.51.100.7';
  const vip = { id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1, 2, 3] };
  const ext = { id: 2, kind: 'ExternalIP', addr: CLIENT, port: 80, proto: 'TCP', backends: [1, 2, 3] };
  const { cores, run, steer, readElsewhere } = workersOf(() => irFrom({ frontends: [vip, ext, dns], backends, routes }), n);
  for (const c of cores) applyReceived(c, encodeDiff(diffIr(c.ir, irFrom({ frontends: [vip, dns], backends, routes }))));
  t.true(cores.every((c) => c.retired.addresses.includes(CLIENT)));
  const syn = run(Array.from({ length: 30 }, (_, i) => ({ frame: frame({ src: CLIENT, dst: vip.addr, proto: 'TCP', sport: 40000 + i, dport: 80, flags: 'S', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: UPLINK })), 1000, 'src');
  t.true(syn.every((o) => o.verdict === L.V_FORWARD));
  t.true(new Set(syn.map((o) => parseFrame(o.frame).dst)).size > 1, 'several backends');
  const replies = syn.map((o) => { const p = parseFrame(o.frame); return frame({ src: p.dst, dst: p.src, proto: 'TCP', sport: 8080, dport: p.sport, flags: 'SA', srcMac: p.dstMac, dstMac: p.srcMac }); });
  // local backends (pod ports: placed by destination), then remote ones (an uplink: by source),
  // then at random (AF_XDP queues)
  for (const [inPort, by] of [[POD_PORT, 'dst'], [UPLINK, 'src'], [UPLINK, 'random']]) {
    const out = run(replies.map((f) => ({ frame: f, inPort })), 1001, by);
    const lost = out.filter((o) => o.verdict !== L.V_FORWARD || parseFrame(o.frame).src !== vip.addr);
    t.is(lost.length, 0, `${by}: ${lost.length} of ${out.length} replies missed their flow`);
  }
  // a reply that landed on neither worker went to its source's for a second look and was handed on:
  // counted once in steer_handed_off, its second hand-over in steer_handed_on
  const sum = (k) => steer.reduce((a, s) => a + s.stats[k], 0);
  t.is(sum('handedOff'), readElsewhere(), 'each frame that left its worker counted once');
  t.is(sum('handedOff') + sum('handedOn'), sum('received'));
  if (n > 2) t.true(sum('handedOn') > 0, 'some replies were handed on after a second look');
  else t.is(sum('handedOn'), 0);
});

test('two workers restored from a checkpoint after the Service was deleted: the restored connections keep meeting their flows (their addresses retired again)', (t) => {
  const fe = { id: 1, kind: 'LoadBalancer', addr: '192.0.2.10', port: 80, proto: 'TCP', backends: [1, 2, 3] };
  const { cores, run } = workersOf(() => irWith(fe), 2);
  const toFe = (client, flags) => ({ frame: frame({ src: client, dst: fe.addr, proto: 'TCP', sport: 40000, dport: 80, flags, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: POD_PORT });
  const syn = run(pods.map((c) => toFe(c, 'S')), 1000, 'dst');
  run(syn.map((o) => { const p = parseFrame(o.frame); return { frame: frame({ src: p.dst, dst: p.src, proto: 'TCP', sport: 8080, dport: p.sport, flags: 'SA', srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 1 }; }), 1001, 'dst');
  run(pods.map((c) => toFe(c, 'A')), 1002, 'dst');
  const backendOf = new Map(syn.map((o) => { const p = parseFrame(o.frame); return [p.src, p.dst]; }));
  const ports = [0, 1, 2].map((index) => ({ index, name: `p${index}`, mac: '02:00:00:00:00:0' + index }));
  const saved = cores.map((c) => exportFlows(c, ports, 1003));
  // the daemon restarts; the Service was deleted meanwhile: the new workers' first apply lacks it
  const next = workersOf(() => irWithout(), 2);
  next.cores.forEach((c, w) => importFlows(c, saved[w], ports, 0, 1004));
  t.is(next.cores.reduce((a, c) => a + c.counters().global.ct_active, 0), pods.length, 'every flow restored');
  t.true(next.cores.every((c) => c.retired.addresses.includes(fe.addr)));
  const out = next.run(pods.map((c) => toFe(c, 'PA')), 1005, 'dst');
  const lost = out.filter((o) => { const p = parseFrame(o.frame); return o.verdict !== L.V_FORWARD || p.dst !== backendOf.get(p.src); });
  t.is(lost.length, 0, `${lost.length} of ${out.length} client frames missed their flow`);
});

for (const n of [2, 3]) test(`${named[n]} workers: a connection to an address removed before ${L.STEER_RETIRED_MAX} others keeps meeting its flow (the older addresses in the filter, counted)`, (t) => {
  const fe = { id: 1, kind: 'LoadBalancer', addr: '192.0.2.10', port: 80, proto: 'TCP', backends: [1, 2, 3] };
  const { cores, run } = workersOf(() => irWith(fe), n);
  const toFe = (client, flags) => ({ frame: frame({ src: client, dst: fe.addr, proto: 'TCP', sport: 40000, dport: 80, flags, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: POD_PORT });
  const syn = run(pods.map((c) => toFe(c, 'S')), 1000, 'dst');
  run(syn.map((o) => { const p = parseFrame(o.frame); return { frame: frame({ src: p.dst, dst: p.src, proto: 'TCP', sport: 8080, dport: p.sport, flags: 'SA', srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 1 }; }), 1001, 'dst');
  run(pods.map((c) => toFe(c, 'A')), 1002, 'dst');
  const backendOf = new Map(syn.map((o) => { const p = parseFrame(o.frame); return [p.src, p.dst]; }));
  for (const c of cores) applyReceived(c, encodeDiff(diffIr(c.ir, irWithout())));
  // then more LoadBalancer IPs than the exact set holds come and go
  const more = Array.from({ length: L.STEER_RETIRED_MAX + 88 }, (_, i) => ({ id: 100 + i, kind: 'LoadBalancer', addr: `198.18.${i >> 8}.${i & 255}`, port: 80, proto: 'TCP', backends: [1] }));
  for (const c of cores) applyReceived(c, encodeDiff(diffIr(c.ir, irFrom({ frontends: [dns, ...more], backends, routes }))));
  for (const c of cores) applyReceived(c, encodeDiff(diffIr(c.ir, irWithout())));
  t.true(cores.every((c) => !c.retired.addresses.includes(fe.addr)), 'no longer in the exact set');
  for (const flags of ['PA', 'FA']) {
    const out = run(pods.map((c) => toFe(c, flags)), 1003, 'dst');
    const lost = out.filter((o) => { const p = parseFrame(o.frame); return o.verdict !== L.V_FORWARD || p.dst !== backendOf.get(p.src); });
    t.is(lost.length, 0, `${flags}: ${lost.length} of ${out.length} client frames missed their flow`);
  }
  const g = cores.map((c) => c.counters().global);
  t.true(g.every((x) => x.steer_retired_filtered === 89), `filtered ${g.map((x) => x.steer_retired_filtered)}`);
  t.true(g.some((x) => x.steer_retired_filter_hits > 0), 'the filter steered frames');
});

// An ICMP error about a packet a kept flow sent from the deleted address (the client's path cannot
// take it, its host unreachable, ...) is addressed to that address and quotes it: turned around, a
// client's frame to the deleted address, so it goes where that frame goes — the client's worker,
// which holds the flow and translates the error to the backend.
for (const n of [2, 3]) for (const k of cases.filter((c) => c.by !== 'src' && !c.snat)) test(`${named[n]} workers: an ICMP error quoting a packet a kept flow sent from ${k.name} whose Service was deleted reaches the worker with the flow`, (t) => {
  const fe = { id: 1, proto: 'TCP', backends: [1, 2, 3], ...k.fe };
  if (fe.addr.includes(':')) fe.backends = [4, 5];
  const { cores, run } = workersOf(() => irWith(fe), n);
  const toFe = (client, flags) => ({ frame: frame({ src: client, dst: fe.addr, proto: 'TCP', sport: 40000, dport: fe.port, flags, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: k.inPort });
  const syn = run(k.clients.map((c) => toFe(c, 'S')), 1000, k.by);
  t.true(syn.every((o) => o.verdict === L.V_FORWARD), 'every SYN reaches a backend');
  const backendOf = new Map(syn.map((o) => { const p = parseFrame(o.frame); return [p.src, p.dst]; }));
  run(syn.map((o) => { const p = parseFrame(o.frame); return { frame: frame({ src: p.dst, dst: p.src, proto: 'TCP', sport: 8080, dport: p.sport, flags: 'SA', srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 1 }; }), 1001, 'dst');
  for (const c of cores) applyReceived(c, encodeDiff(diffIr(c.ir, irWithout())));
  // the backend's next segment as the node sent it on (from the deleted address), and an error about it
  const router = fe.addr.includes(':') ? 'fd00:0::1' : '10.0.200.1';
  const errors = k.clients.map((c) => {
    const inner = ipPacket({ src: fe.addr, dst: c, proto: 'TCP', sport: fe.port, dport: 40000, flags: 'PA', ttl: 63, payload: new Uint8Array(32) });
    return { frame: icmpError({ src: router, dst: fe.addr, kind: 'host_unreachable', inner, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: k.inPort };
  });
  for (const by of n === 2 ? [k.by] : [k.by, 'random']) {
    const out = run(errors, 1002, by);
    // translated: to the client's backend, quoting the packet as the backend sent it
    const lost = out.filter((o) => { const p = parseFrame(o.frame); return o.verdict !== L.V_FORWARD || !p.inner || p.inner.src !== p.dst || p.dst !== backendOf.get(p.inner.dst); });
    t.is(out.length, errors.length);
    t.is(lost.length, 0, `${by}: ${lost.length} of ${out.length} ICMP errors reached a worker without their flow (not translated to the backend)`);
  }
  const translated = cores.reduce((a, c) => a + (c.counters().reasons.fwd_icmp_error ?? 0), 0);
  t.is(translated, errors.length * (n === 2 ? 1 : 2), 'each translated by the worker with its flow');
});
