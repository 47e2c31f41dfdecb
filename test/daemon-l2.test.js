// The daemon's slow path: ARP / neighbour discovery answers and neighbour learning.
import test from 'ava';
import { L2Responder, NeighbourTable } from '../dist/src/daemon/l2.js';
import { arpRequest, arp, neighborSolicitation, frame, ethernet, ipPacket, ETH_P_IPV6 } from '../dist/src/packet/build.js';
import { verifyChecksums } from '../dist/src/packet/checksum.js';

const GW_MAC = '02:dd:00:00:00:01';
const POD_MAC = '02:aa:00:00:00:0b';
const ports = [
  { index: 0, name: 'client', mac: '02:dd:00:00:00:00', role: 'uplink', gateways: ['10.0.0.1', 'fd00::1'], learn: false },
  { index: 1, name: 'pod-a', mac: GW_MAC, role: 'pod', gateways: ['10.244.0.1', 'fd00:244::1'], learn: true },
];
const hex = (b, from, to) => Buffer.from(b.subarray(from, to)).toString('hex');

test('ARP request for the port gateway gets a reply from the port MAC and teaches the sender', (t) => {
  const l2 = new L2Responder(ports, ['192.168.100.2']);
  const req = arpRequest({ senderMac: POD_MAC, senderIp: '10.244.1.11', targetIp: '10.244.0.1' });
  const r = l2.handle(req, 1);
  t.is(r.action, 'reply');
  const f = r.frame;
  t.is(hex(f, 0, 6), POD_MAC.replace(/:/g, ''));         // to the asker
  t.is(hex(f, 6, 12), GW_MAC.replace(/:/g, ''));         // from our port
  t.is(hex(f, 12, 14), '0806');
  t.is(hex(f, 20, 22), '0002');                           // op reply
  t.is(hex(f, 22, 28), GW_MAC.replace(/:/g, ''));         // sender hw = us
  t.deepEqual([...f.subarray(28, 32)], [10, 244, 0, 1]);  // sender ip = the gateway asked for
  t.is(hex(f, 32, 38), POD_MAC.replace(/:/g, ''));
  t.deepEqual([...f.subarray(38, 42)], [10, 244, 1, 11]);
  t.deepEqual(r.learned, { addr: '10.244.1.11', family: 4, port: 1, mac: POD_MAC, source: 'learned' });
});

test('ARP for an address we do not own is consumed; learning is off on uplinks', (t) => {
  const l2 = new L2Responder(ports);
  const r1 = l2.handle(arpRequest({ senderMac: POD_MAC, senderIp: '10.244.1.11', targetIp: '10.244.1.12' }), 1);
  t.is(r1.action, 'consume');
  t.is(r1.learned?.addr, '10.244.1.11');
  // the gateway of port 1 is not answered on port 0
  const r2 = l2.handle(arpRequest({ senderMac: '02:cc:00:00:00:02', senderIp: '10.0.0.2', targetIp: '10.244.0.1' }), 0);
  t.is(r2.action, 'consume');
  t.is(r2.learned, undefined);
  const r3 = l2.handle(arpRequest({ senderMac: '02:cc:00:00:00:02', senderIp: '10.0.0.2', targetIp: '10.0.0.1' }), 0);
  t.is(r3.action, 'reply');
  t.is(r3.learned, undefined);
});

test('node addresses are answered on uplinks only, never on pod ports; ClusterIPs nowhere', (t) => {
  const l2 = new L2Responder(ports, ['192.168.100.2', 'fd00:100::2']);
  const ask = (ip, port) => l2.handle(arpRequest({ senderMac: '02:cc:00:00:00:02', senderIp: port === 0 ? '10.0.0.2' : '10.244.1.11', targetIp: ip }), port).action;
  t.is(ask('192.168.100.2', 0), 'reply');
  t.is(ask('192.168.100.2', 1), 'consume', 'a pod port does not own the node address');
  t.is(ask('10.96.0.10', 0), 'consume', 'a ClusterIP is reached through a gateway, never answered');
  t.is(ask('10.96.0.10', 1), 'consume');
  const ns6 = (port) => l2.handle(neighborSolicitation({ senderMac: '02:cc:00:00:00:02', senderIp: port === 0 ? 'fd00::2' : 'fd00:244::11', targetIp: 'fd00:100::2' }), port).action;
  t.is(ns6(0), 'reply');
  t.is(ns6(1), 'consume');
});

