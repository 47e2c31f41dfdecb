// Golden-packet tables: each scenario is data — its tables (an Ir) and its steps, an input frame
// built with src/packet/build.ts and the expected verdict / reason / out port and output bytes
// built INDEPENDENTLY with the same builder (full checksum computation), never with the core or
// the model. test/lib/golden-scenario.js runs every step through both the Wasm core
// (src/core/host.ts) and the reference model (src/reference/model.ts), so a golden failure says
// which side is wrong, and verifies every output frame's checksums from scratch.
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { flowHash, freshPickHash } from '../dist/src/core/hash.js';
import { parseAddr } from '../dist/src/util/addr.js';
import { backend, frontend, mkIr, MAC, L } from './lib/packets.js';
import { runScenario, errorHeader, answerError, CLIENT_PORT, BE_PORT, fwd, reply, dropped, cli, toBe, fromBe, toCli } from './lib/golden-scenario.js';

const SNAT_MIN = 32768, SNAT_MAX = 60999;

function singleService({ vip, port, proto, be, bport, flags = 0, snatV4, snatV6, hairpinV4, hairpinV6, state, sourceRanges, extra = {} }) {
  const bes = [backend({ id: 1, addr: be, port: bport, outPort: BE_PORT, state })];
  return mkIr({ frontends: [frontend({ id: 1, addr: vip, port, proto, flags, sourceRanges, ...extra }, bes)], backends: bes, snatV4, snatV6, hairpinV4, hairpinV6 });
}

// ---- DNAT + reply, v4/v6 x TCP/UDP/SCTP --------------------------------------------------------

const FAMILIES = [
  { fam: 4, client: '10.0.0.1', vip: '10.96.0.10', be: '10.1.0.5' },
  { fam: 6, client: 'fd00::1', vip: 'fd00:96::a', be: 'fd00:1::5' },
];

for (const { fam, client, vip, be } of FAMILIES) {
  test(`IPv${fam} TCP: SYN DNAT to the backend, SYN-ACK reverse NAT, ACK on the flow, FIN both ways`, (t) => {
    const base = { proto: 'TCP', sport: 40000, seq: 7, ttl: 64 };
    const { core, model } = runScenario(t, {
      tables: singleService({ vip, port: 80, proto: 'TCP', be, bport: 8080 }),
      steps: [
        { label: 'SYN', in: cli({ ...base, src: client, dst: vip, dport: 80, flags: 'S' }),
          expect: fwd(BE_PORT, toBe({ ...base, src: client, dst: be, dport: 8080, flags: 'S', ttl: 63 })) },
        { label: 'SYN-ACK', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: be, dst: client, sport: 8080, dport: 40000, flags: 'SA', seq: 99, ack: 8, ttl: 64 }),
          expect: reply(toCli({ proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40000, flags: 'SA', seq: 99, ack: 8, ttl: 63 })) },
        { label: 'ACK with data', in: cli({ ...base, src: client, dst: vip, dport: 80, flags: 'PA', seq: 8, ack: 100, payload: 'GET / HTTP/1.0\r\n\r\n' }),
          expect: fwd(BE_PORT, toBe({ ...base, src: client, dst: be, dport: 8080, flags: 'PA', seq: 8, ack: 100, payload: 'GET / HTTP/1.0\r\n\r\n', ttl: 63 })) },
        { label: 'FIN from the backend', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: be, dst: client, sport: 8080, dport: 40000, flags: 'FA', seq: 100, ack: 26, ttl: 5 }),
          expect: reply(toCli({ proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40000, flags: 'FA', seq: 100, ack: 26, ttl: 4 })) },
        { label: 'FIN from the client', in: cli({ ...base, src: client, dst: vip, dport: 80, flags: 'FA', seq: 26, ack: 101 }),
          expect: fwd(BE_PORT, toBe({ ...base, src: client, dst: be, dport: 8080, flags: 'FA', seq: 26, ack: 101, ttl: 63 })) },
      ],
    });
    const flows = core.flows();
    t.is(flows.length, 1);
    t.like(flows[0], { state: 'tcp_closing', client, vip, backend: be, clientPort: 40000, vipPort: 80, backendPort: 8080 });
    t.deepEqual(model.activeFlows().map((f) => f.state), [L.CTS_TCP_CLOSING]);
  });

  test(`IPv${fam} UDP: DNAT and reply; the checksum stays valid`, (t) => {
    const q = { proto: 'UDP', sport: 33333, payload: 'query' };
    const { core } = runScenario(t, {
      tables: singleService({ vip, port: 53, proto: 'UDP', be, bport: 5353 }),
      steps: [
        { label: 'query', in: cli({ ...q, src: client, dst: vip, dport: 53 }), expect: fwd(BE_PORT, toBe({ ...q, src: client, dst: be, dport: 5353, ttl: 63 })) },
        { label: 'answer', inPort: BE_PORT, in: fromBe({ proto: 'UDP', src: be, dst: client, sport: 5353, dport: 33333, payload: 'answer!' }),
          expect: reply(toCli({ proto: 'UDP', src: vip, dst: client, sport: 53, dport: 33333, payload: 'answer!', ttl: 63 })) },
      ],
    });
    t.like(core.flows()[0], { state: 'udp', flags: ['replied'] }); // answered at once: not a stream (the kernel's UDP conntrack)
  });

  test(`IPv${fam} SCTP: DNAT recomputes the CRC32c (INIT and DATA)`, (t) => {
    runScenario(t, {
      tables: singleService({ vip, port: 7000, proto: 'SCTP', be, bport: 7001 }),
      steps: [
        { label: 'INIT', in: cli({ proto: 'SCTP', src: client, dst: vip, sport: 5000, dport: 7000 }),
          expect: fwd(BE_PORT, toBe({ proto: 'SCTP', src: client, dst: be, sport: 5000, dport: 7001, ttl: 63 })) },
        { label: 'DATA', in: cli({ proto: 'SCTP', src: client, dst: vip, sport: 5000, dport: 7000, payload: 'hello sctp', vtag: 77 }),
          expect: fwd(BE_PORT, toBe({ proto: 'SCTP', src: client, dst: be, sport: 5000, dport: 7001, payload: 'hello sctp', vtag: 77, ttl: 63 })) },
        { label: 'reply DATA', inPort: BE_PORT, in: fromBe({ proto: 'SCTP', src: be, dst: client, sport: 7001, dport: 5000, payload: 'ok', vtag: 5 }),
          expect: reply(toCli({ proto: 'SCTP', src: vip, dst: client, sport: 7000, dport: 5000, payload: 'ok', vtag: 5, ttl: 63 })) },
      ],
    });
  });
}

