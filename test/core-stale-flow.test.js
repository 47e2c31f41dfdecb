// Stale flows (docs/core.md "Original-direction hit" step 2, assembly/stale.ts): a UDP flow whose
// backend id now names another backend (the compiler reuses freed ids), or any flow whose SNAT
// address is gone, is re-selected on its next client packet and never forwarded with the old
// translation; an ICMP error about such a flow's reply is dropped (drop_icmp_stale_flow, D_AUX 0:
// never held for a next hop). (A TCP/SCTP flow whose backend left keeps its own address:
// core-backend-left.) Every case runs the Wasm core and the reference model side by side
// (core = model) and checks the bytes on the wire.
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { backend, frontend, mkIr, runBoth, firstMismatch, MAC, L } from './lib/packets.js';
import { corePair, flipPair, runPair } from './lib/core-pair.js';

const OPTS = { flows: 64, batchMax: 16, snatPortMin: 40000, snatPortMax: 40063 };
const VIP = '10.96.0.1';
const CLIENT = '10.0.0.1';
const SNAT = '10.255.0.1';

const pair = (gen0) => corePair(gen0, OPTS);
const flip = flipPair;
const run = runPair;
const tcp = (flags, o = {}) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: o.src ?? CLIENT, dst: VIP, proto: 'TCP', sport: o.sport ?? 1000, dport: 80, flags });
const svc = (bes, flags = 0) => frontend({ id: 1, addr: VIP, port: 80, proto: 'TCP', flags }, bes);
const udp = (o = {}) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: o.src ?? CLIENT, dst: VIP, proto: 'UDP', sport: o.sport ?? 1000, dport: 80 });
const usvc = (bes) => frontend({ id: 1, addr: VIP, port: 80, proto: 'UDP' }, bes);
/** The core's D_AUX of the first frame of the last batch (docs/core.md "Batch"). */
const aux = (s) => s.core.dv.getUint32(s.core.descOffset(0) + L.D_AUX, true);

test('an id reused for a backend at another port re-selects a UDP flow (address equal, port differs)', (t) => {
  const a = backend({ id: 1, addr: '10.1.0.1', port: 8080 });
  const s = pair(mkIr({ frontends: [usvc([a])], backends: [a] }));
  t.is(run(t, s, [udp()], 1000)[0].p.dport, 8080);
  const b = backend({ id: 1, addr: '10.1.0.1', port: 9090 });
  flip(s, mkIr({ frontends: [usvc([b])], backends: [b] }));
  const [r] = run(t, s, [udp()], 1100);
  t.is(r.reason, 'fwd_nat');
  t.is(r.p.dport, 9090);
  t.is(r.trace.ct, L.TRCT_RESELECT);
  t.true((r.trace.stages & L.TS_STALE_RESELECT) !== 0);
  t.is(s.core.counters().global.ct_reselect, 1);
});

test('an id reused for the same address and port keeps the flow (it is the same endpoint)', (t) => {
  const a = backend({ id: 1, addr: '10.1.0.1', port: 8080 });
  const s = pair(mkIr({ frontends: [svc([a])], backends: [a] }));
  run(t, s, [tcp('S')], 1000);
  flip(s, mkIr({ frontends: [svc([])], backends: [] }));                     // removed ...
  const again = backend({ id: 1, addr: '10.1.0.1', port: 8080, outPort: 2 });   // ... and back
  flip(s, mkIr({ frontends: [svc([again])], backends: [again] }));
  const [r] = run(t, s, [tcp('A')], 1100);
  t.is(r.reason, 'fwd_nat');
  t.is(r.trace.ct, L.TRCT_HIT_ORIG);
  t.is(r.outPort, 2, 'out port of the generation in force');
  t.is(s.core.counters().global.ct_reselect, 0);
});

test('an id reused under a frontend that is gone: the UDP flow is decided again without a service (kube-proxy cleans a deleted Service\'s UDP entries), never sent to the backend its id names now', (t) => {
  const a = backend({ id: 1, addr: '10.1.0.1', port: 8080 });
  const s = pair(mkIr({ frontends: [usvc([a])], backends: [a] }));
  run(t, s, [udp()], 1000);
  const b = backend({ id: 1, addr: '10.1.0.9', port: 8080, service: 'default/other' });
  const other = frontend({ id: 2, service: 'default/other', addr: '10.96.0.2', port: 80, proto: 'UDP' }, [b]);
  flip(s, mkIr({ frontends: [other], backends: [b] }));
  t.is(s.core.counters().global.ct_active, 0, 'the flow is freed by the apply that deletes its Service');
  const [r] = run(t, s, [udp()], 1100);
  t.is(r.reason, 'host_no_match');
  t.not(r.trace.ct, L.TRCT_RESELECT, 'no flow left to re-select');
});

