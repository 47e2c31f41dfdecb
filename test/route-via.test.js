// Routes whose next hop is an address (`via`), resolved by ARP/ND on the route's port: the config's
// rules, the uplink learning that address (and only it) though it learns nothing else, and an
// unresolved route in the compiled tables (its prefix has no next hop; no shorter route takes it).
// End to end in namespaces: test/e2e-route-via.test.js.
import test from 'ava';
import { parseConfig, ConfigError } from '../dist/src/daemon/config.js';
import { L2Responder, eui64LinkLocal } from '../dist/src/daemon/l2.js';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import { arp, ethernet, ipPacket, ETH_P_IPV6 } from '../dist/src/packet/build.js';
import { parseAddr, formatAddr, formatMac } from '../dist/src/util/addr.js';
import * as L from '../dist/assembly/layout.js';

const base = {
  node: { name: 'node-a', addresses: ['192.168.100.2'] },
  ports: [
    { name: 'gw', type: 'afpacket', ifname: 'g0', role: 'uplink', gateways: ['192.168.50.2', 'fd00:50::2'] },
    { name: 'v4only', type: 'afpacket', ifname: 'g1', role: 'uplink', gateways: ['192.168.60.2'] },
  ],
};
const withRoutes = (routes) => ({ ...base, routes });
const problems = (routes) => t_throws(withRoutes(routes));
function t_throws(cfg) {
  try { parseConfig(cfg, 'x.yaml'); } catch (e) { if (e instanceof ConfigError) return e.message; throw e; }
  return '';
}