test('IPv4 UDP without checksum stays without checksum', (t) => {
  const { out } = runScenario(t, {
    tables: singleService({ vip: '10.96.0.10', port: 53, proto: 'UDP', be: '10.1.0.5', bport: 53 }),
    steps: [{ label: 'query', in: cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport: 1000, dport: 53, udpChecksum: false, payload: 'q' }),
      expect: fwd(BE_PORT, toBe({ proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', sport: 1000, dport: 53, udpChecksum: false, payload: 'q', ttl: 63 })) }],
  });
  t.is(parseFrame(out.query).checksum, 0);
});

// ---- reject ------------------------------------------------------------------------------------

for (const { fam, client, vip } of FAMILIES) {
  const noEndpoints = () => mkIr({ frontends: [frontend({ id: 1, addr: vip, port: 80, proto: 'TCP' }, []), frontend({ id: 2, addr: vip, port: 53, proto: 'UDP' }, [])] });
  const rej = (frame) => ({ verdict: 'reject', reason: 'reject_no_endpoints', outPort: CLIENT_PORT, frame });

  test(`IPv${fam} reject: TCP SYN, a data segment with ACK, a FIN -> ICMP port unreachable quoting each (the nftables proxier's bare reject); RST -> dropped`, (t) => {
    const h = errorHeader(fam);
    const err = (inner) => answerError({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, kind: 'port_unreachable', inner, ...h() });
    const seg = (s) => ({ proto: 'TCP', src: client, dst: vip, dport: 80, ...s });
    // the quote: the packet as the kernel's filter-forward hook saw it, after ip_forward's TTL decrement
    const quoted = (s) => B.ipPacket({ ...s, ttl: 63 });
    const syn = seg({ sport: 40000, flags: 'S', seq: 1000 });
    const data = seg({ sport: 40001, flags: 'PA', seq: 5, ack: 777, payload: 'xyz' });
    const fin = seg({ sport: 40002, flags: 'F', seq: 10, payload: 'ab' });
    const { core } = runScenario(t, {
      tables: noEndpoints(),
      steps: [
        { label: 'SYN', in: cli(syn), expect: rej(err(quoted(syn))) },
        { label: 'data with ACK', in: cli(data), expect: rej(err(quoted(data))) },
        { label: 'FIN without ACK, with payload', in: cli(fin), expect: rej(err(quoted(fin))) },
        { label: 'RST is never answered', in: cli(seg({ sport: 40003, flags: 'R' })), expect: dropped('drop_rst_no_endpoints') },
      ],
    });
    t.is(core.counters().frontends[1].packets, 3);
  });

  test(`IPv${fam} reject: UDP -> ICMP port unreachable quoting the datagram (cut at ${fam === 4 ? 576 : 1280} bytes)`, (t) => {
    // (quoted with the TTL one lower: ip_forward decrements it before the filter-forward reject)
    const small = B.ipPacket({ proto: 'UDP', src: client, dst: vip, sport: 5555, dport: 53, payload: 'tiny', ttl: 63 });
    // the error's header: icmp_send's (errorHeader: numbered in order)
    const h = errorHeader(fam);
    const err = (inner, quoteLen) => answerError({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, kind: 'port_unreachable', inner, quoteLen, ...h() });
    const payload = new Uint8Array(1400).map((_, i) => i & 0xff);
    const big = B.ipPacket({ proto: 'UDP', src: client, dst: vip, sport: 5555, dport: 53, payload, ttl: 63 });
    const { out } = runScenario(t, {
      tables: noEndpoints(),
      steps: [
        { label: 'small', in: cli({ proto: 'UDP', src: client, dst: vip, sport: 5555, dport: 53, payload: 'tiny' }), expect: rej(err(small)) },
        { label: 'large', in: cli({ proto: 'UDP', src: client, dst: vip, sport: 5555, dport: 53, payload }), expect: rej(err(big, fam === 4 ? 576 - 28 : 1280 - 48)) },
      ],
    });
    t.is(out.large.length - 14, fam === 4 ? 576 : 1280);
  });

  test(`IPv${fam} reject rate limit: 6 answers at one instant, then drop_reject_rate_limited; one more an interval later (docs/core.md "Reject rate limit")`, (t) => {
    const interval = fam === 4 ? 1000 : 100;
    const h = errorHeader(fam);
    const err = (sport) => answerError({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, kind: 'port_unreachable', ...h(),
      inner: B.ipPacket({ proto: 'UDP', src: client, dst: vip, sport, dport: 53, payload: 'q', ttl: 63 }) });
    const dgram = (sport, now) => ({ label: `datagram ${sport} at ${now}`, now, in: cli({ proto: 'UDP', src: client, dst: vip, sport, dport: 53, payload: 'q' }) });
    const { core } = runScenario(t, {
      tables: noEndpoints(),
      steps: [
        ...[1, 2, 3, 4, 5, 6].map((p) => ({ ...dgram(p, 1000), expect: rej(err(p)) })),
        { ...dgram(7, 1000), expect: dropped('drop_reject_rate_limited') },
        { ...dgram(8, 1000 + interval - 1), expect: dropped('drop_reject_rate_limited') },
        { ...dgram(9, 1000 + interval), expect: rej(err(9)) },
        { ...dgram(10, 1000 + interval), expect: dropped('drop_reject_rate_limited') },
        // a TCP SYN shares the client's bucket: refused unanswered too
        { label: 'SYN', now: 1000 + interval, in: cli({ proto: 'TCP', src: client, dst: vip, sport: 11, dport: 80, flags: 'S', seq: 1 }), expect: dropped('drop_reject_rate_limited') },
      ],
    });
    t.is(core.counters().reasons.reject_no_endpoints, 7);
    t.is(core.counters().reasons.drop_reject_rate_limited, 4);
    t.is(core.counters().frontends[2].packets, 7, 'a refused frame counts for no frontend');
  });
}

test('reject in a small slot: the ICMPv6 quote is cut so the reply fits CFG_SLOT_SIZE', (t) => {
  const vip = 'fd00:96::a', client = 'fd00::1';
  const payload = new Uint8Array(120 - 14 - 48).fill(9);
  const inner = B.ipPacket({ proto: 'UDP', src: client, dst: vip, sport: 7, dport: 53, payload, ttl: 63 });
  const label = 'UDP to a VIP without endpoints';
  const { out } = runScenario(t, {
    tables: mkIr({ frontends: [frontend({ id: 1, addr: vip, port: 53, proto: 'UDP' }, [])] }),
    opts: { slotSize: 128 },
    steps: [{ label, in: cli({ proto: 'UDP', src: client, dst: vip, sport: 7, dport: 53, payload }),
      expect: { verdict: 'reject', reason: 'reject_no_endpoints', outPort: CLIENT_PORT,
        frame: answerError({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, kind: 'port_unreachable', inner, quoteLen: 128 - 14 - 48, ttl: 64 }) } }],
  });
  t.is(out[label].length, 128);
});

// ---- ICMP errors quoting a NATed flow ------------------------------------------------------------

test('ICMP error from the backend side is translated to the VIP (inner and outer), with SNAT', (t) => {
  const vip = '10.96.0.10', be = '10.1.0.5', client = '10.0.0.1', snat = '192.168.0.1';
  const h = flowHash(parseAddr(client).bytes, parseAddr(vip).bytes, 33333, 53, 17);
  const nport = SNAT_MIN + (h % (SNAT_MAX - SNAT_MIN + 1));
  const q = { proto: 'UDP', payload: 'query' };
  // the backend host answers with port unreachable about the packet it received
  const quoted = B.ipPacket({ ...q, src: snat, dst: be, sport: nport, dport: 5353, ttl: 63 });
  const expectInner = B.ipPacket({ ...q, src: client, dst: vip, sport: 33333, dport: 53, ttl: 63 });
  runScenario(t, {
    tables: singleService({ vip, port: 53, proto: 'UDP', be, bport: 5353, flags: L.FEF_MASQUERADE, snatV4: snat }),
    steps: [
      { label: 'query (masqueraded)', in: cli({ ...q, src: client, dst: vip, sport: 33333, dport: 53 }),
        expect: fwd(BE_PORT, toBe({ ...q, src: snat, dst: be, sport: nport, dport: 5353, ttl: 63 })) },
      { label: 'port unreachable', inPort: BE_PORT, in: B.icmpError({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: be, dst: snat, kind: 'port_unreachable', inner: quoted }),
        expect: { verdict: 'forward', reason: 'fwd_icmp_error', outPort: CLIENT_PORT,
          frame: B.icmpError({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, kind: 'port_unreachable', inner: expectInner, ttl: 63 }) } },
    ],
  });
});

test('ICMPv6 packet-too-big from a router on the backend side, truncated quote, no SNAT', (t) => {
  const vip = 'fd00:96::a', be = 'fd00:1::5', client = 'fd00::1', router = 'fd00:1::1';
  const base = { proto: 'TCP', sport: 40000, flags: 'PA', seq: 1, ack: 1, payload: new Uint8Array(100).fill(7) };
  const quoted = B.ipPacket({ ...base, src: client, dst: be, dport: 8080, ttl: 63 });
  const expectInner = B.ipPacket({ ...base, src: client, dst: vip, dport: 80, ttl: 63 });
  runScenario(t, {
    tables: singleService({ vip, port: 80, proto: 'TCP', be, bport: 8080 }),
    steps: [
      { label: 'data', in: cli({ ...base, src: client, dst: vip, dport: 80 }), expect: fwd(BE_PORT, toBe({ ...base, src: client, dst: be, dport: 8080, ttl: 63 })) },
      // quote cut inside the TCP payload: the inner TCP checksum is present and must be adjusted
      { label: 'packet too big', inPort: BE_PORT,
        in: B.icmpError({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: router, dst: client, kind: 'packet_too_big', mtu: 1280, inner: quoted, quoteLen: 80 }),
        expect: { verdict: 'forward', reason: 'fwd_icmp_error', outPort: CLIENT_PORT,
          frame: B.icmpError({ srcMac: MAC.node, dstMac: MAC.client, src: router, dst: client, kind: 'packet_too_big', mtu: 1280, inner: expectInner, quoteLen: 80, ttl: 63 }) } },
    ],
  });
});

test('ICMP error from the client about a reply goes back toward the backend', (t) => {
  const vip = '10.96.0.10', be = '10.1.0.5', client = '10.0.0.1';
  const quoted = B.ipPacket({ proto: 'UDP', src: vip, dst: client, sport: 53, dport: 1111, payload: 'a', ttl: 63 });
  const expectInner = B.ipPacket({ proto: 'UDP', src: be, dst: client, sport: 5353, dport: 1111, payload: 'a', ttl: 63 });
  runScenario(t, {
    tables: singleService({ vip, port: 53, proto: 'UDP', be, bport: 5353 }),
    steps: [
      { label: 'query', in: cli({ proto: 'UDP', src: client, dst: vip, sport: 1111, dport: 53 }), expect: fwd(BE_PORT, toBe({ proto: 'UDP', src: client, dst: be, sport: 1111, dport: 5353, ttl: 63 })) },
      { label: 'answer', inPort: BE_PORT, in: fromBe({ proto: 'UDP', src: be, dst: client, sport: 5353, dport: 1111, payload: 'a' }),
        expect: reply(toCli({ proto: 'UDP', src: vip, dst: client, sport: 53, dport: 1111, payload: 'a', ttl: 63 })) },
      { label: 'client port unreachable', in: B.icmpError({ srcMac: MAC.client, dstMac: MAC.node, src: client, dst: vip, kind: 'port_unreachable', inner: quoted }),
        expect: { verdict: 'forward', reason: 'fwd_icmp_error', outPort: BE_PORT,
          frame: B.icmpError({ srcMac: MAC.beSrc, dstMac: MAC.beDst, src: client, dst: be, kind: 'port_unreachable', inner: expectInner, ttl: 63 }) } },
    ],
  });
});

test('ICMP error quoting no known flow is routed / sent to the host', (t) => {
  const quoted = B.ipPacket({ proto: 'UDP', src: '10.0.0.9', dst: '10.1.0.5', sport: 1, dport: 53 });
  runScenario(t, {
    tables: singleService({ vip: '10.96.0.10', port: 53, proto: 'UDP', be: '10.1.0.5', bport: 53 }),
    steps: [{ label: 'unknown', in: B.icmpError({ src: '10.1.0.5', dst: '10.0.0.9', inner: quoted }), expect: { verdict: 'to_host', reason: 'host_no_match' } }],
  });
});

// ---- ICMPv6 errors whose quote carries extension headers ----------------------------------------
// The kernel's conntrack finds the quoted packet's L4 header past its extension headers
// (ipv6_get_l4proto: ipv6_skip_exthdr) and gives up only on a non-first fragment; so does the core.

{
  const vip = 'fd00:96::a', be = 'fd00:1::5', client = 'fd00::1', router = 'fd00::fe';
  const big = new Uint8Array(1200).map((_, i) => (i * 13) & 0xff);
  const frag0 = [{ type: 44, offset: 0, more: true, id: 0x5151 }];
  const udpSvc = () => singleService({ vip, port: 53, proto: 'UDP', be, bport: 5353 });
  const query = { label: 'query', in: cli({ proto: 'UDP', src: client, dst: vip, sport: 1111, dport: 53, payload: 'q' }),
    expect: fwd(BE_PORT, toBe({ proto: 'UDP', src: client, dst: be, sport: 1111, dport: 5353, payload: 'q', ttl: 63 })) };
  const ptb = (src, dst, inner, quoteLen, extra = {}) => B.icmpError({ src, dst, kind: 'packet_too_big', mtu: 1280, inner, quoteLen, ...extra });

  test('ICMPv6 Packet Too Big quoting a first fragment (fragment header, offset 0, M set) of a translated UDP reply is translated toward the backend', (t) => {
    const r = { proto: 'UDP', sport: 5353, dport: 1111, payload: big, v6Ext: frag0 };
    // the first fragment of the answer as the client side got it (from the VIP) and as the backend sent it
    const sent = B.ipPacket({ ...r, src: vip, dst: client, sport: 53, ttl: 63 });
    const orig = B.ipPacket({ ...r, src: be, dst: client, ttl: 63 });
    const { core } = runScenario(t, {
      tables: udpSvc(),
      steps: [
        query,
        { label: 'answer, first fragment', inPort: BE_PORT, in: fromBe({ ...r, src: be, dst: client }),
          expect: reply(toCli({ ...r, src: vip, dst: client, sport: 53, ttl: 63 })) },
        // a router on the client side cuts the quote inside the UDP payload (the UDP checksum is there)
        { label: 'packet too big from the client side', in: ptb(router, vip, sent, 600, { srcMac: MAC.client, dstMac: MAC.node }),
          expect: { verdict: 'forward', reason: 'fwd_icmp_error', outPort: BE_PORT,
            frame: ptb(router, be, orig, 600, { srcMac: MAC.beSrc, dstMac: MAC.beDst, ttl: 63 }) } },
      ],
    });
    t.is(core.counters().reasons.fwd_icmp_error, 1);
  });

  test('ICMPv6 Packet Too Big quoting a first fragment of a client datagram is translated toward the client (VIP and service port restored)', (t) => {
    const q = { proto: 'UDP', sport: 1111, payload: big, v6Ext: frag0 };
    const toBackend = B.ipPacket({ ...q, src: client, dst: be, dport: 5353, ttl: 63 });
    const asSent = B.ipPacket({ ...q, src: client, dst: vip, dport: 53, ttl: 63 });
    runScenario(t, {
      tables: udpSvc(),
      steps: [
        { label: 'query, first fragment', in: cli({ ...q, src: client, dst: vip, dport: 53 }), expect: fwd(BE_PORT, toBe({ ...q, src: client, dst: be, dport: 5353, ttl: 63 })) },
        { label: 'packet too big from the backend', inPort: BE_PORT, in: ptb(be, client, toBackend, 1232, { srcMac: MAC.beDst, dstMac: MAC.beSrc }),
          expect: { verdict: 'forward', reason: 'fwd_icmp_error', outPort: CLIENT_PORT,
            frame: ptb(vip, client, asSent, 1232, { srcMac: MAC.node, dstMac: MAC.client, ttl: 63 }) } },
      ],
    });
  });

  test('ICMPv6 errors quoting hop-by-hop / destination-options / routing headers before TCP are translated; the TCP checksum past them is adjusted', (t) => {
    const base = { proto: 'TCP', sport: 40000, flags: 'PA', seq: 1, ack: 1, payload: new Uint8Array(100).fill(7) };
    const exts = [[{ type: 0 }], [{ type: 60, bytes: 24 }], [{ type: 0 }, { type: 43, bytes: 16 }, { type: 60 }, ...frag0]];
    const steps = [{ label: 'data', in: cli({ ...base, src: client, dst: vip, dport: 80 }), expect: fwd(BE_PORT, toBe({ ...base, src: client, dst: be, dport: 8080, ttl: 63 })) }];
    for (const v6Ext of exts) {
      const quoted = B.ipPacket({ ...base, v6Ext, src: client, dst: be, dport: 8080, ttl: 63 });
      const expectInner = B.ipPacket({ ...base, v6Ext, src: client, dst: vip, dport: 80, ttl: 63 });
      const types = v6Ext.map((e) => e.type).join('+');
      steps.push(
        { label: `packet too big, quote with ${types}`, inPort: BE_PORT,
          in: ptb(router, client, quoted, 160, { srcMac: MAC.beDst, dstMac: MAC.beSrc }),
          expect: { verdict: 'forward', reason: 'fwd_icmp_error', outPort: CLIENT_PORT,
            frame: ptb(router, client, expectInner, 160, { srcMac: MAC.node, dstMac: MAC.client, ttl: 63 }) } },
        { label: `time exceeded, quote with ${types}`, inPort: BE_PORT,
          in: B.icmpError({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: router, dst: client, kind: 'time_exceeded', inner: quoted }),
          expect: { verdict: 'forward', reason: 'fwd_icmp_error', outPort: CLIENT_PORT,
            frame: B.icmpError({ srcMac: MAC.node, dstMac: MAC.client, src: router, dst: client, kind: 'time_exceeded', inner: expectInner, ttl: 63 }) } });
    }
    runScenario(t, { tables: singleService({ vip, port: 80, proto: 'TCP', be, bport: 8080 }), steps });
  });

  test('ICMPv6 errors quoting a non-first fragment, or extension headers the quote cuts or that are too many, are not translated', (t) => {
    const r = { proto: 'UDP', src: vip, dst: client, sport: 53, dport: 1111, ttl: 63 };
    // a later fragment of the answer: its first bytes are payload, here shaped like the flow's ports
    const later = B.ipPacket({ ...r, rawL4: [0, 53, 0x04, 0x57, 0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], v6Ext: [{ type: 44, offset: 150, more: false, id: 0x5151 }] });
    const nine = B.ipPacket({ ...r, payload: 'a', v6Ext: Array.from({ length: 9 }, () => ({ type: 60 })) });
    const cut = B.ipPacket({ ...r, payload: 'a', v6Ext: [{ type: 0 }, { type: 60, bytes: 64 }] });
    const untranslated = { verdict: 'to_host', reason: 'host_no_match' };
    const { core } = runScenario(t, {
      tables: udpSvc(),
      steps: [
        query,
        { label: 'non-first fragment', in: ptb(client, vip, later, undefined, { srcMac: MAC.client, dstMac: MAC.node }), expect: untranslated },
        { label: 'nine extension headers', in: ptb(client, vip, nine, undefined, { srcMac: MAC.client, dstMac: MAC.node }), expect: untranslated },
        { label: 'quote ends inside an extension header', in: ptb(client, vip, cut, 40 + 8 + 40, { srcMac: MAC.client, dstMac: MAC.node }), expect: untranslated },
      ],
    });
    t.falsy(core.counters().reasons.fwd_icmp_error);
  });
}

// ---- backend selection -----------------------------------------------------------------------

test('Maglev selection: the backend is maglev[flowHash % M] for each of many flows', (t) => {
  const bes = [1, 2, 3, 4, 5].map((i) => backend({ id: i, addr: `10.1.0.${i}`, port: 8080, outPort: 10 + i }));
  const fe = frontend({ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP' }, bes);
  const seen = new Set();
  const steps = Array.from({ length: 40 }, (_, k) => {
    const sport = 20000 + k;
    const h = flowHash(parseAddr('10.0.0.1').bytes, parseAddr('10.96.0.10').bytes, sport, 80, 6);
    const b = bes.find((x) => x.id === fe.maglev[h % fe.maglev.length]);
    seen.add(b.id);
    return { label: `sport ${sport}`, in: cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.96.0.10', sport, dport: 80 }),
      expect: fwd(b.outPort, toBe({ proto: 'TCP', src: '10.0.0.1', dst: b.addr, sport, dport: 8080, ttl: 63 })) };
  });
  runScenario(t, { tables: mkIr({ frontends: [fe], backends: bes }), steps });
  t.true(seen.size >= 4, 'flows spread over the backends');
});

test('session affinity: same client -> same backend; after the timeout a changed table may move it', (t) => {
  const mk = (n) => [1, 2, 3, 4, 5, 6].slice(0, n).map((i) => backend({ id: i, addr: `10.1.0.${i}`, port: 8080, outPort: 10 + i }));
  const timeout = 10_000;
  const feOf = (bes) => frontend({ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', flags: L.FEF_AFFINITY, affinityTimeoutMs: timeout }, bes);
  const bes3 = mk(3), bes6 = mk(6);
  const fe3 = feOf(bes3), fe6 = feOf(bes6);
  // An affinity miss picks like a new client (issue 14: kube-proxy picks at random when the entry
  // expired): Maglev at freshPickHash(flow hash of that connection, now). A client whose first
  // pick (3-backend table) and post-timeout pick (6-backend table) differ:
  const vip = parseAddr('10.96.0.10').bytes;
  const pick = (fe, c, sport, now) => fe.maglev[freshPickHash(flowHash(parseAddr(c).bytes, vip, sport, 80, 6), now) % fe.maglev.length];
  const tLater = 1000 + 2 * timeout + 5;
  let client;
  for (let i = 1; i < 250 && !client; i++) {
    const c = `10.0.${i}.1`;
    if (pick(fe3, c, 30000, 1000) !== pick(fe6, c, 31001, tLater)) client = c;
  }
  t.truthy(client);
  const first = bes6.find((b) => b.id === pick(fe3, client, 30000, 1000));
  const later = bes6.find((b) => b.id === pick(fe6, client, 31001, tLater));
  const syn = (sport) => cli({ proto: 'TCP', src: client, dst: '10.96.0.10', sport, dport: 80 });
  const toB = (b, sport) => fwd(b.outPort, toBe({ proto: 'TCP', src: client, dst: b.addr, sport, dport: 8080, ttl: 63 }));
  const { core } = runScenario(t, {
    tables: mkIr({ frontends: [fe3], backends: bes3 }),
    steps: [
      ...Array.from({ length: 5 }, (_, i) => ({ label: `flow ${i}`, in: syn(30000 + i), expect: toB(first, 30000 + i), now: 1000 + i })),
      { apply: mkIr({ frontends: [fe6], backends: bes6 }) },
      { label: 'within the timeout: still the first backend', in: syn(31000), expect: toB(first, 31000), now: 1000 + timeout },
      { label: 'after the timeout: re-selected by the new table', in: syn(31001), expect: toB(later, 31001), now: tLater },
      { label: 'and sticks there', in: syn(31002), expect: toB(later, 31002), now: 1000 + 2 * timeout + 6 },
    ],
  });
  t.true(core.flows().some((f) => f.flags.includes('affinity')));
});

test('terminating fallback: no ready endpoint -> a serving-terminating one is used', (t) => {
  const bes = [backend({ id: 1, addr: '10.1.0.1', port: 80, state: L.BES_TERMINATING_SERVING }), backend({ id: 2, addr: '10.1.0.2', port: 80, state: L.BES_NOT_SERVING })];
  const fe = frontend({ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP' }, bes);
  t.true((fe.flags & L.FEF_FALLBACK) !== 0);
  const { core } = runScenario(t, {
    tables: mkIr({ frontends: [fe], backends: bes }),
    steps: [{ label: 'SYN', in: cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.96.0.10', sport: 1234, dport: 80 }),
      expect: fwd(1, toBe({ proto: 'TCP', src: '10.0.0.1', dst: '10.1.0.1', sport: 1234, dport: 80, ttl: 63 })) }],
  });
  t.deepEqual(core.flows()[0].flags, ['fallback']);
  const r = core.trace([cli({ proto: 'TCP', src: '10.0.0.2', dst: '10.96.0.10', sport: 1234, dport: 80 })], CLIENT_PORT)[0];
  t.is(r.trace.select, L.TRSEL_FALLBACK_TERMINATING);
});

test('source ranges: allowed client forwarded, others dropped', (t) => {
  runScenario(t, {
    tables: singleService({ vip: '10.96.0.10', port: 80, proto: 'TCP', be: '10.1.0.1', bport: 80, sourceRanges: ['10.0.0.0/24', '192.168.7.7/32'] }),
    steps: [
      { label: 'in range', in: cli({ proto: 'TCP', src: '10.0.0.77', dst: '10.96.0.10', sport: 1, dport: 80 }),
        expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: '10.0.0.77', dst: '10.1.0.1', sport: 1, dport: 80, ttl: 63 })) },
      { label: 'exact /32', in: cli({ proto: 'TCP', src: '192.168.7.7', dst: '10.96.0.10', sport: 1, dport: 80 }),
        expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: '192.168.7.7', dst: '10.1.0.1', sport: 1, dport: 80, ttl: 63 })) },
      { label: 'out of range', in: cli({ proto: 'TCP', src: '10.0.1.1', dst: '10.96.0.10', sport: 1, dport: 80 }), expect: dropped('drop_source_range') },
      { label: 'neighbour of the /32', in: cli({ proto: 'TCP', src: '192.168.7.6', dst: '10.96.0.10', sport: 1, dport: 80 }), expect: dropped('drop_source_range') },
    ],
  });
});

// ---- SNAT --------------------------------------------------------------------------------------

for (const { fam, vip, be, snat } of [{ fam: 4, vip: '10.96.0.10', be: '10.1.0.5', snat: '10.1.0.254' }, { fam: 6, vip: 'fd00:96::a', be: 'fd00:1::5', snat: 'fd00:1::fe' }]) {
  test(`IPv${fam} hairpin: a backend reaching its own service is SNATed to the node address`, (t) => {
    const h = flowHash(parseAddr(be).bytes, parseAddr(vip).bytes, 45000, 80, 6);
    const nport = SNAT_MIN + (h % (SNAT_MAX - SNAT_MIN + 1));
    const { core } = runScenario(t, {
      tables: singleService({ vip, port: 80, proto: 'TCP', be, bport: 8080, snatV4: fam === 4 ? snat : undefined, snatV6: fam === 6 ? snat : undefined }),
      steps: [
        { label: 'SYN from the backend to the VIP', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: be, dst: vip, sport: 45000, dport: 80 }),
          expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: snat, dst: be, sport: nport, dport: 8080, ttl: 63 })) },
        { label: 'SYN-ACK to the SNAT address', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: be, dst: snat, sport: 8080, dport: nport, flags: 'SA' }),
          expect: { verdict: 'forward', reason: 'fwd_reply', outPort: BE_PORT, frame: toBe({ proto: 'TCP', src: vip, dst: be, sport: 80, dport: 45000, flags: 'SA', ttl: 63 }) } },
      ],
    });
    t.like(core.flows()[0], { natSource: snat, natSourcePort: nport, flags: ['snat', 'replied'] });
  });
}