test('an ICMP error from the client about a reply of a TCP flow whose backend id was reused goes to the old address by its route, or is dropped without one', (t) => {
  const a = backend({ id: 1, addr: '10.1.0.1', port: 8080 });
  const s = pair(mkIr({ frontends: [svc([a])], backends: [a] }));
  run(t, s, [tcp('S')], 1000);
  // the reply the client got (VIP -> client), which the client's error quotes
  const reply = B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: '10.1.0.1', dst: CLIENT, proto: 'TCP', sport: 8080, dport: 1000, flags: 'SA' });
  t.is(run(t, s, [reply], 1010)[0].reason, 'fwd_reply');
  const quoted = B.ipPacket({ src: VIP, dst: CLIENT, proto: 'TCP', sport: 80, dport: 1000, flags: 'SA' });
  const err = () => B.icmpError({ src: CLIENT, dst: VIP, kind: 'port_unreachable', inner: quoted, srcMac: MAC.client, dstMac: MAC.node });
  t.is(run(t, s, [err()], 1020)[0].reason, 'fwd_icmp_error', 'translated while the flow holds');
  const b = backend({ id: 1, addr: '10.1.0.2', port: 8080 });
  flip(s, mkIr({ frontends: [svc([b])], backends: [b] }));
  const [gone] = run(t, s, [err()], 1030);
  t.is(gone.reason, 'drop_backend_unreachable', 'no route reaches the old address');
  t.true((gone.trace.stages & L.TS_BACKEND_LEFT) !== 0);
  t.is(gone.trace.backend, 0, 'the id names another backend now');
  flip(s, mkIr({ frontends: [svc([b])], backends: [b], routes: [{ prefix: '10.1.0.0/24', outPort: 7, dstMac: MAC.rtDst, srcMac: MAC.rtSrc }] }));
  const [r] = run(t, s, [err()], 1040);
  t.is(r.reason, 'fwd_icmp_error');
  t.is(r.outPort, 7, 'out of the route to the old address');
  t.is(r.p.dst, '10.1.0.1', 'to the old backend, never to the one its id names now');
});

test('an ICMP error from the client about a reply of a UDP flow whose backend id was reused is not translated: routed as it is (the cleanup deleted the entry), its flow freed', (t) => {
  const a = backend({ id: 1, addr: '10.1.0.1', port: 8080 });
  const route = { prefix: '10.1.0.0/24', outPort: 7, dstMac: MAC.rtDst, srcMac: MAC.rtSrc };
  const s = pair(mkIr({ frontends: [usvc([a])], backends: [a], routes: [route] }));
  run(t, s, [udp()], 1000);
  const quoted = B.ipPacket({ src: VIP, dst: CLIENT, proto: 'UDP', sport: 80, dport: 1000 });
  const err = B.icmpError({ src: CLIENT, dst: VIP, kind: 'port_unreachable', inner: quoted, srcMac: MAC.client, dstMac: MAC.node });
  const b = backend({ id: 1, addr: '10.1.0.2', port: 8080 });
  flip(s, mkIr({ frontends: [usvc([b])], backends: [b], routes: [route] }));
  const r = run(t, s, [err], 1030)[0];
  t.is(r.reason, 'host_no_match', 'no flow: the no-service path (no route to the VIP here)');
  t.is(s.core.counters().global.ct_active, 0, 'the flow is freed');
});

