// Time exceeded (assembly/ttl.ts, docs/core.md "Time exceeded"), core = model frame for frame with
// trace records: a seeded mix of routed packets with TTL / hop limit 0..3 from ports with and
// without addresses — unicast and multicast destinations, Ethernet group addresses, unspecified
// sources, ICMP errors and queries, first and later fragments, VLAN tags, packets larger than the
// quote — over several instants (the reject rate limit refills), live and as a dry-run trace.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import * as B from '../dist/src/packet/build.js';
import { irFrom } from './lib/core-fixture.js';
import { corePair, runPair } from './lib/core-pair.js';
import { runBoth, firstMismatch } from './lib/packets.js';

const ROUTES = [
  { prefix: '172.16.0.0/16', outPort: 7, dstMac: '02:00:00:00:07:01', srcMac: '02:00:00:00:07:02' },
  { prefix: '224.0.0.0/4', outPort: 7, dstMac: '02:00:00:00:07:01', srcMac: '02:00:00:00:07:02' },
  { prefix: '255.255.255.255/32', outPort: 7, dstMac: '02:00:00:00:07:01', srcMac: '02:00:00:00:07:02' },
  { prefix: 'fd00:172::/64', outPort: 7, dstMac: '02:00:00:00:07:01', srcMac: '02:00:00:00:07:02' },
  { prefix: 'ff00::/8', outPort: 7, dstMac: '02:00:00:00:07:01', srcMac: '02:00:00:00:07:02' },
];
const PORTS = { 3: ['10.0.0.254', 'fd00::fe'], 4: ['10.0.0.253'], 5: ['fd00::fd'] }; // 6: none

function rng(seed) {
  let x = seed >>> 0;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32; };
}

function randomFrame(r) {
  const pick = (a) => a[Math.floor(r() * a.length)];
  const fam = r() < 0.5 ? 4 : 6;
  const src = pick(fam === 4 ? ['10.0.0.1', '10.0.0.2', '10.0.0.3', '0.0.0.0'] : ['fd00::1', 'fd00::2', '::']);
  const dst = pick(fam === 4 ? ['172.16.1.1', '172.16.9.9', '239.1.1.1', '255.255.255.255'] : ['fd00:172::1', 'fd00:172::9', 'ff0e::1']);
  const ttl = Math.floor(r() * 4);
  const eth = { srcMac: '02:00:00:00:00:01', dstMac: r() < 0.1 ? 'ff:ff:ff:ff:ff:ff' : r() < 0.05 ? '01:00:5e:01:01:01' : '02:00:00:00:00:fe', ...(r() < 0.1 ? { vlan: 5 } : {}) };
  const payload = new Uint8Array(r() < 0.2 ? 1500 : Math.floor(r() * 40)).map((_, i) => i & 0xff);
  const kind = r();
  let spec;
  if (kind < 0.5) spec = { proto: 'UDP', sport: 40000 + Math.floor(r() * 8), dport: 33434, payload };
  else if (kind < 0.65) spec = { proto: 'TCP', sport: 40000, dport: 80, flags: 'S', seq: 1 };
  else if (kind < 0.8) spec = { proto: 'ICMP', icmpType: pick(fam === 4 ? [8, 0, 13, 19, 42] : [128, 129, 139, 200]), rest: 0x10001, payload };
  else if (kind < 0.9) {
    const inner = B.ipPacket({ proto: 'UDP', src: dst, dst: src, sport: 33434, dport: 40000 });
    return { frame: B.icmpError({ ...eth, kind: pick(['port_unreachable', 'time_exceeded']), src, dst, inner, ttl }), inPort: pick([3, 4, 5, 6]) };
  } else spec = fam === 4 ? { proto: 'UDP', rawL4: payload.subarray(0, 16), fragOffset: 1 + Math.floor(r() * 4), id: 9 } : { proto: 'UDP', sport: 1, dport: 2, mf: true, id: 9 };
  return { frame: B.frame({ ...eth, ...spec, src, dst, ttl }), inPort: pick([3, 4, 5, 6]) };
}