// The node itself (a host port: its frames come in and go out on BE_PORT) reaching a Service whose
// backend is the node (a hostNetwork endpoint at the SNAT address): translated to the hairpin
// address, not to its own address, so its reply leaves the node's stack toward the dataplane.
for (const { fam, vip, node, hairpin } of [
  { fam: 4, vip: '10.96.0.10', node: '192.168.100.2', hairpin: '169.254.42.1' },
  { fam: 6, vip: 'fd00:96::a', node: 'fd00:100::2', hairpin: 'fd00:ff::42' },
]) {
  const tables = (withHairpin) => singleService({ vip, port: 80, proto: 'TCP', be: node, bport: 8080,
    [`snatV${fam}`]: node, ...(withHairpin ? { [`hairpinV${fam}`]: hairpin } : {}) });
  const nportOf = (sport, proto, dport) => SNAT_MIN + (flowHash(parseAddr(node).bytes, parseAddr(vip).bytes, sport, dport, proto) % (SNAT_MAX - SNAT_MIN + 1));
  const reverse = (frame) => ({ verdict: 'forward', reason: 'fwd_reply', outPort: BE_PORT, frame });

  test(`IPv${fam} host hairpin: the node reaching a Service whose backend is the node gets the hairpin address (TCP)`, (t) => {
    const nport = nportOf(45000, 6, 80);
    const { core, model } = runScenario(t, {
      tables: tables(true),
      steps: [
        { label: 'SYN from the node to the VIP', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: node, dst: vip, sport: 45000, dport: 80, flags: 'S' }),
          expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: hairpin, dst: node, sport: nport, dport: 8080, flags: 'S', ttl: 64 })) },
        { label: 'SYN-ACK to the hairpin address', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: node, dst: hairpin, sport: 8080, dport: nport, flags: 'SA', seq: 5, ack: 1 }),
          expect: reverse(toBe({ proto: 'TCP', src: vip, dst: node, sport: 80, dport: 45000, flags: 'SA', seq: 5, ack: 1, ttl: 64 })) },
        { label: 'ACK with data', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: node, dst: vip, sport: 45000, dport: 80, flags: 'PA', seq: 1, ack: 6, payload: 'GET /' }),
          expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: hairpin, dst: node, sport: nport, dport: 8080, flags: 'PA', seq: 1, ack: 6, payload: 'GET /', ttl: 64 })) },
        { label: 'a packet to the node\'s own address on that port is no reply (it is not the flow\'s key)', inPort: BE_PORT,
          in: fromBe({ proto: 'TCP', src: node, dst: node, sport: 8080, dport: nport, flags: 'A' }), expect: { verdict: 'to_host', reason: 'host_no_match' } },
      ],
    });
    t.like(core.flows()[0], { natSource: hairpin, natSourcePort: nport, flags: ['snat', 'replied', 'confirmed', 'hairpin'] });
    t.is(model.activeFlows()[0].flags & L.CTF_HAIRPIN, L.CTF_HAIRPIN);
    t.is(core.counters().global.snat, 1);
  });

  test(`IPv${fam} host hairpin: the connection goes on from the hairpin address after its endpoint (the node) left the Service, by the route to the node`, (t) => {
    const nport = nportOf(45000, 6, 80);
    const hostRoute = { prefix: `${node}/${fam === 4 ? 32 : 128}`, outPort: 9, dstMac: MAC.rtDst, srcMac: MAC.rtSrc };
    const other = fam === 4 ? '10.1.0.7' : 'fd00:1::7';
    const left = [backend({ id: 2, addr: other, port: 8080, outPort: BE_PORT })];
    const after = mkIr({ frontends: [frontend({ id: 1, addr: vip, port: 80, proto: 'TCP' }, left)], backends: left, routes: [hostRoute],
      [`snatV${fam}`]: node, [`hairpinV${fam}`]: hairpin });
    runScenario(t, {
      tables: tables(true),
      steps: [
        { label: 'SYN from the node to the VIP', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: node, dst: vip, sport: 45000, dport: 80, flags: 'S' }),
          expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: hairpin, dst: node, sport: nport, dport: 8080, flags: 'S', ttl: 64 })) },
        { apply: after },
        { label: 'data after the node left the endpoints', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: node, dst: vip, sport: 45000, dport: 80, flags: 'PA', seq: 1, ack: 6, payload: 'GET /' }),
          expect: fwd(9, B.frame({ srcMac: MAC.rtSrc, dstMac: MAC.rtDst, proto: 'TCP', src: hairpin, dst: node, sport: nport, dport: 8080, flags: 'PA', seq: 1, ack: 6, payload: 'GET /', ttl: 64 })) },
        { label: 'its answer to the hairpin address', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: node, dst: hairpin, sport: 8080, dport: nport, flags: 'A', seq: 5, ack: 6 }),
          expect: reverse(toBe({ proto: 'TCP', src: vip, dst: node, sport: 80, dport: 45000, flags: 'A', seq: 5, ack: 6, ttl: 64 })) },
        // without its hairpin address the flow's reply key no longer holds: re-selected as before
        { apply: mkIr({ frontends: [frontend({ id: 1, addr: vip, port: 80, proto: 'TCP' }, left)], backends: left, routes: [hostRoute], [`snatV${fam}`]: node }) },
        { label: 'hairpin address removed', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: node, dst: vip, sport: 45000, dport: 80, flags: 'PA', seq: 6, ack: 6, payload: '!' }),
          expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: node, dst: other, sport: 45000, dport: 8080, flags: 'PA', seq: 6, ack: 6, payload: '!', ttl: 64 })) },
      ],
    });
  });

  test(`IPv${fam} host hairpin over UDP; an ICMP error from the node about it is translated back`, (t) => {
    const nport = nportOf(5353, 17, 80);
    const q = { proto: 'UDP', payload: 'query' };
    const tbl = singleService({ vip, port: 80, proto: 'UDP', be: node, bport: 8053, [`snatV${fam}`]: node, [`hairpinV${fam}`]: hairpin });
    const inner = B.ipPacket({ src: vip, dst: node, proto: 'UDP', sport: 80, dport: 5353, ttl: 64, payload: 'answer' });
    runScenario(t, {
      tables: tbl,
      steps: [
        { label: 'query', inPort: BE_PORT, in: fromBe({ ...q, src: node, dst: vip, sport: 5353, dport: 80 }),
          expect: fwd(BE_PORT, toBe({ ...q, src: hairpin, dst: node, sport: nport, dport: 8053, ttl: 64 })) },
        { label: 'answer', inPort: BE_PORT, in: fromBe({ proto: 'UDP', src: node, dst: hairpin, sport: 8053, dport: nport, payload: 'answer' }),
          expect: reverse(toBe({ proto: 'UDP', src: vip, dst: node, sport: 80, dport: 5353, payload: 'answer', ttl: 64 })) },
        { label: 'port unreachable from the client side about the answer', inPort: BE_PORT,
          in: B.icmpError({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: node, dst: vip, inner, kind: 'port_unreachable' }),
          expect: { verdict: 'forward', reason: 'fwd_icmp_error', outPort: BE_PORT, frame: B.icmpError({ srcMac: MAC.beSrc, dstMac: MAC.beDst, src: hairpin, dst: node, ttl: 64,
            inner: B.ipPacket({ src: node, dst: hairpin, proto: 'UDP', sport: 8053, dport: nport, ttl: 64, payload: 'answer' }), kind: 'port_unreachable' }) } },
      ],
    });
  });

  test(`IPv${fam} host hairpin: without a hairpin address the node is translated to itself (as before); a pod's hairpin keeps the SNAT address`, (t) => {
    const nport = nportOf(45000, 6, 80);
    runScenario(t, {
      tables: tables(false),
      steps: [{ label: 'SYN', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: node, dst: vip, sport: 45000, dport: 80, flags: 'S' }),
        expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: node, dst: node, sport: nport, dport: 8080, flags: 'S', ttl: 64 })) }],
    });
    const pod = fam === 4 ? '10.1.0.5' : 'fd00:1::5';
    const pport = SNAT_MIN + (flowHash(parseAddr(pod).bytes, parseAddr(vip).bytes, 45000, 80, 6) % (SNAT_MAX - SNAT_MIN + 1));
    runScenario(t, {
      tables: singleService({ vip, port: 80, proto: 'TCP', be: pod, bport: 8080, [`snatV${fam}`]: node, [`hairpinV${fam}`]: hairpin }),
      steps: [{ label: 'SYN from the pod to its own service', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: pod, dst: vip, sport: 45000, dport: 80, flags: 'S' }),
        expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: node, dst: pod, sport: pport, dport: 8080, flags: 'S', ttl: 63 })) }],
    });
  });

  test(`IPv${fam} host hairpin: a flow whose hairpin address is changed or removed is stale and re-selected`, (t) => {
    const nport = nportOf(45000, 6, 80);
    const moved = fam === 4 ? '169.254.42.9' : 'fd00:ff::49';
    const ack = fromBe({ proto: 'TCP', src: node, dst: vip, sport: 45000, dport: 80, flags: 'A' });
    const { core } = runScenario(t, {
      tables: tables(true),
      steps: [
        { label: 'SYN', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: node, dst: vip, sport: 45000, dport: 80, flags: 'S' }),
          expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: hairpin, dst: node, sport: nport, dport: 8080, flags: 'S', ttl: 64 })) },
        { apply: singleService({ vip, port: 80, proto: 'TCP', be: node, bport: 8080, [`snatV${fam}`]: node, [`hairpinV${fam}`]: moved }) },
        { label: 'a reply to the old hairpin address is no longer the flow\'s', inPort: BE_PORT,
          in: fromBe({ proto: 'TCP', src: node, dst: hairpin, sport: 8080, dport: nport, flags: 'SA' }), expect: { verdict: 'to_host', reason: 'host_no_match' } },
        { label: 'the next packet re-selects, with the new hairpin address', inPort: BE_PORT, in: ack,
          expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: moved, dst: node, sport: nport, dport: 8080, flags: 'A', ttl: 64 })) },
        { apply: tables(false) },
        { label: 'without a hairpin address the flow is stale too: translated to the node itself', inPort: BE_PORT, in: ack,
          expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: node, dst: node, sport: nport, dport: 8080, flags: 'A', ttl: 64 })) },
      ],
    });
    t.is(core.counters().global.ct_reselect, 2);
    t.deepEqual(core.flows()[0].flags, ['snat', 'node']);   // the node at both ends
  });
}