test('config: a route takes its next hop by mac or by via, exactly one', (t) => {
  const c = parseConfig(withRoutes([
    { prefix: '0.0.0.0/0', port: 'gw', via: '192.168.50.1' },
    { prefix: 'fd00:60::/64', port: 'gw', via: 'FD00:50:0::1' },
    { prefix: '10.0.0.0/8', port: 'gw', mac: '02:AA:00:00:00:01' },
  ]));
  t.is(c.routes[0].via, '192.168.50.1');
  t.is(c.routes[0].mac, undefined);
  t.is(c.routes[2].mac, '02:aa:00:00:00:01');
  t.is(c.routes[2].via, undefined);
  const m = problems([
    { prefix: '10.1.0.0/16', port: 'gw', mac: '02:00:00:00:00:01', via: '192.168.50.1' },
    { prefix: '10.2.0.0/16', port: 'gw' },
  ]);
  t.regex(m, /invalid config x\.yaml/);
  t.regex(m, /routes\[0\]\.via: give the next hop by mac or by via, not both/);
  t.regex(m, /routes\[1\]\.via: required: the next hop's address \(via\), or its MAC \(mac\)/);
});

test('config: via is a unicast address of the prefix\'s family, askable on its port', (t) => {
  const m = problems([
    { prefix: '10.1.0.0/16', port: 'gw', via: 'fd00:50::1' },
    { prefix: 'fd00:1::/64', port: 'gw', via: '192.168.50.1' },
    { prefix: '10.2.0.0/16', port: 'gw', via: '192.168.50.300' },
    { prefix: '10.3.0.0/16', port: 'gw', via: '224.0.0.1' },
    { prefix: 'fd00:2::/64', port: 'gw', via: 'fe80::1%v4only' },
    { prefix: 'fd00:3::/64', port: 'v4only', via: 'fd00:60::1' },
    { prefix: '10.4.0.0/16', port: 'nope', via: '192.168.50.1' },
    { prefix: 'fd00:4::/64', port: 'gw', via: 'ff02::1' },
    { prefix: '10.5.0.0/16', port: 'gw', via: '192.168.50.2' },
  ]);
  t.regex(m, /routes\[0\]\.via: must be an IPv4 address \(the family of prefix 10\.1\.0\.0\/16\)/);
  t.regex(m, /routes\[1\]\.via: must be an IPv6 address \(the family of prefix fd00:1::\/64\)/);
  t.regex(m, /routes\[2\]\.via: must be an IPv4 or IPv6 address/);
  t.regex(m, /routes\[3\]\.via: must be a unicast address a neighbour can own/);
  t.regex(m, /routes\[4\]\.via: the zone %v4only names port "v4only", not the route's port "gw": a link-local next hop is on the route's port/);
  t.regex(m, /routes\[5\]\.via: port "v4only" has no IPv6 address to ask from \(ARP\/ND needs one\): add it to ports\[1\]\.gateways/);
  t.regex(m, /routes\[6\]\.port: no port named "nope"/);
  t.regex(m, /routes\[7\]\.via: must be a unicast address a neighbour can own/);
  t.regex(m, /routes\[8\]\.via: must be another host's address, not one this node answers for/);
  t.is(m.split('\n').length, 1 + 9, 'one line per problem, nothing else');
});

test('config: an IPv6 link-local via is on the route\'s port: no zone, or one naming that port; asked from the port\'s own link-local address', (t) => {
  const c = parseConfig(withRoutes([
    { prefix: '::/0', port: 'gw', via: 'fe80::1' },
    { prefix: 'fd00:7::/64', port: 'gw', via: 'FE80::1%gw' },
    { prefix: 'fd00:8::/64', port: 'gw', via: 'fe80::2%g0' },
    // a port with no IPv6 address of its own: the link-local next hop is asked from the port's link-local
    { prefix: 'fd00:9::/64', port: 'v4only', via: 'fe80::9' },
  ]));
  t.deepEqual(c.routes.map((r) => r.via), ['fe80::1', 'FE80::1%gw', 'fe80::2%g0', 'fe80::9']);
  const m = problems([
    { prefix: '::/0', port: 'gw', via: 'fe80::1%g1' },
    { prefix: 'fd00:1::/64', port: 'gw', via: 'fe80::1%eth7' },
    { prefix: 'fd00:2::/64', port: 'gw', via: 'fd00:50::1%gw' },
    { prefix: 'fd00:3::/64', port: 'gw', via: 'fe80::1%' },
  ]);
  t.regex(m, /routes\[0\]\.via: the zone %g1 names port "v4only", not the route's port "gw": a link-local next hop is on the route's port/);
  t.regex(m, /routes\[1\]\.via: the zone %eth7 names no port: give the route's port \(%gw or %g0\) or no zone/);
  t.regex(m, /routes\[2\]\.via: a zone \(%gw\) is only for a link-local next hop \(fe80::\/10\)/);
  t.regex(m, /routes\[3\]\.via: must be an IPv4 or IPv6 address/);
  t.is(m.split('\n').length, 1 + 4, 'one line per problem, nothing else');
});

const UPLINK = { index: 1, name: 'gw', mac: '02:00:00:00:00:01', role: 'uplink', gateways: ['192.168.50.2', 'fd00:50::2'], learn: false };

test('an uplink that learns nothing learns the routes\' next hops from their ARP and NA', (t) => {
  const l2 = new L2Responder([{ ...UPLINK, probe: ['192.168.50.1', 'fd00:50::1'] }], ['192.168.100.2']);
  // the router's ARP reply to a probe, and its gratuitous ARP from a new MAC
  const reply = arp({ op: 2, senderMac: '02:bb:00:00:00:01', senderIp: '192.168.50.1', targetMac: UPLINK.mac, targetIp: '192.168.50.2', srcMac: '02:bb:00:00:00:01', dstMac: UPLINK.mac, padTo: 60 });
  t.deepEqual(l2.handle(reply, 1).learned, { addr: '192.168.50.1', family: 4, port: 1, mac: '02:bb:00:00:00:01', source: 'learned' });
  const garp = arp({ op: 1, senderMac: '02:bb:00:00:00:02', senderIp: '192.168.50.1', targetIp: '192.168.50.1', srcMac: '02:bb:00:00:00:02', dstMac: 'ff:ff:ff:ff:ff:ff', padTo: 60 });
  t.is(l2.handle(garp, 1).learned?.mac, '02:bb:00:00:00:02');
  // another host on the link: not learned (the uplink learns only what it resolves)
  const other = arp({ op: 1, senderMac: '02:cc:00:00:00:01', senderIp: '192.168.50.7', targetIp: '192.168.50.2', srcMac: '02:cc:00:00:00:01', dstMac: 'ff:ff:ff:ff:ff:ff', padTo: 60 });
  const r = l2.handle(other, 1);
  t.is(r.action, 'reply', 'its request for the gateway address is answered');
  t.is(r.learned, undefined);
  // an unsolicited NA for the IPv6 next hop (target link-layer address option)
  const body = new Uint8Array(32);
  body.set(parseAddr('fd00:50::1').bytes, 0);
  body[16] = 2; body[17] = 1; body.set([2, 0xbb, 0, 0, 0, 6], 18);
  const na = ethernet({ srcMac: '02:bb:00:00:00:06', dstMac: '33:33:00:00:00:01' }, ETH_P_IPV6,
    ipPacket({ src: 'fd00:50::1', dst: 'ff02::1', proto: 'ICMP', icmpType: 136, icmpCode: 0, rest: 0x20000000, payload: body.subarray(0, 24), ttl: 255 }));
  t.deepEqual(l2.handle(na, 1).learned, { addr: 'fd00:50::1', family: 6, port: 1, mac: '02:bb:00:00:00:06', source: 'learned' });
  // without the next hop in its list, the same uplink learns nothing
  const plain = new L2Responder([UPLINK], ['192.168.100.2']);
  t.is(plain.handle(reply, 1).learned, undefined);
  t.is(plain.handle(na, 1).learned, undefined);
});

const node = (routes) => ({
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: { nodeAddresses: ['192.168.100.2'], routes },
});
const svcObjs = [
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: ['10.60.0.5'], conditions: { ready: true } }] },
];