test('announced LB / external IPs are answered on uplinks only, held and released one frontend at a time', (t) => {
  const l2 = new L2Responder(ports, ['192.168.100.2']);
  const ask = (ip, port = 0) => l2.handle(arpRequest({ senderMac: '02:cc:00:00:00:02', senderIp: '10.0.0.2', targetIp: ip }), port).action;
  t.is(ask('203.0.113.10'), 'consume', 'not announced: not answered');
  l2.holdAnnounced('203.0.113.10'); l2.holdAnnounced('203.0.113.10'); // e.g. ports 80 and 443
  t.is(ask('203.0.113.10'), 'reply');
  t.is(ask('203.0.113.10', 1), 'consume', 'never on a pod port');
  l2.releaseAnnounced('203.0.113.10');
  t.is(ask('203.0.113.10'), 'reply', 'still held by the other frontend');
  l2.releaseAnnounced('203.0.113.10');
  t.is(ask('203.0.113.10'), 'consume');
  l2.releaseAnnounced('203.0.113.10'); // one release too many changes nothing
  t.is(ask('192.168.100.2'), 'reply');
});

test('neighbour solicitation for the gateway gets a valid advertisement', (t) => {
  const l2 = new L2Responder(ports);
  const ns = neighborSolicitation({ senderMac: POD_MAC, senderIp: 'fd00:244::11', targetIp: 'fd00:244::1' });
  const r = l2.handle(ns, 1);
  t.is(r.action, 'reply');
  const f = r.frame;
  t.is(hex(f, 0, 6), POD_MAC.replace(/:/g, ''));
  t.is(hex(f, 6, 12), GW_MAC.replace(/:/g, ''));
  t.is(hex(f, 12, 14), '86dd');
  t.is(f[20], 58);            // ICMPv6
  t.is(f[21], 255);           // hop limit
  t.is(f[54], 136);           // NA
  t.is(f[58] & 0xe0, 0xe0);   // router, solicited, override
  t.deepEqual(verifyChecksums(f), []);
  t.is(hex(f, 62, 78), 'fd000244000000000000000000000001');
  t.is(f[78], 2);             // target link-layer address option
  t.is(hex(f, 80, 86), GW_MAC.replace(/:/g, ''));
  t.deepEqual(r.learned, { addr: 'fd00:244::11', family: 6, port: 1, mac: POD_MAC, source: 'learned' });
});

test('DAD probes (unspecified source) are not answered and teach nothing', (t) => {
  const l2 = new L2Responder(ports);
  const ns = neighborSolicitation({ senderMac: POD_MAC, senderIp: '::', targetIp: 'fd00:244::1' });
  const r = l2.handle(ns, 1);
  t.is(r.action, 'consume');
  t.is(r.learned, undefined);
});

test('neighbour advertisements and ARP replies to our probes are learned', (t) => {
  const l2 = new L2Responder(ports);
  const probe4 = l2.probe('10.244.1.12', 1);
  t.truthy(probe4);
  t.is(hex(probe4, 0, 6), 'ffffffffffff');
  t.deepEqual([...probe4.subarray(28, 32)], [10, 244, 0, 1]); // asked from the port's gateway address
  const reply = arp({ op: 2, senderMac: '02:aa:00:00:00:0c', senderIp: '10.244.1.12', targetMac: GW_MAC, targetIp: '10.244.0.1', dstMac: GW_MAC });
  const r = l2.handle(reply, 1);
  t.is(r.action, 'consume');
  t.is(r.learned?.mac, '02:aa:00:00:00:0c');
  const probe6 = l2.probe('fd00:244::12', 1);
  t.is(probe6[54], 135);
  t.deepEqual(verifyChecksums(probe6), []);
  // NA with target link-layer option
  const body = new Uint8Array(24);
  body.set([0xfd, 0, 2, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12], 0);
  body[16] = 2; body[17] = 1; body.set([2, 0xaa, 0, 0, 0, 0x0c], 18);
  const na = ethernet({ srcMac: '02:aa:00:00:00:0c', dstMac: GW_MAC }, ETH_P_IPV6,
    ipPacket({ src: 'fd00:244::12', dst: 'fd00:244::1', proto: 'ICMP', icmpType: 136, rest: 0x60000000, payload: body, ttl: 255 }));
  const r6 = l2.handle(na, 1);
  t.deepEqual(r6.learned, { addr: 'fd00:244::12', family: 6, port: 1, mac: '02:aa:00:00:00:0c', source: 'learned' });
  t.is(l2.probe('10.1.1.1', 0) !== undefined, true);
  t.is(l2.probe('10.1.1.1', 9), undefined);
});