// A node with two addresses (an internal and an external IP, both node addresses: the detector's
// node entries), a hostNetwork endpoint at the second: the node reaching it through a Service
// takes the hairpin address too (from either address; left at, or translated to, a node address
// the packet would be a martian to the node's stack), and an outside client's masqueraded
// traffic to it is not masqueraded (kube-proxy does not masquerade what the node delivers to itself).
for (const { fam, vip, node, second, hairpin, outside } of [
  { fam: 4, vip: '10.96.0.10', node: '192.168.100.2', second: '198.51.100.7', hairpin: '169.254.42.1', outside: '203.0.113.9' },
  { fam: 6, vip: 'fd00:96::a', node: 'fd00:100::2', second: '2001:db8:7::7', hairpin: 'fd00:ff::42', outside: '2001:db8:9::9' },
]) {
  const none = { outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' };
  const plen = fam === 4 ? 32 : 128;
  const routes = [{ prefix: `${node}/${plen}`, ...none, localSource: 'node' }, { prefix: `${second}/${plen}`, ...none, localSource: 'node' }];
  const tables = ({ be, proto = 'TCP', bport = 8080, flags = 0, withHairpin = true }) => {
    const bes = [backend({ id: 1, addr: be, port: bport, outPort: BE_PORT })];
    return mkIr({ frontends: [frontend({ id: 1, addr: vip, port: 80, proto, flags }, bes)], backends: bes, routes,
      [`snatV${fam}`]: node, ...(withHairpin ? { [`hairpinV${fam}`]: hairpin } : {}) });
  };
  const nportOf = (src, sport, proto) => SNAT_MIN + (flowHash(parseAddr(src).bytes, parseAddr(vip).bytes, sport, 80, proto) % (SNAT_MAX - SNAT_MIN + 1));
  const reverse = (frame) => ({ verdict: 'forward', reason: 'fwd_reply', outPort: BE_PORT, frame });

  test(`IPv${fam} host hairpin at a second node address: the node reaching a Service whose backend is its other address gets the hairpin address (TCP, UDP, either direction)`, (t) => {
    const n1 = nportOf(node, 45000, 6), n2 = nportOf(second, 45001, 6), nu = nportOf(node, 5353, 17);
    const { core, model } = runScenario(t, {
      tables: tables({ be: second }),
      steps: [
        { label: 'SYN from the first address to the VIP', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: node, dst: vip, sport: 45000, dport: 80, flags: 'S' }),
          expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: hairpin, dst: second, sport: n1, dport: 8080, flags: 'S', ttl: 64 })) },
        { label: 'SYN-ACK from the second address to the hairpin address', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: second, dst: hairpin, sport: 8080, dport: n1, flags: 'SA', seq: 5, ack: 1 }),
          expect: reverse(toBe({ proto: 'TCP', src: vip, dst: node, sport: 80, dport: 45000, flags: 'SA', seq: 5, ack: 1, ttl: 64 })) },
        { label: 'SYN from the second address (the backend\'s own) to the VIP', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: second, dst: vip, sport: 45001, dport: 80, flags: 'S' }),
          expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: hairpin, dst: second, sport: n2, dport: 8080, flags: 'S', ttl: 64 })) },
        { apply: tables({ be: second, proto: 'UDP', bport: 8053 }) },
        { label: 'UDP query from the first address', inPort: BE_PORT, in: fromBe({ proto: 'UDP', src: node, dst: vip, sport: 5353, dport: 80, payload: 'query' }),
          expect: fwd(BE_PORT, toBe({ proto: 'UDP', src: hairpin, dst: second, sport: nu, dport: 8053, payload: 'query', ttl: 64 })) },
        { label: 'UDP answer from the second address', inPort: BE_PORT, in: fromBe({ proto: 'UDP', src: second, dst: hairpin, sport: 8053, dport: nu, payload: 'answer' }),
          expect: reverse(toBe({ proto: 'UDP', src: vip, dst: node, sport: 80, dport: 5353, payload: 'answer', ttl: 64 })) },
      ],
    });
    t.true(core.flows().some((f) => f.flags.includes('hairpin') && f.natSource === hairpin && f.backend === second && f.proto === 'UDP'), JSON.stringify(core.flows()));
    t.true(model.activeFlows().every((f) => (f.flags & L.CTF_HAIRPIN) !== 0));
  });

  test(`IPv${fam} host hairpin: the second node address reaching a backend at the first gets the hairpin address`, (t) => {
    const n = nportOf(second, 45000, 6);
    runScenario(t, {
      tables: tables({ be: node, flags: L.FEF_MASQUERADE }),
      steps: [{ label: 'SYN from the second address', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: second, dst: vip, sport: 45000, dport: 80, flags: 'S' }),
        expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: hairpin, dst: node, sport: n, dport: 8080, flags: 'S', ttl: 64 })) }],
    });
  });

  test(`IPv${fam} a backend at a second node address is not masqueraded toward (outside client, masquerading frontend); without a hairpin address the node keeps its source`, (t) => {
    runScenario(t, {
      tables: tables({ be: second, flags: L.FEF_MASQUERADE }),
      steps: [
        { label: 'outside SYN', in: cli({ proto: 'TCP', src: outside, dst: vip, sport: 40000, dport: 80, flags: 'S' }),
          expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: outside, dst: second, sport: 40000, dport: 8080, flags: 'S', ttl: 64 })) },
        { label: 'SYN-ACK', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: second, dst: outside, sport: 8080, dport: 40000, flags: 'SA' }),
          expect: reply(toCli({ proto: 'TCP', src: vip, dst: outside, sport: 80, dport: 40000, flags: 'SA', ttl: 64 })) },
        { apply: tables({ be: second, flags: L.FEF_MASQUERADE, withHairpin: false }) },
        { label: 'the node without a hairpin address', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: node, dst: vip, sport: 45000, dport: 80, flags: 'S' }),
          expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: node, dst: second, sport: 45000, dport: 8080, flags: 'S', ttl: 64 })) },
      ],
    });
  });
}

