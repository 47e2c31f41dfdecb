// The forwarding core through the host: reject formats, ICMP error inner NAT, sessionAffinity,
// stale-backend reselect, expiry, eviction preference, trace dry-run, parse drop reasons.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { frame, ipPacket, icmpError, arpRequest, neighborSolicitation } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { verifyChecksums } from '../dist/src/packet/checksum.js';
import { flowHash, freshPickHash } from '../dist/src/core/hash.js';
import { parseAddr } from '../dist/src/util/addr.js';
import { CLIENT_MAC, LOCAL_MAC, BE_MAC, BE_SRC_MAC, irFrom, mkCore, gc, reasonCount } from './lib/core-fixture.js';

const T0 = 1000;
const hex = (b) => Buffer.from(b).toString('hex');

test('reject v4 TCP: an ICMP port unreachable from the VIP quoting the segment as the kernel\'s filter-forward hook saw it, TTL one lower (SYN, data, FIN alike: the nftables proxier\'s bare reject), fresh IPv4 header, checksums', (t) => {
  const core = mkCore(irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [] }], backends: [] }));
  const syn = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80, flags: 'S', seq: 1000, ttl: 5, id: 77, ipOptions: [1, 1, 1, 0], srcMac: CLIENT_MAC, dstMac: LOCAL_MAC });
  const [r] = core.run([syn], T0, 9);
  t.is(r.verdict, 'reject');
  t.is(r.reason, 'reject_no_endpoints');
  t.is(r.outPort, 9);
  t.is(r.frame.length, 14 + 20 + 8 + (syn.length - 14));
  const p = parseFrame(r.frame);
  t.like(p, { src: '10.96.0.10', dst: '10.0.0.5', proto: 1, icmpType: 3, icmpCode: 3, ttl: 64, df: false, ihl: 20, dstMac: CLIENT_MAC, srcMac: LOCAL_MAC });
  t.like(p.inner, { src: '10.0.0.5', dst: '10.96.0.10', proto: 6, sport: 40000, dport: 80, ttl: 4 });
  const forwarded = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80, flags: 'S', seq: 1000, ttl: 4, id: 77, ipOptions: [1, 1, 1, 0] });
  t.is(hex(r.frame.subarray(14 + 28)), hex(forwarded.subarray(14)), 'the quote: the IP packet as received (options and all), its TTL decremented and header checksum updated');
  t.deepEqual(verifyChecksums(r.frame), []);
  // a segment with ACK and data, a FIN: the same answer, each quoting its own segment
  const ackd = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80, flags: 'PA', seq: 7, ack: 123456, payload: 'hello' });
  const [r2] = core.run([ackd], T0, 9);
  t.like(parseFrame(r2.frame), { proto: 1, icmpType: 3, icmpCode: 3 });
  t.is(hex(r2.frame.subarray(14 + 28)), hex(frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80, flags: 'PA', seq: 7, ack: 123456, payload: 'hello', ttl: 63 }).subarray(14)));
  t.deepEqual(verifyChecksums(r2.frame), []);
  const finp = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80, flags: 'F', seq: 10, payload: 'abc' });
  t.like(parseFrame(core.run([finp], T0, 9)[0].frame), { proto: 1, icmpType: 3, icmpCode: 3, inner: { flags: 'F' } });
  // a RST is never answered
  const rst = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80, flags: 'R' });
  const [r4] = core.run([rst], T0, 9);
  t.is(r4.verdict, 'drop');
  t.is(r4.reason, 'drop_rst_no_endpoints');
  t.is(core.counters().global.reject, 3);
  t.is(core.counters().reasons.reject_no_endpoints, 3, 'answered rejects');
  t.is(core.counters().reasons.drop_rst_no_endpoints, 1, 'the RST is counted apart');
  t.is(core.counters().frontends[1].packets, 3);
});