test('IP frames on pod ports teach the sender; malformed frames are consumed, never thrown', (t) => {
  const l2 = new L2Responder(ports);
  const ip = frame({ src: '10.244.1.13', dst: '8.8.8.8', proto: 'UDP', sport: 1, dport: 2, srcMac: '02:aa:00:00:00:0d' });
  t.is(l2.handle(ip, 1).learned?.addr, '10.244.1.13');
  t.is(l2.handle(ip, 0).learned, undefined);
  for (const junk of [new Uint8Array(0), new Uint8Array(13), Uint8Array.from([...new Uint8Array(12), 8, 6, 0, 1]), Uint8Array.from([...new Uint8Array(12), 0x86, 0xdd, 0x60]), new Uint8Array(100).fill(0xff)]) {
    const r = l2.handle(junk, 1);
    t.is(r.action, 'consume');
  }
  t.is(l2.handle(ip, 7).why, 'unknown_port');
});

test('neighbour table: static entries win over learned ones, changes are reported', (t) => {
  const nt = new NeighbourTable();
  t.true(nt.set({ addr: 'fd00:244::0b', family: 6, port: 1, mac: POD_MAC, source: 'static' }));
  t.false(nt.set({ addr: 'fd00:244::b', family: 6, port: 2, mac: '02:00:00:00:00:99', source: 'learned' }));
  t.is(nt.get('fd00:244:0::b').port, 1);
  t.true(nt.set({ addr: '10.244.1.11', family: 4, port: 1, mac: POD_MAC, source: 'learned' }));
  t.false(nt.set({ addr: '10.244.1.11', family: 4, port: 1, mac: POD_MAC, source: 'learned' }));
  t.true(nt.set({ addr: '10.244.1.11', family: 4, port: 2, mac: POD_MAC, source: 'learned' }));
  t.is(nt.size, 2);
});

// A host port (the node's own stack behind a TAP) bridged with uplink 0.
const HOST_MAC = '02:dd:00:00:00:00'; // the TAP carries the uplink's MAC
const bridged = [
  { ...ports[0], bridge: 2 },
  ports[1],
  { index: 2, name: 'host', mac: HOST_MAC, role: 'host', gateways: ['10.244.0.1'], learn: false, bridge: 0 },
];

test('host port: its gateways are answered, everything else it sends that nobody claims goes out of its uplink unchanged', (t) => {
  const l2 = new L2Responder(bridged, ['192.168.100.2']);
  const gw = l2.handle(arpRequest({ senderMac: HOST_MAC, senderIp: '192.168.100.2', targetIp: '10.244.0.1' }), 2);
  t.is(gw.action, 'reply');
  const out = l2.handle(arpRequest({ senderMac: HOST_MAC, senderIp: '192.168.100.2', targetIp: '192.168.100.10' }), 2);
  t.deepEqual(out, { action: 'bridge', port: 0, why: 'bridged_from_host' });
  const ip = frame({ src: '192.168.100.2', dst: '192.168.100.10', proto: 'TCP', sport: 22, dport: 40000, srcMac: HOST_MAC });
  t.deepEqual(l2.handle(ip, 2), { action: 'bridge', port: 0, why: 'bridged_from_host' });
  t.is(l2.handle(ip, 2).learned, undefined, 'nothing is learned from the host');
});