// kube-proxy's UDP cleanup deletes the conntrack entry of a flow whose endpoint stops serving or
// leaves (or whose Service goes away); an ICMP error the old pod then sends about the flow's
// datagram finds no entry (nf_conntrack_inet_error: no match → accepted without conntrack, so no
// NAT) and is forwarded as the pod sent it: outer source the pod, quote to the pod's address —
// which the client's connected socket does not match. Before, the core still translated it.
test('an ICMP error from a pod about a UDP flow the cleanup deleted (endpoint not serving, left, Service deleted) is routed untranslated and frees the flow', (t) => {
  const a = backend({ id: 1, addr: '10.1.0.1', port: 8080 }), b = backend({ id: 2, addr: '10.1.0.2', port: 8080 });
  const route = { prefix: '10.0.0.0/24', outPort: 7, dstMac: MAC.rtDst, srcMac: MAC.rtSrc };
  const u = (bes) => frontend({ id: 2, addr: VIP, port: 53, proto: 'UDP' }, bes);
  const ask = (sport) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: CLIENT, dst: VIP, proto: 'UDP', sport, dport: 53 });
  const unreach = (sport) => B.icmpError({ src: '10.1.0.1', dst: CLIENT, kind: 'port_unreachable', srcMac: MAC.beDst, dstMac: MAC.beSrc,
    inner: B.ipPacket({ src: CLIENT, dst: '10.1.0.1', proto: 'UDP', sport, dport: 8080, ttl: 63 }) });
  const s = pair(mkIr({ frontends: [u([a])], backends: [a], routes: [route] }));
  run(t, s, [ask(5000), ask(5001), ask(5002)], 1000);
  let r = run(t, s, [unreach(5000)], 1010);
  t.is(r[0].reason, 'fwd_icmp_error', 'translated while the backend serves');
  t.is(r[0].p.src, VIP);
  // a stops serving, b serves
  flip(s, mkIr({ frontends: [u([b])], backends: [{ ...a, state: L.BES_NOT_SERVING }, b], routes: [route] }));
  r = run(t, s, [unreach(5000)], 1100);
  t.is(r[0].reason, 'fwd_routed', 'not translated');
  t.is(r[0].p.src, '10.1.0.1', 'from the pod, as it sent it');
  t.is(s.core.counters().global.ct_active, 2, 'its flow freed');
  // a left
  flip(s, mkIr({ frontends: [u([b])], backends: [b], routes: [route] }));
  r = run(t, s, [unreach(5001)], 1200);
  t.is(r[0].reason, 'fwd_routed');
  t.is(r[0].p.src, '10.1.0.1');
  // the Service deleted
  flip(s, mkIr({ frontends: [], backends: [], routes: [route] }));
  r = run(t, s, [unreach(5002)], 1300);
  t.is(r[0].reason, 'fwd_routed');
  t.is(s.core.counters().global.ct_active, 0);
});

// The flow's own next packet would be re-selected (step 2); an error cannot start a flow, so it is
// dropped under its own reason — never drop_no_route naming the flow's backend in D_AUX, which
// would make the worker hold it for that backend's next hop (src/daemon/worker.ts), though
// resolving it could never send the frame anywhere.
test('an ICMP error from the client about a reply of a masqueraded flow whose SNAT address is gone or changed: drop_icmp_stale_flow, D_AUX 0, its held backend traced', (t) => {
  for (const [what, snatV4] of [['removed', undefined], ['changed', '10.255.0.2']]) {
    for (const outPort of [L.PORT_NONE, 2]) {
      const a = backend({ id: 4, addr: '10.1.0.1', port: 8080 });
      const fe = svc([a], L.FEF_MASQUERADE);
      const s = pair(mkIr({ frontends: [fe], backends: [a], snatV4: SNAT }));
      const [syn] = run(t, s, [tcp('S')], 1000);
      t.is(syn.p.src, SNAT);
      const reply = B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: '10.1.0.1', dst: SNAT, proto: 'TCP', sport: 8080, dport: syn.p.sport, flags: 'SA' });
      t.is(run(t, s, [reply], 1010)[0].reason, 'fwd_reply');
      const quoted = B.ipPacket({ src: VIP, dst: CLIENT, proto: 'TCP', sport: 80, dport: 1000, flags: 'SA' });
      const err = B.icmpError({ src: CLIENT, dst: VIP, kind: 'port_unreachable', inner: quoted, srcMac: MAC.client, dstMac: MAC.node });
      // the backend holds (same id, address, port); outPort PORT_NONE: its next hop is unresolved
      const held = backend({ id: 4, addr: '10.1.0.1', port: 8080, outPort });
      flip(s, mkIr({ frontends: [svc([held], L.FEF_MASQUERADE)], backends: [held], snatV4 }));
      const m = `SNAT ${what}, out port ${outPort}`;
      const [r] = run(t, s, [err], 1020);
      t.is(r.verdict, 'drop', m);
      t.is(r.reason, 'drop_icmp_stale_flow', m);
      t.is(aux(s), 0, `${m}: D_AUX 0, never held`);
      t.is(r.trace.ct, L.TRCT_HIT_ORIG, m);
      t.true((r.trace.stages & L.TS_ICMP_INNER) !== 0, m);
      t.is(r.trace.backend, 4, `${m}: the id still names the flow's backend`);
      t.false((r.trace.stages & L.TS_BACKEND_LEFT) !== 0, m);
      t.is(r.trace.front, 1, m);
      t.is(s.core.counters().reasons.drop_icmp_stale_flow, 1, m);
      t.is(s.core.counters().global.ct_active, 1, `${m}: the flow is left for its own next packet to re-select`);
    }
  }
});

