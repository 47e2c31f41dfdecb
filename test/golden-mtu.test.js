// Golden packets of the egress MTU check (docs/core.md "Egress MTU"): a packet larger than the MTU
// of the port it would leave by is answered with ICMP fragmentation needed (IPv4 with DF) / ICMPv6
// packet too big, quoting the packet as it arrived, or dropped (IPv4 without DF, ICMP errors).
// Every step runs through the Wasm core and the reference model (test/lib/golden-scenario.js);
// the expected frames are built independently with src/packet/build.ts.
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { backend, frontend, mkIr, MAC } from './lib/packets.js';
import { runScenario, errorHeader, answerError, CLIENT_PORT, BE_PORT, fwd, reply, dropped, cli, toBe, fromBe, toCli } from './lib/golden-scenario.js';

const ROUTE_PORT = 7;

function udpService({ vip, be, routed }) {
  const bes = [backend({ id: 1, addr: be, port: 5353, outPort: BE_PORT })];
  const ir = mkIr({ frontends: [frontend({ id: 1, addr: vip, port: 53, proto: 'UDP' }, bes)], backends: bes });
  ir.routes = [{ prefix: routed, outPort: ROUTE_PORT, dstMac: MAC.rtDst, srcMac: MAC.rtSrc }];
  return ir;
}

const FAMILIES = [
  { fam: 4, client: '10.0.0.1', vip: '10.96.0.10', be: '10.1.0.5', routed: '172.16.0.0/16', far: '172.16.3.3' },
  { fam: 6, client: 'fd00::1', vip: 'fd00:96::a', be: 'fd00:1::5', routed: 'fd00:172::/64', far: 'fd00:172::3' },
];

const payloadOf = (n) => new Uint8Array(n).map((_, i) => (i * 7) & 0xff);
const tooBig = (frame, outPort = CLIENT_PORT) => ({ verdict: 'reject', reason: 'reject_packet_too_big', outPort, frame });

