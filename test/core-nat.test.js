// The forwarding core through the host: DNAT + reverse NAT + conntrack for v4/v6 TCP/UDP/SCTP,
// Maglev agreement with src/core/hash.ts, masquerade/hairpin SNAT, checksums after rewrite.
// Frames come from src/packet/build.ts and are checked with the independent parser/checksum code.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { frame } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { verifyChecksums } from '../dist/src/packet/checksum.js';
import { flowHash } from '../dist/src/core/hash.js';
import { parseAddr } from '../dist/src/util/addr.js';
import { CLIENT_MAC, LOCAL_MAC, BE_MAC, BE_SRC_MAC, irFrom, mkCore, gc, reasonCount } from './lib/core-fixture.js';

const T0 = 1000;

function v4Setup(extra = {}) {
  const backends = [{ id: 1, addr: '10.1.0.1', port: 8080 }, { id: 2, addr: '10.1.0.2', port: 8080 }, { id: 3, addr: '10.1.0.3', port: 8080 }];
  const fronts = [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1, 2, 3], ...extra }, { id: 2, addr: '10.96.0.10', port: 53, proto: 'UDP', backends: [1, 2, 3], ...extra },
    { id: 3, addr: '10.96.0.11', port: 7000, proto: 'SCTP', backends: [1, 2], ...extra }];
  return irFrom({ frontends: fronts, backends, snatV4: '192.168.0.100', snatV6: 'fd00::100' });
}

test('v4 TCP: SYN is DNATed to the Maglev-chosen backend, reply is reverse-NATed, state tracked', (t) => {
  const ir = v4Setup();
  const core = mkCore(ir);
  const syn = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80, flags: 'S', seq: 100, ttl: 64, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC });
  const [r] = core.run([syn], T0, 7);
  t.is(r.verdict, 'forward');
  t.is(r.reason, 'fwd_nat');
  // Maglev: backend = maglev[flowHash(src,dst,sport|dport<<16,proto) % M]
  const h = flowHash(parseAddr('10.0.0.5').bytes, parseAddr('10.96.0.10').bytes, 40000, 80, 6);
  const f1 = ir.frontends.get(1);
  const bid = f1.maglev[h % f1.maglev.length];
  const b = ir.backends.get(bid);
  const p = parseFrame(r.frame);
  t.is(p.dst, b.addr);
  t.is(p.dport, 8080);
  t.is(p.src, '10.0.0.5');
  t.is(p.sport, 40000);
  t.is(p.ttl, 63);
  t.is(p.dstMac, b.dstMac);
  t.is(p.srcMac, b.srcMac);
  t.is(r.outPort, b.outPort);
  t.deepEqual(verifyChecksums(r.frame), []);
  t.is(core.descriptor(0).hash, h);

  let flows = core.flows({}, T0);
  t.is(flows.length, 1);
  t.like(flows[0], { client: '10.0.0.5', clientPort: 40000, vip: '10.96.0.10', vipPort: 80, backend: b.addr, backendPort: 8080, state: 'tcp_syn', backendId: bid, frontendId: 1 });

  const synack = frame({ src: b.addr, dst: '10.0.0.5', proto: 'TCP', sport: 8080, dport: 40000, flags: 'SA', seq: 5000, ack: 101, srcMac: b.dstMac, dstMac: b.srcMac });
  const [r2] = core.run([synack], T0 + 1, b.outPort);
  t.is(r2.verdict, 'forward');
  t.is(r2.reason, 'fwd_reply');
  t.is(r2.outPort, 7);
  const p2 = parseFrame(r2.frame);
  t.like(p2, { src: '10.96.0.10', sport: 80, dst: '10.0.0.5', dport: 40000, dstMac: CLIENT_MAC, srcMac: LOCAL_MAC, ttl: 63 });
  t.deepEqual(verifyChecksums(r2.frame), []);
  flows = core.flows({}, T0 + 1);
  // the SYN-ACK alone does not establish the flow (it used to): the handshake completes with
  // the client's ACK (docs/core.md "TCP states")
  t.is(flows[0].state, 'tcp_syn_recv');
  t.true(flows[0].flags.includes('replied'));

  // FIN from the client -> half-closed (the backend may go on sending); the established packet in
  // between still hits the flow
  const ack = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80, flags: 'A', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC });
  const fin = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80, flags: 'FA', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC });
  const [ra] = core.run([ack], T0 + 2, 7);
  t.is(ra.reason, 'fwd_nat');
  t.is(core.flows({}, T0 + 2)[0].state, 'tcp_established');
  t.true(core.flows({}, T0 + 2)[0].flags.includes('confirmed'));
  const rs = [ra, ...core.run([fin], T0 + 2, 7)];
  t.deepEqual(rs.map((x) => x.reason), ['fwd_nat', 'fwd_nat']);
  t.is(parseFrame(rs[1].frame).dst, b.addr);
  t.is(core.flows({}, T0 + 2)[0].state, 'tcp_half_closed_client');

  const c = core.counters();
  t.is(c.global.ct_new, 1);
  t.is(c.global.ct_hit, 3);
  t.is(c.global.ct_active, 1);
  t.is(c.global.forward, 4);
  t.is(c.global.rx_packets, 4);
  t.is(c.reasons.fwd_nat, 3);
  t.is(c.reasons.fwd_reply, 1);
  t.is(c.frontends[1].packets, 4);
  t.is(c.backends[bid].packets, 4);
  t.is(c.frontends[1].bytes, syn.length + synack.length + ack.length + fin.length);
  // the backend's FIN closes it both ways
  const bfin = frame({ src: b.addr, dst: '10.0.0.5', proto: 'TCP', sport: 8080, dport: 40000, flags: 'FA' });
  t.is(core.run([bfin], T0 + 3, 1)[0].reason, 'fwd_reply');
  t.is(core.flows({}, T0 + 3)[0].state, 'tcp_closing');
});