test('an unresolved route (no nextHopMac) has no next hop: its prefix and backends drop, no shorter route takes them', (t) => {
  const wide = { prefix: '10.0.0.0/8', port: 2, nextHopMac: '02:00:00:00:00:99', localMac: '02:00:00:00:00:02' };
  const c = new Compiler();
  c.change({ upsert: validateAll([node([{ prefix: '10.60.0.0/24', port: 1, localMac: '02:00:00:00:00:01' }, wide]), ...svcObjs]) });
  const route = c.ir.routes.find((r) => r.prefix === '10.60.0.0/24');
  t.truthy(route, 'the prefix stays in the tables');
  t.is(route.outPort, L.PORT_NONE);
  const [be] = [...c.ir.backends.values()];
  t.is(be.outPort, L.PORT_NONE, 'the backend behind it is unresolved (held by the worker, probed)');
  // resolved: the route and the backend take the next hop's MAC
  c.change({ upsert: validateAll([node([{ prefix: '10.60.0.0/24', port: 1, nextHopMac: '02:BB:00:00:00:01', localMac: '02:00:00:00:00:01' }, wide])]) });
  const r2 = c.ir.routes.find((r) => r.prefix === '10.60.0.0/24');
  t.is(r2.outPort, 1);
  t.is(r2.dstMac, '02:bb:00:00:00:01');
  const [be2] = [...c.ir.backends.values()];
  t.is(be2.outPort, 1);
  t.is(be2.dstMac, '02:bb:00:00:00:01');
});

