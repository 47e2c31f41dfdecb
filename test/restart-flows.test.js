// Flow export/import across two cores (src/core/flow-export.ts, assembly/ct-restore.ts): what a
// daemon restart does between the old process's core and the new one's. The new core has other
// ids, another clock, other port indexes and an extra endpoint (so a fresh Maglev pick moves the
// flow); restored flows still go to their old backend, replies still translate, masqueraded
// flows keep their SNAT port (and it stays taken), affinity survives, and what cannot be
// restored is counted.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { Core } from '../dist/src/core/host.js';
import { frame } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { verifyChecksums } from '../dist/src/packet/checksum.js';
import { flowHash, affinityHash } from '../dist/src/core/hash.js';
import { parseAddr } from '../dist/src/util/addr.js';
import { exportFlows, importFlows, FlowExport, BackendIndex } from '../dist/src/core/flow-export.js';
import { BackendStore } from '../dist/src/ir/backend-store.js';
import { BackendColumnList, encodeBackendColumns } from '../dist/src/ir/backend-columns.js';
import { backend, frontend, mkIr, MAC } from './lib/packets.js';

const VIP = '10.96.0.10';
const ADDRS = ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4'];
const NEW_UPLINK_MAC = '02:00:00:00:0a:99';
// old run: uplink is port 0; new run: the config gained a port, uplink is port 2 with another MAC
const PORTS_A = [{ index: 0, name: 'uplink', mac: MAC.node }, { index: 1, name: 'pods', mac: MAC.beSrc }];
const PORTS_B = [{ index: 1, name: 'pods', mac: MAC.beSrc }, { index: 2, name: 'uplink', mac: NEW_UPLINK_MAC }];

/** An Ir of one TCP frontend over `addrs`, ids chosen by the caller (old and new runs differ). */
function irOf({ frontId, ids, addrs, flags = 0, snatV4 = '192.168.0.100', hairpinV4, affinityTimeoutMs }) {
  const backends = addrs.map((a, i) => backend({ id: ids[i], addr: a, port: 8080, service: 'default/web' }));
  const f = frontend({ id: frontId, addr: VIP, port: 80, service: 'default/web', flags, ...(affinityTimeoutMs ? { affinityTimeoutMs } : {}) }, backends);
  return mkIr({ frontends: [f], backends, snatV4, hairpinV4 });
}

function mkCore(ir, opts = {}) {
  const core = Core.create({ batchMax: 16, flows: 256, affinitySlots: 256, ...opts });
  core.applyIr(ir);
  return core;
}

const oldIr = (o = {}) => irOf({ frontId: 1, ids: [1, 2, 3], addrs: ADDRS.slice(0, 3), ...o });
// the new run: other ids, and an endpoint added while the daemon was down
const newIr = (o = {}) => irOf({ frontId: 3, ids: [7, 5, 6, 8], addrs: ADDRS, ...o });

const pickAddr = (ir, hash) => { const f = [...ir.frontends.values()][0]; return ir.backends.get(f.maglev[hash % f.maglev.length]).addr; };
const syn = (src, sport, o = {}) => frame({ src, dst: VIP, proto: 'TCP', sport, dport: 80, flags: 'S', seq: 1, srcMac: MAC.client, dstMac: MAC.node, ...o });
const ack = (src, sport, dstMac = MAC.node) => frame({ src, dst: VIP, proto: 'TCP', sport, dport: 80, flags: 'A', seq: 2, ack: 2, srcMac: MAC.client, dstMac });
const fromBackend = (src, dst, dport, o = {}) => frame({ src, dst, proto: 'TCP', sport: 8080, dport, flags: 'SA', seq: 9, ack: 2, srcMac: MAC.beDst, dstMac: MAC.beSrc, ...o });

/** A client port whose flow the new run's Maglev table would send elsewhere. */
function movedPort(client, a, b) {
  for (let p = 40000; p < 41000; p++) {
    const h = flowHash(parseAddr(client).bytes, parseAddr(VIP).bytes, p, 80, 6);
    if (pickAddr(a, h) !== pickAddr(b, h)) return p;
  }
  throw new Error('no moved flow found');
}

test('an established flow is restored into a core with other ids, clock and ports: it keeps its backend, replies translate', (t) => {
  const irA = oldIr(), irB = newIr();
  const a = mkCore(irA);
  const sport = movedPort('10.0.0.5', irA, irB);
  const [r1] = a.run([syn('10.0.0.5', sport)], 1000, 0);
  t.is(r1.reason, 'fwd_nat');
  const backendAddr = parseFrame(r1.frame).dst;
  t.is(a.run([fromBackend(backendAddr, '10.0.0.5', sport)], 1001, 1)[0].reason, 'fwd_reply');
  // the client's ACK completes the handshake: only then is the flow established (issue 14.8;
  // docs/core.md "TCP states")
  t.is(a.run([ack('10.0.0.5', sport)], 1001, 0)[0].reason, 'fwd_nat');

  const recs = exportFlows(a, PORTS_A, 6000);
  t.is(recs.flows.length, L.CT_SIZE);
  // the new process's clock starts near 0: last_seen lies "before" it (u32 wrap)
  const b = mkCore(irB);
  const stats = importFlows(b, recs, PORTS_B, 2000, 50);
  t.deepEqual(stats, { flows: 1, affinity: 0, staleBackends: 0, dropped: {} });
  const [f] = b.flows({}, 50);
  const newId = [...irB.backends.values()].find((x) => x.addr === backendAddr).id;
  t.like(f, { client: '10.0.0.5', clientPort: sport, vip: VIP, vipPort: 80, backend: backendAddr, backendPort: 8080, state: 'tcp_established', frontendId: 3, backendId: newId, idleMs: 6999 });
  t.is(b.counters().global.ct_active, 1);

  // the client keeps sending: same backend, although a fresh pick would now choose another
  const h = flowHash(parseAddr('10.0.0.5').bytes, parseAddr(VIP).bytes, sport, 80, 6);
  t.not(pickAddr(irB, h), backendAddr);
  const [r2] = b.run([ack('10.0.0.5', sport, NEW_UPLINK_MAC)], 60, 2);
  t.is(r2.reason, 'fwd_nat');
  t.is(parseFrame(r2.frame).dst, backendAddr);
  // the backend answers: reverse NAT toward the client's port under its new index and MAC
  const [r3] = b.run([fromBackend(backendAddr, '10.0.0.5', sport, { flags: 'A' })], 61, 1);
  t.is(r3.reason, 'fwd_reply');
  t.is(r3.outPort, 2);
  t.like(parseFrame(r3.frame), { src: VIP, sport: 80, dst: '10.0.0.5', dport: sport, srcMac: NEW_UPLINK_MAC, dstMac: MAC.client });
  t.deepEqual(verifyChecksums(r3.frame), []);
  t.is(b.counters().global.ct_new, 0, 'no new flow was created for it');
});