test('SNAT address removed: the masqueraded flow is re-selected without SNAT, its replies to the old address no longer match; restored: new flows masquerade again', (t) => {
  const a = backend({ id: 1, addr: '10.1.0.1', port: 8080 });
  const fe = svc([a], L.FEF_MASQUERADE);
  const withSnat = mkIr({ frontends: [fe], backends: [a], snatV4: SNAT });
  const s = pair(withSnat);
  const [syn] = run(t, s, [tcp('S')], 1000);
  t.is(syn.p.src, SNAT);
  // a second masqueraded flow, left alone across the removal
  const [other] = run(t, s, [tcp('S', { sport: 2000 })], 1000);
  flip(s, mkIr({ frontends: [fe], backends: [a] }));
  // the backend's answer to the old SNAT address: no flow owns it any more
  const late = B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: '10.1.0.1', dst: SNAT, proto: 'TCP', sport: 8080, dport: other.p.sport, flags: 'SA' });
  t.is(run(t, s, [late], 1050)[0].reason, 'host_no_match');
  const [r] = run(t, s, [tcp('A')], 1100);
  t.is(r.reason, 'fwd_nat');
  t.is(r.p.src, CLIENT, 'no SNAT address: the client source, never 0.0.0.0');
  t.is(r.p.sport, 1000);
  t.is(r.trace.ct, L.TRCT_RESELECT);
  t.false((r.trace.stages & L.TS_SNAT) !== 0);
  // the address is back: the flow re-created without SNAT stays so; a new flow masquerades
  flip(s, withSnat);
  const [keep, fresh] = run(t, s, [tcp('A'), tcp('S', { sport: 3000 })], 1200);
  t.is(keep.trace.ct, L.TRCT_HIT_ORIG);
  t.is(keep.p.src, CLIENT);
  t.is(fresh.p.src, SNAT);
  t.true(fresh.p.sport >= OPTS.snatPortMin && fresh.p.sport <= OPTS.snatPortMax);
});

test('IPv6, traced dry run: a reused id is traced as a re-selection and the old flow stays until a live packet', (t) => {
  const v6 = () => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: 'fd00::1', dst: 'fd00:96::1', proto: 'UDP', sport: 5000, dport: 53 });
  const svc6 = (bes) => frontend({ id: 1, addr: 'fd00:96::1', port: 53, proto: 'UDP' }, bes);
  const a = backend({ id: 1, addr: 'fd00:1::1', port: 53 });
  const s = pair(mkIr({ frontends: [svc6([a])], backends: [a] }));
  t.is(run(t, s, [v6()], 1000)[0].p.dst, 'fd00:1::1');
  const b = backend({ id: 1, addr: 'fd00:1::2', port: 53 });
  flip(s, mkIr({ frontends: [svc6([b])], backends: [b] }));
  const dry = runBoth(s.core, s.model, [v6()], 1100, 3, { dryRun: true });
  t.is(firstMismatch(dry), undefined, 'core = model (dry run)');
  t.is(dry[0].core.trace.ct, L.TRCT_RESELECT);
  t.is(s.core.counters().global.ct_active, 1, 'the dry run changed nothing');
  const [r] = run(t, s, [v6()], 1200);
  t.is(r.p.dst, 'fd00:1::2');
  t.is(r.trace.ct, L.TRCT_RESELECT);
  t.is(s.core.counters().global.ct_active, 1, 'the stale flow was replaced, not added to');
});

