// Golden packets of the time exceeded a routed packet gets when its TTL / hop limit runs out at the
// node (docs/core.md "Time exceeded"): ICMP type 11 / ICMPv6 type 3 from the in port's address,
// quoting the packet as it arrived (at most 576 / 1280 bytes in all), back out of the in port to the
// sender's MAC; what icmp_send / icmpv6_send never answer is dropped silently; a port without an
// address of the family drops it under its own reason; the answers share the reject rate limit.
// A service packet's time exceeded: test/golden-ttl-service.test.js.
// Every step runs through the Wasm core and the reference model (test/lib/golden-scenario.js); the
// expected frames are built independently with src/packet/build.ts.
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { backend, frontend, mkIr, MAC } from './lib/packets.js';
import { runScenario, errorHeader, answerError, CLIENT_PORT, BE_PORT, dropped, cli } from './lib/golden-scenario.js';

const ROUTE_PORT = 7;
const NO_ADDR_PORT = 9;

const FAMILIES = [
  { fam: 4, client: '10.0.0.1', vip: '10.96.0.10', be: '10.1.0.5', routed: '172.16.0.0/16', far: '172.16.3.3', node: '10.0.0.254', other: 'fd00::fe', mcast: '239.1.2.3' },
  { fam: 6, client: 'fd00::1', vip: 'fd00:96::a', be: 'fd00:1::5', routed: 'fd00:172::/64', far: 'fd00:172::3', node: 'fd00::fe', other: '10.0.0.254', mcast: 'ff0e::1:3' },
];