test('uplink bridged with a host port: ARP replies and IP for the node go to the host, the rest is consumed', (t) => {
  const l2 = new L2Responder(bridged, ['192.168.100.2', 'fd00:100::2']);
  // ARP requests for the node address are answered by the dataplane (uplink owns it)
  t.is(l2.handle(arpRequest({ senderMac: '02:cc:00:00:00:02', senderIp: '192.168.100.10', targetIp: '192.168.100.2' }), 0).action, 'reply');
  // the reply to the host's own ARP request goes to the host
  const rep = arp({ op: 2, senderMac: '02:cc:00:00:00:02', senderIp: '192.168.100.10', targetMac: HOST_MAC, targetIp: '192.168.100.2', dstMac: HOST_MAC });
  t.deepEqual(l2.handle(rep, 0), { action: 'bridge', port: 2, why: 'bridged_to_host' });
  // an ARP reply for someone else, a request for someone else: not the host's
  const other = arp({ op: 2, senderMac: '02:cc:00:00:00:02', senderIp: '192.168.100.10', targetMac: HOST_MAC, targetIp: '192.168.100.9', dstMac: HOST_MAC });
  t.is(l2.handle(other, 0).action, 'consume');
  t.is(l2.handle(arpRequest({ senderMac: '02:cc:00:00:00:02', senderIp: '192.168.100.10', targetIp: '192.168.100.9' }), 0).action, 'consume');
  // IPv4 to the node address that no service or route claimed
  t.is(l2.handle(frame({ src: '192.168.100.10', dst: '192.168.100.2', proto: 'TCP', sport: 40000, dport: 22 }), 0).action, 'bridge');
  t.is(l2.handle(frame({ src: '192.168.100.10', dst: '192.168.100.7', proto: 'TCP', sport: 40000, dport: 22 }), 0).action, 'consume');
  // IPv6: to the node address, link-local and multicast go to the host
  t.is(l2.handle(frame({ src: 'fd00:100::10', dst: 'fd00:100::2', proto: 'UDP', sport: 1, dport: 2 }), 0).action, 'bridge');
  t.is(l2.handle(frame({ src: 'fe80::1', dst: 'fe80::2', proto: 'UDP', sport: 1, dport: 2 }), 0).action, 'bridge');
  t.is(l2.handle(frame({ src: 'fd00:100::10', dst: 'fd00:100::9', proto: 'UDP', sport: 1, dport: 2 }), 0).action, 'consume');
  // a pod port is never bridged
  t.is(l2.handle(frame({ src: '10.244.1.11', dst: '192.168.100.2', proto: 'TCP', sport: 1, dport: 2, srcMac: POD_MAC }), 1).action, 'consume');
});