test('masquerade: external traffic SNATed; two clients on the same source port get distinct ports', (t) => {
  const node = '192.168.1.10', snat = '10.1.0.254';
  const ports = [];
  const steps = ['203.0.113.1', '203.0.113.2'].map((client) => {
    const h = flowHash(parseAddr(client).bytes, parseAddr(node).bytes, 5000, 30080, 6);
    const nport = SNAT_MIN + (h % (SNAT_MAX - SNAT_MIN + 1));
    ports.push(nport);
    return { label: client, in: cli({ proto: 'TCP', src: client, dst: node, sport: 5000, dport: 30080 }),
      expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: snat, dst: '10.1.0.5', sport: nport, dport: 8080, ttl: 63 })) };
  });
  const { core } = runScenario(t, {
    tables: singleService({ vip: node, port: 30080, proto: 'TCP', be: '10.1.0.5', bport: 8080, flags: L.FEF_MASQUERADE | L.FEF_EXTERNAL, snatV4: snat }),
    steps,
  });
  t.not(ports[0], ports[1]);
  t.is(core.counters().global.snat, 2);
});

test('SNAT port probing: a taken start port moves to the next free one', (t) => {
  // a port range of 2: the second flow whose hash picks the same start must take the other port
  const snat = '10.1.0.254', vip = '192.168.1.10';
  const startOf = (sport) => 40000 + (flowHash(parseAddr('203.0.113.1').bytes, parseAddr(vip).bytes, sport, 80, 17) % 2);
  const a = 1000; let b = 1001;
  while (startOf(b) !== startOf(a)) b++;
  const first = startOf(a), second = first === 40000 ? 40001 : 40000;
  runScenario(t, {
    tables: singleService({ vip, port: 80, proto: 'UDP', be: '10.1.0.5', bport: 80, flags: L.FEF_MASQUERADE, snatV4: snat }),
    opts: { snatPortMin: 40000, snatPortMax: 40001 },
    steps: [
      { label: 'first', in: cli({ proto: 'UDP', src: '203.0.113.1', dst: vip, sport: a, dport: 80 }), expect: fwd(BE_PORT, toBe({ proto: 'UDP', src: snat, dst: '10.1.0.5', sport: first, dport: 80, ttl: 63 })) },
      { label: 'second', in: cli({ proto: 'UDP', src: '203.0.113.1', dst: vip, sport: b, dport: 80 }), expect: fwd(BE_PORT, toBe({ proto: 'UDP', src: snat, dst: '10.1.0.5', sport: second, dport: 80, ttl: 63 })) },
      { label: 'third: exhausted', in: cli({ proto: 'UDP', src: '203.0.113.1', dst: vip, sport: b + 1, dport: 80 }), expect: dropped('drop_snat_exhausted') },
    ],
  });
});