test('an uplink without a gateway address (the node recipe\'s) asks from a node address, and learns the answer bridged to the host', (t) => {
  const cfg = {
    node: { name: 'node-a', addresses: ['192.168.100.2'] },
    ports: [
      { name: 'uplink', type: 'afpacket', ifname: 'eth0', role: 'uplink', gateways: [] },
      { name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', gateways: ['10.244.0.1'], hostAddresses: ['192.168.100.2/24'] },
    ],
    routes: [{ prefix: '0.0.0.0/0', port: 'uplink', via: '192.168.100.1' }],
  };
  t.is(parseConfig(cfg).routes[0].via, '192.168.100.1');
  t.regex(t_throws({ ...cfg, routes: [{ prefix: '::/0', port: 'uplink', via: 'fd00:100::1' }] }),
    /routes\[0\]\.via: port "uplink" has no IPv6 address to ask from \(ARP\/ND needs one\): add it to ports\[0\]\.gateways \(or an IPv6 node address to node\.addresses\)/);
  const up = { index: 0, name: 'uplink', mac: '02:00:00:00:00:01', role: 'uplink', gateways: [], learn: false, probe: ['192.168.100.1'], bridge: 1 };
  const host = { index: 1, name: 'host', mac: '02:00:00:00:00:01', role: 'host', gateways: ['10.244.0.1'], learn: false, bridge: 0 };
  const l2 = new L2Responder([up, host], ['192.168.100.2']);
  const probe = l2.probe('192.168.100.1', 0);
  t.truthy(probe, 'a probe is built');
  t.is([...probe.subarray(28, 32)].join('.'), '192.168.100.2', 'from the node address');
  // the router's answer is the host's too (an ARP reply to a node address): bridged, and learned
  const reply = arp({ op: 2, senderMac: '02:bb:00:00:00:01', senderIp: '192.168.100.1', targetMac: up.mac, targetIp: '192.168.100.2', srcMac: '02:bb:00:00:00:01', dstMac: up.mac, padTo: 60 });
  const r = l2.handle(reply, 0);
  t.is(r.action, 'bridge');
  t.deepEqual(r.learned, { addr: '192.168.100.1', family: 4, port: 0, mac: '02:bb:00:00:00:01', source: 'learned' });
});

/** An NS (type 135) / NA (136) from `src` to `dst` for `target`, with the link-layer address option `optMac`. */
function nd({ type, srcMac, dstMac, src, dst, target, optMac, flags = 0 }) {
  const body = new Uint8Array(24);
  body.set(parseAddr(target).bytes, 0);
  body[16] = type === 135 ? 1 : 2; body[17] = 1; body.set(optMac.split(':').map((x) => parseInt(x, 16)), 18);
  return ethernet({ srcMac, dstMac }, ETH_P_IPV6, ipPacket({ src, dst, proto: 'ICMP', icmpType: type, icmpCode: 0, rest: flags, payload: body, ttl: 255 }));
}
const ipv6Src = (f) => formatAddr(f.subarray(22, 38), 6);
const ipv6Dst = (f) => formatAddr(f.subarray(38, 54), 6);

test('a port with a link-local next hop asks for it from its own link-local address (modified EUI-64 of its MAC), answers NS for that address, and learns the router\'s NA and NS', (t) => {
  const ROUTER = '02:bb:00:00:00:01', OWN_LL = 'fe80::ff:fe00:1';   // EUI-64 of 02:00:00:00:00:01
  t.is(eui64LinkLocal('02:00:00:00:00:01'), OWN_LL);
  t.is(eui64LinkLocal('52:54:00:12:34:56'), 'fe80::5054:ff:fe12:3456');
  // the node recipe's uplink: no gateways, a node address of IPv4 only
  const up = { ...UPLINK, gateways: [], probe: ['fe80::1'] };
  const l2 = new L2Responder([up], ['192.168.100.2']);
  const probe = l2.probe('fe80::1', 1);
  t.truthy(probe, 'a probe is built although the port has no IPv6 address configured');
  t.is(ipv6Src(probe), OWN_LL, 'from the port\'s link-local address');
  t.is(ipv6Dst(probe), 'ff02::1:ff00:1', 'to the next hop\'s solicited-node group');
  const unicast = l2.probe('fe80::1', 1, ROUTER);
  t.is(ipv6Src(unicast), OWN_LL, 'a unicast re-verification too');
  t.is(formatMac(unicast, 0), ROUTER);
  // the router's NA (Router | Solicited | Override) to the port's link-local address: learned
  const na = nd({ type: 136, srcMac: ROUTER, dstMac: up.mac, src: 'fe80::1', dst: OWN_LL, target: 'fe80::1', optMac: ROUTER, flags: 0xe0000000 });
  t.deepEqual(l2.handle(na, 1).learned, { addr: 'fe80::1', family: 6, port: 1, mac: ROUTER, source: 'learned' });
  // the router resolves the port's address (to answer it, or NUD): answered, with the port's MAC, and the router learned from it
  const ns = nd({ type: 135, srcMac: '02:bb:00:00:00:02', dstMac: '33:33:ff:00:00:01', src: 'fe80::1', dst: 'ff02::1:ff00:1', target: OWN_LL, optMac: '02:bb:00:00:00:02' });
  const r = l2.handle(ns, 1);
  t.is(r.action, 'reply');
  t.is(ipv6Src(r.frame), OWN_LL);
  t.is(ipv6Dst(r.frame), 'fe80::1');
  t.is(formatMac(r.frame, 0), '02:bb:00:00:00:02');
  t.is(r.frame[54], 136, 'a neighbour advertisement');
  t.is(formatMac(r.frame, 78 + 2), up.mac, 'with the port\'s MAC as its target link-layer address');
  t.is(r.learned?.mac, '02:bb:00:00:00:02');
  // only there: not on a port without a link-local next hop, nor by a port whose next hops are global
  const other = new L2Responder([{ ...UPLINK, probe: ['fd00:50::1'] }], ['192.168.100.2']);
  t.is(other.handle(ns, 1).action, 'consume');
  t.is(ipv6Src(other.probe('fd00:50::1', 1)), 'fd00:50::2', 'a global next hop is still asked from the gateway address');
  t.is(other.probe('fe80::1', 1), undefined, 'no link-local address to ask from');
});