test('reject v6 TCP and UDP; v4 UDP gets ICMP port unreachable quoting the packet', (t) => {
  const core = mkCore(irFrom({ frontends: [{ id: 1, addr: 'fd00:96::1', port: 80, proto: 'TCP', backends: [] }, { id: 2, addr: 'fd00:96::1', port: 53, proto: 'UDP', backends: [] }, { id: 3, addr: '10.96.0.10', port: 53, proto: 'UDP', backends: [] }], backends: [] }));
  const syn6 = frame({ src: 'fd00::5', dst: 'fd00:96::1', proto: 'TCP', sport: 1234, dport: 80, flags: 'S', seq: 0xffffffff, v6Ext: [{ type: 60 }] });
  const [r] = core.run([syn6], T0, 2);
  t.is(r.reason, 'reject_no_endpoints');
  t.like(parseFrame(r.frame), { src: 'fd00:96::1', dst: 'fd00::5', proto: 58, icmpType: 1, icmpCode: 4, ttl: 64, inner: { proto: 6, sport: 1234, dport: 80 } });
  t.is(r.frame.length, 14 + 40 + 8 + (syn6.length - 14), 'the SYN quoted whole, its extension header too');
  t.deepEqual(verifyChecksums(r.frame), []);

  const u6 = frame({ src: 'fd00::5', dst: 'fd00:96::1', proto: 'UDP', sport: 999, dport: 53, payload: new Uint8Array(1400) });
  const [r2] = core.run([u6], T0, 2);
  t.is(r2.verdict, 'reject');
  const p2 = parseFrame(r2.frame);
  t.like(p2, { src: 'fd00:96::1', dst: 'fd00::5', proto: 58, icmpType: 1, icmpCode: 4, ttl: 64 });
  t.is(r2.frame.length, 14 + 1280);              // quote cut so the reply is 1280 bytes
  t.deepEqual(verifyChecksums(r2.frame), []);
  // (quoted with the hop limit ip6_forward left: one lower)
  const ip6 = ipPacket({ src: 'fd00::5', dst: 'fd00:96::1', proto: 'UDP', sport: 999, dport: 53, payload: new Uint8Array(1400), ttl: 63 });
  t.is(hex(r2.frame.subarray(14 + 48)), hex(ip6.subarray(0, 1280 - 48)));

  const u4 = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'UDP', sport: 999, dport: 53, payload: 'q', padTo: 60 });
  const [r3] = core.run([u4], T0, 4);
  const p3 = parseFrame(r3.frame);
  t.like(p3, { src: '10.96.0.10', dst: '10.0.0.5', proto: 1, icmpType: 3, icmpCode: 3, ttl: 64 });
  const ip4 = ipPacket({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'UDP', sport: 999, dport: 53, payload: 'q', ttl: 63 });
  t.is(r3.frame.length, 14 + 20 + 8 + ip4.length);   // Ethernet padding is not quoted
  t.is(hex(r3.frame.subarray(14 + 28)), hex(ip4));
  t.deepEqual(verifyChecksums(r3.frame), []);
  t.is(r3.outPort, 4);
});

test('ICMP error from the backend quoting a DNATed packet is translated back to the client', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 53, proto: 'UDP', backends: [1], flags: L.FEF_MASQUERADE }], backends: [{ id: 1, addr: '10.1.0.1', port: 5353 }], snatV4: '192.168.0.100' });
  const core = mkCore(ir);
  const q = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'UDP', sport: 3333, dport: 53, payload: 'query', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC });
  const [r] = core.run([q], T0, 6);
  const sent = r.frame.subarray(14);
  const ps = parseFrame(r.frame);
  t.is(ps.src, '192.168.0.100');
  // the backend answers with port unreachable quoting what it received (8 bytes of UDP only)
  const err = icmpError({ src: '10.1.0.1', dst: '192.168.0.100', kind: 'port_unreachable', inner: sent, quoteLen: 28, srcMac: BE_MAC, dstMac: BE_SRC_MAC });
  const [r2] = core.run([err], T0 + 1, 1);
  t.is(r2.verdict, 'forward');
  t.is(r2.reason, 'fwd_icmp_error');
  t.is(r2.outPort, 6);
  const p = parseFrame(r2.frame);
  t.like(p, { src: '10.96.0.10', dst: '10.0.0.5', icmpType: 3, icmpCode: 3, dstMac: CLIENT_MAC, srcMac: LOCAL_MAC });
  t.like(p.inner, { src: '10.0.0.5', dst: '10.96.0.10', sport: 3333, dport: 53 });
  t.deepEqual(verifyChecksums(r2.frame), []);
  // an unrelated ICMP error is not translated (no route -> host)
  const other = icmpError({ src: '10.1.0.1', dst: '192.168.0.100', inner: ipPacket({ src: '192.168.0.100', dst: '10.1.0.1', proto: 'UDP', sport: 1, dport: 2 }) });
  t.is(core.run([other], T0 + 1, 1)[0].reason, 'host_no_match');
});

