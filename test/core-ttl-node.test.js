// Packets with the node itself at one end keep their TTL / hop limit (docs/core.md "Time exceeded",
// "Rewrite and checksums"): under kube-proxy only ip_forward / ip6_forward decrement it — local
// delivery (ip_local_deliver) and the node's own output (DNAT in OUTPUT) do not — so BGP with TTL
// security (GTSM, RFC 5082: IP_MINTTL 255), VRRP (TTL 255) and IPv6 ND (hop limit 255) work.
// A seeded mix through the Wasm core and the reference model frame for frame (trace records too):
// routed packets from and to node addresses (the SNAT address and a second node address of the
// detector), Service flows whose backend is the node (hostNetwork) or whose client is, both
// directions, ICMP errors about them, and the same for pods and outside clients, with TTL / hop
// limit 0..3, 64 and 255; every forwarded frame keeps its TTL exactly when its sender or its
// (translated) receiver is the node. ND: passed to the host untouched. A restore sets the flow bit
// from the node addresses in force, whatever the saved entry says.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import * as B from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { verifyChecksums } from '../dist/src/packet/checksum.js';
import { irFrom } from './lib/core-fixture.js';
import { corePair } from './lib/core-pair.js';
import { runBoth, firstMismatch } from './lib/packets.js';

const HOST_PORT = 2, POD_PORT = 1, UPLINK = 3;
const HOST_MAC = { dstMac: '02:00:00:00:0b:01', srcMac: '02:00:00:00:0b:02' };
const NODE = { 4: ['192.168.0.1', '198.51.100.7'], 6: ['fd00:168::1', '2001:db8:7::7'] };
const none = { outPort: 0xffff, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' };

const SVC = {
  frontends: [
    // pods
    { id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1, 2] },
    { id: 2, addr: '10.96.0.10', port: 53, proto: 'UDP', flags: L.FEF_MASQUERADE, backends: [3] },
    // hostNetwork endpoints: the SNAT address, the second node address
    { id: 3, addr: '10.96.0.11', port: 179, proto: 'TCP', backends: [4] },
    { id: 4, addr: '10.96.0.11', port: 53, proto: 'UDP', flags: L.FEF_MASQUERADE, backends: [5] },
    { id: 5, addr: 'fd00:96::a', port: 80, proto: 'TCP', backends: [6] },
    { id: 6, addr: 'fd00:96::b', port: 179, proto: 'TCP', backends: [7] },
  ],
  backends: [
    { id: 1, addr: '10.1.0.5', port: 8080 }, { id: 2, addr: '10.1.0.6', port: 8080 }, { id: 3, addr: '10.1.0.7', port: 5353 },
    { id: 4, addr: '192.168.0.1', port: 1179, outPort: HOST_PORT, ...HOST_MAC }, { id: 5, addr: '198.51.100.7', port: 5353, outPort: HOST_PORT, ...HOST_MAC },
    { id: 6, addr: 'fd00:1::5', port: 8080 }, { id: 7, addr: '2001:db8:7::7', port: 1179, outPort: HOST_PORT, ...HOST_MAC },
  ],
  snatV4: '192.168.0.1',
  snatV6: 'fd00:168::1',
  routes: [
    // the node addresses behind the host port (the daemon's static neighbours)
    ...[...NODE[4]].map((a) => ({ prefix: `${a}/32`, outPort: HOST_PORT, ...HOST_MAC })),
    ...[...NODE[6]].map((a) => ({ prefix: `${a}/128`, outPort: HOST_PORT, ...HOST_MAC })),
    { prefix: '172.16.0.0/16', outPort: 7, dstMac: '02:00:00:00:07:01', srcMac: '02:00:00:00:07:02' },
    { prefix: 'fd00:172::/64', outPort: 7, dstMac: '02:00:00:00:07:01', srcMac: '02:00:00:00:07:02' },
    { prefix: '10.1.0.0/16', outPort: POD_PORT, dstMac: '02:00:00:00:00:bb', srcMac: '02:00:00:00:be:01' },
    // the local-traffic detector: the pods, then the node's addresses
    { prefix: '10.1.0.0/16', ...none, localSource: 'pod' },
    ...[...NODE[4], ...NODE[6]].map((a) => ({ prefix: `${a}/${a.includes(':') ? 128 : 32}`, ...none, localSource: 'node' })),
  ],
};

function rng(seed) {
  let x = seed >>> 0;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32; };
}