test('a masqueraded flow keeps its SNAT port, and the port stays taken for new flows', (t) => {
  const one = (frontId, id) => irOf({ frontId, ids: [id], addrs: ['10.1.0.1'], flags: L.FEF_MASQUERADE });
  const opts = { snatPortMin: 40000, snatPortMax: 40000 };   // one SNAT port: a second flow to the backend has none
  const a = mkCore(one(1, 1), opts);
  const [r1] = a.run([syn('10.0.0.5', 1234)], 1000, 0);
  t.is(r1.reason, 'fwd_nat');
  t.like(parseFrame(r1.frame), { src: '192.168.0.100', sport: 40000, dst: '10.1.0.1' });
  const recs = exportFlows(a, PORTS_A, 1500);

  const b = mkCore(one(4, 9), opts);
  t.is(importFlows(b, recs, PORTS_B, 0, 10).flows, 1);
  const [r2] = b.run([fromBackend('10.1.0.1', '192.168.0.100', 40000)], 11, 1);
  t.is(r2.reason, 'fwd_reply');
  t.like(parseFrame(r2.frame), { src: VIP, sport: 80, dst: '10.0.0.5', dport: 1234 });
  t.is(b.run([syn('10.0.0.6', 999)], 12, 2)[0].reason, 'drop_snat_exhausted', 'the restored flow holds port 40000');
  // control: without the restored flow the same SYN gets the port
  const c = mkCore(one(4, 9), opts);
  t.is(c.run([syn('10.0.0.6', 999)], 12, 2)[0].reason, 'fwd_nat');

  // another masquerade address now: its replies would go to the old one, so it is not restored
  const d = mkCore(irOf({ frontId: 4, ids: [9], addrs: ['10.1.0.1'], flags: L.FEF_MASQUERADE, snatV4: '192.168.0.200' }), opts);
  t.deepEqual(importFlows(d, recs, PORTS_B, 0, 10), { flows: 0, affinity: 0, staleBackends: 0, dropped: { snatChanged: 1 } });
});

test('a hairpin flow (the node to a Service whose backend is the node) keeps its hairpin address and port; another hairpin address: not restored', (t) => {
  const node = '192.168.0.100', hairpin = '169.254.42.1';
  const one = (frontId, id, hp = hairpin) => irOf({ frontId, ids: [id], addrs: [node], hairpinV4: hp });
  const a = mkCore(one(1, 1));
  const [r1] = a.run([syn(node, 1234)], 1000, 0);
  t.is(r1.reason, 'fwd_nat');
  const { sport: nport } = parseFrame(r1.frame);
  t.like(parseFrame(r1.frame), { src: hairpin, dst: node });
  const recs = exportFlows(a, PORTS_A, 1500);
  t.is(recs.hairpinV4, hairpin);

  const b = mkCore(one(4, 9));
  t.is(importFlows(b, recs, PORTS_B, 0, 10).flows, 1);
  t.like(b.flows({}, 10)[0], { natSource: hairpin, natSourcePort: nport, flags: ['snat', 'hairpin'] });
  const [r2] = b.run([fromBackend(node, hairpin, nport)], 11, 1);
  t.is(r2.reason, 'fwd_reply');
  t.like(parseFrame(r2.frame), { src: VIP, sport: 80, dst: node, dport: 1234 });

  const c = mkCore(one(4, 9, '169.254.42.2'));
  t.deepEqual(importFlows(c, recs, PORTS_B, 0, 10), { flows: 0, affinity: 0, staleBackends: 0, dropped: { snatChanged: 1 } });
  // a checkpoint written before hairpin addresses existed has none: such flows cannot be hairpin ones
  const d = mkCore(one(4, 9));
  t.deepEqual(importFlows(d, { ...recs, hairpinV4: undefined }, PORTS_B, 0, 10).dropped, { snatChanged: 1 });
});

test('a flow whose backend vanished is kept with backend 0: replies translate, the next packet goes on to its old address by the route to it (dropped without one), a new SYN re-selects', (t) => {
  const a = mkCore(oldIr());
  const [r1] = a.run([syn('10.0.0.5', 40000)], 1000, 0);
  const gone = parseFrame(r1.frame).dst;
  a.run([fromBackend(gone, '10.0.0.5', 40000)], 1001, 1);
  const recs = exportFlows(a, PORTS_A, 1002);
  const left = ADDRS.filter((x) => x !== gone);
  const irB = irOf({ frontId: 2, ids: [11, 12, 13], addrs: left });
  const b = mkCore(irB);
  t.deepEqual(importFlows(b, recs, PORTS_B, 0, 5), { flows: 1, affinity: 0, staleBackends: 1, dropped: {} });
  t.is(b.flows({}, 5)[0].backendId, 0);
  t.is(b.run([fromBackend(gone, '10.0.0.5', 40000, { flags: 'A' })], 6, 1)[0].reason, 'fwd_reply');
  // an open TCP connection whose backend left stays on its address (docs/core.md "Original-direction hit")
  t.is(b.run([ack('10.0.0.5', 40000, NEW_UPLINK_MAC)], 7, 2)[0].reason, 'drop_backend_unreachable', 'no route reaches the old address');
  b.applyIr({ ...irB, routes: [{ prefix: `${gone}/32`, outPort: 1, dstMac: MAC.beDst, srcMac: MAC.beSrc }] });
  const [kept] = b.run([ack('10.0.0.5', 40000, NEW_UPLINK_MAC)], 8, 2);
  t.is(kept.reason, 'fwd_nat');
  t.is(parseFrame(kept.frame).dst, gone, 'the old pod, by the route to it');
  // a new connection on the same tuple is load-balanced over the endpoints in force
  const [r2] = b.run([syn('10.0.0.5', 40000, { dstMac: NEW_UPLINK_MAC })], 9, 2);
  t.is(r2.reason, 'fwd_nat');
  t.true(left.includes(parseFrame(r2.frame).dst));
  t.is(b.counters().global.ct_reselect, 1);
});