test('ICMPv6 error from the client about a reply is translated toward the backend', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: 'fd00:96::10', port: 80, proto: 'TCP', backends: [1] }], backends: [{ id: 1, addr: 'fd00:1::1', port: 8080, outPort: 3 }] });
  const core = mkCore(ir);
  core.run([frame({ src: 'fd00::5', dst: 'fd00:96::10', proto: 'TCP', sport: 4000, dport: 80, flags: 'S', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC })], T0, 6);
  const reply = frame({ src: 'fd00:1::1', dst: 'fd00::5', proto: 'TCP', sport: 8080, dport: 4000, flags: 'SA', payload: new Uint8Array(100) });
  const [rr] = core.run([reply], T0 + 1, 3);
  const sentToClient = rr.frame.subarray(14);
  const err = icmpError({ src: 'fd00::5', dst: 'fd00:96::10', kind: 'packet_too_big', mtu: 1280, inner: sentToClient });
  const [r] = core.run([err], T0 + 2, 6);
  t.is(r.reason, 'fwd_icmp_error');
  t.is(r.outPort, 3);
  const p = parseFrame(r.frame);
  t.like(p, { src: 'fd00::5', dst: 'fd00:1::1', icmpType: 2, dstMac: BE_MAC, srcMac: BE_SRC_MAC });
  t.like(p.inner, { src: 'fd00:1::1', sport: 8080, dst: 'fd00::5', dport: 4000 });
  t.deepEqual(verifyChecksums(r.frame), []);
});

test('sessionAffinity: one client sticks to one backend across source ports; timeout re-selects', (t) => {
  const ids = [1, 2, 3, 4, 5];
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: ids, flags: L.FEF_AFFINITY, affinityTimeoutMs: 10_000 }], backends: ids.map((i) => ({ id: i, addr: `10.1.0.${i}`, port: 8080 })) });
  const core = mkCore(ir);
  const f1 = ir.frontends.get(1);
  // the first connection picks like any new client (flow hash mixed with the clock: issue 14,
  // kube-proxy picks at random), not by a hash of (client, frontend) alone; the rest stick to it
  const firstHash = flowHash(parseAddr('10.0.0.5').bytes, parseAddr('10.96.0.10').bytes, 20000, 80, 6);
  const expect = ir.backends.get(f1.maglev[freshPickHash(firstHash, T0) % f1.maglev.length]).addr;
  const frames = [];
  for (let i = 0; i < 20; i++) frames.push(frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 20000 + i, dport: 80, flags: 'S' }));
  const rs = core.run(frames, T0, 1);
  for (const r of rs) t.is(parseFrame(r.frame).dst, expect);
  const c = core.counters().global;
  t.is(c.aff_new, 1);
  t.is(c.aff_hit, 19);
  const tr = core.trace([frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 30000, dport: 80, flags: 'S' })], 1, true, T0 + 5000);
  t.is(tr[0].trace.select, L.TRSEL_AFFINITY);
  // after the timeout the entry is refreshed by a fresh Maglev pick (of that connection's flow hash and the time)
  core.run([frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 30001, dport: 80, flags: 'S' })], T0 + 20_000, 1);
  t.is(core.counters().global.aff_new, 2);
});