test('core = model on a seeded mix of spent TTLs, across instants, live and dry-run', (t) => {
  const s = corePair(irFrom({ routes: ROUTES }), { batchMax: 64, flows: 1024, affinitySlots: 1024, fragments: 64, portAddresses: PORTS });
  s.model.setPortAddresses(6, []);
  const r = rng(19);
  const seen = {};
  for (let round = 0; round < 12; round++) {
    const frames = Array.from({ length: 64 }, () => randomFrame(r));
    const now = 5000 + round * 150;
    // a dry run first (decides from the buckets as they are, charges nothing: the live run
    // after it must still match the model, which the dry run did not charge either)
    const dry = runBoth(s.core, s.model, frames.slice(0, 8), now, 3, { dryRun: true });
    t.is(firstMismatch(dry), undefined, 'dry run: core = model');
    for (const x of runPair(t, s, frames, now)) seen[x.reason] = (seen[x.reason] ?? 0) + 1;
  }
  for (const reason of ['reject_ttl_exceeded', 'drop_ttl_exceeded', 'drop_ttl_no_address', 'drop_reject_rate_limited', 'fwd_routed']) {
    t.true((seen[reason] ?? 0) > 0, `the mix reaches ${reason}: ${JSON.stringify(seen)}`);
  }
});