// A live core keeps an open TCP connection whose Service was deleted (its backend left with it)
// on the old pod's address by the route to it, as the kernel keeps its conntrack entry under
// kube-proxy (docs/core.md "Original-direction hit"): a restore in between must not drop it.
test('an open connection whose Service was deleted goes on to its old pod after a restore, as it does live: kept without a frontend or backend', (t) => {
  const route = (addr) => ({ prefix: `${addr}/32`, outPort: 1, dstMac: MAC.beDst, srcMac: MAC.beSrc });
  const a = mkCore(oldIr());
  const [r1] = a.run([syn('10.0.0.5', 40000)], 1000, 0);
  const pod = parseFrame(r1.frame).dst;
  a.run([fromBackend(pod, '10.0.0.5', 40000)], 1001, 1);
  a.run([ack('10.0.0.5', 40000)], 1002, 0);
  // the Service is deleted while the daemon runs: the connection goes on (the live behaviour)
  const none = mkIr({ frontends: [], backends: [], routes: [route(pod)] });
  a.applyIr(none);
  const [live] = a.run([ack('10.0.0.5', 40000)], 1003, 0);
  t.is(live.reason, 'fwd_nat');
  t.is(parseFrame(live.frame).dst, pod);
  // restart: the same connection, restored into a core without the Service
  const b = mkCore(none);
  t.deepEqual(importFlows(b, exportFlows(a, PORTS_A, 1004), PORTS_B, 0, 5), { flows: 1, affinity: 0, staleBackends: 1, dropped: {} });
  t.like(b.flows({}, 5)[0], { frontendId: 0, backendId: 0, backend: pod, state: 'tcp_established' });
  const [kept] = b.run([ack('10.0.0.5', 40000, NEW_UPLINK_MAC)], 6, 2);
  t.is(kept.reason, 'fwd_nat');
  t.is(parseFrame(kept.frame).dst, pod, 'to the old pod, by the route to it');
  const [back] = b.run([fromBackend(pod, '10.0.0.5', 40000, { flags: 'A' })], 7, 1);
  t.is(back.reason, 'fwd_reply');
  t.is(parseFrame(back.frame).src, VIP);
});

test('affinity entries are restored under the new frontend id and win over a fresh Maglev pick', (t) => {
  const o = { flags: L.FEF_AFFINITY, affinityTimeoutMs: 10_000 };
  const irA = oldIr(o), irB = newIr(o);
  let client;
  for (let i = 2; i < 250 && !client; i++) {
    const c = `10.0.1.${i}`;
    if (pickAddr(irA, affinityHash(parseAddr(c).bytes, 1)) !== pickAddr(irB, affinityHash(parseAddr(c).bytes, 3))) client = c;
  }
  t.truthy(client);
  const a = mkCore(irA);
  const [r1] = a.run([syn(client, 5000)], 1000, 0);
  const chosen = parseFrame(r1.frame).dst;
  const recs = exportFlows(a, PORTS_A, 4000);
  t.is(recs.affinity.length, L.AFF_SIZE);

  const b = mkCore(irB);
  t.like(importFlows(b, recs, PORTS_B, 1000, 20), { flows: 1, affinity: 1 });
  // a new connection from the same client (another port): the affinity entry decides
  const [r2] = b.run([syn(client, 6000)], 30, 2);
  t.is(r2.reason, 'fwd_nat');
  t.is(parseFrame(r2.frame).dst, chosen);
  t.is(b.counters().global.aff_hit, 1);

  // idle longer than the timeout once the downtime is counted: not restored
  const late = mkCore(irB);
  t.like(importFlows(late, recs, PORTS_B, 8000, 20), { affinity: 0, dropped: { affinityExpired: 1 } });
});

// A pin holds only while its backend is in its frontend's set (src/core/affinity-pins.ts): an
// internalTrafficPolicy turned Local while the daemon was down leaves the endpoint in the Service
// but out of the ClusterIP's set.
test('an affinity entry whose backend left its frontend\'s set while the daemon was down is not restored', (t) => {
  const o = { flags: L.FEF_AFFINITY, affinityTimeoutMs: 10_000 };
  const a = mkCore(oldIr(o));
  const client = '10.0.1.7';
  const chosen = parseFrame(a.run([syn(client, 5000)], 1000, 0)[0].frame).dst;
  const recs = exportFlows(a, PORTS_A, 4000);
  const bes = ADDRS.map((addr, i) => backend({ id: [7, 5, 6, 8][i], addr, port: 8080, service: 'default/web' }));
  const f = frontend({ id: 3, addr: VIP, port: 80, service: 'default/web', ...o }, bes.filter((b) => b.addr !== chosen));
  const b = mkCore(mkIr({ frontends: [f], backends: bes, snatV4: '192.168.0.100' }));
  t.deepEqual(importFlows(b, recs, PORTS_B, 1000, 20), { flows: 1, affinity: 0, staleBackends: 0, dropped: { affinityStaleBackend: 1 } });
  const [r2] = b.run([syn(client, 6000)], 30, 2);
  t.is(r2.reason, 'fwd_nat');
  t.not(parseFrame(r2.frame).dst, chosen, 'a fresh pick among the set');
  t.is(b.counters().global.aff_hit, 0);
});