test('stale backend: flows to a removed backend are re-selected; terminating ones keep their flows', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 53, proto: 'UDP', backends: [1, 2] }], backends: [{ id: 1, addr: '10.1.0.1', port: 53 }, { id: 2, addr: '10.1.0.2', port: 53 }] });
  const core = mkCore(ir);
  const frames = [];
  for (let i = 0; i < 40; i++) frames.push(frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'UDP', sport: 1000 + i, dport: 53 }));
  const first = core.run(frames, T0, 1).map((r) => parseFrame(r.frame).dst);
  t.true(first.includes('10.1.0.1') && first.includes('10.1.0.2'));
  // backend 2 becomes terminating: its flows stay
  const ir2 = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 53, proto: 'UDP', backends: [1] }], backends: [{ id: 1, addr: '10.1.0.1', port: 53 }, { id: 2, addr: '10.1.0.2', port: 53, state: L.BES_TERMINATING_SERVING }] });
  core.applyIr(ir2);
  const second = core.run(frames, T0 + 1, 1).map((r) => parseFrame(r.frame).dst);
  t.deepEqual(second, first);
  // backend 2 is removed: its flows move to backend 1 (same flow entries are reused)
  const ir3 = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 53, proto: 'UDP', backends: [1] }], backends: [{ id: 1, addr: '10.1.0.1', port: 53 }] });
  core.applyIr(ir3);
  const tr = core.trace(frames, 1, true, T0 + 2);
  const moved = first.filter((d) => d === '10.1.0.2').length;
  t.is(tr.filter((x) => x.trace.ct === L.TRCT_RESELECT).length, moved);
  const third = core.run(frames, T0 + 2, 1);
  t.true(third.every((r) => r.reason === 'fwd_nat' && parseFrame(r.frame).dst === '10.1.0.1'));
  const c = core.counters().global;
  t.is(c.ct_reselect, moved);
  t.is(c.ct_active, 40);
  // the moved flows now answer from backend 1
  const reply = frame({ src: '10.1.0.1', dst: '10.0.0.5', proto: 'UDP', sport: 53, dport: 1000 + first.indexOf('10.1.0.2') });
  t.is(core.run([reply], T0 + 3, 1)[0].reason, 'fwd_reply');
  // the Service removed too: kube-proxy's UDP cleanup deletes a deleted Service's entries at that
  // sync (kubernetes#141371): every flow is freed by the apply, the next datagram has no service
  // (no route here: to the host)
  core.applyIr(irFrom({ frontends: [], backends: [{ id: 1, addr: '10.1.0.1', port: 53 }] }));
  t.is(core.counters().global.ct_active, 0, 'its flows freed');
  core.applyIr(irFrom({ frontends: [], backends: [] }));
  t.is(core.run([frames[0]], T0 + 4, 1)[0].reason, 'host_no_match');
});

test('expiry: budgeted sweep frees idle flows; an expired hit is a miss', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 53, proto: 'UDP', backends: [1] }], backends: [{ id: 1, addr: '10.1.0.1', port: 53 }] });
  const core = mkCore(ir, { timeouts: { udpMs: 1000, udpRepliedMs: 5000 }, expireBudget: 4, flows: 16 });
  const frames = [];
  for (let i = 0; i < 8; i++) frames.push(frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'UDP', sport: 1000 + i, dport: 53 }));
  core.run(frames, T0, 1);
  t.is(core.counters().global.ct_active, 8);
  // replies keep flow 0 alive; one more than 2 s after its first packet makes it a stream, which
  // gets the udp_replied timeout (the kernel's UDP conntrack)
  const reply0 = frame({ src: '10.1.0.1', dst: '10.0.0.5', proto: 'UDP', sport: 53, dport: 1000 });
  for (const dt of [900, 1800]) core.run([reply0], T0 + dt, 1);
  t.is(core.flows({}, T0 + 1800).find((f) => f.clientPort === 1000).state, 'udp');
  // an expired flow's reply is no longer translated
  const late = core.run([frame({ src: '10.1.0.1', dst: '10.0.0.5', proto: 'UDP', sport: 53, dport: 1001 })], T0 + 2000, 1)[0];
  t.is(late.reason, 'host_no_match');
  core.run([reply0], T0 + 2700, 1);
  t.is(core.flows({}, T0 + 2700).find((f) => f.clientPort === 1000).state, 'udp_replied');
  // sweeping: each batch examines 4 entries
  for (let k = 0; k < 4; k++) core.process(0, T0 + 2800 + k);
  const c = core.counters().global;
  t.is(c.ct_active, 1);
  t.is(c.ct_expired, 7);
  t.is(core.flows({}, T0 + 2900)[0].clientPort, 1000);
  t.is(core.exports.ct_expire_all(T0 + 10_000), 1);
  t.is(core.counters().global.ct_active, 0);
  t.is(core.counters().global.ct_expired, 8);
});