const isNode = (a) => NODE[4].includes(a) || NODE[6].includes(a);
const TARGETS = [['10.96.0.10', 80, 'TCP'], ['10.96.0.10', 53, 'UDP'], ['10.96.0.11', 179, 'TCP'], ['10.96.0.11', 53, 'UDP'], ['fd00:96::a', 80, 'TCP'], ['fd00:96::b', 179, 'TCP']];
const CLIENTS = { 4: ['10.0.0.1', '10.1.0.9', ...NODE[4]], 6: ['fd00::1', ...NODE[6]] };
const FAR = { 4: ['172.16.1.1', ...NODE[4]], 6: ['fd00:172::1', ...NODE[6]] };
const CLI_MAC = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:fe' };
const BE_MAC = { srcMac: '02:00:00:00:be:01', dstMac: '02:00:00:00:00:bb' };

test('core = model: a frame keeps its TTL / hop limit exactly when the node sends it or receives it (routed, Service flows both ways, ICMP errors); a spent one is answered only between others', (t) => {
  const s = corePair(irFrom(SVC), { batchMax: 64, flows: 1024, affinitySlots: 1024, fragments: 64, portAddresses: { [UPLINK]: ['10.0.0.254', 'fd00::fe'], [POD_PORT]: ['10.1.0.1'], [HOST_PORT]: ['192.168.0.254', 'fd00:168::fe'] } });
  const r = rng(23);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const ttl = () => pick([0, 1, 2, 3, 64, 255, 255]);
  const seen = { kept: 0, decremented: 0, keptSpent: 0, routedToNode: 0, routedFromNode: 0, nodeBackend: 0, nodeClient: 0, icmpKept: 0, icmpDecremented: 0 };
  const reasons = {};
  for (let round = 0; round < 20; round++) {
    const now = 5000 + round * 1100;
    const frames = [];
    for (let i = 0; i < 30; i++) {
      const [dst, dport, proto] = pick(TARGETS);
      const fam = dst.includes(':') ? 6 : 4;
      const src = pick(CLIENTS[fam]);
      const l4 = proto === 'TCP' ? { flags: pick(['S', 'A', 'PA']), seq: 1, ack: 1 } : { payload: 'q' };
      frames.push({ frame: B.frame({ ...CLI_MAC, proto, src, dst, sport: 40000 + Math.floor(r() * 4), dport, ttl: ttl(), ...l4 }), inPort: isNode(src) ? HOST_PORT : UPLINK });
    }
    for (let i = 0; i < 10; i++) {
      const fam = r() < 0.5 ? 4 : 6;
      const src = pick([...CLIENTS[fam], ...FAR[fam]]), dst = pick(FAR[fam]);
      if (src === dst) continue;
      frames.push({ frame: B.frame({ ...CLI_MAC, proto: 'UDP', src, dst, sport: 5000, dport: 33434, payload: 'p', ttl: ttl() }), inPort: isNode(src) ? HOST_PORT : UPLINK });
    }
    for (const fl of s.core.flows().slice(0, 20)) {
      const beSide = isNode(fl.backend) ? HOST_PORT : POD_PORT;
      const l4 = fl.proto === 'TCP' ? { flags: pick(['SA', 'A']), seq: 1, ack: 1 } : { payload: 'a' };
      const back = { ...BE_MAC, proto: fl.proto, src: fl.backend, dst: fl.natSource ?? fl.client, sport: fl.backendPort, dport: fl.natSourcePort ?? fl.clientPort };
      frames.push({ frame: B.frame({ ...back, ttl: ttl(), ...l4 }), inPort: beSide });
      // an ICMP error about the packet the backend got, from the backend's side
      const quoted = B.ipPacket({ proto: fl.proto, src: fl.natSource ?? fl.client, dst: fl.backend, sport: fl.natSourcePort ?? fl.clientPort, dport: fl.backendPort, ttl: 64, ...(fl.proto === 'TCP' ? { flags: 'A' } : { payload: 'q' }) });
      frames.push({ frame: B.icmpError({ ...BE_MAC, kind: 'port_unreachable', src: fl.backend, dst: fl.natSource ?? fl.client, inner: quoted, ttl: ttl() }), inPort: beSide });
    }
    const pairs = runBoth(s.core, s.model, frames, now, UPLINK, { trace: true });
    t.is(firstMismatch(pairs), undefined, 'core = model');
    for (const p of pairs) {
      reasons[p.core.reason] = (reasons[p.core.reason] ?? 0) + 1;
      if (p.core.verdict !== 'forward') continue;
      const i = parseFrame(B.fromHex(p.input)), o = parseFrame(B.fromHex(p.core.hex));
      t.deepEqual(verifyChecksums(B.fromHex(p.core.hex)), [], 'checksums');
      // the node sent it (its own packets, a hostNetwork endpoint's answers, its errors), or it
      // is for the node (routed to a node address, DNATed to a hostNetwork endpoint, a reply or an
      // error to the node's own connection)
      const node = isNode(i.src) || isNode(o.dst);
      const icmp = p.core.reason === 'fwd_icmp_error';
      if (node) {
        t.is(o.ttl, i.ttl, `kept: ${p.core.reason} ${i.src} -> ${i.dst} => ${o.src} -> ${o.dst}`);
        seen.kept++;
        if (i.ttl <= 1) seen.keptSpent++;
        if (icmp) seen.icmpKept++;
        if (p.core.reason === 'fwd_routed' && isNode(o.dst)) seen.routedToNode++;
        if (p.core.reason === 'fwd_routed' && isNode(i.src)) seen.routedFromNode++;
        if (p.core.reason === 'fwd_nat' && isNode(o.dst)) seen.nodeBackend++;
        if (p.core.reason === 'fwd_nat' && isNode(i.src)) seen.nodeClient++;
      } else {
        t.is(o.ttl, i.ttl - 1, `decremented: ${p.core.reason} ${i.src} -> ${i.dst} => ${o.src} -> ${o.dst}`);
        seen.decremented++;
        if (icmp) seen.icmpDecremented++;
      }
    }
  }
  for (const [k, v] of Object.entries(seen)) t.true(v > 0, `the mix reaches ${k}: ${JSON.stringify(seen)} ${JSON.stringify(reasons)}`);
  for (const reason of ['reject_ttl_exceeded', 'drop_ttl_exceeded', 'fwd_icmp_error', 'fwd_reply', 'fwd_routed']) {
    t.true((reasons[reason] ?? 0) > 0, `the mix reaches ${reason}: ${JSON.stringify(reasons)}`);
  }
});