for (const { fam, client, vip, be, routed, far } of FAMILIES) {
  const kind = fam === 4 ? 'frag_needed' : 'packet_too_big';
  const cut = fam === 4 ? 576 - 28 : 1280 - 48;
  const q = { proto: 'UDP', sport: 40000, dport: 53, df: true };
  // the answers of one scenario, their header icmp_send's (errorHeader: numbered in order)
  const answers = () => {
    const h = errorHeader(fam);
    return (s) => answerError({ kind, ...h(), ...s });
  };

  test(`IPv${fam}: a datagram bigger than the backend port's MTU is answered with ${kind} quoting the client's own packet to the ClusterIP; no flow; one that fits is forwarded`, (t) => {
    const err = answers();
    const big = payloadOf(1400);
    const { core, model } = runScenario(t, {
      tables: udpService({ vip, be, routed }),
      opts: { portMtu: { [BE_PORT]: 1280 } },
      steps: [
        { label: 'too big', in: cli({ ...q, src: client, dst: vip, payload: big }),
          expect: tooBig(err({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, mtu: 1280, quoteLen: cut,
            inner: B.ipPacket({ ...q, src: client, dst: vip, payload: big }) })) },
        { check: ({ core: c, model: m }) => { t.is(c.flows().length, 0, 'core: no flow'); t.is(m.activeFlows().length, 0, 'model: no flow'); } },
        { label: 'fits', in: cli({ ...q, src: client, dst: vip, payload: payloadOf(1280 - (fam === 4 ? 28 : 48)) }),
          expect: fwd(BE_PORT, toBe({ ...q, src: client, dst: be, dport: 5353, payload: payloadOf(1280 - (fam === 4 ? 28 : 48)), ttl: 63 })) },
        { label: 'too big on the flow', in: cli({ ...q, src: client, dst: vip, payload: big }),
          expect: tooBig(err({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, mtu: 1280, quoteLen: cut,
            inner: B.ipPacket({ ...q, src: client, dst: vip, payload: big }) })) },
      ],
    });
    t.is(core.flows().length, 1);
    t.is(model.activeFlows().length, 1);
    t.is(core.counters().reasons.reject_packet_too_big, 2);
  });

  test(`IPv${fam}: a backend's reply bigger than the client port's MTU goes back to the backend as ${kind} quoting the reply as the backend sent it`, (t) => {
    const err = answers();
    const big = payloadOf(1400);
    const r = { proto: 'UDP', sport: 5353, dport: 40000, df: true };
    runScenario(t, {
      tables: udpService({ vip, be, routed }),
      opts: { portMtu: { [CLIENT_PORT]: 1280 } },
      steps: [
        { label: 'query', in: cli({ ...q, src: client, dst: vip, payload: 'q' }), expect: fwd(BE_PORT, toBe({ ...q, src: client, dst: be, dport: 5353, payload: 'q', ttl: 63 })) },
        { label: 'big answer', inPort: BE_PORT, in: fromBe({ ...r, src: be, dst: client, payload: big }),
          expect: tooBig(err({ srcMac: MAC.beSrc, dstMac: MAC.beDst, src: client, dst: be, mtu: 1280, quoteLen: cut,
            inner: B.ipPacket({ ...r, src: be, dst: client, payload: big }) }), BE_PORT) },
        { label: 'small answer', inPort: BE_PORT, in: fromBe({ ...r, src: be, dst: client, payload: 'a' }),
          expect: reply(toCli({ ...r, src: vip, dst: client, sport: 53, payload: 'a', ttl: 63 })) },
      ],
    });
  });

  test(`IPv${fam}: plain routing checks the route's port; MTU 0 (unknown) checks nothing`, (t) => {
    const err = answers();
    const big = payloadOf(1400);
    const d = { proto: 'UDP', sport: 1, dport: 2, df: true };
    runScenario(t, {
      tables: udpService({ vip, be, routed }),
      opts: { portMtu: { [ROUTE_PORT]: 1280, [BE_PORT]: 0 } },
      steps: [
        { label: 'routed too big', in: cli({ ...d, src: client, dst: far, payload: big }),
          expect: tooBig(err({ srcMac: MAC.node, dstMac: MAC.client, src: far, dst: client, mtu: 1280, quoteLen: cut,
            inner: B.ipPacket({ ...d, src: client, dst: far, payload: big }) })) },
        { label: 'service, unknown MTU', in: cli({ ...q, src: client, dst: vip, payload: big }),
          expect: fwd(BE_PORT, toBe({ ...q, src: client, dst: be, dport: 5353, payload: big, ttl: 63 })) },
      ],
    });
  });
}

test('IPv4 without DF bigger than the MTU is dropped (drop_packet_too_big: the core does not fragment), and so is an ICMP error', (t) => {
  const { client, vip, be, routed, far } = FAMILIES[0];
  const big = payloadOf(1400);
  const inner = B.ipPacket({ proto: 'UDP', src: far, dst: client, sport: 2, dport: 1, payload: big });
  const { core } = runScenario(t, {
    tables: udpService({ vip, be, routed }),
    opts: { portMtu: { [BE_PORT]: 1280, [ROUTE_PORT]: 576 } },
    steps: [
      { label: 'no DF', in: cli({ proto: 'UDP', src: client, dst: vip, sport: 40000, dport: 53, payload: big }), expect: dropped('drop_packet_too_big') },
      { label: 'ICMP error with DF', in: B.icmpError({ srcMac: MAC.client, dstMac: MAC.node, src: client, dst: far, kind: 'port_unreachable', inner, df: true }),
        expect: dropped('drop_packet_too_big') },
    ],
  });
  t.is(core.flows().length, 0);
  t.is(core.counters().reasons.drop_packet_too_big, 2);
});