test('v6 UDP and TCP: DNAT, reply, checksums with the v6 pseudo header', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: 'fd00:96::10', port: 53, proto: 'UDP', backends: [1, 2] }, { id: 2, addr: 'fd00:96::10', port: 443, proto: 'TCP', backends: [1, 2] }], backends: [{ id: 1, addr: 'fd00:1::1', port: 5353 }, { id: 2, addr: 'fd00:1::2', port: 5353 }] });
  const core = mkCore(ir);
  const q = frame({ src: 'fd00:5::5', dst: 'fd00:96::10', proto: 'UDP', sport: 3333, dport: 53, payload: 'query', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC, ttl: 10 });
  const [r] = core.run([q], T0, 3);
  t.is(r.reason, 'fwd_nat');
  const p = parseFrame(r.frame);
  const h = flowHash(parseAddr('fd00:5::5').bytes, parseAddr('fd00:96::10').bytes, 3333, 53, 17);
  const bid = ir.frontends.get(1).maglev[h % ir.frontends.get(1).maglev.length];
  const b = ir.backends.get(bid);
  t.like(p, { src: 'fd00:5::5', dst: b.addr, sport: 3333, dport: 5353, ttl: 9 });
  t.deepEqual(verifyChecksums(r.frame), []);
  const reply = frame({ src: b.addr, dst: 'fd00:5::5', proto: 'UDP', sport: 5353, dport: 3333, payload: 'answer', srcMac: b.dstMac, dstMac: b.srcMac });
  const [r2] = core.run([reply], T0 + 5, 1);
  t.is(r2.reason, 'fwd_reply');
  t.is(r2.outPort, 3);
  t.like(parseFrame(r2.frame), { src: 'fd00:96::10', sport: 53, dst: 'fd00:5::5', dport: 3333 });
  t.deepEqual(verifyChecksums(r2.frame), []);
  // answered at once: not a stream yet (the kernel's UDP conntrack: replied and active after 2 s)
  t.is(core.flows({}, T0 + 5)[0].state, 'udp');
  t.true(core.flows({}, T0 + 5)[0].flags.includes('replied'));

  const syn = frame({ src: 'fd00:5::5', dst: 'fd00:96::10', proto: 'TCP', sport: 5000, dport: 443, flags: 'S', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC });
  const [r3] = core.run([syn], T0 + 6, 3);
  t.is(r3.reason, 'fwd_nat');
  t.is(parseFrame(r3.frame).dport, 5353);
  t.deepEqual(verifyChecksums(r3.frame), []);
});

test('UDP over IPv4 with checksum 0 keeps 0; VLAN tag is kept in place', (t) => {
  const core = mkCore(v4Setup());
  const q = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'UDP', sport: 1234, dport: 53, udpChecksum: false, payload: 'x', vlan: 42, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC });
  const [r] = core.run([q], T0, 1);
  t.is(r.reason, 'fwd_nat');
  const p = parseFrame(r.frame);
  t.is(p.vlan, 42);
  t.is(p.checksum, 0);
  t.is(p.dport, 8080);
  t.deepEqual(verifyChecksums(r.frame), []);
});