test('what cannot be restored is counted, never thrown: expired, port gone, invalid, duplicate (a gone service\'s flows are kept)', (t) => {
  const a = mkCore(oldIr());
  a.run([syn('10.0.0.5', 40000), syn('10.0.0.6', 40001)], 1000, 0);
  a.run([fromBackend(parseFrame(a.run([ack('10.0.0.5', 40000)], 1001, 0)[0].frame).dst, '10.0.0.5', 40000)], 1002, 1);
  const recs = exportFlows(a, PORTS_A, 1003);
  t.is(recs.flows.length, 2 * L.CT_SIZE);

  // 25 h of downtime: the SYN-only flow (60 s) and the established one (24 h) have both expired
  t.deepEqual(importFlows(mkCore(newIr()), recs, PORTS_B, 25 * 3600_000, 5).dropped, { expired: 2 });
  // the Service is gone: its flows are kept, as live (test below)
  const other = mkIr({ frontends: [frontend({ id: 1, addr: '10.96.9.9', port: 80, service: 'default/x' }, [])], backends: [] });
  t.deepEqual(importFlows(mkCore(other), recs, PORTS_B, 0, 5), { flows: 2, affinity: 0, staleBackends: 2, dropped: {} });
  const udpBackend = backend({ id: 1, addr: ADDRS[0], port: 8080, service: 'default/web' });
  const u = mkCore(mkIr({ frontends: [frontend({ id: 1, addr: VIP, port: 80, proto: 'UDP', service: 'default/web' }, [udpBackend])], backends: [udpBackend] }));
  u.run([frame({ src: '10.0.0.7', dst: VIP, proto: 'UDP', sport: 5353, dport: 80, srcMac: MAC.client, dstMac: MAC.node })], 1000, 0);
  t.deepEqual(importFlows(mkCore(other), exportFlows(u, PORTS_A, 1001), PORTS_B, 0, 5), { flows: 1, affinity: 0, staleBackends: 1, dropped: {} });
  // the port the clients came in on is not configured any more
  t.deepEqual(importFlows(mkCore(newIr()), recs, [PORTS_B[0]], 0, 5).dropped, { portGone: 2 });
  // a damaged record, and the same record twice
  const bad = { ...recs, flows: new Uint8Array([...recs.flows.subarray(0, L.CT_SIZE), ...recs.flows.subarray(0, L.CT_SIZE), ...recs.flows.subarray(L.CT_SIZE)]) };
  bad.flows[2 * L.CT_SIZE + L.CT_STATE] = L.CTS_TCP_HALF_CLOSED_REPLY + 1;
  const s = importFlows(mkCore(newIr()), bad, PORTS_B, 0, 5);
  t.deepEqual(s, { flows: 1, affinity: 0, staleBackends: 0, dropped: { clash: 1, invalid: 1 } });
  t.throws(() => importFlows(mkCore(newIr()), { ...recs, flows: recs.flows.subarray(1) }, PORTS_B), { message: /whole entries/ });
});

// CT_OUT_PORT is a reserved field the core never writes (nor reads): a flow it creates has 0
// there, and an imported one must look the same, whatever the file holds — not a saved port index
// remapped to the current port order (which turned the core's 0, saved port 0 = uplink, into 2).
test('the reserved CT_OUT_PORT is imported as 0, as the core leaves it in a flow it creates, never remapped as a port index', (t) => {
  /** CT_OUT_PORT of every flow in use in `core`. */
  const outPorts = (core) => {
    const out = [];
    for (let f = 1; f <= core.map.ctFlowsMax; f++) {
      const e = core.map.ctFlows + f * L.CT_SIZE;
      if (core.dv.getUint8(e + L.CT_STATE) !== L.CTS_NONE) out.push(core.dv.getUint16(e + L.CT_OUT_PORT, true));
    }
    return out;
  };
  const a = mkCore(oldIr());
  a.run([syn('10.0.0.5', 40000)], 1000, 0);
  t.deepEqual(outPorts(a), [0], 'the core leaves it 0');
  const recs = exportFlows(a, PORTS_A, 1001);
  const rv = new DataView(recs.flows.buffer, recs.flows.byteOffset, recs.flows.byteLength);
  t.is(rv.getUint16(L.CT_OUT_PORT, true), 0, 'saved as the core had it');
  // 0 and 1 are port indexes of the saved run (uplink, pods: now 2 and 1), 7 none, 0xffff PORT_NONE
  for (const saved of [0, 1, 7, L.PORT_NONE]) {
    const flows = recs.flows.slice();
    new DataView(flows.buffer).setUint16(L.CT_OUT_PORT, saved, true);
    const b = mkCore(newIr());
    t.is(importFlows(b, { ...recs, flows }, PORTS_B, 0, 5).flows, 1);
    t.deepEqual(outPorts(b), [0], `saved ${saved}`);
  }
});

test('a smaller table takes what fits and counts the rest as full', (t) => {
  const a = mkCore(oldIr());
  const frames = [];
  for (let i = 0; i < 40; i++) frames.push(syn('10.0.0.5', 41000 + i));
  a.run(frames, 1000, 0);
  // established: a reply for each, so none is evictable in the small table
  for (const f of a.flows({}, 1001)) a.run([fromBackend(f.backend, '10.0.0.5', f.clientPort)], 1001, 1);
  const recs = exportFlows(a, PORTS_A, 1002);
  const b = mkCore(newIr(), { flows: 16 });
  const s = importFlows(b, recs, PORTS_B, 0, 5);
  t.is(s.flows, 16);
  t.is(s.dropped.full, 24);
  t.is(b.flows({}, 5).length, 16);
});