test('eviction: a full table evicts embryonic flows, never established ones, then fails closed', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }] });
  const core = mkCore(ir, { flows: 16, evictWindow: 16 });
  const syn = (i) => frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1000 + i, dport: 80, flags: 'S' });
  const synack = (i) => frame({ src: '10.1.0.1', dst: '10.0.0.5', proto: 'TCP', sport: 8080, dport: 1000 + i, flags: 'SA' });
  const ack = (i) => frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1000 + i, dport: 80, flags: 'A' });
  const all = [];
  for (let i = 0; i < 16; i++) all.push(syn(i));
  t.true(core.run(all, T0, 1).every((r) => r.reason === 'fwd_nat'));
  // establish flows 0..11; 12..15 stay embryonic. A flow is established (and safe from eviction)
  // only when the handshake completes in both directions: the backend's SYN-ACK and then the
  // client's ACK (the SYN-ACK alone used to establish it; docs/core.md "TCP states").
  const est = [];
  for (let i = 0; i < 12; i++) est.push(synack(i));
  t.true(core.run(est, T0 + 1, 1).every((r) => r.reason === 'fwd_reply'));
  t.true(core.run([...Array(12).keys()].map(ack), T0 + 1, 3).every((r) => r.reason === 'fwd_nat'));
  const more = [];
  for (let i = 16; i < 20; i++) more.push(syn(i));
  t.true(core.run(more, T0 + 2, 1).every((r) => r.reason === 'fwd_nat'));
  t.is(core.counters().global.ct_evicted, 4);
  const ports = core.flows({}, T0 + 2).map((f) => f.clientPort).sort((a, b) => a - b);
  const expectPorts = [];
  for (let i = 0; i < 12; i++) expectPorts.push(1000 + i);
  for (let i = 16; i < 20; i++) expectPorts.push(1000 + i);
  t.deepEqual(ports, expectPorts);
  // establish the new ones too: now nothing is evictable
  core.run([16, 17, 18, 19].map(synack), T0 + 3, 1);
  core.run([16, 17, 18, 19].map(ack), T0 + 3, 3);
  const [r] = core.run([syn(30)], T0 + 4, 1);
  t.is(r.verdict, 'drop');
  t.is(r.reason, 'drop_ct_full');
  // established flows still work
  t.is(core.run([synack(0)], T0 + 5, 1)[0].reason, 'fwd_reply');
});

test('trace dry-run decides and rewrites but leaves conntrack, affinity and counters alone', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1, 2], flags: L.FEF_AFFINITY, affinityTimeoutMs: 10000 }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }, { id: 2, addr: '10.1.0.2', port: 8080 }] });
  const core = mkCore(ir);
  const before = JSON.stringify(core.counters());
  const f = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1234, dport: 80, flags: 'S' });
  const [x] = core.trace([f], 4, true, T0);
  t.is(x.verdict, 'forward');
  t.is(x.reason, 'fwd_nat');
  t.is(x.trace.ct, L.TRCT_NEW);
  t.is(x.trace.select, L.TRSEL_MAGLEV);
  t.true((x.trace.stages & (L.TS_PARSED | L.TS_SERVICE_MATCH | L.TS_CT_NEW | L.TS_BACKEND_SELECTED | L.TS_DNAT)) === (L.TS_PARSED | L.TS_SERVICE_MATCH | L.TS_CT_NEW | L.TS_BACKEND_SELECTED | L.TS_DNAT));
  t.is(x.trace.front, 1);
  t.true(x.trace.backend === 1 || x.trace.backend === 2);
  t.is(x.trace.flow, 0);
  t.is(x.trace.family, 4);
  t.is(x.trace.proto, 6);
  t.is(x.trace.l3, 14);
  t.is(x.trace.l4, 34);
  t.is(x.trace.hash, flowHash(parseAddr('10.0.0.5').bytes, parseAddr('10.96.0.10').bytes, 1234, 80, 6));
  t.is(core.flows({}, T0).length, 0);
  t.is(JSON.stringify(core.counters()), before);
  // same frame for real: a flow appears; a second dry-run now reports a hit without refreshing it
  core.run([f], T0, 4);
  t.is(core.flows({}, T0).length, 1);
  const [y] = core.trace([f], 4, true, T0 + 500);
  t.is(y.trace.ct, L.TRCT_HIT_ORIG);
  t.is(y.trace.flow, core.flows({}, T0)[0].flow);
  t.is(core.flows({}, T0 + 500)[0].idleMs, 500);
});