test('SNAT address changed: the masqueraded flow is re-selected from the new address with a port of its own, replies to the old address no longer match', (t) => {
  const a = backend({ id: 1, addr: '10.1.0.1', port: 8080 });
  const fe = svc([a], L.FEF_MASQUERADE);
  const s = pair(mkIr({ frontends: [fe], backends: [a], snatV4: SNAT }));
  const [syn] = run(t, s, [tcp('S')], 1000);
  t.is(syn.p.src, SNAT);
  flip(s, mkIr({ frontends: [fe], backends: [a], snatV4: '10.255.0.2' }));
  const late = B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: '10.1.0.1', dst: SNAT, proto: 'TCP', sport: 8080, dport: syn.p.sport, flags: 'SA' });
  t.is(run(t, s, [late], 1050)[0].reason, 'host_no_match');
  const [r] = run(t, s, [tcp('A')], 1100);
  t.is(r.reason, 'fwd_nat');
  t.is(r.p.src, '10.255.0.2');
  t.is(r.trace.ct, L.TRCT_RESELECT);
  // its replies, to the new address and port, are the flow's
  const reply = B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: '10.1.0.1', dst: '10.255.0.2', proto: 'TCP', sport: 8080, dport: r.p.sport, flags: 'A' });
  const [back] = run(t, s, [reply], 1110);
  t.is(back.reason, 'fwd_reply');
  t.is(back.p.dst, CLIENT);
  t.is(back.p.sport, 80);
  // unchanged address: a masqueraded flow keeps going (the hash check passes)
  const [again] = run(t, s, [tcp('A')], 1120);
  t.is(again.trace.ct, L.TRCT_HIT_ORIG);
});

// kube-proxy's UDP conntrack cleanup (pkg/proxy/conntrack/cleanup.go): UDP entries toward an
// endpoint that no longer serves are deleted — also when the service port has no serving endpoint
// left (kubernetes#139629) — so the next datagram of the same 5-tuple is decided again: to a
// serving endpoint, dropped where a traffic policy leaves none, refused where the port has none;
// TCP (and SCTP) flows are left alone.
test('a UDP flow whose backend stops serving is decided again: re-selected, dropped by a Local policy, refused with nothing serving; TCP keeps it', (t) => {
  const a = backend({ id: 1, addr: '10.1.0.1', port: 8080 }), b = backend({ id: 2, addr: '10.1.0.2', port: 8080 });
  const u = (bes, flags = 0) => frontend({ id: 2, addr: VIP, port: 53, proto: 'UDP', flags }, bes);
  const udp = (sport) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: CLIENT, dst: VIP, proto: 'UDP', sport, dport: 53 });
  const s = pair(mkIr({ frontends: [svc([a]), u([a])], backends: [a, b] }));
  let r = run(t, s, [tcp('S'), udp(5000), udp(5001)], 1000);
  t.deepEqual(r.map((x) => x.p.dst), ['10.1.0.1', '10.1.0.1', '10.1.0.1']);
  // a stops serving (not ready, not terminating-serving), b is ready
  const notServing = { ...a, state: L.BES_NOT_SERVING };
  flip(s, mkIr({ frontends: [svc([b]), u([b])], backends: [notServing, b] }));
  r = run(t, s, [tcp('A'), udp(5000)], 1100);
  t.is(r[0].p.dst, '10.1.0.1', 'TCP: the flow keeps its backend');
  t.is(r[0].trace.ct, L.TRCT_HIT_ORIG);
  t.is(r[1].p.dst, '10.1.0.2', 'UDP: re-selected to the serving backend');
  t.is(r[1].trace.ct, L.TRCT_RESELECT);
  t.is(s.core.counters().global.ct_reselect, 1);
  // endpoints only elsewhere (a Local policy drops here): still cleaned, and the datagram drops
  flip(s, mkIr({ frontends: [svc([b]), u([], L.FEF_POLICY_DROP)], backends: [notServing, b] }));
  r = run(t, s, [udp(5001)], 1200);
  t.is(r[0].reason, 'drop_itp_no_local');
  // no serving endpoint at all: cleaned too, and the datagram is refused as a new connection
  const c = { ...b, state: L.BES_NOT_SERVING };
  flip(s, mkIr({ frontends: [svc([]), u([])], backends: [notServing, c] }));
  r = run(t, s, [udp(5000)], 1400);
  t.is(r[0].reason, 'reject_no_endpoints', 'nothing serving: refused, not sent to the unready pod');
  t.is(r[0].trace.ct, L.TRCT_RESELECT);
  // a not-serving backend reached by an address the port no longer has (an external IP removed):
  // no entry the cleanup looks at, the flow keeps its backend
  const ext = (bes) => frontend({ id: 3, addr: '192.0.2.10', port: 53, proto: 'UDP' }, bes);
  const udpExt = (sport) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: CLIENT, dst: '192.0.2.10', proto: 'UDP', sport, dport: 53 });
  flip(s, mkIr({ frontends: [svc([b]), u([b]), ext([b])], backends: [a, b] }));
  t.is(run(t, s, [udpExt(5002)], 1500)[0].p.dst, '10.1.0.2');
  flip(s, mkIr({ frontends: [svc([]), u([])], backends: [a, c] }));
  r = run(t, s, [udpExt(5002)], 1600);
  t.is(r[0].p.dst, '10.1.0.2', 'the removed address keeps its flow');
  t.is(r[0].trace.ct, L.TRCT_HIT_ORIG);
});