// ---- TTL, fragments, VLAN, host traffic, routing ------------------------------------------------

test('TTL: 1 on arrival is answered from the VIP (service) or dropped (a reply or routed packet from a port without an address; golden-ttl and golden-ttl-service have the answers\' bytes); 2 is forwarded with 1', (t) => {
  const ir = singleService({ vip: '10.96.0.10', port: 80, proto: 'TCP', be: '10.1.0.5', bport: 80 });
  ir.routes = [{ prefix: '172.16.0.0/16', outPort: 7, dstMac: MAC.rtDst, srcMac: MAC.rtSrc }];
  runScenario(t, {
    tables: ir,
    steps: [
      { label: 'ttl 1 to VIP', in: cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.96.0.10', sport: 1, dport: 80, ttl: 1 }), expect: { verdict: 'reject', reason: 'reject_ttl_exceeded', outPort: CLIENT_PORT } },
      { label: 'ttl 1 routed', in: cli({ proto: 'UDP', src: '10.0.0.1', dst: '172.16.3.3', sport: 1, dport: 2, ttl: 1 }), expect: dropped('drop_ttl_no_address') },
      { label: 'ttl 2 to VIP', in: cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.96.0.10', sport: 2, dport: 80, ttl: 2 }),
        expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: '10.0.0.1', dst: '10.1.0.5', sport: 2, dport: 80, ttl: 1 })) },
      { label: 'ttl 1 reply', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: '10.1.0.5', dst: '10.0.0.1', sport: 80, dport: 2, flags: 'SA', ttl: 1 }), expect: dropped('drop_ttl_no_address') },
      { label: 'routed', in: cli({ proto: 'UDP', src: '10.0.0.1', dst: '172.16.3.3', sport: 1, dport: 2, ttl: 9 }),
        expect: { verdict: 'forward', reason: 'fwd_routed', outPort: 7, frame: B.frame({ srcMac: MAC.rtSrc, dstMac: MAC.rtDst, proto: 'UDP', src: '10.0.0.1', dst: '172.16.3.3', sport: 1, dport: 2, ttl: 8 }) } },
      { label: 'no route', in: cli({ proto: 'UDP', src: '10.0.0.1', dst: '8.8.8.8', sport: 1, dport: 2 }), expect: { verdict: 'to_host', reason: 'host_no_match' } },
    ],
  });
});