test('IPv6: a port MTU below 1280 counts as 1280 (the IPv6 minimum link MTU, as ip6_forward clamps it)', (t) => {
  const { client, vip, be, routed } = FAMILIES[1];
  const q = { proto: 'UDP', sport: 40000, dport: 53 };
  const fits = payloadOf(1280 - 48), big = payloadOf(1281 - 48);
  runScenario(t, {
    tables: udpService({ vip, be, routed }),
    opts: { portMtu: { [BE_PORT]: 1000 } },
    steps: [
      { label: '1280 passes', in: cli({ ...q, src: client, dst: vip, payload: fits }), expect: fwd(BE_PORT, toBe({ ...q, src: client, dst: be, dport: 5353, payload: fits, ttl: 63 })) },
      { label: '1281 too big', in: cli({ ...q, sport: 40001, src: client, dst: vip, payload: big }),
        expect: tooBig(answerError({ kind: 'packet_too_big', ttl: 64, srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, mtu: 1280, quoteLen: 1280 - 48,
          inner: B.ipPacket({ ...q, sport: 40001, src: client, dst: vip, payload: big }) })) },
    ],
  });
});

test('Core.setPortMtu refuses bad values and reads back', async (t) => {
  const { Core } = await import('../dist/src/core/host.js');
  const core = Core.create({ flows: 64, batchMax: 4 });
  core.setPortMtu(3, 1400);
  t.is(core.portMtu(3), 1400);
  t.is(core.portMtu(4), 0);
  t.throws(() => core.setPortMtu(0xffff, 1500), { instanceOf: RangeError });
  t.throws(() => core.setPortMtu(1, 70000), { instanceOf: RangeError });
  t.throws(() => core.setPortMtu(1, 1.5), { instanceOf: RangeError });
});

test('ICMP: an echo request too big is answered (ping -M do learns the MTU), an ICMP error never is; both families', (t) => {
  const { client: c4, vip, be, routed, far: far4 } = FAMILIES[0];
  const { client: c6, far: far6 } = FAMILIES[1];
  const ir = udpService({ vip, be, routed });
  ir.routes.push({ prefix: FAMILIES[1].routed, outPort: ROUTE_PORT, dstMac: MAC.rtDst, srcMac: MAC.rtSrc });
  const big = payloadOf(1400);
  const echo4 = { proto: 'ICMP', icmpType: 8, icmpId: 7, icmpSeq: 1, src: c4, dst: far4, df: true, payload: big };
  const echo6 = { proto: 'ICMP', icmpType: 128, icmpId: 7, icmpSeq: 1, src: c6, dst: far6, payload: big };
  const inner6 = B.ipPacket({ proto: 'UDP', src: far6, dst: c6, sport: 2, dport: 1, payload: big });
  runScenario(t, {
    tables: ir,
    opts: { portMtu: { [ROUTE_PORT]: 1280 } },
    steps: [
      { label: 'echo v4', in: cli(echo4),
        expect: tooBig(B.icmpError({ kind: 'frag_needed', ...errorHeader(4)(), srcMac: MAC.node, dstMac: MAC.client, src: far4, dst: c4, mtu: 1280, quoteLen: 576 - 28, inner: B.ipPacket(echo4) })) },
      { label: 'echo v6', in: cli(echo6),
        expect: tooBig(answerError({ kind: 'packet_too_big', ttl: 64, srcMac: MAC.node, dstMac: MAC.client, src: far6, dst: c6, mtu: 1280, quoteLen: 1280 - 48, inner: B.ipPacket(echo6) })) },
      { label: 'ICMPv6 error', in: B.icmpError({ srcMac: MAC.client, dstMac: MAC.node, src: c6, dst: far6, kind: 'port_unreachable', inner: inner6, quoteLen: 1300 }),
        expect: dropped('drop_packet_too_big') },
      { label: 'ICMPv4 redirect', in: cli({ proto: 'ICMP', icmpType: 5, icmpCode: 1, src: c4, dst: far4, df: true, payload: big }), expect: dropped('drop_packet_too_big') },
    ],
  });
});