test('parse: each malformed or non-service frame gets its verdict and reason, never a trap', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1] }, { id: 2, addr: 'fd00:96::1', port: 80, proto: 'TCP', backends: [2] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }, { id: 2, addr: 'fd00:1::1', port: 8080 }], routes: [{ prefix: '10.2.0.0/16', outPort: 5, dstMac: '02:00:00:00:05:05', srcMac: '02:00:00:00:05:06' }, { prefix: '0.0.0.0/0', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' }] });
  const core = mkCore(ir, { slotSize: 2048 });
  const ok = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1, dport: 80 });
  const cases = [
    [ok.subarray(0, 10), 'drop', 'drop_truncated_l2'],
    [ok.subarray(0, 30), 'drop', 'drop_truncated_l3'],
    [frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1, dport: 80, version: 5 }), 'drop', 'drop_bad_ip_version'],
    [frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1, dport: 80, ihl: 4 }), 'drop', 'drop_bad_ihl'],
    [frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1, dport: 80, totalLength: 500 }), 'drop', 'drop_bad_ip_length'],
    [frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', rawL4: [0, 1, 0, 80] }), 'drop', 'drop_truncated_l4'],
    [frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', rawL4: [0, 1, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 2, 0, 0, 0, 0, 0, 0] }), 'drop', 'drop_bad_l4_header'],
    [frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', rawL4: [1, 2, 3, 4, 5, 6, 7, 8], fragOffset: 3 }), 'drop', 'drop_fragment'],
    [frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'UDP', rawL4: [1, 2, 3] }), 'drop', 'drop_truncated_l4'],
    [frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1, dport: 80, ttl: 1 }), 'reject', 'reject_ttl_exceeded'],
    [frame({ src: '224.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1, dport: 80 }), 'drop', 'drop_martian'],
    [frame({ src: 'ff02::1', dst: 'fd00:96::1', proto: 'TCP', sport: 1, dport: 80 }), 'drop', 'drop_martian'],
    [frame({ src: 'fd00::5', dst: 'fd00:96::1', proto: 'TCP', sport: 1, dport: 80, v6Ext: Array.from({ length: 9 }, () => ({ type: 60 })) }), 'drop', 'drop_ipv6_ext_headers'],
    [frame({ src: 'fd00::5', dst: 'fd00:96::1', proto: 'TCP', rawL4: [1, 2, 3, 4, 5, 6, 7, 8], v6Ext: [{ type: 44, offset: 10 }] }), 'drop', 'drop_fragment'],
    [frame({ src: 'fd00::5', dst: 'fd00:96::1', proto: 'TCP', sport: 1, dport: 80, v6Ext: [{ type: 0 }, { type: 44, offset: 0, more: true }] }), 'forward', 'fwd_nat'],
    [frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1, dport: 80, mf: true }), 'forward', 'fwd_nat'],
    [arpRequest({ senderMac: CLIENT_MAC, senderIp: '10.0.0.5', targetIp: '10.0.0.1' }), 'to_host', 'host_arp'],
    [neighborSolicitation({ senderMac: CLIENT_MAC, senderIp: 'fd00::5', targetIp: 'fd00::1' }), 'to_host', 'host_nd'],
    [frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1, dport: 80, ethertype: 0x88cc }), 'to_host', 'host_not_ip'],
    [frame({ src: '10.0.0.5', dst: '10.2.3.4', proto: 'UDP', sport: 1, dport: 2 }), 'forward', 'fwd_routed'],
    [frame({ src: '10.0.0.5', dst: '10.3.3.4', proto: 'UDP', sport: 1, dport: 2 }), 'drop', 'drop_no_route'],
    [frame({ src: 'fd00::5', dst: 'fd00:99::1', proto: 'ICMP' }), 'to_host', 'host_no_match'],
    [new Uint8Array(3000), 'drop', 'drop_oversize'],
  ];
  const rs = core.run(cases.map(([f]) => f), T0, 1);
  rs.forEach((r, i) => {
    t.is(r.reason, cases[i][2], `case ${i}`);
    t.is(r.verdict, cases[i][1], `case ${i}`);
    if (r.verdict === 'drop') t.is(r.outPort, L.PORT_NONE);
  });
  const routed = rs[19];
  t.is(routed.outPort, 5);
  t.like(parseFrame(routed.frame), { ttl: 63, dstMac: '02:00:00:00:05:05', srcMac: '02:00:00:00:05:06' });
  t.deepEqual(verifyChecksums(routed.frame), []);
  const c = core.counters();
  t.is(c.global.rx_packets, cases.length);
  t.is(c.global.forward + c.global.drop + c.global.to_host + c.global.reject, cases.length);
  // bad in_port
  const [bp] = core.run([{ frame: ok, inPort: L.PORT_NONE }], T0, 0);
  t.is(bp.reason, 'drop_bad_port');
  // random junk never traps and always yields a known verdict
  let seed = 12345;
  const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed >>> 16; };
  const junk = [];
  for (let i = 0; i < 500; i++) {
    const base = [ok, frame({ src: 'fd00::5', dst: 'fd00:96::1', proto: 'TCP', sport: 1, dport: 80 })][i & 1].slice();
    const n = 1 + (rnd() % 6);
    for (let k = 0; k < n; k++) base[12 + (rnd() % (base.length - 12))] = rnd() & 255;
    junk.push(base.subarray(0, 1 + (rnd() % base.length)));
  }
  for (const r of core.run(junk, T0 + 1, 1)) t.true(['drop', 'forward', 'reject', 'to_host'].includes(r.verdict));
});

