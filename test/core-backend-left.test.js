// Open TCP/SCTP connections whose endpoint left the Service (docs/core.md "Original-direction
// hit", assembly/stale.ts keepsAddress / keptRoute, pipeline.ts hitLeft): kube-proxy never cleans
// TCP or SCTP conntrack entries (pkg/proxy/conntrack/cleanup.go cleans UDP only), so the kernel
// keeps translating such a connection to the old pod's address, which keeps serving it while it
// runs (a blue/green switch of a selector, a targetPort change). The core does the same: the flow
// keeps its address and port, forwarded by the route to that address; no route → dropped
// (drop_backend_unreachable), never sent elsewhere; a pure SYN on the tuple is a new connection
// and is load-balanced over the endpoints in force; UDP flows re-select as before. Every case runs
// the Wasm core and the reference model side by side (core = model) and checks the wire bytes.
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { backend, frontend, mkIr, runBoth, firstMismatch, MAC, L } from './lib/packets.js';
import { corePair, flipPair as flip, runPair as run } from './lib/core-pair.js';

const OPTS = { flows: 64, batchMax: 16, snatPortMin: 40000, snatPortMax: 40063 };
const VIP = '10.96.0.1';
const CLIENT = '10.0.0.1';
const SNAT = '10.255.0.1';
const OLD = '10.1.0.1', NEW = '10.1.0.2';
// the neighbour host route of the old pod (what the daemon programs for a learned neighbour), with
// MACs and a port of its own so the test can tell it from the backend's next hop
const OLD_ROUTE = { prefix: `${OLD}/32`, outPort: 6, dstMac: MAC.rtDst, srcMac: MAC.rtSrc };

const a = backend({ id: 1, addr: OLD, port: 8080 });
const b = backend({ id: 2, addr: NEW, port: 8080, outPort: 2 });
const svc = (bes, o = {}) => frontend({ id: 1, addr: VIP, port: 80, proto: o.proto ?? 'TCP', flags: o.flags ?? 0 }, bes);
const ir = (bes, o = {}) => mkIr({ frontends: [svc(bes, o)], backends: bes, routes: o.routes ?? [OLD_ROUTE], snatV4: o.snat });
const fromClient = (flags, o = {}) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: CLIENT, dst: VIP, proto: o.proto ?? 'TCP', sport: o.sport ?? 1000, dport: 80, flags, ttl: o.ttl, payload: o.payload });
const fromPod = (flags, o = {}) => B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: o.src ?? OLD, dst: o.dst ?? CLIENT, proto: o.proto ?? 'TCP', sport: 8080, dport: o.dport ?? 1000, flags });
const flowOf = (s, sport = 1000) => s.core.flows({ includeExpired: true }).find((f) => f.clientPort === sport);

/** A connection through the VIP to `a` (handshake complete: TCP_EST), then `a` leaves for `b`. */
function established(t, o = {}) {
  const s = corePair(ir([a], o), OPTS);
  const [syn] = run(t, s, [fromClient('S', o)], 1000);
  t.is(syn.p.dst, OLD);
  const natd = syn.p.src, nport = syn.p.sport;
  t.is(run(t, s, [fromPod('SA', { dst: natd, dport: nport })], 1001)[0].reason, 'fwd_reply');
  t.is(run(t, s, [fromClient('A', o)], 1002)[0].reason, 'fwd_nat');
  t.is(flowOf(s).state, 'tcp_established');
  flip(s, ir([b], o));
  return { s, natd, nport };
}