test('IPv6 and UDP flows round-trip too: state, replied flag and reverse NAT', (t) => {
  const v6 = ['fd00:1::1', 'fd00:1::2', 'fd00:1::3'];
  const mk6 = (frontId, ids, addrs) => {
    const backends = addrs.map((a, i) => backend({ id: ids[i], addr: a, port: 5353, service: 'default/dns' }));
    return mkIr({ frontends: [frontend({ id: frontId, addr: 'fd00:96::10', port: 53, proto: 'UDP', service: 'default/dns' }, backends)], backends });
  };
  const a = mkCore(mk6(1, [1, 2], v6.slice(0, 2)));
  const q = frame({ src: 'fd00::5', dst: 'fd00:96::10', proto: 'UDP', sport: 3333, dport: 53, srcMac: MAC.client, dstMac: MAC.node });
  const [r1] = a.run([q], 1000, 0);
  t.is(r1.reason, 'fwd_nat');
  const be6 = parseFrame(r1.frame).dst;
  a.run([frame({ src: be6, dst: 'fd00::5', proto: 'UDP', sport: 5353, dport: 3333, srcMac: MAC.beDst, dstMac: MAC.beSrc })], 1001, 1);
  const b = mkCore(mk6(9, [4, 5, 6], v6));
  t.deepEqual(importFlows(b, exportFlows(a, PORTS_A, 1500), PORTS_B, 100, 7), { flows: 1, affinity: 0, staleBackends: 0, dropped: {} });
  // (answered at once: not a stream, the kernel's UDP conntrack; the replied flag comes along)
  t.like(b.flows({}, 7)[0], { family: 6, proto: 'UDP', client: 'fd00::5', backend: be6, state: 'udp', idleMs: 599, frontendId: 9 });
  t.true(b.flows({}, 7)[0].flags.includes('replied'));
  const [r2] = b.run([frame({ src: be6, dst: 'fd00::5', proto: 'UDP', sport: 5353, dport: 3333, srcMac: MAC.beDst, dstMac: MAC.beSrc })], 8, 1);
  t.is(r2.reason, 'fwd_reply');
  t.like(parseFrame(r2.frame), { src: 'fd00:96::10', sport: 53, dst: 'fd00::5', dport: 3333 });
  t.deepEqual(verifyChecksums(r2.frame), []);
  t.is(parseFrame(b.run([q], 9, 2)[0].frame).dst, be6, 'the next query stays on its backend');
});

test('an export in slices (as a forwarding worker does it) gives the same records as one pass', (t) => {
  const o = { flags: L.FEF_AFFINITY, affinityTimeoutMs: 10_000 };
  const a = mkCore(oldIr(o), { flows: 64, affinitySlots: 16 });
  const frames = [];
  for (let i = 0; i < 20; i++) frames.push(syn(`10.0.2.${i + 1}`, 30000 + i));
  a.run(frames, 1000, 0);
  const whole = exportFlows(a, PORTS_A, 1500);
  t.is(whole.flows.length, 20 * L.CT_SIZE);
  t.true(whole.affinity.length > 0);
  const x = new FlowExport(a, PORTS_A);
  let steps = 0;
  while (!x.step(7, 1500)) steps++;
  t.true(steps >= (64 + 16) / 7 - 1, `read in ${steps + 1} slices`);
  t.deepEqual(x.result(), whole);
});

