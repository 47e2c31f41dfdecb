// Golden vectors for the packet builders, parser and the independent checksum code that every
// other golden/diff/fuzz test relies on. Known-answer vectors come from the RFCs / textbook
// examples, so a bug here cannot be hidden by being shared with the code under test.
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { crc32c, internetChecksum, onesSum, verifyChecksums } from '../dist/src/packet/checksum.js';

test('internet checksum: RFC 1071 section 3 example', (t) => {
  const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  t.is(onesSum(b), 0xddf2);
  t.is(internetChecksum(b), 0x220d);
  // odd length: trailing byte padded with zero
  t.is(onesSum(Uint8Array.from([0x01, 0x02, 0x03])), 0x0402);
});

test('CRC32c: RFC 3720 B.4 and the check value', (t) => {
  t.is(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  t.is(crc32c(new Uint8Array(32)), 0x8a9136aa);
  t.is(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  const inc = new Uint8Array(32).map((_, i) => i);
  t.is(crc32c(inc), 0x46dd794e);
});

test('IPv4 header: the classic 192.168.0.1 -> 192.168.0.199 example has checksum 0xb861', (t) => {
  const ip = B.ipv4({ src: '192.168.0.1', dst: '192.168.0.199', id: 0, df: true, ttl: 64 }, 17, new Uint8Array(0x73 - 20));
  t.is(B.toHex(ip.subarray(0, 20)), '450000730000400040110000c0a80001c0a800c7'.replace('0000c0a8', 'b861c0a8'));
});

test('TCP SYN frame: layout, flags, checksums, parse round trip', (t) => {
  const f = B.frame({ src: '10.0.0.1', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80, flags: 'S', seq: 1000, srcMac: '02:00:00:00:00:aa', dstMac: '02:00:00:00:00:bb' });
  t.is(f.length, 14 + 20 + 20);
  t.is(B.toHex(f.subarray(0, 14)), '02000000 00bb 02000000 00aa 0800'.replace(/ /g, ''));
  t.deepEqual(verifyChecksums(f), []);
  const p = parseFrame(f);
  t.like(p, { kind: 'ipv4', src: '10.0.0.1', dst: '10.96.0.10', ttl: 64, proto: 6, sport: 40000, dport: 80, flags: 'S', seq: 1000, ack: 0 });
  t.is(p.error, undefined);
  // flipping any byte of the IP or TCP header is detected
  for (let i = 14; i < f.length; i++) {
    if (i === 14 + 8) continue; // TTL is covered too, but tested separately below
    const g = f.slice(); g[i] ^= 0x01;
    t.true(verifyChecksums(g).length > 0 || parseFrame(g).error !== undefined, `flip at ${i} undetected`);
  }
  const g = f.slice(); g[14 + 8]--;
  t.true(verifyChecksums(g).some((s) => s.includes('IPv4 header checksum')));
});

test('TCP flag strings', (t) => {
  t.is(B.tcpFlagBits('SA'), 0x12);
  t.is(B.tcpFlagBits('FA'), 0x11);
  t.is(B.tcpFlagBits('R'), 0x04);
  t.is(B.tcpFlagString(0x14), 'AR');
  t.throws(() => B.tcpFlagBits('X'), { message: /unknown TCP flag/ });
});

test('UDP: checksum 0 option, computed 0 becomes 0xffff, v6 mandatory checksum', (t) => {
  const f = B.frame({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'UDP', sport: 1, dport: 2, udpChecksum: false, payload: 'x' });
  t.is(parseFrame(f).checksum, 0);
  t.deepEqual(verifyChecksums(f), []);
  // search a payload whose checksum computes to 0 -> must be sent as 0xffff
  let found = false;
  for (let v = 0; v < 65536 && !found; v++) {
    const g = B.frame({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'UDP', sport: 1, dport: 2, payload: [v >> 8, v & 255] });
    if (parseFrame(g).checksum === 0xffff) { found = true; t.deepEqual(verifyChecksums(g), []); }
  }
  t.true(found);
  const v6 = B.frame({ src: 'fd00::1', dst: 'fd00::2', proto: 'UDP', sport: 1, dport: 2, udpChecksum: false });
  t.true(verifyChecksums(v6).some((s) => s.includes('UDP checksum 0 over IPv6')));
});

test('SCTP INIT and DATA: CRC32c placed least significant byte first', (t) => {
  const f = B.frame({ src: '10.0.0.1', dst: '10.96.0.10', proto: 'SCTP', sport: 5000, dport: 7000 });
  const p = parseFrame(f);
  t.is(p.chunkType, 1);
  t.is(p.vtag, 0);
  t.deepEqual(verifyChecksums(f), []);
  const l4 = f.subarray(34);
  const c = l4.slice(); c.fill(0, 8, 12);
  const crc = crc32c(c);
  t.deepEqual([...l4.subarray(8, 12)], [crc & 255, (crc >>> 8) & 255, (crc >>> 16) & 255, crc >>> 24]);
  const d = B.frame({ src: 'fd00::1', dst: 'fd00::2', proto: 'SCTP', sport: 5000, dport: 7000, payload: 'abcde', vtag: 7 });
  t.is(parseFrame(d).chunkType, 0);
  t.is((d.length - 14 - 40 - 12) % 4, 0);
  t.deepEqual(verifyChecksums(d), []);
  const bad = d.slice(); bad[d.length - 4] ^= 1;
  t.true(verifyChecksums(bad).some((s) => s.includes('SCTP')));
});

test('IPv6 extension headers and fragment header', (t) => {
  const f = B.frame({ src: 'fd00::1', dst: 'fd00::2', proto: 'TCP', sport: 1, dport: 2, v6Ext: [{ type: 0 }, { type: 60, bytes: 16 }, { type: 44, offset: 0, more: true, id: 9 }] });
  const p = parseFrame(f);
  t.deepEqual(p.extHeaders, [0, 60, 44]);
  t.deepEqual(p.fragment, { offset: 0, more: true, id: 9 });
  t.is(p.proto, 6);
  t.is(p.l4Offset, 14 + 40 + 8 + 16 + 8);
  t.is(p.sport, 1);
  const nf = B.frame({ src: 'fd00::1', dst: 'fd00::2', proto: 'UDP', rawL4: [1, 2, 3, 4, 5, 6, 7, 8], v6Ext: [{ type: 44, offset: 100 }] });
  t.is(parseFrame(nf).fragment.offset, 100);
  t.is(parseFrame(nf).sport, undefined);
});

test('IPv4 options, fragments, VLAN', (t) => {
  const f = B.frame({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'UDP', sport: 1, dport: 2, ipOptions: [1, 1, 1], mf: true, fragOffset: 0, vlan: 100, pcp: 3 });
  const p = parseFrame(f);
  t.like(p, { vlan: 100, pcp: 3, ihl: 24, mf: true, fragOffset: 0, sport: 1 });
  t.deepEqual(verifyChecksums(f), []);
  const nf = B.frame({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'UDP', rawL4: [9, 9, 9, 9], fragOffset: 3 });
  t.like(parseFrame(nf), { fragOffset: 3, sport: undefined });
});

test('ICMP errors quote the inner packet; parser decodes it', (t) => {
  const inner = B.ipPacket({ src: '10.0.0.1', dst: '10.96.0.10', proto: 'UDP', sport: 5, dport: 53, payload: 'hello' });
  const e = B.icmpError({ src: '10.96.0.10', dst: '10.0.0.1', kind: 'port_unreachable', inner });
  const p = parseFrame(e);
  t.like(p, { icmpType: 3, icmpCode: 3 });
  t.like(p.inner, { src: '10.0.0.1', dst: '10.96.0.10', sport: 5, dport: 53 });
  t.deepEqual(verifyChecksums(e), []);
  const fn = parseFrame(B.icmpError({ src: '10.0.0.9', dst: '10.0.0.1', kind: 'frag_needed', mtu: 1400, inner, quoteLen: 28 }));
  t.like(fn, { icmpType: 3, icmpCode: 4, icmpSeq: 1400 });
  t.like(fn.inner, { sport: 5, dport: 53 });
  const inner6 = B.ipPacket({ src: 'fd00::1', dst: 'fd00:96::a', proto: 'TCP', sport: 5, dport: 80 });
  for (const [kind, type, code] of [['port_unreachable', 1, 4], ['packet_too_big', 2, 0], ['time_exceeded', 3, 0]]) {
    const e6 = B.icmpError({ src: 'fd00:96::a', dst: 'fd00::1', kind, inner: inner6, mtu: 1280 });
    const q = parseFrame(e6);
    t.like(q, { icmpType: type, icmpCode: code });
    t.like(q.inner, { src: 'fd00::1', sport: 5, dport: 80, flags: 'S' });
    t.deepEqual(verifyChecksums(e6), []);
  }
  t.throws(() => B.icmpError({ src: 'fd00::1', dst: 'fd00::2', kind: 'frag_needed', inner: inner6 }), { message: /does not exist for IPv6/ });
});

test('ARP request and neighbour solicitation', (t) => {
  const a = parseFrame(B.arpRequest({ senderMac: '02:00:00:00:00:05', senderIp: '10.0.0.1', targetIp: '10.0.0.2' }));
  t.like(a, { kind: 'arp', dstMac: 'ff:ff:ff:ff:ff:ff', arp: { op: 1, senderIp: '10.0.0.1', targetIp: '10.0.0.2' } });
  const nsf = B.neighborSolicitation({ senderMac: '02:00:00:00:00:05', senderIp: 'fe80::1', targetIp: 'fd00::1234:5678' });
  const n = parseFrame(nsf);
  t.like(n, { dst: 'ff02::1:ff34:5678', dstMac: '33:33:ff:34:56:78', ttl: 255, icmpType: 135, nd: { type: 135, target: 'fd00::1234:5678' } });
  t.deepEqual(verifyChecksums(nsf), []);
});

test('builders reject bad input with clear errors', (t) => {
  t.throws(() => B.frame({ src: '10.0.0.1', dst: 'fd00::1', proto: 'TCP', sport: 1, dport: 2 }), { message: /different families/ });
  t.throws(() => B.frame({ src: '10.0.0.300', dst: '10.0.0.1', proto: 'TCP', sport: 1, dport: 2 }), { message: /invalid IP address/ });
  t.throws(() => B.frame({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'TCP', sport: 70000, dport: 2 }), { message: /sport/ });
  t.throws(() => B.frame({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'UDP', dport: 2 }), { message: /needs sport/ });
  t.throws(() => B.frame({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'GRE', sport: 1, dport: 2 }), { message: /unknown protocol/ });
  t.throws(() => B.frame({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'TCP', sport: 1, dport: 2, srcMac: 'zz' }), { message: /invalid MAC/ });
});

test('parser never throws on truncations of a valid frame', (t) => {
  const f = B.frame({ src: 'fd00::1', dst: 'fd00::2', proto: 'TCP', sport: 1, dport: 2, payload: 'abc', vlan: 3 });
  for (let n = 0; n <= f.length; n++) {
    const p = parseFrame(f.subarray(0, n));
    if (n < f.length) t.truthy(p.error, `length ${n} parsed without error`);
    else t.is(p.error, undefined);
  }
});