test('SCTP: CRC32c recomputed after DNAT and reverse NAT', (t) => {
  const core = mkCore(v4Setup());
  const init = frame({ src: '10.0.0.5', dst: '10.96.0.11', proto: 'SCTP', sport: 5000, dport: 7000, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC });
  const [r] = core.run([init], T0, 1);
  t.is(r.reason, 'fwd_nat');
  const p = parseFrame(r.frame);
  t.is(p.dport, 8080);
  t.deepEqual(verifyChecksums(r.frame), []);
  const back = frame({ src: p.dst, dst: '10.0.0.5', proto: 'SCTP', sport: 8080, dport: 5000, payload: 'data!', srcMac: BE_MAC, dstMac: BE_SRC_MAC });
  const [r2] = core.run([back], T0 + 1, 2);
  t.is(r2.reason, 'fwd_reply');
  t.like(parseFrame(r2.frame), { src: '10.96.0.11', sport: 7000 });
  t.deepEqual(verifyChecksums(r2.frame), []);
  // an INIT answered by DATA: no INIT-ACK, the kernel's CLOSED (docs/core.md "SCTP states")
  t.is(core.flows({}, T0 + 1)[0].state, 'sctp_closed');
});

test('masquerade: source becomes the SNAT address with a port from the range; reply translated back', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '192.168.0.100', port: 30080, proto: 'TCP', backends: [1, 2], flags: L.FEF_MASQUERADE | L.FEF_EXTERNAL }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }, { id: 2, addr: '10.1.0.2', port: 8080 }], snatV4: '192.168.0.100' });
  const core = mkCore(ir, { snatPortMin: 40000, snatPortMax: 40009 });
  const syn = frame({ src: '203.0.113.9', dst: '192.168.0.100', proto: 'TCP', sport: 55555, dport: 30080, flags: 'S', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC });
  const [r] = core.run([syn], T0, 0);
  t.is(r.reason, 'fwd_nat');
  const p = parseFrame(r.frame);
  t.is(p.src, '192.168.0.100');
  const h = flowHash(parseAddr('203.0.113.9').bytes, parseAddr('192.168.0.100').bytes, 55555, 30080, 6);
  t.is(p.sport, 40000 + (h % 10));
  t.deepEqual(verifyChecksums(r.frame), []);
  const fl = core.flows({}, T0)[0];
  t.true(fl.flags.includes('snat'));
  t.is(fl.natSourcePort, p.sport);
  const reply = frame({ src: p.dst, dst: '192.168.0.100', proto: 'TCP', sport: 8080, dport: p.sport, flags: 'SA', srcMac: BE_MAC, dstMac: BE_SRC_MAC });
  const [r2] = core.run([reply], T0 + 1, 1);
  t.is(r2.reason, 'fwd_reply');
  t.like(parseFrame(r2.frame), { src: '192.168.0.100', sport: 30080, dst: '203.0.113.9', dport: 55555 });
  t.deepEqual(verifyChecksums(r2.frame), []);
  t.is(core.counters().global.snat, 1);

  // the 10-port range fills up: distinct clients each take a port, the 11th is refused
  const frames = [];
  for (let i = 0; i < 10; i++) frames.push(frame({ src: `203.0.113.${20 + i}`, dst: '192.168.0.100', proto: 'TCP', sport: 1000, dport: 30080, flags: 'S' }));
  const rs = core.run(frames, T0 + 2, 0);
  // only the flows hashed onto the same backend compete for the same reply keys
  const ports = new Map();
  for (const x of rs.filter((x) => x.verdict === 'forward')) {
    const q = parseFrame(x.frame);
    const k = `${q.dst}:${q.sport}`;
    t.false(ports.has(k), 'two flows share a reply key');
    ports.set(k, true);
  }
  for (const x of rs) t.true(x.reason === 'fwd_nat' || x.reason === 'drop_snat_exhausted');
});