// The reply direction of the same cleanup: once kube-proxy deleted the UDP entry (its backend
// stopped serving, or left), a datagram the old pod still sends matches no entry and is not
// translated back to the service address — a connected client never takes it for the Service's
// answer. The core frees such a flow at the old pod's datagram and routes the datagram as it is;
// a serving backend's replies stay translated, and TCP is left alone.
test('a UDP datagram from a backend that stopped serving or left is no reply of the Service any more: routed untranslated, its flow freed', (t) => {
  const a = backend({ id: 1, addr: '10.1.0.1', port: 8080 }), b = backend({ id: 2, addr: '10.1.0.2', port: 8080 });
  const route = { prefix: '10.0.0.0/24', outPort: 7, dstMac: MAC.rtDst, srcMac: MAC.rtSrc };
  const u = (bes) => frontend({ id: 2, addr: VIP, port: 53, proto: 'UDP' }, bes);
  const ask = (sport) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: CLIENT, dst: VIP, proto: 'UDP', sport, dport: 53 });
  const answer = (from, sport) => B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: from, dst: CLIENT, proto: 'UDP', sport: 8080, dport: sport });
  const tcpAnswer = B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: '10.1.0.1', dst: CLIENT, proto: 'TCP', sport: 8080, dport: 1000, flags: 'A' });
  const s = pair(mkIr({ frontends: [svc([a]), u([a])], backends: [a], routes: [route] }));
  run(t, s, [tcp('S'), ask(5000), ask(5001)], 1000);
  let r = run(t, s, [answer('10.1.0.1', 5000)], 1010);
  t.is(r[0].reason, 'fwd_reply', 'translated while the backend serves');
  t.is(r[0].p.src, VIP);
  // a stops serving, b serves
  const notServing = { ...a, state: L.BES_NOT_SERVING };
  flip(s, mkIr({ frontends: [svc([b]), u([b])], backends: [notServing, b], routes: [route] }));
  r = run(t, s, [answer('10.1.0.1', 5000), tcpAnswer], 1100);
  t.is(r[0].reason, 'fwd_routed', 'the old pod\'s datagram is routed as it is');
  t.is(r[0].p.src, '10.1.0.1', 'not from the service address');
  t.is(r[1].reason, 'fwd_reply', 'TCP: the open connection\'s replies still translate');
  t.is(s.core.counters().global.ct_active, 2, 'the UDP flow freed, the other kept until its next packet');
  // the client's next datagram is a new flow, to the serving backend
  r = run(t, s, [ask(5000)], 1110);
  t.is(r[0].p.dst, '10.1.0.2');
  t.is(r[0].trace.ct, L.TRCT_NEW);
  // a backend that left: the same
  flip(s, mkIr({ frontends: [svc([b]), u([b])], backends: [b], routes: [route] }));
  r = run(t, s, [answer('10.1.0.1', 5001)], 1200);
  t.is(r[0].reason, 'fwd_routed');
  t.is(r[0].p.src, '10.1.0.1');
  // a serving backend's reply: translated
  t.is(run(t, s, [answer('10.1.0.2', 5000)], 1210)[0].reason, 'fwd_reply');
});