test('the restore\'s backend index: per Service port, by (address, port), the last of a duplicate in Ir order; other ports and Services apart', (t) => {
  const be = (id, service, portName, addr, port) => [id, { id, service, portName, addr, family: addr.includes(':') ? 6 : 4, port }];
  const backends = new Map([
    be(1, 'ns/a', 'http', '10.0.0.1', 80), be(2, 'ns/a', 'http', '10.0.0.2', 80), be(3, 'ns/a', 'dns', '10.0.0.1', 53),
    be(4, 'ns/b', '', '10.0.0.1', 80), be(5, 'ns/a', 'http', 'fd00::1', 80), be(6, 'ns/a', 'http', '10.0.0.2', 80),
  ]);
  // a worker's store: rows 1..5 received by column, 6 as an object (an endpoint change)
  const store = new BackendStore();
  const full = (b) => ({ ...b, state: 1, outPort: 1, dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:02' });
  store.setRows(new BackendColumnList(structuredClone(encodeBackendColumns([...backends.values()].slice(0, 5).map(full)))));
  store.set(6, full(backends.get(6)));
  for (const bs of [backends, store]) check(t, new BackendIndex({ frontends: new Map(), backends: bs, routes: [] }));
});

function check(t, idx) {
  const key = (addr, port) => { const a = parseAddr(addr); return a.family === 4 ? (((a.bytes[0] << 24) | (a.bytes[1] << 16) | (a.bytes[2] << 8) | a.bytes[3]) >>> 0) * 65536 + port : `${addr}|${port}`; };
  const http = idx.of('ns/a', 'http');
  t.is(http.size, 3);
  t.is(http.get(key('10.0.0.1', 80)), 1);
  t.is(http.get(key('10.0.0.2', 80)), 6, 'a later backend with the same (address, port) wins, as Map.set over the Ir did');
  t.is(http.get(key('fd00::1', 80)), 5);
  t.deepEqual([...idx.of('ns/a', 'dns').values()], [3]);
  t.deepEqual([...idx.of('ns/b', undefined).values()], [4], 'an unnamed port is the empty name');
  t.is(idx.of('ns/c', 'http').size, 0);
  t.is(idx.of('ns/a', 'http'), http, 'built once per Service port');
}

test('a UDP flow saved as replied by a build before UDP streams (every answered query) is restored as udp: evictable, the UDP timeout; a stream stays one', (t) => {
  const dns = (frontId, ids) => {
    const backends = ADDRS.slice(0, 2).map((a, i) => backend({ id: ids[i], addr: a, port: 5353, service: 'default/dns' }));
    return mkIr({ frontends: [frontend({ id: frontId, addr: VIP, port: 53, proto: 'UDP', service: 'default/dns' }, backends)], backends });
  };
  const a = mkCore(dns(1, [1, 2]));
  const q = (sport) => frame({ src: '10.0.0.5', dst: VIP, proto: 'UDP', sport, dport: 53, srcMac: MAC.client, dstMac: MAC.node });
  const answer = (be, dport) => frame({ src: be, dst: '10.0.0.5', proto: 'UDP', sport: 5353, dport, srcMac: MAC.beDst, dstMac: MAC.beSrc });
  // a query answered at once, and a stream (a query again 3 s after the first)
  for (const sport of [3333, 4444]) a.run([answer(parseFrame(a.run([q(sport)], 1000, 0)[0].frame).dst, sport)], 1001, 1);
  a.run([q(4444)], 4000, 0);
  const recs = exportFlows(a, PORTS_A, 4000);
  const byPort = (flows) => Object.fromEntries(flows.map((f) => [f.clientPort, f.state]));
  t.deepEqual(byPort(a.flows({}, 4000)), { 3333: 'udp', 4444: 'udp_replied' });
  // the build before streams saved every answered UDP flow as UDP_REPLIED
  for (let o = 0; o < recs.flows.length; o += L.CT_SIZE) recs.flows[o + L.CT_STATE] = L.CTS_UDP_REPLIED;
  const b = mkCore(dns(5, [7, 8]));
  t.deepEqual(importFlows(b, recs, PORTS_B, 0, 10).dropped, {});
  t.deepEqual(byPort(b.flows({}, 10)), { 3333: 'udp', 4444: 'udp_replied' }, 'the answered query is no stream: evictable, not held 120 s');
  // and past the UDP timeout (30 s idle), the old record is not restored at all
  t.deepEqual(importFlows(mkCore(dns(5, [7, 8])), recs, PORTS_B, 40_000, 10).dropped, { expired: 1 });
});

// externalTrafficPolicy Local: a pod's or the node's own flow to the NodePort is short-circuited
// to the port's cluster front (its ClusterIP, or its ClusterPolicy frontend) and recorded under
// it (assembly/pipeline.ts newFlow); an outside client's stays the NodePort's. A restore finds the
// NodePort by the flow's (VIP, port) and must then derive the cluster front as the core does, on
// the new tables: the flow is counted, traced and listed under the same frontend as before.
const NODE_IP = '192.168.0.1', NODE_PORT = 30080, CLUSTER_IP = '10.96.0.10';
const ETP = { local: '10.244.1.5', remote: '10.244.2.5' };
// the pods port: 1 in the old run, 3 in the new one (a pod outside the pod CIDR is known by it)
const PORTS_ETP_A = [{ index: 0, name: 'uplink', mac: MAC.node }, { index: 1, name: 'pods', mac: MAC.beSrc }];
const PORTS_ETP_B = [{ index: 2, name: 'uplink', mac: NEW_UPLINK_MAC }, { index: 3, name: 'pods', mac: MAC.beSrc }];

/** The Ir of a Service with a ClusterIP and an externalTrafficPolicy Local NodePort (only
 * ETP.local is on this node); `ids`: { cluster, nodePort, local, remote, policy? } — with `policy`
 * (internalTrafficPolicy Local too) the cluster front is a ClusterPolicy frontend of that id and
 * the ClusterIP holds the local endpoint only. `pods`: the pods port's index. */
function etpIr(ids, pods, aff = false) {
  const svc = { service: 'default/etp', ...(aff ? { flags: L.FEF_AFFINITY, affinityTimeoutMs: 10_000 } : {}) };
  const local = backend({ id: ids.local, addr: ETP.local, port: 8080, outPort: pods, ...svc });
  const remote = backend({ id: ids.remote, addr: ETP.remote, port: 8080, outPort: pods, ...svc });
  const cf = ids.policy ?? ids.cluster;
  const fronts = [
    frontend({ id: ids.cluster, addr: CLUSTER_IP, port: 80, ...svc }, ids.policy ? [local] : [local, remote]),
    ...(ids.policy ? [frontend({ id: ids.policy, addr: CLUSTER_IP, port: 80, kind: 'ClusterPolicy', ...svc }, [local, remote])] : []),
    frontend({ id: ids.nodePort, addr: NODE_IP, port: NODE_PORT, kind: 'NodePort', clusterFront: cf, ...svc, flags: L.FEF_EXTERNAL | (svc.flags ?? 0) }, [local]),
  ];
  const none = { outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' };
  const routes = [
    { prefix: '0.0.0.0/0', outPort: pods, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
    { prefix: '10.244.0.0/16', ...none, localSource: 'pod' },
    { prefix: '0.0.0.0/0', ...none, outPort: pods, localSource: 'podPort' },
    { prefix: `${NODE_IP}/32`, ...none, localSource: 'node' },
  ];
  return mkIr({ frontends: fronts, backends: [local, remote], routes, snatV4: NODE_IP });
}

test('a flow short-circuited to its cluster front (externalTrafficPolicy Local, an in-cluster source) is restored under the new cluster front, as the core records it: listed, traced and counted so; it keeps its backend', (t) => {
  const idsA = { cluster: 1, nodePort: 2, local: 1, remote: 2 };
  const a = mkCore(etpIr(idsA, 1));
  const toNodePort = (c, flags, inPort, dstMac = MAC.node) => ({ inPort, frame: frame({
    src: c.src, dst: NODE_IP, proto: 'TCP', sport: c.sport, dport: NODE_PORT, flags, seq: flags === 'S' ? 1 : 2, ...(flags === 'S' ? {} : { ack: 10 }), srcMac: MAC.client, dstMac,
  }) });
  // a pod (pod CIDR), a pod known by its port (outside the pod CIDR), the node itself (masqueraded), an outside client
  const clients = [
    { name: 'pod', src: '10.244.1.7', inPort: 1, inPortB: 3 },
    { name: 'podPort', src: '172.16.0.9', inPort: 1, inPortB: 3 },
    { name: 'node', src: NODE_IP, inPort: 0, inPortB: 2 },
    { name: 'outside', src: '203.0.113.9', inPort: 0, inPortB: 2 },
  ];
  // the in-cluster sources take a port whose flow goes to the remote endpoint (not in the NodePort's set)
  const scratch = mkCore(etpIr(idsA, 1));
  let now = 1000;
  for (const c of clients) {
    c.sport = 20000;
    while (c.name !== 'outside' && parseFrame(scratch.run([toNodePort(c, 'S', c.inPort)], now)[0].frame).dst !== ETP.remote) c.sport++;
    const [r] = a.run([toNodePort(c, 'S', c.inPort)], ++now);
    t.is(r.reason, 'fwd_nat', c.name);
    const out = parseFrame(r.frame);
    c.backend = out.dst;
    // the backend answers, the client acknowledges: established
    const [back] = a.run([fromBackend(out.dst, out.src, out.sport, { srcMac: MAC.beDst })], ++now, 1);
    t.is(back.reason, 'fwd_reply', c.name);
    t.is(a.run([toNodePort(c, 'A', c.inPort)], ++now)[0].reason, 'fwd_nat', c.name);
  }
  const trace = (core, c, at, inPort, dstMac) => {
    core.setCfg32(L.CFG_TRACE, L.TRACE_ON);
    try {
      const [r] = core.run([toNodePort(c, 'A', inPort, dstMac)], at);
      return { reason: r.reason, dst: parseFrame(r.frame).dst, front: core.traceRecord(0).front, ct: core.traceRecord(0).ct };
    } finally { core.setCfg32(L.CFG_TRACE, 0); }
  };
  const flowOf = (core, c, at) => core.flows({ client: c.src }, at).find((f) => f.clientPort === c.sport);
  // live: the in-cluster sources' flows are the cluster front's, the outside client's the NodePort's
  t.deepEqual(clients.map((c) => flowOf(a, c, now).state), ['tcp_established', 'tcp_established', 'tcp_established', 'tcp_established']);
  t.deepEqual(clients.map((c) => flowOf(a, c, now).frontendId), [1, 1, 1, 2]);
  t.deepEqual(clients.map((c) => trace(a, c, ++now, c.inPort).front), [1, 1, 1, 2]);
  t.true(flowOf(a, clients[2], now).flags.includes('snat'), 'the node is masqueraded');
  const recs = exportFlows(a, PORTS_ETP_A, ++now);
  // only the outside client's flow went to the local endpoint (the NodePort's set)
  t.deepEqual(clients.map((c) => c.backend), [ETP.remote, ETP.remote, ETP.remote, ETP.local]);

  for (const [what, idsB, cf] of [
    ['ClusterIP cluster front', { cluster: 7, nodePort: 4, local: 9, remote: 5 }, 7],
    ['ClusterPolicy cluster front (internalTrafficPolicy Local now)', { cluster: 7, nodePort: 4, local: 9, remote: 5, policy: 11 }, 11],
  ]) {
    const b = mkCore(etpIr(idsB, 3));
    t.deepEqual(importFlows(b, recs, PORTS_ETP_B, 0, 50), { flows: 4, affinity: 0, staleBackends: 0, dropped: {} }, what);
    t.deepEqual(clients.map((c) => flowOf(b, c, 50).frontendId), [cf, cf, cf, 4], `${what}: listed`);
    // the connections go on to their backends (the remote one too, which the NodePort's own set
    // lacks), traced and counted under the frontend the flow was recorded under
    const hits = clients.map((c) => trace(b, c, 60, c.inPortB, c.inPortB === 2 ? NEW_UPLINK_MAC : MAC.node));
    t.deepEqual(hits.map((h) => [h.reason, h.dst, h.front, h.ct]), clients.map((c, i) =>
      ['fwd_nat', c.backend, i < 3 ? cf : 4, L.TRCT_HIT_ORIG]), `${what}: forwarded`);
    const counters = b.counters().frontends;
    t.is(counters[cf].packets, 3, `${what}: counted under the cluster front`);
    t.is(counters[4].packets, 1, `${what}: the outside client under the NodePort`);
    t.is(b.counters().global.ct_new, 0, what);
  }
});

// With internalTrafficPolicy Local too the cluster front is the port's ClusterPolicy frontend,
// which shares the ClusterIP's (VIP, port) but not its endpoints (every one, versus the local
// ones): a pod short-circuited from the NodePort keys its sessionAffinity entry by the
// ClusterPolicy frontend. A restore must put that entry back under the new ClusterPolicy
// frontend — under the ClusterIP it would pin the pod's next ClusterIP connection to a remote
// endpoint that internalTrafficPolicy Local excludes, and lose the NodePort pin.
test('an affinity entry of a ClusterPolicy cluster front (both traffic policies Local) is restored under the new ClusterPolicy frontend, not the ClusterIP that shares its VIP and port', (t) => {
  const idsA = { cluster: 1, nodePort: 2, local: 1, remote: 2, policy: 3 }, idsB = { cluster: 7, nodePort: 4, local: 9, remote: 5, policy: 11 };
  const toNodePort = (src, sport, inPort = 1) => ({ inPort, frame: frame({ src, dst: NODE_IP, proto: 'TCP', sport, dport: NODE_PORT, flags: 'S', seq: 1, srcMac: MAC.client, dstMac: MAC.node }) });
  const toClusterIP = (src, sport, inPort = 3) => ({ inPort, frame: frame({ src, dst: CLUSTER_IP, proto: 'TCP', sport, dport: 80, flags: 'S', seq: 1, srcMac: MAC.client, dstMac: MAC.node }) });
  // a pod whose fresh pick (the affinity's) on the ClusterPolicy frontend is the remote endpoint
  let pod;
  for (let i = 2; i < 250 && !pod; i++) {
    const scratch = mkCore(etpIr(idsA, 1, true));
    if (parseFrame(scratch.run([toNodePort(`10.244.1.${i}`, 5000)], 1000)[0].frame).dst === ETP.remote) pod = `10.244.1.${i}`;
  }
  t.truthy(pod);
  const a = mkCore(etpIr(idsA, 1, true));
  t.is(parseFrame(a.run([toNodePort(pod, 5000)], 1000)[0].frame).dst, ETP.remote);
  const recs = exportFlows(a, PORTS_ETP_A, 1001);
  t.is(recs.affinity.length, L.AFF_SIZE);
  t.deepEqual(recs.frontends, [{ id: 3, addr: CLUSTER_IP, port: 80, proto: 6, kind: 'ClusterPolicy' }]);

  const b = mkCore(etpIr(idsB, 3, true));
  t.like(importFlows(b, recs, PORTS_ETP_B, 0, 20), { flows: 1, affinity: 1, dropped: {} });
  // the pod's next NodePort connection: the restored pin (the remote endpoint)
  const [np] = b.run([toNodePort(pod, 6000, 3)], 30);
  t.is(parseFrame(np.frame).dst, ETP.remote);
  t.is(b.counters().global.aff_hit, 1, 'the pin decided');
  // its ClusterIP connections: the local endpoint only (internalTrafficPolicy Local)
  for (let sport = 7000; sport < 7008; sport++) t.is(parseFrame(b.run([toClusterIP(pod, sport)], 31)[0].frame).dst, ETP.local, `ClusterIP ${sport}`);
  // internalTrafficPolicy Cluster now: no ClusterPolicy frontend, the ClusterIP (every endpoint)
  // is the cluster front, and the entry goes there
  const c = mkCore(etpIr({ cluster: 7, nodePort: 4, local: 9, remote: 5 }, 3, true));
  t.like(importFlows(c, recs, PORTS_ETP_B, 0, 20), { flows: 1, affinity: 1, dropped: {} });
  t.is(parseFrame(c.run([toNodePort(pod, 6000, 3)], 30)[0].frame).dst, ETP.remote);
  t.is(c.counters().global.aff_hit, 1, 'the pin decided (under the ClusterIP)');
});

// Core.recordedFront (assembly/ct-restore.ts) must decide as newFlow does: for every flow the core
// creates — frontends with and without a cluster front, FEF_AFFINITY_SHARED (the cluster front
// only keys affinity), FEF_NODE_SOURCE_DROP; outside clients, pods by address and by port, the
// node — it gives the CT_FRONT the core wrote from the service map's frontend.
test('Core.recordedFront gives, for every flow the core creates, the frontend the core recorded it under', (t) => {
  const local = backend({ id: 1, addr: '10.244.1.5', port: 8080, outPort: 3 });
  const remote = backend({ id: 2, addr: '10.244.2.5', port: 8080, outPort: 3 });
  const fronts = [
    frontend({ id: 1, addr: '10.96.0.1', port: 80 }, [local, remote]),
    frontend({ id: 2, addr: NODE_IP, port: 30080, kind: 'NodePort', flags: L.FEF_EXTERNAL, clusterFront: 1 }, [local]),
    frontend({ id: 3, addr: '198.51.100.7', port: 80, kind: 'LoadBalancer', flags: L.FEF_EXTERNAL | L.FEF_NODE_SOURCE_DROP, clusterFront: 1 }, [local]),
    frontend({ id: 4, addr: '198.51.100.8', port: 80, kind: 'LoadBalancer', flags: L.FEF_AFFINITY | L.FEF_AFFINITY_SHARED, affinityTimeoutMs: 5000, clusterFront: 1 }, [local, remote]),
    frontend({ id: 5, addr: '10.96.0.2', port: 80 }, [remote]),
  ];
  const none = { outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' };
  const routes = [
    { prefix: '0.0.0.0/0', outPort: 3, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
    { prefix: '10.244.0.0/16', ...none, localSource: 'pod' },
    { prefix: '0.0.0.0/0', ...none, outPort: 4, localSource: 'podPort' },
    { prefix: `${NODE_IP}/32`, ...none, localSource: 'node' },
  ];
  const core = mkCore(mkIr({ frontends: fronts, backends: [local, remote], routes, snatV4: NODE_IP }));
  const clients = [['203.0.113.9', 0], ['10.244.1.7', 0], ['172.16.0.9', 4], [NODE_IP, 0]];
  let sport = 30000;
  for (const [src, inPort] of clients) {
    for (const f of fronts) {
      const [r] = core.run([{ inPort, frame: frame({ src, dst: f.addr, proto: 'TCP', sport: sport++, dport: f.port, flags: 'S', seq: 1, srcMac: MAC.client, dstMac: MAC.node }) }], 1000);
      t.is(r.reason, 'fwd_nat', `${src} -> ${f.addr}`);
    }
  }
  const byKey = new Map(fronts.map((f) => [`${f.addr}:${f.port}`, f.id]));
  const seen = [];
  for (const fl of core.flows({}, 1000)) {
    const e = core.map.ctFlows + fl.flow * L.CT_SIZE;
    const recorded = core.dv.getUint32(e + L.CT_FRONT, true), found = byKey.get(`${fl.vip}:${fl.vipPort}`);
    t.is(core.recordedFront(e, found), recorded, `${fl.client} -> ${fl.vip}`);
    t.is(core.recordedFront(core.u8.slice(e, e + L.CT_SIZE), found), recorded, `${fl.client} -> ${fl.vip} (staged)`);
    seen.push(`${fl.client}>${found}:${recorded}`);
  }
  t.is(seen.length, clients.length * fronts.length);
  // the short-circuited ones: pods (by address and by port) to 2, 3; the node to 2 only
  t.deepEqual(seen.filter((x) => x.split('>')[1].split(':')[0] !== x.split(':')[1]).sort(),
    [`10.244.1.7>2:1`, `10.244.1.7>3:1`, `172.16.0.9>2:1`, `172.16.0.9>3:1`, `${NODE_IP}>2:1`].sort());
  t.is(core.recordedFront(core.map.ctFlows + core.flows({}, 1000)[0].flow * L.CT_SIZE, 0), 0, 'no frontend: none');
});