test('hairpin: a backend reaching its own service gets SNATed', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }], snatV4: '10.1.0.254' });
  const core = mkCore(ir);
  const syn = frame({ src: '10.1.0.1', dst: '10.96.0.10', proto: 'TCP', sport: 41000, dport: 80, flags: 'S', srcMac: BE_MAC, dstMac: BE_SRC_MAC });
  const [r] = core.run([syn], T0, 1);
  t.is(r.reason, 'fwd_nat');
  const p = parseFrame(r.frame);
  t.like(p, { src: '10.1.0.254', dst: '10.1.0.1', dport: 8080 });
  const reply = frame({ src: '10.1.0.1', dst: '10.1.0.254', proto: 'TCP', sport: 8080, dport: p.sport, flags: 'SA' });
  const [r2] = core.run([reply], T0 + 1, 1);
  t.is(r2.reason, 'fwd_reply');
  t.like(parseFrame(r2.frame), { src: '10.96.0.10', sport: 80, dst: '10.1.0.1', dport: 41000 });
  t.deepEqual(verifyChecksums(r2.frame), []);
});

test('masquerade frontend whose backend is the SNAT address itself (hostNetwork endpoint on this node): not SNATed, replies still reverse-NATed', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '192.168.0.100', port: 30080, proto: 'TCP', backends: [1], flags: L.FEF_MASQUERADE | L.FEF_EXTERNAL }], backends: [{ id: 1, addr: '192.168.0.100', port: 8080 }], snatV4: '192.168.0.100' });
  const core = mkCore(ir);
  const [r] = core.run([frame({ src: '203.0.113.9', dst: '192.168.0.100', proto: 'TCP', sport: 55555, dport: 30080, flags: 'S' })], T0, 0);
  t.is(r.reason, 'fwd_nat');
  t.like(parseFrame(r.frame), { src: '203.0.113.9', sport: 55555, dst: '192.168.0.100', dport: 8080 });
  const reply = frame({ src: '192.168.0.100', dst: '203.0.113.9', proto: 'TCP', sport: 8080, dport: 55555, flags: 'SA' });
  const [r2] = core.run([reply], T0 + 1, 1);
  t.is(r2.reason, 'fwd_reply');
  t.like(parseFrame(r2.frame), { src: '192.168.0.100', sport: 30080, dst: '203.0.113.9', dport: 55555 });
  t.is(core.counters().global.snat, 0);
});

test('no SNAT address for the family: masquerade frontend forwards without SNAT', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1], flags: L.FEF_MASQUERADE }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }] });
  const core = mkCore(ir);
  const [r] = core.run([frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1, dport: 80 })], T0, 1);
  t.is(r.reason, 'fwd_nat');
  t.is(parseFrame(r.frame).src, '10.0.0.5');
});

test('batch: many flows in one batch each get their own entry and replies match', (t) => {
  const core = mkCore(v4Setup(), { batchMax: 256 });
  const frames = [];
  for (let i = 0; i < 200; i++) frames.push(frame({ src: `10.0.${i >> 8}.${i & 255}`, dst: '10.96.0.10', proto: 'UDP', sport: 10000 + i, dport: 53, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }));
  const rs = core.run(frames, T0, 1);
  t.true(rs.every((x) => x.reason === 'fwd_nat'));
  t.is(core.counters().global.ct_active, 200);
  const replies = rs.map((x, i) => { const p = parseFrame(x.frame); return frame({ src: p.dst, dst: p.src, proto: 'UDP', sport: p.dport, dport: p.sport, srcMac: BE_MAC, dstMac: BE_SRC_MAC }); });
  const rr = core.run(replies, T0 + 1, 2);
  rr.forEach((x, i) => {
    t.is(x.reason, 'fwd_reply');
    const p = parseFrame(x.frame);
    t.is(p.dst, `10.0.${i >> 8}.${i & 255}`);
    t.is(p.dport, 10000 + i);
    t.is(p.sport, 53);
  });
  t.is(reasonCount(core, 'fwd_reply'), 200);
  t.is(gc(core, 'batches'), 2);
});

test('SNAT port exhaustion: a 2-port range serves two flows to one backend, the third is dropped', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '192.168.0.100', port: 30080, proto: 'UDP', backends: [1], flags: L.FEF_MASQUERADE }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }], snatV4: '192.168.0.100' });
  const core = mkCore(ir, { snatPortMin: 50000, snatPortMax: 50001 });
  const q = (i) => frame({ src: `203.0.113.${i}`, dst: '192.168.0.100', proto: 'UDP', sport: 999, dport: 30080 });
  const rs = core.run([q(1), q(2), q(3)], T0, 0);
  t.deepEqual(rs.map((r) => r.reason), ['fwd_nat', 'fwd_nat', 'drop_snat_exhausted']);
  t.deepEqual(rs.slice(0, 2).map((r) => parseFrame(r.frame).sport).sort(), [50000, 50001]);
  t.is(core.counters().global.snat, 2);
  // once a flow expires its port is free again (the probe frees the expired owner)
  const later = core.run([q(3)], T0 + 10 * 60_000, 0)[0];
  t.is(later.reason, 'fwd_nat');
});