// Later fragments used to be dropped always (drop_fragment); they now follow their first fragment's
// flow (docs/core.md "Fragments"), translated at L3 only; one whose first fragment was never seen
// is still dropped.
test('fragments: first fragment translated, later fragments follow it, unknown ones dropped (v4 and v6)', (t) => {
  const ir = mkIr({
    backends: [backend({ id: 1, addr: '10.1.0.5', port: 53 }), backend({ id: 2, addr: 'fd00:1::5', port: 53 })],
  });
  ir.frontends = new Map([
    [1, frontend({ id: 1, addr: '10.96.0.10', port: 53, proto: 'UDP' }, [ir.backends.get(1)])],
    [2, frontend({ id: 2, addr: 'fd00:96::a', port: 53, proto: 'UDP' }, [ir.backends.get(2)])],
  ]);
  const payload = new Uint8Array(64).fill(1);
  // a first fragment carries the UDP header; its checksum covers the whole datagram, so the
  // expected output is built with the same (whole-datagram) checksum, adjusted by the NAT only
  const first = B.frame({ srcMac: MAC.client, dstMac: MAC.node, proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport: 9, dport: 53, payload, mf: true, id: 77 });
  const firstOut = B.frame({ srcMac: MAC.beSrc, dstMac: MAC.beDst, proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', sport: 9, dport: 53, payload, mf: true, id: 77, ttl: 63 });
  runScenario(t, {
    tables: ir,
    steps: [
      { label: 'v4 first fragment', in: first, expect: fwd(BE_PORT, firstOut) },
      { label: 'v4 later fragment', in: cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', rawL4: new Uint8Array(16), fragOffset: 9, id: 77 }),
        expect: fwd(BE_PORT, toBe({ proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', rawL4: new Uint8Array(16), fragOffset: 9, id: 77, ttl: 63 })) },
      { label: 'v4 later fragment of an unseen datagram', in: cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', rawL4: new Uint8Array(16), fragOffset: 9, id: 78 }), expect: dropped('drop_fragment') },
      { label: 'v6 first fragment', in: cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:96::a', sport: 9, dport: 53, payload, v6Ext: [{ type: 44, offset: 0, more: true }] }),
        expect: fwd(BE_PORT, toBe({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:1::5', sport: 9, dport: 53, payload, v6Ext: [{ type: 44, offset: 0, more: true }], ttl: 63 })) },
      { label: 'v6 later fragment', in: cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:96::a', rawL4: new Uint8Array(16), v6Ext: [{ type: 44, offset: 9 }] }),
        expect: fwd(BE_PORT, toBe({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:1::5', rawL4: new Uint8Array(16), v6Ext: [{ type: 44, offset: 9 }], ttl: 63 })) },
      { label: 'v6 later fragment of an unseen datagram', in: cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:96::a', rawL4: new Uint8Array(16), v6Ext: [{ type: 44, offset: 9, id: 5 }] }), expect: dropped('drop_fragment') },
      { label: 'v6 ext headers before UDP', in: cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:96::a', sport: 10, dport: 53, v6Ext: [{ type: 0 }, { type: 60, bytes: 24 }] }),
        expect: fwd(BE_PORT, toBe({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:1::5', sport: 10, dport: 53, v6Ext: [{ type: 0 }, { type: 60, bytes: 24 }], ttl: 63 })) },
      { label: 'v6 nine ext headers', in: cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:96::a', sport: 11, dport: 53, v6Ext: Array.from({ length: 9 }, () => ({ type: 60 })) }), expect: dropped('drop_ipv6_ext_headers') },
    ],
  });
});

test('VLAN-tagged frames keep their tag and are translated like untagged ones', (t) => {
  runScenario(t, {
    tables: singleService({ vip: '10.96.0.10', port: 80, proto: 'TCP', be: '10.1.0.5', bport: 8080 }),
    steps: [
      { label: 'tagged SYN', in: cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.96.0.10', sport: 5, dport: 80, vlan: 42 }),
        expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: '10.0.0.1', dst: '10.1.0.5', sport: 5, dport: 8080, vlan: 42, ttl: 63 })) },
      { label: 'tagged reply', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: '10.1.0.5', dst: '10.0.0.1', sport: 8080, dport: 5, flags: 'SA', vlan: 42 }),
        expect: reply(toCli({ proto: 'TCP', src: '10.96.0.10', dst: '10.0.0.1', sport: 80, dport: 5, flags: 'SA', vlan: 42, ttl: 63 })) },
      { label: 'tagged ARP', in: B.arpRequest({ senderMac: MAC.client, senderIp: '10.0.0.1', targetIp: '10.0.0.254', vlan: 42 }), expect: { verdict: 'to_host', reason: 'host_arp' } },
    ],
  });
});

test('ARP, neighbour discovery and other ethertypes go to the host', (t) => {
  runScenario(t, {
    tables: mkIr(),
    steps: [
      { label: 'ARP request', in: B.arpRequest({ senderMac: MAC.client, senderIp: '10.0.0.1', targetIp: '10.0.0.254' }), expect: { verdict: 'to_host', reason: 'host_arp' } },
      { label: 'neighbour solicitation', in: B.neighborSolicitation({ senderMac: MAC.client, senderIp: 'fe80::1', targetIp: 'fd00::fe' }), expect: { verdict: 'to_host', reason: 'host_nd' } },
      { label: 'LLDP', in: B.ethernet({ dstMac: '01:80:c2:00:00:0e', srcMac: MAC.client }, 0x88cc, new Uint8Array(40)), expect: { verdict: 'to_host', reason: 'host_not_ip' } },
      { label: 'multicast source', in: cli({ proto: 'UDP', src: '224.0.0.5', dst: '10.0.0.1', sport: 1, dport: 2 }), expect: dropped('drop_martian') },
      { label: 'v6 multicast source', in: cli({ proto: 'UDP', src: 'ff02::1', dst: 'fd00::1', sport: 1, dport: 2 }), expect: dropped('drop_martian') },
    ],
  });
});

test('stale backend: a flow whose backend vanished is re-selected to a live one', (t) => {
  const bes = [backend({ id: 1, addr: '10.1.0.1', port: 80, outPort: 11 }), backend({ id: 2, addr: '10.1.0.2', port: 80, outPort: 12 })];
  const fe = frontend({ id: 1, addr: '10.96.0.10', port: 80, proto: 'UDP' }, bes);
  const h = flowHash(parseAddr('10.0.0.1').bytes, parseAddr('10.96.0.10').bytes, 777, 80, 17);
  const firstId = fe.maglev[h % fe.maglev.length];
  const first = bes.find((b) => b.id === firstId), other = bes.find((b) => b.id !== firstId);
  const pkt = cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport: 777, dport: 80 });
  const fe2 = frontend({ id: 1, addr: '10.96.0.10', port: 80, proto: 'UDP' }, [other]);
  runScenario(t, {
    tables: mkIr({ frontends: [fe], backends: bes }),
    steps: [
      { label: 'first', in: pkt, expect: fwd(first.outPort, toBe({ proto: 'UDP', src: '10.0.0.1', dst: first.addr, sport: 777, dport: 80, ttl: 63 })) },
      { apply: mkIr({ frontends: [fe2], backends: [other] }) },
      { label: 'after the backend vanished', in: pkt, expect: fwd(other.outPort, toBe({ proto: 'UDP', src: '10.0.0.1', dst: other.addr, sport: 777, dport: 80, ttl: 63 })) },
      { check: ({ core, model }) => {
        t.is(core.counters().global.ct_reselect, 1);
        t.is(model.global[L.GC_CT_RESELECT], 1);
      } },
      // the old backend's reply no longer matches; the new one's does
      { label: 'reply from the new backend', inPort: other.outPort, in: fromBe({ proto: 'UDP', src: other.addr, dst: '10.0.0.1', sport: 80, dport: 777 }),
        expect: reply(toCli({ proto: 'UDP', src: '10.96.0.10', dst: '10.0.0.1', sport: 80, dport: 777, ttl: 63 })) },
    ],
  });
});

// kube-proxy leaves TCP/SCTP conntrack entries alone: an open connection whose endpoint left the
// Service goes on to the old pod's address, by the route that reaches it (here the old pod's
// neighbour host route, on its own port and MACs); with that route gone it is dropped.
for (const { fam, client, vip, be } of FAMILIES) {
  test(`IPv${fam}: an open TCP connection whose backend left goes on to its old address by the route to it; a new SYN goes to the backend in force; no route: dropped`, (t) => {
    const other = fam === 4 ? '10.1.0.6' : 'fd00:1::6';
    const hostRoute = { prefix: `${be}/${fam === 4 ? 32 : 128}`, outPort: 6, dstMac: MAC.rtDst, srcMac: MAC.rtSrc };
    const old = [backend({ id: 1, addr: be, port: 8080, outPort: BE_PORT })];
    const now = [backend({ id: 2, addr: other, port: 8080, outPort: BE_PORT })];
    const fe = (bes) => frontend({ id: 1, addr: vip, port: 80, proto: 'TCP' }, bes);
    const base = { proto: 'TCP', sport: 40000, ttl: 64 };
    const toRoute = (spec) => B.frame({ srcMac: MAC.rtSrc, dstMac: MAC.rtDst, ...spec });
    runScenario(t, {
      tables: mkIr({ frontends: [fe(old)], backends: old, routes: [hostRoute] }),
      steps: [
        { label: 'SYN', in: cli({ ...base, src: client, dst: vip, dport: 80, flags: 'S', seq: 7 }),
          expect: fwd(BE_PORT, toBe({ ...base, src: client, dst: be, dport: 8080, flags: 'S', seq: 7, ttl: 63 })) },
        { label: 'SYN-ACK', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: be, dst: client, sport: 8080, dport: 40000, flags: 'SA', seq: 99, ack: 8 }),
          expect: reply(toCli({ proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40000, flags: 'SA', seq: 99, ack: 8, ttl: 63 })) },
        { label: 'ACK', in: cli({ ...base, src: client, dst: vip, dport: 80, flags: 'A', seq: 8, ack: 100 }),
          expect: fwd(BE_PORT, toBe({ ...base, src: client, dst: be, dport: 8080, flags: 'A', seq: 8, ack: 100, ttl: 63 })) },
        { apply: mkIr({ frontends: [fe(now)], backends: now, routes: [hostRoute] }) },
        { label: 'data after the backend left', in: cli({ ...base, src: client, dst: vip, dport: 80, flags: 'PA', seq: 8, ack: 100, payload: 'still there?' }),
          expect: fwd(6, toRoute({ ...base, src: client, dst: be, dport: 8080, flags: 'PA', seq: 8, ack: 100, payload: 'still there?', ttl: 63 })) },
        { label: 'the old pod answers', inPort: 6, in: fromBe({ proto: 'TCP', src: be, dst: client, sport: 8080, dport: 40000, flags: 'PA', seq: 100, ack: 20, payload: 'yes' }),
          expect: reply(toCli({ proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40000, flags: 'PA', seq: 100, ack: 20, payload: 'yes', ttl: 63 })) },
        { label: 'a new connection', in: cli({ ...base, sport: 40001, src: client, dst: vip, dport: 80, flags: 'S', seq: 1 }),
          expect: fwd(BE_PORT, toBe({ ...base, sport: 40001, src: client, dst: other, dport: 8080, flags: 'S', seq: 1, ttl: 63 })) },
        { apply: mkIr({ frontends: [fe(now)], backends: now }) },
        { label: 'the old pod unreachable', in: cli({ ...base, src: client, dst: vip, dport: 80, flags: 'PA', seq: 20, ack: 103, payload: 'hello?' }),
          expect: dropped('drop_backend_unreachable') },
      ],
    });
  });
}

test('malformed frames get their specific drop reason', (t) => {
  const good = cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2 });
  const badDoff = cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2 });
  badDoff[14 + 20 + 12] = 0x40;
  const big = new Uint8Array(2049); big.set(good);
  runScenario(t, {
    tables: mkIr(),
    steps: [
      { label: '13 bytes', in: good.subarray(0, 13), expect: dropped('drop_truncated_l2') },
      { label: 'truncated IPv4 header', in: good.subarray(0, 30), expect: dropped('drop_truncated_l3') },
      { label: 'bad version', in: cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, version: 5 }), expect: dropped('drop_bad_ip_version') },
      { label: 'IHL 4', in: cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, ihl: 4 }), expect: dropped('drop_bad_ihl') },
      { label: 'total length > frame', in: cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, totalLength: 100 }), expect: dropped('drop_bad_ip_length') },
      { label: 'TCP cut', in: cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.0.0.2', rawL4: new Uint8Array(12) }), expect: dropped('drop_truncated_l4') },
      { label: 'TCP data offset 4', in: badDoff, expect: dropped('drop_bad_l4_header') },
      { label: 'UDP cut', in: cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.0.0.2', rawL4: new Uint8Array(7) }), expect: dropped('drop_truncated_l4') },
      { label: 'v6 truncated', in: cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00::2', sport: 1, dport: 2 }).subarray(0, 50), expect: dropped('drop_truncated_l3') },
      { label: 'v6 payload length > frame', in: cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00::2', sport: 1, dport: 2, payloadLength: 200 }), expect: dropped('drop_bad_ip_length') },
      { label: 'oversize', in: big, expect: dropped('drop_oversize') },
      { label: 'in_port PORT_NONE', in: good, inPort: L.PORT_NONE, expect: dropped('drop_bad_port') },
    ],
  });
});

test('expiry: an idle UDP flow times out; its late reply no longer matches; the client starts a new flow', (t) => {
  const q = cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport: 999, dport: 53 });
  const qOut = toBe({ proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', sport: 999, dport: 53, ttl: 63 });
  const a = fromBe({ proto: 'UDP', src: '10.1.0.5', dst: '10.0.0.1', sport: 53, dport: 999 });
  const aOut = toCli({ proto: 'UDP', src: '10.96.0.10', dst: '10.0.0.1', sport: 53, dport: 999, ttl: 63 });
  const { core, model } = runScenario(t, {
    tables: singleService({ vip: '10.96.0.10', port: 53, proto: 'UDP', be: '10.1.0.5', bport: 53 }),
    opts: { timeouts: { udpMs: 1500, udpRepliedMs: 5000 } },
    steps: [
      { label: 'query', in: q, expect: fwd(BE_PORT, qOut), now: 1000 },
      { label: 'answer within 1 s', in: a, expect: reply(aOut), now: 1999, inPort: BE_PORT },
      // replied, and active more than 2 s after the first packet: a stream (the kernel's UDP conntrack)
      { label: 'another query 2.001 s after the first: the flow becomes a stream', in: q, expect: fwd(BE_PORT, qOut), now: 3001 },
      { label: 'answer after 5 s idle (replied timeout) still matches', in: a, expect: reply(aOut), now: 3001 + 5000, inPort: BE_PORT },
      { label: 'answer 5.001 s after that: expired', in: a, expect: { verdict: 'to_host', reason: 'host_no_match' }, now: 3001 + 10001, inPort: BE_PORT },
      { label: 'the client again: a new flow', in: q, expect: fwd(BE_PORT, qOut), now: 3001 + 10002 },
    ],
  });
  t.is(core.counters().global.ct_new, 2);
  t.is(core.counters().global.ct_expired, 1);
  // ct_expire_all frees every expired flow at once, in the core and in the model
  t.is(core.exports.ct_expire_all(3001 + 10002 + 1499), 0);
  t.is(model.expireAll(3001 + 10002 + 1499), 0);
  t.is(core.exports.ct_expire_all(3001 + 10002 + 1501), 1);
  t.is(model.expireAll(3001 + 10002 + 1501), 1);
  t.deepEqual(core.flows(), []);
  t.deepEqual(model.activeFlows(), []);
});

test('a query answered at once keeps the unreplied timeout: the answer alone makes no stream (the kernel\'s UDP conntrack)', (t) => {
  const q = cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport: 998, dport: 53 });
  const qOut = toBe({ proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', sport: 998, dport: 53, ttl: 63 });
  const a = fromBe({ proto: 'UDP', src: '10.1.0.5', dst: '10.0.0.1', sport: 53, dport: 998 });
  const aOut = toCli({ proto: 'UDP', src: '10.96.0.10', dst: '10.0.0.1', sport: 53, dport: 998, ttl: 63 });
  const { core } = runScenario(t, {
    tables: singleService({ vip: '10.96.0.10', port: 53, proto: 'UDP', be: '10.1.0.5', bport: 53 }),
    opts: { timeouts: { udpMs: 1500, udpRepliedMs: 5000 } },
    steps: [
      { label: 'query', in: q, expect: fwd(BE_PORT, qOut), now: 1000 },
      { label: 'answer at once', in: a, expect: reply(aOut), now: 1050, inPort: BE_PORT },
      { label: 'a second answer 1.5 s later still matches', in: a, expect: reply(aOut), now: 2550, inPort: BE_PORT },
      { label: 'one 1.501 s after that: expired (30 s in the kernel, not its 120 s stream timeout)', in: a, expect: { verdict: 'to_host', reason: 'host_no_match' }, now: 4051, inPort: BE_PORT },
    ],
  });
  t.is(core.counters().global.ct_expired, 1);
});

test('eviction: a full table evicts an unreplied flow or one answered at once, never a stream', (t) => {
  const q = (sport) => cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport, dport: 53 });
  const qOut = (sport) => toBe({ proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', sport, dport: 53, ttl: 63 });
  const a = (sport) => fromBe({ proto: 'UDP', src: '10.1.0.5', dst: '10.0.0.1', sport: 53, dport: sport });
  const aOut = (sport) => toCli({ proto: 'UDP', src: '10.96.0.10', dst: '10.0.0.1', sport: 53, dport: sport, ttl: 63 });
  const { core, model } = runScenario(t, {
    tables: singleService({ vip: '10.96.0.10', port: 53, proto: 'UDP', be: '10.1.0.5', bport: 53 }),
    opts: { flows: 16 },
    steps: [
      ...Array.from({ length: 16 }, (_, i) => ({ label: `flow ${i}`, in: q(2000 + i), expect: fwd(BE_PORT, qOut(2000 + i)) })),
      ...Array.from({ length: 16 }, (_, i) => ({ label: `reply ${i}`, in: a(2000 + i), expect: reply(aOut(2000 + i)), inPort: BE_PORT })),
      // every flow but 9 goes on after 2 s: streams
      ...Array.from({ length: 16 }, (_, i) => i).filter((i) => i !== 9)
        .map((i) => ({ label: `query again ${i}`, in: q(2000 + i), expect: fwd(BE_PORT, qOut(2000 + i)), now: 3500 })),
      { label: '17th flow evicts the only one answered at once', in: q(3000), expect: fwd(BE_PORT, qOut(3000)), now: 3500 },
      { label: 'the evicted flow lost its state', in: a(2009), expect: { verdict: 'to_host', reason: 'host_no_match' }, inPort: BE_PORT, now: 3500 },
      { label: 'reply to the 17th', in: a(3000), expect: reply(aOut(3000)), inPort: BE_PORT, now: 3500 },
      { label: 'the 17th goes on after 2 s: a stream', in: q(3000), expect: fwd(BE_PORT, qOut(3000)), now: 6000 },
      { label: '18th flow: all streams -> table full', in: q(3001), expect: dropped('drop_ct_full'), now: 6000 },
      { label: 'streams keep working', in: a(2003), expect: reply(aOut(2003)), inPort: BE_PORT, now: 6000 },
    ],
  });
  t.is(core.counters().global.ct_evicted, 1);
  t.is(model.global[L.GC_CT_EVICTED], 1);
});

test('an ICMP-shaped payload under the other family\'s ICMP protocol number is not an ICMP error (whatever came before)', (t) => {
  // Regression: the core once kept the ICMP type of an earlier frame at the same batch index and
  // translated an IPv4 packet with protocol 58 as an ICMP error about a live flow.
  const inner = B.ipPacket({ src: '10.0.0.1', dst: '10.1.0.5', proto: 'UDP', sport: 1111, dport: 5353, ttl: 63 });
  const body = new Uint8Array(8 + inner.length); body[0] = 3; body[1] = 3; body.set(inner, 8);
  const inner6 = B.ipPacket({ src: 'fd00::1', dst: 'fd00::5', proto: 'UDP', sport: 1, dport: 2 });
  const body6 = new Uint8Array(8 + inner6.length); body6[0] = 1; body6[1] = 4; body6.set(inner6, 8);
  runScenario(t, {
    tables: singleService({ vip: '10.96.0.10', port: 53, proto: 'UDP', be: '10.1.0.5', bport: 5353 }),
    steps: [
      { label: 'query', in: cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport: 1111, dport: 53 }),
        expect: fwd(BE_PORT, toBe({ proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', sport: 1111, dport: 5353, ttl: 63 })) },
      { label: 'a genuine, unrelated ICMP error first', in: B.icmpError({ src: '10.9.9.9', dst: '10.0.0.1', inner: B.ipPacket({ src: '10.0.0.1', dst: '10.9.9.8', proto: 'UDP', sport: 1, dport: 2 }) }),
        expect: { verdict: 'to_host', reason: 'host_no_match' } },
      { label: 'IPv4 protocol 58 with an ICMP-error-shaped body', inPort: BE_PORT, in: fromBe({ src: '10.1.0.5', dst: '10.0.0.1', proto: 58, rawL4: body }),
        expect: { verdict: 'to_host', reason: 'host_no_match' } },
      { label: 'IPv6 next header 1 with an ICMPv6-error-shaped body', inPort: BE_PORT, in: fromBe({ src: 'fd00::5', dst: 'fd00::1', proto: 1, rawL4: body6 }),
        expect: { verdict: 'to_host', reason: 'host_no_match' } },
    ],
  });
});

// ---- externalTrafficPolicy Local: in-cluster sources (issue 14) -----------------------------------

test('externalTrafficPolicy Local: a pod is sent to the cluster front\'s endpoint with its address, the node masqueraded, an outside client dropped', (t) => {
  const node = '192.168.1.10', pod = '10.244.1.7', outside = '203.0.113.1', remote = '10.244.2.5';
  const bes = [backend({ id: 1, addr: remote, port: 8080, outPort: BE_PORT })];
  const none = { outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' };
  const tables = mkIr({
    frontends: [
      frontend({ id: 1, addr: '10.96.0.10', port: 80 }, bes),
      // no endpoint on this node: the local table is empty, the service has one elsewhere
      frontend({ id: 2, addr: node, port: 30080, kind: 'NodePort', flags: L.FEF_EXTERNAL | L.FEF_POLICY_DROP, clusterFront: 1 }, []),
    ],
    backends: bes, snatV4: node,
    routes: [{ prefix: '10.244.0.0/16', ...none, localSource: 'pod' }, { prefix: `${node}/32`, ...none, localSource: 'node' }],
  });
  const h = flowHash(parseAddr(node).bytes, parseAddr(node).bytes, 5001, 30080, 6);
  const nport = SNAT_MIN + (h % (SNAT_MAX - SNAT_MIN + 1));
  const { core } = runScenario(t, {
    tables,
    steps: [
      { label: 'outside', in: cli({ proto: 'TCP', src: outside, dst: node, sport: 5000, dport: 30080, flags: 'S' }), expect: dropped('drop_etp_no_local') },
      { label: 'pod', in: cli({ proto: 'TCP', src: pod, dst: node, sport: 5000, dport: 30080, flags: 'S' }),
        expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: pod, dst: remote, sport: 5000, dport: 8080, flags: 'S', ttl: 63 })) },
      { label: 'pod: SYN-ACK', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: remote, dst: pod, sport: 8080, dport: 5000, flags: 'SA' }),
        expect: reply(toCli({ proto: 'TCP', src: node, dst: pod, sport: 30080, dport: 5000, flags: 'SA', ttl: 63 })) },
      { label: 'node', in: cli({ proto: 'TCP', src: node, dst: node, sport: 5001, dport: 30080, flags: 'S' }),
        expect: fwd(BE_PORT, toBe({ proto: 'TCP', src: node, dst: remote, sport: nport, dport: 8080, flags: 'S', ttl: 64 })) },
      { label: 'node: SYN-ACK', inPort: BE_PORT, in: fromBe({ proto: 'TCP', src: remote, dst: node, sport: 8080, dport: nport, flags: 'SA' }),
        expect: reply(toCli({ proto: 'TCP', src: node, dst: node, sport: 30080, dport: 5001, flags: 'SA', ttl: 64 })) },
    ],
  });
  // short-circuited flows belong to the cluster front (its counters)
  t.deepEqual(core.flows().map((f) => f.frontendId), [1, 1]);
  t.is(core.counters().reasons.drop_etp_no_local, 1);
  t.is(core.counters().frontends[1].packets, 4);
});

test('a ping to a ClusterIP: ICMP port unreachable from the ClusterIP quoting the echo request (IPv4 and IPv6)', (t) => {
  const rejIcmp = (frame) => ({ verdict: 'reject', reason: 'reject_cluster_ip_proto', outPort: CLIENT_PORT, frame });
  const steps = [];
  const fronts = [];
  for (const { fam, client, vip } of FAMILIES) {
    const h = errorHeader(fam);
    fronts.push(frontend({ id: fam, addr: vip, port: 80 }, []));
    const echo = { proto: 'ICMP', src: client, dst: vip, icmpId: 7, icmpSeq: 1, payload: 'ping-payload' };
    const inner = B.ipPacket({ ...echo, ttl: 63 });   // (after ip_forward's decrement)
    steps.push({ label: `IPv${fam} echo`, in: cli(echo),
      expect: rejIcmp(answerError({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, kind: 'port_unreachable', inner, ...h() })) });
  }
  const { core } = runScenario(t, { tables: mkIr({ frontends: fronts }), steps });
  t.is(core.counters().reasons.reject_cluster_ip_proto, 2);
});
