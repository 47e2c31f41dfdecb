// Golden packets (data, expected bytes built with src/packet/build.ts, never with the core or the
// model; test/lib/golden-scenario.js runs both): the source of a reject's ICMP port unreachable,
// as the kernel's __icmp_send (net/ipv4/icmp.c) and icmp6_send (net/ipv6/icmp.c) choose it for
// the nftables proxier's `reject` (docs/core.md "Reject", Kubernetes difference (14)): the
// rejected packet's destination when it is the node's own address (a NodePort, refused in
// filter-input: RTCF_LOCAL / ipv6_chk_addr), else the address of the route back to the sender: the
// node's own packet's source (refused in filter-output: the route to a local address), or the
// node's address toward the sender (a ClusterIP, an external IP the node does not hold, refused in
// filter-forward) — the in port's address, the one a routed packet's time exceeded comes from; a
// port without an address of the family answers from the destination. A TCP SYN gets the same ICMP error as a UDP datagram
// (nft's bare `reject`), under the same rate limit. What the node forwards meets ip_forward /
// ip6_forward before the filter-forward hook: its quote shows the TTL one lower, and a spent TTL
// gets a time exceeded from the in port's address instead (a RST too); a node address's packets
// are delivered locally (filter-input), quoted as received, TTL 1 included.
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { backend, frontend, mkIr, MAC, L } from './lib/packets.js';
import { runScenario, errorHeader, answerError, CLIENT_PORT, BE_PORT, dropped, cli } from './lib/golden-scenario.js';

const NO_ADDR_PORT = 7;   // a port the host gave no address of the family
const HOST_PORT = 12;     // the node's own stack (its packets come from a node address)

const FAMILIES = [
  { fam: 4, client: '10.0.0.1', vip: '10.96.0.10', node: '192.168.0.1', second: '198.51.100.7', external: '203.0.113.9', gw: '10.0.0.254', other: 'fd00::fe', be: '10.1.0.5' },
  { fam: 6, client: 'fd00::1', vip: 'fd00:96::a', node: 'fd00:168::1', second: '2001:db8:7::7', external: '2001:db8:113::9', gw: 'fd00::fe', other: '10.0.0.254', be: 'fd00:1::5' },
];