test('IPv6 neighbour discovery (RS, RA, NS, NA, redirect) with hop limit 255 goes to the host untouched, either way between the host port and the uplink', (t) => {
  const s = corePair(irFrom(SVC), { batchMax: 16, flows: 64, affinitySlots: 64 });
  const frames = [];
  for (const icmpType of [133, 134, 135, 136, 137]) {
    for (const [src, dst, inPort] of [['fe80::1', 'ff02::1', HOST_PORT], ['fd00:168::1', 'fd00::1', HOST_PORT], ['fe80::2', 'ff02::2', UPLINK], ['fd00::1', 'fd00:168::1', UPLINK]]) {
      frames.push({ frame: B.frame({ ...CLI_MAC, proto: 'ICMP', icmpType, rest: 0, src, dst, ttl: 255, payload: new Uint8Array(16) }), inPort });
    }
  }
  const pairs = runBoth(s.core, s.model, frames, 1000, UPLINK, { trace: true });
  t.is(firstMismatch(pairs), undefined, 'core = model');
  for (const p of pairs) {
    t.like(p.core, { verdict: 'to_host', reason: 'host_nd' });
    t.is(p.core.hex, p.input, 'the frame as it came');
    t.is(parseFrame(B.fromHex(p.core.hex)).ttl, 255);
  }
});

test('a restore sets the node bit from the node addresses in force (a hostNetwork flow restored from an entry without it keeps its TTL; a pod flow saved with it is decremented)', (t) => {
  const opts = { batchMax: 16, flows: 64, affinitySlots: 64 };
  const a = corePair(irFrom(SVC), opts).core;
  const syn = (dst, dport, sport) => ({ frame: B.frame({ ...CLI_MAC, proto: 'TCP', src: '10.0.0.1', dst, sport, dport, flags: 'S', seq: 1, ttl: 255 }), inPort: UPLINK });
  const r = a.run([syn('10.96.0.11', 179, 41000), syn('10.96.0.10', 80, 41001)], 1000);
  t.deepEqual(r.map((x) => parseFrame(x.frame).ttl), [255, 254]);
  const b = corePair(irFrom(SVC), opts).core;
  // the entries as a checkpoint holds them (src/core/flow-export.ts copies the same bytes)
  const raw = a.u8;
  let restored = 0;
  for (const { flow } of a.flows({}, 1000)) {
    const e = a.map.ctFlows + flow * L.CT_SIZE;
    const entry = raw.slice(e, e + L.CT_SIZE);
    entry[L.CT_FLAGS] ^= L.FLOW_NODE;   // the saved bit is wrong either way
    t.true(b.restoreFlowEntry(entry, 1000) > 0);
    restored++;
  }
  t.is(restored, 2);
  const ack = (dst, dport, sport) => ({ frame: B.frame({ ...CLI_MAC, proto: 'TCP', src: '10.0.0.1', dst, sport, dport, flags: 'A', seq: 2, ack: 1, ttl: 255 }), inPort: UPLINK });
  const r2 = b.run([ack('10.96.0.11', 179, 41000), ack('10.96.0.10', 80, 41001)], 1001);
  t.deepEqual(r2.map((x) => x.reason), ['fwd_nat', 'fwd_nat']);
  t.deepEqual(r2.map((x) => parseFrame(x.frame).ttl), [255, 254]);
});