test('TCP states: mid-stream pickup, RST makes no flow, a FIN each way closes, a new SYN on a closing flow re-selects', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1, 2] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }, { id: 2, addr: '10.1.0.2', port: 8080 }] });
  const core = mkCore(ir, { timeouts: { tcpCloseMs: 1000, tcpSynMs: 5000, tcpEstablishedMs: 100_000 } });
  const seg = (sport, flags) => frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport, dport: 80, flags });
  // RST without a flow: translated, but no entry
  const [r] = core.run([seg(1, 'R')], T0, 0);
  t.is(r.reason, 'fwd_nat');
  t.is(core.flows({}, T0).length, 0);
  // ACK without a flow: picked up mid-stream, unconfirmed until the backend answers (it used to be
  // picked up as established, which let a bare-ACK flood fill the table with unevictable flows)
  core.run([seg(2, 'A')], T0, 0);
  t.is(core.flows({}, T0)[0].state, 'tcp_midstream');
  // the client's FIN half-closes it, as the kernel's FIN_WAIT (a pick-up is ESTABLISHED there);
  // the backend's FIN closes it
  core.run([seg(2, 'FA')], T0 + 1, 0);
  t.is(core.flows({}, T0 + 1)[0].state, 'tcp_half_closed_client');
  const picked = core.flows({}, T0 + 1)[0];
  core.run([frame({ src: picked.backend, dst: '10.0.0.5', proto: 'TCP', sport: 8080, dport: 2, flags: 'FA' })], T0 + 1, 1);
  t.is(core.flows({}, T0 + 1)[0].state, 'tcp_closing');
  // a fresh SYN on the closing flow is a new connection: the flow is freed and the SYN load-balanced
  // again, counted as a re-selection (it used to restart the flow in place on its old backend,
  // which kept new connections on a backend that may be terminating by now: issue 14). With the
  // same tables Maglev picks the same backend for the same tuple, and the LIFO free list hands
  // back the same flow index.
  const before = core.flows({}, T0 + 2)[0];
  const reselects = core.counters().global.ct_reselect;
  const [s] = core.run([seg(2, 'S')], T0 + 2, 0);
  t.is(parseFrame(s.frame).dst, before.backend);
  t.is(core.counters().global.ct_reselect, reselects + 1);
  const after = core.flows({}, T0 + 2)[0];
  t.is(after.state, 'tcp_syn');
  t.is(after.flow, before.flow);
  t.false(after.flags.includes('replied'));
  // RST from the backend -> closing; after tcpCloseMs the flow is gone for lookups
  core.run([frame({ src: before.backend, dst: '10.0.0.5', proto: 'TCP', sport: 8080, dport: 2, flags: 'R' })], T0 + 3, 1);
  t.is(core.flows({}, T0 + 3)[0].state, 'tcp_closing');
  const tr = core.trace([seg(2, 'A')], 0, true, T0 + 3 + 1001);
  t.is(tr[0].trace.ct, L.TRCT_NEW);
});