function tables({ fam, vip, node, second, external, be }) {
  const bes = [backend({ id: 1, addr: be, port: 8080, outPort: BE_PORT })];
  const ir = mkIr({
    frontends: [
      frontend({ id: 1, addr: vip, port: 80, proto: 'TCP' }, []),
      frontend({ id: 2, addr: vip, port: 53, proto: 'UDP' }, []),
      frontend({ id: 3, addr: vip, port: 443, proto: 'TCP' }, bes),   // the ClusterIP's defined port: any other is invalid
      frontend({ id: 4, addr: node, port: 30080, proto: 'TCP', kind: 'NodePort', flags: L.FEF_EXTERNAL }, []),
      frontend({ id: 5, addr: second, port: 30080, proto: 'TCP', kind: 'NodePort', flags: L.FEF_EXTERNAL }, []),
      frontend({ id: 6, addr: external, port: 80, proto: 'TCP', kind: 'ExternalIP', flags: L.FEF_EXTERNAL }, []),
    ],
    backends: bes,
  });
  // the node's addresses: the SNAT address, and a second one the local-traffic detector knows
  if (fam === 4) ir.snatV4 = node; else ir.snatV6 = node;
  const plen = fam === 4 ? 32 : 128;
  ir.routes = [{ prefix: `${second}/${plen}`, outPort: 0xffff, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', localSource: 'node' }];
  return ir;
}

const rej = (reason, frame) => ({ verdict: 'reject', reason, outPort: CLIENT_PORT, frame });
const rejFrom = (reason, frame, inPort) => ({ verdict: 'reject', reason, outPort: inPort, frame });

for (const { fam, client, vip, node, second, external, gw, other, be } of FAMILIES) {
  const hostGw = fam === 4 ? '10.244.0.1' : 'fd00:244::1';
  const opts = { portAddresses: { [CLIENT_PORT]: [other, gw], [NO_ADDR_PORT]: [other], [HOST_PORT]: [hostGw] } };

  test(`IPv${fam}: a reject's port unreachable comes from the in port's address for a ClusterIP or an external IP the node does not hold, from the destination for a node address`, (t) => {
    const h = errorHeader(fam);
    const err = (src, inner) => answerError({ srcMac: MAC.node, dstMac: MAC.client, src, dst: client, kind: 'port_unreachable', inner, ...h() });
    const syn = (i, dst, dport) => ({ proto: 'TCP', src: client, dst, sport: 40000 + i, dport, flags: 'S', seq: 1000 });
    const udp = (i, dst, dport) => ({ proto: 'UDP', src: client, dst, sport: 40000 + i, dport, payload: 'q' });
    const ping = () => ({ proto: 'ICMP', icmpType: fam === 4 ? 8 : 128, rest: 0x12340001, src: client, dst: vip, payload: 'ping' });
    // one answer per rate-limit interval (1 s / 100 ms): the client's bucket never runs dry
    const at = (i) => 1000 + i * (fam === 4 ? 1000 : 100);
    const steps = [
      ['ClusterIP TCP SYN, no endpoints', syn(0, vip, 80), 'reject_no_endpoints', gw],
      ['ClusterIP UDP, no endpoints', udp(1, vip, 53), 'reject_no_endpoints', gw],
      ['ClusterIP TCP SYN, a port the Service does not define', syn(2, vip, 81), 'reject_invalid_port', gw],
      ['ClusterIP ping', ping(), 'reject_cluster_ip_proto', gw],
      ['NodePort at the SNAT (node) address', syn(4, node, 30080), 'reject_no_endpoints', node],
      ['NodePort at a second node address', syn(5, second, 30080), 'reject_no_endpoints', second],
      ['external IP the node does not hold', syn(6, external, 80), 'reject_no_endpoints', gw],
    ].map(([label, s, reason, src], i) => ({ label, now: at(i), in: cli(s),
      // forwarded (a ClusterIP, an external IP): quoted with the TTL ip_forward left; a node address's: as received
      expect: rej(reason, err(src, B.ipPacket(src === gw ? { ...s, ttl: 63 } : s))) }));
    const noAddr = syn(7, vip, 80);
    steps.push({ label: 'ClusterIP from a port without an address of the family: from the ClusterIP', now: at(7), inPort: NO_ADDR_PORT, in: cli(noAddr),
      expect: rejFrom('reject_no_endpoints', err(vip, B.ipPacket({ ...noAddr, ttl: 63 })), NO_ADDR_PORT) });
    // TTL 1: ip_forward's check comes first for what the node forwards (a time exceeded from the in
    // port's address, quoting the packet as received; a RST too); a node address takes it (filter-input)
    const exceeded = (s) => ({ verdict: 'reject', reason: 'reject_ttl_exceeded', outPort: CLIENT_PORT,
      frame: answerError({ srcMac: MAC.node, dstMac: MAC.client, src: gw, dst: client, kind: 'time_exceeded', inner: B.ipPacket(s), ...h() }) });
    const spent = { ...syn(8, vip, 80), ttl: 1 }, spentUdp = { ...udp(9, vip, 53), ttl: 1 }, spentRst = { ...syn(10, vip, 80), flags: 'R', ttl: 1 };
    const spentInvalid = { ...syn(11, vip, 81), ttl: 1 }, spentNode = { ...syn(12, node, 30080), ttl: 1 };
    steps.push(
      { label: 'ClusterIP TCP SYN with TTL 1: time exceeded', now: at(8), in: cli(spent), expect: exceeded(spent) },
      { label: 'ClusterIP UDP with TTL 1: time exceeded', now: at(9), in: cli(spentUdp), expect: exceeded(spentUdp) },
      { label: 'ClusterIP RST with TTL 1: time exceeded', now: at(10), in: cli(spentRst), expect: exceeded(spentRst) },
      { label: 'undefined ClusterIP port with TTL 1: time exceeded', now: at(11), in: cli(spentInvalid), expect: exceeded(spentInvalid) },
      { label: 'NodePort at the node address with TTL 1: port unreachable from it, quoted as received', now: at(12), in: cli(spentNode),
        expect: rej('reject_no_endpoints', err(node, B.ipPacket(spentNode))) },
      { label: 'ClusterIP RST: dropped', now: at(13), in: cli({ ...syn(13, vip, 80), flags: 'R' }), expect: dropped('drop_rst_no_endpoints') },
    );
    // the node's own packets (filter-output): from their own source, the route back to a local
    // address; quoted as sent (no ip_forward), TTL 1 included
    for (const [i, ttl] of [[14, 64], [15, 1]]) {
      const own = { ...syn(i, vip, 80), src: node, ttl };
      steps.push({ label: `the node's own SYN to the ClusterIP, TTL ${ttl}: from its own address`, now: at(i), inPort: HOST_PORT, in: cli(own),
        expect: rejFrom('reject_no_endpoints', answerError({ srcMac: MAC.node, dstMac: MAC.client, src: node, dst: node, kind: 'port_unreachable', inner: B.ipPacket(own), ...h() }), HOST_PORT) });
    }
    const { core } = runScenario(t, { tables: tables({ fam, vip, node, second, external, be }), opts, steps });
    const r = core.counters().reasons;
    t.is(r.reject_no_endpoints, 9);
    t.is(r.reject_invalid_port, 1);
    t.is(r.reject_cluster_ip_proto, 1);
    t.is(r.reject_ttl_exceeded, 4);
    t.is(r.drop_rst_no_endpoints, 1);
  });

  test(`IPv${fam}: TCP SYNs share the reject rate limit with datagrams: 6 answers at one instant, then drop_reject_rate_limited`, (t) => {
    const h = errorHeader(fam);
    const seg = (sport) => ({ proto: 'TCP', src: client, dst: vip, sport, dport: 80, flags: 'S', seq: 1 });
    const dgram = (sport) => ({ proto: 'UDP', src: client, dst: vip, sport, dport: 53, payload: 'q' });
    const err = (s) => answerError({ srcMac: MAC.node, dstMac: MAC.client, src: gw, dst: client, kind: 'port_unreachable', inner: B.ipPacket({ ...s, ttl: 63 }), ...h() });
    const frames = [seg(1), dgram(2), seg(3), dgram(4), seg(5), seg(6), seg(7), dgram(8)];
    const { core } = runScenario(t, {
      tables: tables({ fam, vip, node, second, external, be }), opts,
      steps: frames.map((s, i) => ({ label: `${s.proto} ${s.sport}`, now: 1000, in: cli(s), expect: i < 6 ? rej('reject_no_endpoints', err(s)) : dropped('drop_reject_rate_limited') })),
    });
    t.is(core.counters().reasons.drop_reject_rate_limited, 2);
  });
}