// assembly/node-addr.ts copies the node addresses into small arrays per batch, behind a filter of
// their last bytes; a node entry that is no host prefix, or more than 16 of a family, leaves the
// general scan in force. Either way the answer is the scan's: core = model, TTLs as above.
for (const [what, extra] of [
  ['a node entry that is a /24 prefix (the general scan)', { 4: ['198.51.100.0/24'], 6: ['2001:db8:7::/64'] }],
  ['20 node addresses of each family (more than the arrays hold: the general scan)', {
    4: Array.from({ length: 20 }, (_, i) => `198.51.100.${i + 1}/32`), 6: Array.from({ length: 20 }, (_, i) => `2001:db8:7::${(i + 1).toString(16)}/128`) }],
  ['node addresses sharing their last byte with other hosts (the filter passes them, the compare decides)', { 4: ['198.51.100.7/32', '198.51.101.9/32'], 6: ['2001:db8:7::7/128'] }],
]) {
  test(`routed frames: ${what}`, (t) => {
    const routes = [
      { prefix: '172.16.0.0/16', outPort: 7, dstMac: '02:00:00:00:07:01', srcMac: '02:00:00:00:07:02' },
      { prefix: 'fd00:172::/64', outPort: 7, dstMac: '02:00:00:00:07:01', srcMac: '02:00:00:00:07:02' },
      ...[...extra[4], ...extra[6]].map((prefix) => ({ prefix, ...none, localSource: 'node' })),
    ];
    const s = corePair(irFrom({ routes }), { batchMax: 64, flows: 64, affinitySlots: 64, portAddresses: { [UPLINK]: ['10.0.0.254', 'fd00::fe'] } });
    const frames = [];
    const srcs = { 4: ['198.51.100.7', '198.51.100.9', '198.51.101.9', '198.51.102.7', '10.0.0.7', '10.0.0.9', '198.51.100.20'], 6: ['2001:db8:7::7', '2001:db8:8::7', 'fd00::7', '2001:db8:7::14'] };
    for (const fam of [4, 6]) {
      for (const src of srcs[fam]) {
        for (const ttl of [1, 64, 255]) {
          frames.push({ frame: B.frame({ ...CLI_MAC, proto: 'UDP', src, dst: fam === 4 ? '172.16.1.1' : 'fd00:172::1', sport: 5000, dport: 33434, payload: 'p', ttl }), inPort: UPLINK });
        }
      }
    }
    const pairs = runBoth(s.core, s.model, frames, 1000, UPLINK, { trace: true });
    t.is(firstMismatch(pairs), undefined, 'core = model');
    let kept = 0, decremented = 0;
    for (const p of pairs) {
      if (p.core.verdict !== 'forward') continue;
      const i = parseFrame(B.fromHex(p.input)), o = parseFrame(B.fromHex(p.core.hex));
      if (o.ttl === i.ttl) kept++; else { t.is(o.ttl, i.ttl - 1); decremented++; }
    }
    t.true(kept > 0 && decremented > 0, `kept ${kept}, decremented ${decremented}`);
  });
}