test('an open TCP connection whose backend left keeps its address and port through the route to it; replies come back; new connections go to the endpoints in force', (t) => {
  const { s } = established(t);
  const before = s.core.counters();
  const [r] = run(t, s, [fromClient('PA', { payload: new Uint8Array([1, 2, 3]) })], 2000);
  t.is(r.reason, 'fwd_nat');
  t.is(r.p.dst, OLD, 'the old pod, not the one in force');
  t.is(r.p.dport, 8080);
  t.is(r.outPort, OLD_ROUTE.outPort, 'out of the route to the old address');
  t.is(r.p.dstMac, MAC.rtDst);
  t.is(r.p.srcMac, MAC.rtSrc);
  t.is(r.trace.ct, L.TRCT_HIT_ORIG);
  t.is(r.trace.select, L.TRSEL_EXISTING);
  t.true((r.trace.stages & L.TS_BACKEND_LEFT) !== 0, 'traced as a flow whose backend left');
  t.is(r.trace.backend, 0, 'no backend id names it any more');
  t.is(r.trace.front, 1);
  const after = s.core.counters();
  t.is(after.global.ct_reselect, 0);
  t.is(after.global.ct_hit, before.global.ct_hit + 1);
  t.is(after.frontends[1].packets, before.frontends[1].packets + 1, 'the frontend counts it');
  t.is(after.backends[2].packets, 0, 'the backend in force does not');
  t.is(flowOf(s).backendId, 0, 'listed without a backend id');
  t.true(flowOf(s).backendLeft);
  // the old pod answers: translated back to the client as before
  const [back] = run(t, s, [fromPod('PA')], 2001);
  t.is(back.reason, 'fwd_reply');
  t.is(back.p.src, VIP);
  t.is(back.p.sport, 80);
  // a new connection is load-balanced over the endpoints in force
  const [fresh] = run(t, s, [fromClient('S', { sport: 2000 })], 2002);
  t.is(fresh.p.dst, NEW);
  t.is(fresh.trace.ct, L.TRCT_NEW);
  t.is(flowOf(s).state, 'tcp_established');
});

test('the connection closes through its old pod (FIN, FIN, last ACK), then a SYN reusing the tuple goes to the endpoints in force', (t) => {
  const { s } = established(t);
  const fin = run(t, s, [fromClient('FA')], 2000)[0];
  t.is(fin.p.dst, OLD);
  t.is(flowOf(s).state, 'tcp_half_closed_client');
  t.is(run(t, s, [fromPod('FA')], 2001)[0].reason, 'fwd_reply');
  t.is(flowOf(s).state, 'tcp_closing');
  const last = run(t, s, [fromClient('A')], 2002)[0];
  t.is(last.p.dst, OLD, 'the last ACK reaches the old pod, which can close cleanly');
  const [syn] = run(t, s, [fromClient('S')], 3000);
  t.is(syn.p.dst, NEW);
  t.is(syn.trace.ct, L.TRCT_RESELECT);
});

test('a pure SYN on an open flow whose backend left is a new connection: load-balanced over the endpoints in force', (t) => {
  const { s } = established(t);
  const [syn] = run(t, s, [fromClient('S')], 2000);
  t.is(syn.reason, 'fwd_nat');
  t.is(syn.p.dst, NEW);
  t.is(syn.trace.ct, L.TRCT_RESELECT);
  t.true((syn.trace.stages & L.TS_STALE_RESELECT) !== 0);
  t.is(s.core.counters().global.ct_reselect, 1);
  t.is(flowOf(s).backend, NEW);
  t.is(s.core.counters().global.ct_active, 1, 'the old flow was replaced');
});