test('host port whose TAP has another MAC than its uplink: what it bridges out leaves with the uplink\'s MAC, what comes back for it gets the TAP\'s', (t) => {
  const l2 = new L2Responder(bridged, ['192.168.100.2', 'fd00:100::2']);
  const TAP = '02:ee:00:00:00:07', UPLINK = '02dd00000000';
  // ARP request from the TAP's MAC: Ethernet source and ARP sender rewritten
  const req = l2.handle(arpRequest({ senderMac: TAP, senderIp: '192.168.100.2', targetIp: '192.168.100.10' }), 2);
  t.like(req, { action: 'bridge', port: 0, why: 'bridged_from_host' });
  t.is(hex(req.frame, 6, 12), UPLINK);
  t.is(hex(req.frame, 22, 28), UPLINK);
  // NS with the TAP's MAC as source link-layer option: rewritten, checksum still right
  const ns = l2.handle(neighborSolicitation({ senderMac: TAP, senderIp: 'fd00:100::2', targetIp: 'fd00:100::10' }), 2);
  t.is(ns.action, 'bridge');
  t.is(hex(ns.frame, 6, 12), UPLINK);
  t.is(hex(ns.frame, 80, 86), UPLINK, 'the source link-layer address option');
  t.deepEqual(verifyChecksums(ns.frame), []);
  // IP from the TAP's MAC
  const ip = l2.handle(frame({ src: '192.168.100.2', dst: '192.168.100.10', proto: 'TCP', sport: 22, dport: 40000, srcMac: TAP }), 2);
  t.is(hex(ip.frame, 6, 12), UPLINK);
  t.deepEqual(verifyChecksums(ip.frame), []);
  // the answer to the uplink's MAC goes to the host with the TAP's MAC
  const rep = l2.handle(arp({ op: 2, senderMac: '02:cc:00:00:00:02', senderIp: '192.168.100.10', targetMac: '02:dd:00:00:00:00', targetIp: '192.168.100.2', dstMac: '02:dd:00:00:00:00' }), 0);
  t.like(rep, { action: 'bridge', port: 2, why: 'bridged_to_host' });
  t.is(hex(rep.frame, 0, 6), TAP.replaceAll(':', ''));
  // multicast / broadcast are not rewritten
  t.is(l2.handle(frame({ src: 'fe80::1', dst: 'ff02::1', proto: 'UDP', sport: 1, dport: 2 }), 0).frame, undefined);
  // the TAP takes the uplink's MAC again: nothing is rewritten
  t.is(l2.handle(frame({ src: '192.168.100.2', dst: '192.168.100.10', proto: 'TCP', sport: 22, dport: 40000, srcMac: '02:dd:00:00:00:00' }), 2).frame, undefined);
  t.is(l2.handle(arp({ op: 2, senderMac: '02:cc:00:00:00:02', senderIp: '192.168.100.10', targetMac: '02:dd:00:00:00:00', targetIp: '192.168.100.2', dstMac: '02:dd:00:00:00:00' }), 0).frame, undefined);
});

test('unicast re-verification probes go to the known MAC (ARP) and to the address itself (NS)', (t) => {
  const l2 = new L2Responder(ports);
  const a = l2.probe('10.244.1.12', 1, '02:aa:00:00:00:0c');
  t.is(hex(a, 0, 6), '02aa0000000c');
  t.is(hex(a, 20, 22), '0001');
  const n = l2.probe('fd00:244::12', 1, '02:aa:00:00:00:0c');
  t.is(hex(n, 0, 6), '02aa0000000c');
  t.is(hex(n, 38, 54), 'fd000244000000000000000000000012', 'sent to the address, not its solicited-node group');
  t.is(n[54], 135);
  t.deepEqual(verifyChecksums(n), []);
});

test('ports added and removed at runtime are answered, then forgotten', (t) => {
  const l2 = new L2Responder(ports);
  const ask = (port) => l2.handle(arpRequest({ senderMac: POD_MAC, senderIp: '10.244.1.30', targetIp: '10.244.0.1' }), port);
  t.is(ask(5).why, 'unknown_port');
  l2.addPort({ index: 5, name: 'pod-new', mac: '02:dd:00:00:00:05', role: 'pod', gateways: ['10.244.0.1'], learn: true });
  t.is(ask(5).action, 'reply');
  l2.removePort(5);
  t.is(ask(5).why, 'unknown_port');
});

test('node addresses replaced at runtime: the new ones are answered on uplinks, the old ones no longer', (t) => {
  const l2 = new L2Responder(ports, ['192.168.100.2']);
  const ask = (ip, port = 0) => l2.handle(arpRequest({ senderMac: '02:cc:00:00:00:02', senderIp: '10.0.0.2', targetIp: ip }), port).action;
  t.is(ask('192.168.100.7'), 'consume');
  l2.setNodeAddresses(['192.168.100.7', 'fd00:100::0007']);
  t.deepEqual(l2.nodeAddresses().sort(), ['192.168.100.7', 'fd00:100::7'], 'kept canonical');
  t.is(ask('192.168.100.7'), 'reply');
  t.is(ask('192.168.100.7', 1), 'consume', 'still never on a pod port');
  t.is(ask('192.168.100.2'), 'consume', 'the address the node lost is no longer claimed');
  const ns6 = l2.handle(neighborSolicitation({ senderMac: '02:cc:00:00:00:02', senderIp: 'fd00::2', targetIp: 'fd00:100::7' }), 0);
  t.is(ns6.action, 'reply');
  t.is(ask('10.0.0.1'), 'reply', 'the port gateways are not node addresses: unchanged');
});