test('core: the PORT_ADDR entry is read per frame (set, changed, cleared between batches)', (t) => {
  const s = corePair(irFrom({ routes: ROUTES }), { batchMax: 8, flows: 64, affinitySlots: 64 });
  const f = (sport) => ({ frame: B.frame({ srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:fe', proto: 'UDP', src: '10.0.0.1', dst: '172.16.1.1', sport, dport: 33434, ttl: 1 }), inPort: 3 });
  const srcOf = (x) => B.toHex(B.fromHex(x.hex).subarray(26, 30));
  const once = (sport) => runPair(t, s, [f(sport)], 1000)[0];
  t.is(once(1).reason, 'drop_ttl_no_address');
  s.core.setPortAddresses(3, ['10.9.9.9']); s.model.setPortAddresses(3, ['10.9.9.9']);
  let x = once(2);
  t.is(x.reason, 'reject_ttl_exceeded');
  t.is(srcOf(x), '0a090909');
  s.core.setPortAddresses(3, ['10.8.8.8', 'fd00::8']); s.model.setPortAddresses(3, ['10.8.8.8', 'fd00::8']);
  x = once(3);
  t.is(srcOf(x), '0a080808');
  s.core.setPortAddresses(3, ['fd00::8']); s.model.setPortAddresses(3, ['fd00::8']);
  t.is(once(4).reason, 'drop_ttl_no_address');
  t.is(L.PA_SIZE, 20);
});

// Service packets (docs/core.md "Time exceeded"): new flows' probes, original- and reply-direction
// hits of plain and masqueraded flows (ClusterIP, NodePort; both families; a hostNetwork endpoint
// at the node's address, which takes spent TTLs) with TTL 0..3 and 64,
// core = model with trace records, live and dry-run; no probe leaves a flow behind.
const SVC = {
  frontends: [
    { id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1, 2] },
    { id: 2, addr: '10.96.0.10', port: 53, proto: 'UDP', flags: L.FEF_MASQUERADE, backends: [3] },
    { id: 3, addr: '192.168.0.1', port: 30080, proto: 'TCP', kind: 'NodePort', flags: L.FEF_MASQUERADE, backends: [1, 2] },
    { id: 4, addr: 'fd00:96::a', port: 80, proto: 'TCP', backends: [4] },
    { id: 5, addr: 'fd00:96::a', port: 53, proto: 'UDP', backends: [5] },
    // a hostNetwork endpoint: the node itself (the SNAT address) takes spent TTLs
    { id: 6, addr: '10.96.0.11', port: 80, proto: 'TCP', backends: [6] },
  ],
  backends: [
    { id: 1, addr: '10.1.0.5', port: 8080 }, { id: 2, addr: '10.1.0.6', port: 8080 }, { id: 3, addr: '10.1.0.7', port: 5353 },
    { id: 4, addr: 'fd00:1::5', port: 8080 }, { id: 5, addr: 'fd00:1::6', port: 5353 }, { id: 6, addr: '192.168.0.1', port: 8081 },
  ],
  snatV4: '192.168.0.1',
  routes: ROUTES,
};
// the node itself among the clients (its own packets take spent TTLs)
const CLIENTS = { 4: ['10.0.0.1', '10.0.0.2', '192.168.0.1'], 6: ['fd00::1', 'fd00::2'] };
const TARGETS = [['10.96.0.10', 80, 'TCP'], ['10.96.0.10', 53, 'UDP'], ['192.168.0.1', 30080, 'TCP'], ['fd00:96::a', 80, 'TCP'], ['fd00:96::a', 53, 'UDP'], ['10.96.0.11', 80, 'TCP']];
const CLI_MAC = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:fe' };
const BE_MAC = { srcMac: '02:00:00:00:be:01', dstMac: '02:00:00:00:00:bb' };

test('core = model on service packets with spent TTLs (new flows, both directions of plain and masqueraded flows), live and dry-run', (t) => {
  // port 3: the client side (both families); port 1: the backends' side, IPv4 only (an IPv6 reply's
  // spent TTL finds no address there)
  const s = corePair(irFrom(SVC), { batchMax: 64, flows: 1024, affinitySlots: 1024, fragments: 64, portAddresses: { 3: ['10.0.0.254', 'fd00::fe'], 1: ['10.1.0.1'] } });
  const r = rng(7);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const ttl = () => pick([0, 1, 1, 2, 3, 64, 64, 64]);
  const seen = {};
  const flowCount = () => [s.core.flows().length, s.model.flows.filter(Boolean).length];
  for (let round = 0; round < 16; round++) {
    const now = 5000 + round * 400;
    const frames = [];
    for (let i = 0; i < 40; i++) {
      const [dst, dport, proto] = pick(TARGETS);
      const fam = dst.includes(':') ? 6 : 4;
      const l4 = proto === 'TCP' ? { flags: pick(['S', 'S', 'A', 'PA']), seq: 1, ack: 1 } : { payload: 'q' };
      frames.push({ frame: B.frame({ ...CLI_MAC, proto, src: pick(CLIENTS[fam]), dst, sport: 40000 + Math.floor(r() * 6), dport, ttl: ttl(), ...l4 }), inPort: 3 });
    }
    // replies on the flows open now
    for (const fl of s.core.flows().slice(0, 24)) {
      const l4 = fl.proto === 'TCP' ? { flags: pick(['SA', 'A', 'PA']), seq: 1, ack: 1 } : { payload: 'a' };
      frames.push({ frame: B.frame({ ...BE_MAC, proto: fl.proto, src: fl.backend, dst: fl.natSource ?? fl.client, sport: fl.backendPort, dport: fl.natSourcePort ?? fl.clientPort, ttl: ttl(), ...l4 }), inPort: 1 });
    }
    const before = flowCount();
    const dry = runBoth(s.core, s.model, frames.slice(0, 16), now, 3, { dryRun: true, trace: true });
    t.is(firstMismatch(dry), undefined, 'dry run: core = model');
    t.deepEqual(flowCount(), before, 'a dry run creates no flow');
    for (const x of runPair(t, s, frames, now)) seen[x.reason] = (seen[x.reason] ?? 0) + 1;
    const [c, m] = flowCount();
    t.is(c, m, 'core and model hold as many flows');
  }
  for (const reason of ['reject_ttl_exceeded', 'drop_ttl_no_address', 'drop_reject_rate_limited', 'fwd_nat', 'fwd_reply']) {
    t.true((seen[reason] ?? 0) > 0, `the mix reaches ${reason}: ${JSON.stringify(seen)}`);
  }
  t.true(s.core.flows().length > 0);
});