test('no route to the old address (the pod is gone), a route without a port, or one of a service CIDR: dropped as drop_backend_unreachable, never sent elsewhere, the flow not refreshed', (t) => {
  const cases = [
    ['no route', []],
    ['route without a port', [{ ...OLD_ROUTE, outPort: L.PORT_NONE }]],
    ['service CIDR', [{ prefix: '10.1.0.0/16', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', serviceCidr: true }]],
  ];
  for (const [what, routes] of cases) {
    const { s } = established(t);
    flip(s, ir([b], { routes }));
    const idle = flowOf(s).idleMs;
    const [r] = run(t, s, [fromClient('PA')], 9000);
    t.is(r.verdict, 'drop', what);
    t.is(r.reason, 'drop_backend_unreachable', what);
    t.true((r.trace.stages & L.TS_BACKEND_LEFT) !== 0, what);
    t.is(s.core.counters().reasons.drop_backend_unreachable, 1, what);
    t.is(s.core.counters().global.ct_reselect, 0, `${what}: not re-selected`);
    t.true(flowOf(s).idleMs >= idle, `${what}: last_seen unchanged`);
    // the pod's address is reachable again (its neighbour answers): the connection goes on
    flip(s, ir([b]));
    t.is(run(t, s, [fromClient('PA')], 9100)[0].p.dst, OLD, what);
  }
});

test('TTL 1 on a flow whose backend left: answered with time exceeded from the service address, as on any hit', (t) => {
  const { s } = established(t);
  t.is(run(t, s, [fromClient('PA', { ttl: 1 })], 2000)[0].reason, 'reject_ttl_exceeded');
});

test('SCTP keeps its address like TCP; UDP is re-selected while its port has serving endpoints (kube-proxy cleans UDP entries only)', (t) => {
  for (const [proto, want] of [['SCTP', OLD], ['UDP', NEW]]) {
    const s = corePair(ir([a], { proto }), OPTS);
    t.is(run(t, s, [fromClient(undefined, { proto })], 1000)[0].p.dst, OLD, proto);
    flip(s, ir([b], { proto }));
    const [r] = run(t, s, [fromClient(undefined, { proto })], 1100);
    t.is(r.reason, 'fwd_nat', proto);
    t.is(r.p.dst, want, proto);
  }
});

test('a masqueraded connection keeps its SNAT source and port, its replies to the SNAT address come back; a changed SNAT address still re-selects it', (t) => {
  const o = { flags: L.FEF_MASQUERADE, snat: SNAT };
  const { s, natd, nport } = established(t, o);
  t.is(natd, SNAT);
  const [r] = run(t, s, [fromClient('PA', o)], 2000);
  t.is(r.p.dst, OLD);
  t.is(r.p.src, SNAT, 'the source the flow was created with');
  t.is(r.p.sport, nport);
  t.is(r.outPort, OLD_ROUTE.outPort);
  const [back] = run(t, s, [fromPod('PA', { dst: SNAT, dport: nport })], 2001);
  t.is(back.reason, 'fwd_reply');
  t.is(back.p.dst, CLIENT);
  t.is(back.p.dport, 1000);
  // the reply key no longer holds (another SNAT address): the flow is stale whatever its backend
  flip(s, ir([b], { ...o, snat: '10.255.0.2' }));
  const [moved] = run(t, s, [fromClient('PA', o)], 2002);
  t.is(moved.trace.ct, L.TRCT_RESELECT);
  t.is(moved.p.dst, NEW);
  t.is(moved.p.src, '10.255.0.2');
});

test('an ICMP error from the client about the old pod\'s reply goes to the old pod by its route', (t) => {
  const { s } = established(t);
  const quoted = B.ipPacket({ src: VIP, dst: CLIENT, proto: 'TCP', sport: 80, dport: 1000, flags: 'A' });
  const err = B.icmpError({ src: CLIENT, dst: VIP, kind: 'port_unreachable', inner: quoted, srcMac: MAC.client, dstMac: MAC.node });
  const [r] = run(t, s, [err], 2000);
  t.is(r.reason, 'fwd_icmp_error');
  t.is(r.p.dst, OLD);
  t.is(r.outPort, OLD_ROUTE.outPort);
  t.true((r.trace.stages & L.TS_BACKEND_LEFT) !== 0);
});

test('dry run: a flow whose backend left is traced as a hit on its old address, nothing changes', (t) => {
  const { s } = established(t);
  const c0 = s.core.counters();
  const dry = runBoth(s.core, s.model, [fromClient('FA')], 2000, 3, { dryRun: true });
  t.is(firstMismatch(dry), undefined, 'core = model (dry run)');
  t.is(dry[0].core.reason, 'fwd_nat');
  t.is(dry[0].core.trace.ct, L.TRCT_HIT_ORIG);
  t.true((dry[0].core.trace.stages & L.TS_BACKEND_LEFT) !== 0);
  t.is(flowOf(s).state, 'tcp_established', 'the FIN changed no state');
  t.is(s.core.counters().global.ct_hit, c0.global.ct_hit);
});

// The id a flow was created with may name another backend once its own left (the compiler hands a
// freed id to the next new backend): the old pod's replies and ICMP errors about the flow are then
// no backend's — traced with backend 0 (stage backend_left), never counted on the id's new owner.
test('replies and ICMP errors of a kept flow whose backend id now names another backend: backend 0, not counted on the id\'s new owner', (t) => {
  const { s } = established(t);
  const c = backend({ id: 1, addr: '10.1.0.3', port: 8080, outPort: 2 });
  flip(s, ir([c, b]));
  const before = s.core.counters();
  const [back] = run(t, s, [fromPod('PA')], 2000);
  t.is(back.reason, 'fwd_reply');
  t.is(back.p.src, VIP, 'still reverse-translated');
  t.is(back.trace.backend, 0, 'the reply is no backend\'s');
  t.true((back.trace.stages & L.TS_BACKEND_LEFT) !== 0);
  // an ICMP error from the old pod's side about a packet sent to it (reply key), and one from the
  // client about a reply (original key)
  const toPod = B.ipPacket({ src: CLIENT, dst: OLD, proto: 'TCP', sport: 1000, dport: 8080, flags: 'A' });
  const fromPodSide = B.icmpError({ src: OLD, dst: CLIENT, kind: 'port_unreachable', inner: toPod, srcMac: MAC.beDst, dstMac: MAC.beSrc });
  const quoted = B.ipPacket({ src: VIP, dst: CLIENT, proto: 'TCP', sport: 80, dport: 1000, flags: 'A' });
  const fromClientSide = B.icmpError({ src: CLIENT, dst: VIP, kind: 'port_unreachable', inner: quoted, srcMac: MAC.client, dstMac: MAC.node });
  for (const [what, frame] of [['from the pod side', fromPodSide], ['from the client', fromClientSide]]) {
    const [r] = run(t, s, [frame], 2001);
    t.is(r.reason, 'fwd_icmp_error', what);
    t.is(r.trace.backend, 0, what);
    t.true((r.trace.stages & L.TS_BACKEND_LEFT) !== 0, what);
  }
  const after = s.core.counters();
  t.is(after.backends[1].packets, before.backends[1].packets, 'the id\'s new owner counts none of them');
  // the conntrack listing: the address the flow goes to, no backend id (id 1 is 10.1.0.3's now)
  const fl = flowOf(s);
  t.is(fl.backend, OLD);
  t.is(fl.backendId, 0);
  t.true(fl.backendLeft);
  t.is(after.frontends[1].packets, before.frontends[1].packets + 3);
});

// kube-proxy's UDP cleanup (pkg/proxy/conntrack/cleanup.go) deletes a UDP entry whose DNAT
// target is not a serving endpoint of its service port also when the port has none left
// (kubernetes#139629), and the entries of a deleted Service's ports (kubernetes#141371): the
// client's next datagram is a new connection — refused while the port has no endpoints, without a
// service once it is gone (its old pod not reached), to a serving endpoint once there is one.
test('a UDP flow whose backend left is decided again: refused while its port has no endpoint, no service once the Service is gone, re-selected once the port serves', (t) => {
  const o = { proto: 'UDP' };
  const s = corePair(ir([a], o), OPTS);
  t.is(run(t, s, [fromClient(undefined, o)], 1000)[0].p.dst, OLD);
  flip(s, ir([], o));
  let [r] = run(t, s, [fromClient(undefined, o)], 1100);
  t.is(r.reason, 'reject_no_endpoints', 'no endpoints: refused as a new connection, not sent to the old pod');
  t.is(r.trace.ct, L.TRCT_RESELECT);
  // the flow is gone: a datagram of the old pod is no reply any more
  t.not(run(t, s, [fromPod(undefined, o)], 1101)[0].reason, 'fwd_reply', 'the entry was deleted');
  t.is(run(t, s, [fromClient(undefined, o)], 1102)[0].reason, 'reject_no_endpoints', 'and the next datagram likewise');
  // a serving endpoint again: the next packet is a new flow to it
  flip(s, ir([b], o));
  [r] = run(t, s, [fromClient(undefined, o)], 1200);
  t.is(r.reason, 'fwd_nat');
  t.is(r.p.dst, NEW);
  // the Service gone (the old pod's route still there): the flow is decided again, without a service
  flip(s, mkIr({ frontends: [], backends: [], routes: [OLD_ROUTE] }));
  [r] = run(t, s, [fromClient(undefined, o)], 1300);
  t.is(r.reason, 'host_no_match', 'the gone Service\'s pod is not reached: no service, no route for its address');
  t.is(r.trace.backend, 0);
});

// The Service deleted: the open connection goes on (its backend left with it), and the compiler may
// hand the Service's frontend id to another Service's frontend — the kept flow's packets are then
// no frontend's either, never counted or traced (or listed) under the other Service.
test('a kept flow whose Service is gone and whose frontend id now names another Service: traced, counted and listed without a frontend', (t) => {
  const { s } = established(t);
  const c = backend({ id: 1, addr: '10.1.0.3', port: 8080, outPort: 2, service: 'default/other' });
  const other = frontend({ id: 1, addr: '10.96.0.9', port: 80, proto: 'TCP', service: 'default/other' }, [c]);
  flip(s, mkIr({ frontends: [other], backends: [c], routes: [OLD_ROUTE] }));
  const before = s.core.counters();
  const [r] = run(t, s, [fromClient('PA')], 2000);
  t.is(r.reason, 'fwd_nat');
  t.is(r.p.dst, OLD, 'the connection goes on to its old pod');
  t.is(r.trace.front, 0, 'frontend id 1 names another Service now');
  const [back] = run(t, s, [fromPod('PA')], 2001);
  t.is(back.reason, 'fwd_reply');
  t.is(back.trace.front, 0);
  t.is(s.core.counters().frontends[1].packets, before.frontends[1].packets, 'the other Service counts none of it');
  t.like(flowOf(s), { frontendId: 0, backendId: 0, backendLeft: true, backend: OLD });
  // while the flow's own Service is there, its frontend id is kept (first test): here too once it is back
  flip(s, ir([b]));
  t.is(run(t, s, [fromClient('PA')], 2002)[0].trace.front, 1);
  t.is(flowOf(s).frontendId, 1);
});

// The frontend half of the same rule, for a flow whose backend stays: a Service deleted and
// re-created with a new ClusterIP (or another Service given its frontend id) may keep the same pod
// and backend id, so the open connection goes on to its backend as before — but its frontend id
// names another (VIP, port) now, whose counters and traces must not carry the old address's
// traffic (stale.ts heldFrontId; the conntrack listing alike).
test('a flow whose backend stays but whose Service was re-created at a new ClusterIP (its frontend id reused): forwarded to its backend, traced, counted and listed without a frontend', (t) => {
  const s = corePair(ir([a]), OPTS);
  t.is(run(t, s, [fromClient('S')], 1000)[0].p.dst, OLD);
  t.is(run(t, s, [fromPod('SA')], 1001)[0].reason, 'fwd_reply');
  const moved = (id) => mkIr({ frontends: [frontend({ id, addr: '10.96.0.9', port: 80, proto: 'TCP' }, [a])], backends: [a], routes: [OLD_ROUTE] });
  let now = 1002;
  for (const [what, next, id] of [['the same id at a new ClusterIP', moved(1), 1], ['a new id at a new ClusterIP, the old id free', moved(2), 2]]) {
    flip(s, next);
    const before = s.core.counters();
    const [r] = run(t, s, [fromClient('A')], now++);
    t.is(r.reason, 'fwd_nat', what);
    t.is(r.p.dst, OLD, `${what}: the connection goes on to its backend`);
    t.is(r.outPort, a.outPort, `${what}: by the backend's next hop (it has not left)`);
    t.is(r.trace.backend, 1, what);
    t.is(r.trace.front, 0, `${what}: frontend id 1 is not the old ClusterIP's any more`);
    t.is((r.trace.stages & L.TS_BACKEND_LEFT), 0, what);
    const [back] = run(t, s, [fromPod('PA')], now++);
    t.is(back.reason, 'fwd_reply', what);
    t.is(back.trace.front, 0, what);
    t.is(back.trace.backend, 1, what);
    const after = s.core.counters();
    t.is(after.frontends[id].packets, before.frontends[id].packets, `${what}: the new frontend counts none of it`);
    t.is(after.backends[1].packets, before.backends[1].packets + 2, `${what}: its backend counts it`);
    t.like(flowOf(s), { frontendId: 0, backendId: 1 }, what);
    t.falsy(flowOf(s).backendLeft, what);
  }
  // the Service at its old address again: the flow is its frontend's once more
  flip(s, ir([a]));
  t.is(run(t, s, [fromClient('A')], now)[0].trace.front, 1);
  t.is(flowOf(s).frontendId, 1);
});

// A flow short-circuited from an externalTrafficPolicy Local frontend to its cluster front carries
// the cluster front's id while its VIP is the external one: still its frontend (no service lookup
// finds the id under the VIP, the external frontend names it as its cluster front).
test('a pod\'s flow through an externalTrafficPolicy Local LoadBalancer IP, short-circuited to the ClusterIP\'s endpoints, stays counted under the ClusterIP frontend', (t) => {
  const LB = '198.51.100.1';
  const none = { outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' };
  const lbIr = (lbAddr) => mkIr({
    frontends: [svc([a]), frontend({ id: 2, kind: 'LoadBalancer', addr: lbAddr, port: 80, proto: 'TCP', flags: L.FEF_EXTERNAL | L.FEF_POLICY_DROP, clusterFront: 1 }, [])],
    backends: [a], routes: [OLD_ROUTE, { prefix: '10.0.0.0/24', ...none, localSource: 'pod' }],
  });
  const s = corePair(lbIr(LB), OPTS);
  const toLb = (flags) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: CLIENT, dst: LB, proto: 'TCP', sport: 1000, dport: 80, flags });
  const [syn] = run(t, s, [toLb('S')], 1000);
  t.is(syn.p.dst, OLD);
  t.is(syn.trace.front, 1, 'the cluster front');
  const [ack] = run(t, s, [toLb('A')], 1001);
  t.is(ack.trace.front, 1, 'a hit on it: still the ClusterIP frontend');
  t.is(flowOf(s).frontendId, 1);
  // the LoadBalancer IP gone (the ClusterIP stays): the flow's VIP names no frontend, id 1 is the ClusterIP's
  flip(s, lbIr('198.51.100.2'));
  t.is(run(t, s, [toLb('A')], 1002)[0].trace.front, 0);
  t.is(flowOf(s).frontendId, 0);
});

// The route a kept flow takes is remembered per address while the tables are unchanged
// (assembly/route-cache.ts, stamped with CFG_TABLE_EPOCH): every table publish must make it look
// again — also two publishes between two packets, which leave the same table set in force with
// other routes at the remembered position.
test('a kept flow follows every route change, also two generations between two of its packets', (t) => {
  const { s } = established(t);
  const rt = (prefix, outPort) => ({ prefix, outPort, dstMac: MAC.rtDst, srcMac: MAC.rtSrc });
  const send = (now) => run(t, s, [fromClient('PA')], now)[0];
  t.is(send(2000).outPort, OLD_ROUTE.outPort);
  t.is(send(2001).outPort, OLD_ROUTE.outPort, 'remembered');
  flip(s, ir([b], { routes: [rt(`${OLD}/32`, 7)] }));
  t.is(send(2002).outPort, 7, 'a new route for the address');
  flip(s, ir([b], { routes: [rt('10.1.0.0/24', 4)] }));
  t.is(send(2003).outPort, 4, 'the host route gone: the pod CIDR\'s');
  flip(s, ir([b], { routes: [] }));
  t.is(send(2004).reason, 'drop_backend_unreachable', 'no route');
  flip(s, ir([b], { routes: [rt(`${OLD}/32`, 7)] }));
  t.is(send(2005).outPort, 7);
  // two generations between two packets: the same table set is in force again, and the first
  // route entry (where the old route was) is another address's now
  flip(s, ir([b], { routes: [rt('10.1.0.0/24', 4)] }));
  flip(s, ir([b], { routes: [rt('10.9.9.9/32', 5), rt(`${OLD}/32`, 8)] }));
  const r = send(2006);
  t.is(r.reason, 'fwd_nat');
  t.is(r.outPort, 8, 'the address\'s own route, not the entry it used to be at');
  t.is(r.p.dst, OLD);
});

// The stamp is a u32 the host counts up at every publish: after 2^32 publishes it comes round to
// a value an entry still holds, whose route index then names another route (or none). The core
// empties the cache when the word goes down (it wrapped). 2^32 publishes are simulated by writing
// the word the host's counter would hold: near the top, a batch, then round to the entry's stamp.
test('a remembered route does not come back when the table epoch wraps round to its stamp', (t) => {
  const { s } = established(t);
  const epoch = () => s.core.cfg32(L.CFG_TABLE_EPOCH);
  const setEpoch = (v) => s.core.dv.setUint32(s.core.map.cfg + L.CFG_TABLE_EPOCH, v >>> 0, true);
  const rt = (prefix, outPort) => ({ prefix, outPort, dstMac: MAC.rtDst, srcMac: MAC.rtSrc });
  t.is(run(t, s, [fromClient('PA')], 2000)[0].outPort, OLD_ROUTE.outPort);
  const stamp = epoch();
  // the counter near its top: a batch sees it (a new connection, to the endpoint in force)
  setEpoch(0xfffffff0);
  flip(s, ir([b], { routes: [rt('10.9.9.9/32', 5), rt(`${OLD}/32`, 8)] }));
  t.is(run(t, s, [fromClient('S', { sport: 2000 })], 2001)[0].p.dst, NEW);
  // ... and round past 0 to the stamp of the remembered entry, these routes in force
  setEpoch(stamp);
  const [r] = run(t, s, [fromClient('PA')], 2002);
  t.is(r.reason, 'fwd_nat');
  t.is(r.outPort, 8, 'the address\'s own route, not the entry at the remembered position');
});