test('reply-tuple clash without SNAT is refused instead of mistranslating replies', (t) => {
  // two frontends (ports 80 and 81) share backend 10.1.0.1:8080; the same client port reaches both
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1] }, { id: 2, addr: '10.96.0.10', port: 81, proto: 'TCP', backends: [1] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }] });
  const core = mkCore(ir);
  const a = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 5000, dport: 80, flags: 'S' });
  const b = frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 5000, dport: 81, flags: 'S' });
  const rs = core.run([a, b], T0, 0);
  t.deepEqual(rs.map((r) => r.reason), ['fwd_nat', 'drop_ct_clash']);
  const reply = frame({ src: '10.1.0.1', dst: '10.0.0.5', proto: 'TCP', sport: 8080, dport: 5000, flags: 'SA' });
  t.is(parseFrame(core.run([reply], T0 + 1, 1)[0].frame).sport, 80);
});

test('reply-tuple clash: a fresh SYN takes over the tuple of a closing flow (client port reuse)', (t) => {
  // a client reuses its port for another Service sharing the backend while the first flow closes
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1] }, { id: 2, addr: '10.96.0.11', port: 80, proto: 'TCP', backends: [1] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }] });
  const core = mkCore(ir);
  const pkt = (dst, flags) => frame({ src: '10.0.0.5', dst, proto: 'TCP', sport: 5000, dport: 80, flags });
  const back = (flags) => frame({ src: '10.1.0.1', dst: '10.0.0.5', proto: 'TCP', sport: 8080, dport: 5000, flags });
  t.is(core.run([pkt('10.96.0.10', 'S')], T0, 0)[0].reason, 'fwd_nat');
  core.run([back('SA')], T0 + 1, 1);
  // still open: a SYN to the other VIP must not steal the tuple
  t.is(core.run([pkt('10.96.0.11', 'S')], T0 + 2, 0)[0].reason, 'drop_ct_clash');
  core.run([back('FA')], T0 + 3, 1);
  core.run([pkt('10.96.0.10', 'FA')], T0 + 4, 0);
  // closed: only a pure SYN takes over; stray segments stay refused
  t.is(core.run([pkt('10.96.0.11', 'A')], T0 + 5, 0)[0].reason, 'drop_ct_clash');
  t.is(core.run([pkt('10.96.0.11', 'S')], T0 + 6, 0)[0].reason, 'fwd_nat');
  // and the replies now belong to the new flow
  t.is(parseFrame(core.run([back('SA')], T0 + 7, 1)[0].frame).src, '10.96.0.11');
});

test('source ranges: clients outside every CIDR are dropped before selection', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1], flags: L.FEF_SOURCE_RANGES, sourceRanges: ['203.0.113.0/24', '198.51.100.7/32'] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }] });
  const core = mkCore(ir);
  const f = (src) => frame({ src, dst: '10.96.0.10', proto: 'TCP', sport: 1000, dport: 80, flags: 'S' });
  const rs = core.run([f('203.0.113.77'), f('198.51.100.7'), f('198.51.100.8'), f('10.0.0.1')], T0, 0);
  t.deepEqual(rs.map((r) => r.reason), ['fwd_nat', 'fwd_nat', 'drop_source_range', 'drop_source_range']);
  const tr = core.trace([f('10.0.0.1')], 0, true, T0);
  t.truthy(tr[0].trace.stages & L.TS_SOURCE_RANGE_CHECKED);
  t.is(tr[0].trace.backend, 0);
});

test('a backend without a resolved port fails closed with drop_no_route and creates no flow', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1] }, { id: 2, addr: '10.96.0.10', port: 81, proto: 'TCP', backends: [2] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080, outPort: L.PORT_NONE }, { id: 2, addr: '10.1.0.2', port: 8080 }] });
  const core = mkCore(ir);
  const r1 = core.run([frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 1, dport: 80 })], T0, 0)[0];
  t.is(r1.reason, 'drop_no_route');
  t.is(r1.outPort, L.PORT_NONE);
  t.is(core.counters().global.ct_active, 0);
});