// An apply that changes the node's addresses decides every flow's node flag again (src/core/
// node-flag-sweep.ts, assembly/node-sweep.ts): a flow whose client or backend became a node address
// keeps the TTL of its next packet, both ways, and decrements it again once the address is gone;
// the SNAT address counts as the detector's node entries do. Applies that leave the node's
// addresses alone do not sweep.
test('a node address added or removed while a flow lives: its next packets keep, then decrement again, their TTL (core = model, flag listed)', (t) => {
  const s = corePair(irFrom(SVC), { batchMax: 16, flows: 64, affinitySlots: 64 });
  const flip = (spec) => { const ir = irFrom(spec); s.core.applyIr(ir); s.model.setIr(ir); };
  const withNode = (extra, more = {}) => ({ ...SVC, ...more, routes: [...SVC.routes, ...extra.map((a) => ({ prefix: `${a}/${a.includes(':') ? 128 : 32}`, ...none, localSource: 'node' }))] });
  const clients = [['10.0.0.1', '10.96.0.10'], ['fd00::1', 'fd00:96::a']];
  const pkt = (flags) => clients.map(([src, dst]) => ({ frame: B.frame({ ...CLI_MAC, proto: 'TCP', src, dst, sport: 41000, dport: 80, flags, seq: 1, ack: 1, ttl: 64 }), inPort: UPLINK }));
  let now = 1000;
  const run = (frames) => {
    const pairs = runBoth(s.core, s.model, frames, now++, UPLINK, { trace: true });
    t.is(firstMismatch(pairs), undefined, 'core = model');
    return pairs.map((p) => { t.is(p.core.verdict, 'forward', p.core.reason); return parseFrame(B.fromHex(p.core.hex)).ttl; });
  };
  // client -> whether the flow has the node flag, as the core lists it (and the model's, by flow index)
  const flags = () => {
    const fl = s.core.flows({}, now);
    const model = new Map(s.model.activeFlows().map((f) => [f.index, (f.flags & L.FLOW_NODE) !== 0]));
    t.deepEqual(fl.map((f) => f.flags.includes('node')), fl.map((f) => model.get(f.flow)), 'core = model: flags');
    return Object.fromEntries(fl.map((f) => [f.client, f.flags.includes('node')]));
  };
  const sweeps = () => { const g = s.core.counters().global; return [g.ct_node_sweeps, g.ct_node_flag_changed]; };
  t.deepEqual(run(pkt('S')), [63, 63], 'an outside client: decremented');
  t.deepEqual(flags(), { '10.0.0.1': false, 'fd00::1': false });
  const [s0, c0] = sweeps();
  // the clients' addresses become the node's
  flip(withNode(['10.0.0.1', 'fd00::1']));
  t.deepEqual(flags(), { '10.0.0.1': true, 'fd00::1': true });
  t.deepEqual(sweeps(), [s0 + 1, c0 + 2]);
  t.deepEqual(run(pkt('A')), [64, 64], 'the node\'s own: kept');
  // the replies to them too (the backends' answers, delivered to the node)
  const flows = s.core.flows({}, now);
  const replies = flows.map((fl) => ({ frame: B.frame({ ...BE_MAC, proto: 'TCP', src: fl.backend, dst: fl.client, sport: fl.backendPort, dport: fl.clientPort, flags: 'A', seq: 1, ack: 1, ttl: 64 }), inPort: POD_PORT }));
  t.deepEqual(run(replies), [64, 64], 'replies to the node: kept');
  // an apply that leaves the node's addresses alone: no sweep
  flip(withNode(['10.0.0.1', 'fd00::1'], { frontends: [...SVC.frontends, { id: 9, addr: '10.96.0.19', port: 80, proto: 'TCP', backends: [1] }] }));
  t.deepEqual(sweeps(), [s0 + 1, c0 + 2]);
  // removed again: decremented
  flip(SVC);
  t.deepEqual(flags(), { '10.0.0.1': false, 'fd00::1': false });
  t.deepEqual(sweeps(), [s0 + 2, c0 + 4]);
  t.deepEqual(run(pkt('A')), [63, 63], 'no longer the node\'s: decremented');
  t.deepEqual(run(replies), [63, 63], 'replies: decremented');
  // the SNAT address is a node address too
  flip({ ...SVC, snatV4: '10.0.0.1' });
  t.deepEqual(flags(), { '10.0.0.1': true, 'fd00::1': false });
  t.deepEqual(sweeps(), [s0 + 3, c0 + 5]);
  t.deepEqual(run(pkt('A')), [64, 63]);
  // the backend's address becomes the node's (a pod address taken by the host): its answers are
  // the node's own output, the client's packets to it local delivery
  flip(withNode(flows.map((fl) => fl.backend)));
  t.deepEqual(flags(), { '10.0.0.1': true, 'fd00::1': true });
  t.deepEqual(run(pkt('A')), [64, 64]);
  t.deepEqual(run(replies), [64, 64]);
});