test('generation flip mid-stream: a batch sees one table set; ct_flush forgets every flow', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'UDP', backends: [1] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }] });
  const core = mkCore(ir);
  const q = (sport) => frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'UDP', sport, dport: 80 });
  core.run([q(1), q(2)], T0, 0);
  t.is(core.counters().global.ct_active, 2);
  // move the service to another backend (new generation): existing flows keep theirs (a serving
  // one: UDP flows to a backend that stops serving are re-selected, core-stale-flow), new ones follow
  core.applyIr(irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'UDP', backends: [2] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080, state: L.BES_TERMINATING_SERVING }, { id: 2, addr: '10.1.0.2', port: 8080 }] }));
  const rs = core.run([q(1), q(3)], T0 + 1, 0);
  t.deepEqual(rs.map((r) => parseFrame(r.frame).dst), ['10.1.0.1', '10.1.0.2']);
  core.ctFlush();
  t.is(core.exports.ct_active(), 0);
  t.is(core.counters().global.ct_active, 0);
  t.is(parseFrame(core.run([q(1)], T0 + 2, 0)[0].frame).dst, '10.1.0.2');
});

test('init() refuses a CONFIG block it cannot trust, and process() before init does nothing', async (t) => {
  const { readFileSync } = await import('node:fs');
  const bytes = readFileSync(new URL('../build/core.wasm', import.meta.url));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { abort() { throw new Error('abort'); }, seed: () => 0, reject_limit_enter: () => 1, reject_limit_bucket() {}, reject_limit_leave() {} } });
  const x = inst.exports;
  const dv = new DataView(x.memory.buffer);
  const cfg = x.config_ptr();
  t.is(cfg % 64, 0);
  x.process(4, 1); // not initialized: no effect, no trap
  t.is(x.init(), 1);
  dv.setUint32(cfg + L.CFG_MAGIC, L.CFG_MAGIC_VALUE >>> 0, true);
  t.is(x.init(), 2);
  dv.setUint32(cfg + L.CFG_VERSION, L.LAYOUT_VERSION, true);
  t.is(x.init(), 3);
  dv.setUint32(cfg + L.CFG_SLOT_SIZE, 2048, true);
  dv.setUint32(cfg + L.CFG_BATCH_MAX, 4, true);
  t.is(x.init(), 4);
  // regions far beyond memory are refused
  for (const off of [L.CFG_DESC_OFF, L.CFG_ARENA_OFF, L.CFG_TRACE_OFF, L.CFG_COUNTERS_OFF, L.CFG_SVC_COUNTERS_OFF, L.CFG_BE_COUNTERS_OFF, L.CFG_CT_INDEX_OFF, L.CFG_CT_FLOWS_OFF, L.CFG_AFF_OFF, L.CFG_PORT_MTU_OFF, L.CFG_PORT_ADDR_OFF, L.CFG_TABLESET0_OFF, L.CFG_TABLESET1_OFF]) {
    dv.setUint32(cfg + off, 0x7ff00000, true);
  }
  dv.setUint32(cfg + L.CFG_CT_INDEX_MASK, 63, true);
  dv.setUint32(cfg + L.CFG_CT_FLOWS_MAX, 16, true);
  dv.setUint32(cfg + L.CFG_AFF_MASK, 15, true);
  t.is(x.init(), 7);
  dv.setUint32(cfg + L.CFG_CT_INDEX_MASK, 31, true);
  t.is(x.init(), 6);
  dv.setUint32(cfg + L.CFG_AFF_MASK, 14, true);
  t.is(x.init(), 5);
});