function tables({ vip, be, routed, mcast }) {
  const bes = [backend({ id: 1, addr: be, port: 5353, outPort: BE_PORT })];
  const ir = mkIr({ frontends: [frontend({ id: 1, addr: vip, port: 53, proto: 'UDP' }, bes)], backends: bes });
  ir.routes = [
    { prefix: routed, outPort: ROUTE_PORT, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
    { prefix: mcast.includes(':') ? 'ff00::/8' : '224.0.0.0/4', outPort: ROUTE_PORT, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
  ];
  return ir;
}

const payloadOf = (n) => new Uint8Array(n).map((_, i) => (i * 5) & 0xff);
const exceeded = (frame, outPort = CLIENT_PORT) => ({ verdict: 'reject', reason: 'reject_ttl_exceeded', outPort, frame });

for (const { fam, client, vip, be, routed, far, node, other, mcast } of FAMILIES) {
  const cut = fam === 4 ? 576 - 28 : 1280 - 48;
  // the answers of one scenario, their header icmp_send's (errorHeader: numbered in order)
  const answers = () => {
    const h = errorHeader(fam);
    return (s) => answerError({ kind: 'time_exceeded', ...h(), srcMac: MAC.node, dstMac: MAC.client, src: node, dst: client, ...s });
  };
  const opts = { portAddresses: { [CLIENT_PORT]: [other, node], [NO_ADDR_PORT]: [other] } };

  test(`IPv${fam}: a routed packet with TTL 1 is answered with time exceeded from the in port's address, quoting it as received; TTL 2 is forwarded`, (t) => {
    const err = answers();
    const u = { proto: 'UDP', sport: 40000, dport: 33434, payload: 'probe' };
    const big = payloadOf(1400);
    const { core } = runScenario(t, {
      tables: tables({ vip, be, routed, mcast }), opts,
      steps: [
        { label: 'UDP TTL 1', in: cli({ ...u, src: client, dst: far, ttl: 1 }),
          expect: exceeded(err({ inner: B.ipPacket({ ...u, src: client, dst: far, ttl: 1 }) })) },
        { label: 'UDP TTL 0', in: cli({ ...u, src: client, dst: far, ttl: 0 }),
          expect: exceeded(err({ inner: B.ipPacket({ ...u, src: client, dst: far, ttl: 0 }) })) },
        { label: 'echo request TTL 1', in: cli({ proto: 'ICMP', icmpType: fam === 4 ? 8 : 128, rest: 0x12340001, src: client, dst: far, ttl: 1, payload: 'ping' }),
          expect: exceeded(err({ inner: B.ipPacket({ proto: 'ICMP', icmpType: fam === 4 ? 8 : 128, rest: 0x12340001, src: client, dst: far, ttl: 1, payload: 'ping' }) })) },
        { label: 'big TTL 1: quote cut', in: cli({ ...u, src: client, dst: far, ttl: 1, payload: big }),
          expect: exceeded(err({ quoteLen: cut, inner: B.ipPacket({ ...u, src: client, dst: far, ttl: 1, payload: big }) })) },
        { label: 'TTL 2 forwarded', in: cli({ ...u, src: client, dst: far, ttl: 2 }),
          expect: { verdict: 'forward', reason: 'fwd_routed', outPort: ROUTE_PORT, frame: B.frame({ ...u, srcMac: MAC.rtSrc, dstMac: MAC.rtDst, src: client, dst: far, ttl: 1 }) } },
        { label: 'no address of the family on the port', inPort: NO_ADDR_PORT, in: cli({ ...u, src: client, dst: far, ttl: 1 }), expect: dropped('drop_ttl_no_address') },
        { label: 'a port with no addresses at all', inPort: 11, in: cli({ ...u, src: client, dst: far, ttl: 1 }), expect: dropped('drop_ttl_no_address') },
      ],
    });
    const r = core.counters().reasons;
    t.is(r.reject_ttl_exceeded, 4);
    t.is(r.drop_ttl_no_address, 2);
    t.is(r.drop_ttl_exceeded ?? 0, 0);
  });

  test(`IPv${fam}: what the kernel never answers is dropped silently (drop_ttl_exceeded); fragments`, (t) => {
    const err = answers();
    const u = { proto: 'UDP', sport: 40000, dport: 33434, payload: 'probe' };
    const inner = B.ipPacket({ ...u, src: far, dst: client });
    const steps = [
      { label: 'an ICMP error', in: B.icmpError({ kind: 'port_unreachable', srcMac: MAC.client, dstMac: MAC.node, src: client, dst: far, inner, ttl: 1 }), expect: dropped('drop_ttl_exceeded') },
      { label: 'multicast destination', in: cli({ ...u, src: client, dst: mcast, ttl: 1 }), expect: dropped('drop_ttl_exceeded') },
      { label: 'Ethernet broadcast', in: B.frame({ ...u, srcMac: MAC.client, dstMac: 'ff:ff:ff:ff:ff:ff', src: client, dst: far, ttl: 1 }), expect: dropped('drop_ttl_exceeded') },
      { label: 'unspecified source', in: cli({ ...u, src: fam === 4 ? '0.0.0.0' : '::', dst: far, ttl: 1 }), expect: dropped('drop_ttl_exceeded') },
    ];
    if (fam === 6) {
      // under kube-proxy conntrack's defrag (nf_ct_frag6_gather) reassembles the datagram before
      // ip6_forward, which answers it once: the first fragment (offset 0) is answered, a later
      // fragment is not, though its first fragment was seen
      const first = { ...u, src: client, dst: far, ttl: 1, v6Ext: [{ type: 44, more: true, id: 78 }] };
      steps.push({ label: 'a first fragment with hop limit 1 (answered)', in: cli(first), expect: exceeded(err({ inner: B.ipPacket(first) })) });
      steps.push({ label: 'a first fragment', in: cli({ ...u, src: client, dst: far, ttl: 5, v6Ext: [{ type: 44, more: true, id: 77 }] }),
        expect: { verdict: 'forward', reason: 'fwd_routed', outPort: ROUTE_PORT, frame: B.frame({ ...u, srcMac: MAC.rtSrc, dstMac: MAC.rtDst, src: client, dst: far, ttl: 4, v6Ext: [{ type: 44, more: true, id: 77 }] }) } });
      const later = { proto: 'UDP', rawL4: payloadOf(16), src: client, dst: far, ttl: 1, v6Ext: [{ type: 44, offset: 2, id: 77 }] };
      steps.push({ label: 'a non-first fragment (not answered)', in: cli(later), expect: dropped('drop_ttl_exceeded') });
    }
    if (fam === 4) {
      // the first fragment is remembered (a later one without it is drop_fragment before any TTL check)
      steps.push({ label: 'a first fragment', in: cli({ ...u, src: client, dst: far, ttl: 5, mf: true, id: 77 }),
        expect: { verdict: 'forward', reason: 'fwd_routed', outPort: ROUTE_PORT, frame: B.frame({ ...u, srcMac: MAC.rtSrc, dstMac: MAC.rtDst, src: client, dst: far, ttl: 4, mf: true, id: 77 }) } });
      steps.push({ label: 'a non-first fragment', in: cli({ proto: 'UDP', rawL4: payloadOf(16), src: client, dst: far, ttl: 1, fragOffset: 2, id: 77 }), expect: dropped('drop_ttl_exceeded') });
    }
    runScenario(t, { tables: tables({ vip, be, routed, mcast }), opts, steps });
  });

  test(`IPv${fam}: a routed packet from or to the node itself keeps its TTL (its output, local delivery: only ip_forward decrements), a spent one too; others are decremented`, (t) => {
    const u = { proto: 'UDP', sport: 40000, dport: 33434, payload: 'probe' };
    const self = fam === 4 ? '192.168.0.1' : 'fd00:168::1';
    // a second node address, known from the local-traffic detector's node entry (not the SNAT address)
    const second = fam === 4 ? '198.51.100.7' : '2001:db8:7::7';
    const HOST_PORT = 12;
    const ir = tables({ vip, be, routed, mcast });
    if (fam === 4) ir.snatV4 = self; else ir.snatV6 = self;
    const none = { outPort: 0xffff, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' };
    const plen = fam === 4 ? 32 : 128;
    // the node addresses behind the host port (host routes, as the daemon's static neighbours)
    ir.routes.unshift({ prefix: `${self}/${plen}`, outPort: HOST_PORT, dstMac: MAC.beDst, srcMac: MAC.beSrc },
      { prefix: `${second}/${plen}`, outPort: HOST_PORT, dstMac: MAC.beDst, srcMac: MAC.beSrc });
    ir.routes.push({ prefix: `${second}/${plen}`, ...none, localSource: 'node' });
    const out = (src, dst, ttl) => ({ verdict: 'forward', reason: 'fwd_routed', outPort: ROUTE_PORT, frame: B.frame({ ...u, srcMac: MAC.rtSrc, dstMac: MAC.rtDst, src, dst, ttl }) });
    const toHost = (src, dst, ttl) => ({ verdict: 'forward', reason: 'fwd_routed', outPort: HOST_PORT, frame: B.frame({ ...u, srcMac: MAC.beSrc, dstMac: MAC.beDst, src, dst, ttl }) });
    const { core } = runScenario(t, {
      tables: ir, opts,
      steps: [
        { label: 'TTL 1 from the node', inPort: HOST_PORT, in: cli({ ...u, src: self, dst: far, ttl: 1 }), expect: out(self, far, 1) },
        { label: 'TTL 0 from the node', inPort: HOST_PORT, in: cli({ ...u, src: self, dst: far, ttl: 0 }), expect: out(self, far, 0) },
        { label: 'TTL 2 from the node: kept', inPort: HOST_PORT, in: cli({ ...u, src: self, dst: far, ttl: 2 }), expect: out(self, far, 2) },
        { label: 'TTL 255 from the node (GTSM, VRRP): kept', inPort: HOST_PORT, in: cli({ ...u, src: self, dst: far, ttl: 255 }), expect: out(self, far, 255) },
        { label: 'TTL 255 from the second node address: kept', inPort: HOST_PORT, in: cli({ ...u, src: second, dst: far, ttl: 255 }), expect: out(second, far, 255) },
        { label: 'TTL 255 to the node: kept', in: cli({ ...u, src: client, dst: self, ttl: 255 }), expect: toHost(client, self, 255) },
        { label: 'TTL 64 to the second node address: kept', in: cli({ ...u, src: client, dst: second, ttl: 64 }), expect: toHost(client, second, 64) },
        { label: 'TTL 1 to the node: delivered, not answered', in: cli({ ...u, src: client, dst: self, ttl: 1 }), expect: toHost(client, self, 1) },
        { label: 'TTL 255 between others: decremented', in: cli({ ...u, src: client, dst: far, ttl: 255 }), expect: out(client, far, 254) },
      ],
    });
    t.is(core.counters().reasons.reject_ttl_exceeded ?? 0, 0);
  });

  test(`IPv${fam}: time exceeded shares the reject rate limit (6 answers at one instant, then drop_reject_rate_limited)`, (t) => {
    const err = answers();
    const u = { proto: 'UDP', dport: 33434, payload: 'p' };
    const steps = [];
    for (let i = 0; i < 6; i++) {
      steps.push({ label: `probe ${i}`, in: cli({ ...u, sport: 40000 + i, src: client, dst: far, ttl: 1 }),
        expect: exceeded(err({ inner: B.ipPacket({ ...u, sport: 40000 + i, src: client, dst: far, ttl: 1 }) })) });
    }
    steps.push({ label: 'probe 7', in: cli({ ...u, sport: 40010, src: client, dst: far, ttl: 1 }), expect: dropped('drop_reject_rate_limited') });
    // a reject of the same client is refused by the same bucket
    steps.push({ label: 'reject after', in: cli({ proto: 'UDP', sport: 40011, src: client, dst: vip, dport: 54, payload: 'q' }), expect: dropped('drop_reject_rate_limited') });
    const interval = fam === 4 ? 1000 : 100;
    steps.push({ label: 'an interval later', now: 1000 + interval, in: cli({ ...u, sport: 40012, src: client, dst: far, ttl: 1 }),
      expect: exceeded(err({ inner: B.ipPacket({ ...u, sport: 40012, src: client, dst: far, ttl: 1 }) })) });
    const { core } = runScenario(t, { tables: tables({ vip, be, routed, mcast }), opts, steps });
    t.is(core.counters().reasons.drop_reject_rate_limited, 2);
  });
}

test('Core.setPortAddresses: the first address of each family; portAddresses reads them back; [] clears', async (t) => {
  const { Core } = await import('../dist/src/core/host.js');
  const core = Core.create({ flows: 64, batchMax: 4 });
  core.setPortAddresses(5, ['fd00::1', '10.0.0.1', '10.0.0.2']);
  t.deepEqual(core.portAddresses(5), ['10.0.0.1', 'fd00::1']);
  core.setPortAddresses(5, []);
  t.deepEqual(core.portAddresses(5), []);
  t.throws(() => core.setPortAddresses(0xffff, ['10.0.0.1']), { instanceOf: RangeError });
  t.throws(() => core.setPortAddresses(1, ['nope']));
});
