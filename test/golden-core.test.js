// Golden-packet tables: for each scenario, input frames built with src/packet/build.ts, the
// expected verdict / reason / out port, and the expected output bytes built INDEPENDENTLY with the
// same builder (full checksum computation) — never with the core or the model. Every row runs
// through both the Wasm core (src/core/host.ts) and the reference model (src/reference/model.ts),
// so a golden failure says which side is wrong. Every output frame's checksums are also verified
// from scratch with src/packet/checksum.ts.
import test from 'ava';
import { Core } from '../dist/src/core/host.js';
import { ReferenceModel } from '../dist/src/reference/model.js';
import * as B from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { verifyChecksums } from '../dist/src/packet/checksum.js';
import { flowHash, freshPickHash } from '../dist/src/core/hash.js';
import { parseAddr } from '../dist/src/util/addr.js';
import { buildMaglev } from './lib/maglev-reference.js';
import { backend, frontend, mkIr, summarize, MAC, L } from './lib/packets.js';

const CLIENT_PORT = 3;   // dataplane port client frames arrive on
const BE_PORT = 1;       // backends' out port
const SNAT_MIN = 32768, SNAT_MAX = 60999;

/** A scenario: one Core and one model over the same Ir; step() runs a frame through both. */
function scenario(t, ir, opts = {}) {
  const core = Core.create({ flows: 4096, batchMax: 64, ...opts });
  core.applyIr(ir);
  const model = new ReferenceModel(ir, { flows: 4096, ...opts });
  return {
    core, model,
    apply(next) { core.applyIr(next); model.setIr(next); },
    /** Runs `frame` at `now` on `inPort`; asserts `expect` on both; returns the core's output. */
    step(label, frame, expect, { inPort = CLIENT_PORT, now = 1000 } = {}) {
      const c = summarize(core.run([{ frame, inPort }], now)[0]);
      const m = summarize(model.processBatch([{ frame, inPort }], now)[0]);
      const want = { verdict: expect.verdict, reason: expect.reason, outPort: expect.outPort ?? L.PORT_NONE };
      for (const [who, r] of [['core', c], ['model', m]]) {
        t.deepEqual({ verdict: r.verdict, reason: r.reason, outPort: r.outPort }, want, `${label}: ${who} verdict`);
        if (expect.frame) t.is(r.hex, B.toHex(expect.frame), `${label}: ${who} output bytes`);
        if (r.verdict === 'forward' || r.verdict === 'reject') t.deepEqual(verifyChecksums(B.fromHex(r.hex)), [], `${label}: ${who} checksums`);
      }
      return B.fromHex(c.hex);
    },
  };
}

const fwd = (outPort, frame) => ({ verdict: 'forward', reason: 'fwd_nat', outPort, frame });
const reply = (frame) => ({ verdict: 'forward', reason: 'fwd_reply', outPort: CLIENT_PORT, frame });
const dropped = (reason) => ({ verdict: 'drop', reason });

// client-side and backend-side frames of one flow
const cli = (s) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, ...s });
const toBe = (s) => B.frame({ srcMac: MAC.beSrc, dstMac: MAC.beDst, ...s });
const fromBe = (s) => B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, ...s });
const toCli = (s) => B.frame({ srcMac: MAC.node, dstMac: MAC.client, ...s });

function singleService({ vip, port, proto, be, bport, flags = 0, snatV4, snatV6, state, sourceRanges, extra = {} }) {
  const bes = [backend({ id: 1, addr: be, port: bport, outPort: BE_PORT, state })];
  return mkIr({ frontends: [frontend({ id: 1, addr: vip, port, proto, flags, sourceRanges, ...extra }, bes)], backends: bes, snatV4, snatV6 });
}

// ---- DNAT + reply, v4/v6 x TCP/UDP/SCTP --------------------------------------------------------

const FAMILIES = [
  { fam: 4, client: '10.0.0.1', vip: '10.96.0.10', be: '10.1.0.5' },
  { fam: 6, client: 'fd00::1', vip: 'fd00:96::a', be: 'fd00:1::5' },
];

for (const { fam, client, vip, be } of FAMILIES) {
  test(`IPv${fam} TCP: SYN DNAT to the backend, SYN-ACK reverse NAT, ACK on the flow, FIN`, (t) => {
    const s = scenario(t, singleService({ vip, port: 80, proto: 'TCP', be, bport: 8080 }));
    const base = { proto: 'TCP', sport: 40000, seq: 7, ttl: 64 };
    s.step('SYN', cli({ ...base, src: client, dst: vip, dport: 80, flags: 'S' }),
      fwd(BE_PORT, toBe({ ...base, src: client, dst: be, dport: 8080, flags: 'S', ttl: 63 })));
    s.step('SYN-ACK', fromBe({ proto: 'TCP', src: be, dst: client, sport: 8080, dport: 40000, flags: 'SA', seq: 99, ack: 8, ttl: 64 }),
      reply(toCli({ proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40000, flags: 'SA', seq: 99, ack: 8, ttl: 63 })), { inPort: BE_PORT });
    s.step('ACK with data', cli({ ...base, src: client, dst: vip, dport: 80, flags: 'PA', seq: 8, ack: 100, payload: 'GET / HTTP/1.0\r\n\r\n' }),
      fwd(BE_PORT, toBe({ ...base, src: client, dst: be, dport: 8080, flags: 'PA', seq: 8, ack: 100, payload: 'GET / HTTP/1.0\r\n\r\n', ttl: 63 })));
    s.step('FIN from the backend', fromBe({ proto: 'TCP', src: be, dst: client, sport: 8080, dport: 40000, flags: 'FA', seq: 100, ack: 26, ttl: 5 }),
      reply(toCli({ proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40000, flags: 'FA', seq: 100, ack: 26, ttl: 4 })), { inPort: BE_PORT });
    const flows = s.core.flows();
    t.is(flows.length, 1);
    t.like(flows[0], { state: 'tcp_closing', client, vip, backend: be, clientPort: 40000, vipPort: 80, backendPort: 8080 });
    t.deepEqual(s.model.activeFlows().map((f) => f.state), [L.CTS_TCP_CLOSING]);
  });

  test(`IPv${fam} UDP: DNAT and reply; the checksum stays valid`, (t) => {
    const s = scenario(t, singleService({ vip, port: 53, proto: 'UDP', be, bport: 5353 }));
    const q = { proto: 'UDP', sport: 33333, payload: 'query' };
    s.step('query', cli({ ...q, src: client, dst: vip, dport: 53 }), fwd(BE_PORT, toBe({ ...q, src: client, dst: be, dport: 5353, ttl: 63 })));
    s.step('answer', fromBe({ proto: 'UDP', src: be, dst: client, sport: 5353, dport: 33333, payload: 'answer!' }),
      reply(toCli({ proto: 'UDP', src: vip, dst: client, sport: 53, dport: 33333, payload: 'answer!', ttl: 63 })), { inPort: BE_PORT });
    t.like(s.core.flows()[0], { state: 'udp_replied' });
  });

  test(`IPv${fam} SCTP: DNAT recomputes the CRC32c (INIT and DATA)`, (t) => {
    const s = scenario(t, singleService({ vip, port: 7000, proto: 'SCTP', be, bport: 7001 }));
    s.step('INIT', cli({ proto: 'SCTP', src: client, dst: vip, sport: 5000, dport: 7000 }),
      fwd(BE_PORT, toBe({ proto: 'SCTP', src: client, dst: be, sport: 5000, dport: 7001, ttl: 63 })));
    s.step('DATA', cli({ proto: 'SCTP', src: client, dst: vip, sport: 5000, dport: 7000, payload: 'hello sctp', vtag: 77 }),
      fwd(BE_PORT, toBe({ proto: 'SCTP', src: client, dst: be, sport: 5000, dport: 7001, payload: 'hello sctp', vtag: 77, ttl: 63 })));
    s.step('reply DATA', fromBe({ proto: 'SCTP', src: be, dst: client, sport: 7001, dport: 5000, payload: 'ok', vtag: 5 }),
      reply(toCli({ proto: 'SCTP', src: vip, dst: client, sport: 7000, dport: 5000, payload: 'ok', vtag: 5, ttl: 63 })), { inPort: BE_PORT });
  });
}

test('IPv4 UDP without checksum stays without checksum', (t) => {
  const s = scenario(t, singleService({ vip: '10.96.0.10', port: 53, proto: 'UDP', be: '10.1.0.5', bport: 53 }));
  const out = s.step('query', cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport: 1000, dport: 53, udpChecksum: false, payload: 'q' }),
    fwd(BE_PORT, toBe({ proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', sport: 1000, dport: 53, udpChecksum: false, payload: 'q', ttl: 63 })));
  t.is(parseFrame(out).checksum, 0);
});

// ---- reject ------------------------------------------------------------------------------------

for (const { fam, client, vip } of FAMILIES) {
  const noEndpoints = () => mkIr({ frontends: [frontend({ id: 1, addr: vip, port: 80, proto: 'TCP' }, []), frontend({ id: 2, addr: vip, port: 53, proto: 'UDP' }, [])] });

  test(`IPv${fam} reject: TCP SYN -> RST|ACK ack=seq+1; ACK segment -> RST seq=ack; RST -> dropped`, (t) => {
    const s = scenario(t, noEndpoints());
    const rej = (frame) => ({ verdict: 'reject', reason: 'reject_no_endpoints', outPort: CLIENT_PORT, frame });
    const ipv4 = fam === 4 ? { id: 0, df: true } : {};
    s.step('SYN', cli({ proto: 'TCP', src: client, dst: vip, sport: 40000, dport: 80, flags: 'S', seq: 1000 }),
      rej(B.frame({ srcMac: MAC.node, dstMac: MAC.client, proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40000, flags: 'RA', seq: 0, ack: 1001, window: 0, ttl: 64, ...ipv4 })));
    s.step('data with ACK', cli({ proto: 'TCP', src: client, dst: vip, sport: 40001, dport: 80, flags: 'PA', seq: 5, ack: 777, payload: 'xyz' }),
      rej(B.frame({ srcMac: MAC.node, dstMac: MAC.client, proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40001, flags: 'R', seq: 777, ack: 0, window: 0, ttl: 64, ...ipv4 })));
    s.step('FIN without ACK, with payload', cli({ proto: 'TCP', src: client, dst: vip, sport: 40002, dport: 80, flags: 'F', seq: 10, payload: 'ab' }),
      rej(B.frame({ srcMac: MAC.node, dstMac: MAC.client, proto: 'TCP', src: vip, dst: client, sport: 80, dport: 40002, flags: 'RA', seq: 0, ack: 13, window: 0, ttl: 64, ...ipv4 })));
    s.step('RST is never answered', cli({ proto: 'TCP', src: client, dst: vip, sport: 40003, dport: 80, flags: 'R' }), dropped('drop_rst_no_endpoints'));
    t.is(s.core.counters().frontends[1].packets, 3);
  });

  test(`IPv${fam} reject: UDP -> ICMP port unreachable quoting the datagram (cut at ${fam === 4 ? 576 : 1280} bytes)`, (t) => {
    const s = scenario(t, noEndpoints());
    const rej = (frame) => ({ verdict: 'reject', reason: 'reject_no_endpoints', outPort: CLIENT_PORT, frame });
    const small = B.ipPacket({ proto: 'UDP', src: client, dst: vip, sport: 5555, dport: 53, payload: 'tiny' });
    // generated IPv4 headers: ID 0, DF, TTL 64
    const err = (inner, quoteLen) => B.icmpError({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, kind: 'port_unreachable', inner, quoteLen, ttl: 64, id: 0, df: true });
    s.step('small', cli({ proto: 'UDP', src: client, dst: vip, sport: 5555, dport: 53, payload: 'tiny' }), rej(err(small)));
    const payload = new Uint8Array(1400).map((_, i) => i & 0xff);
    const big = B.ipPacket({ proto: 'UDP', src: client, dst: vip, sport: 5555, dport: 53, payload });
    const out = s.step('large', cli({ proto: 'UDP', src: client, dst: vip, sport: 5555, dport: 53, payload }),
      rej(err(big, fam === 4 ? 576 - 28 : 1280 - 48)));
    t.is(out.length - 14, fam === 4 ? 576 : 1280);
  });
}

test('reject in a small slot: the ICMPv6 quote is cut so the reply fits CFG_SLOT_SIZE', (t) => {
  const vip = 'fd00:96::a', client = 'fd00::1';
  const s = scenario(t, mkIr({ frontends: [frontend({ id: 1, addr: vip, port: 53, proto: 'UDP' }, [])] }), { slotSize: 128 });
  const payload = new Uint8Array(120 - 14 - 48).fill(9);
  const inner = B.ipPacket({ proto: 'UDP', src: client, dst: vip, sport: 7, dport: 53, payload });
  const out = s.step('UDP to a VIP without endpoints', cli({ proto: 'UDP', src: client, dst: vip, sport: 7, dport: 53, payload }),
    { verdict: 'reject', reason: 'reject_no_endpoints', outPort: CLIENT_PORT,
      frame: B.icmpError({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, kind: 'port_unreachable', inner, quoteLen: 128 - 14 - 48, ttl: 64 }) });
  t.is(out.length, 128);
});

// ---- ICMP errors quoting a NATed flow ------------------------------------------------------------

test('ICMP error from the backend side is translated to the VIP (inner and outer), with SNAT', (t) => {
  const vip = '10.96.0.10', be = '10.1.0.5', client = '10.0.0.1', snat = '192.168.0.1';
  const s = scenario(t, singleService({ vip, port: 53, proto: 'UDP', be, bport: 5353, flags: L.FEF_MASQUERADE, snatV4: snat }));
  const h = flowHash(parseAddr(client).bytes, parseAddr(vip).bytes, 33333, 53, 17);
  const nport = SNAT_MIN + (h % (SNAT_MAX - SNAT_MIN + 1));
  const q = { proto: 'UDP', payload: 'query' };
  s.step('query (masqueraded)', cli({ ...q, src: client, dst: vip, sport: 33333, dport: 53 }),
    fwd(BE_PORT, toBe({ ...q, src: snat, dst: be, sport: nport, dport: 5353, ttl: 63 })));
  // the backend host answers with port unreachable about the packet it received
  const quoted = B.ipPacket({ ...q, src: snat, dst: be, sport: nport, dport: 5353, ttl: 63 });
  const expectInner = B.ipPacket({ ...q, src: client, dst: vip, sport: 33333, dport: 53, ttl: 63 });
  s.step('port unreachable', B.icmpError({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: be, dst: snat, kind: 'port_unreachable', inner: quoted }),
    { verdict: 'forward', reason: 'fwd_icmp_error', outPort: CLIENT_PORT,
      frame: B.icmpError({ srcMac: MAC.node, dstMac: MAC.client, src: vip, dst: client, kind: 'port_unreachable', inner: expectInner, ttl: 63 }) }, { inPort: BE_PORT });
});

test('ICMPv6 packet-too-big from a router on the backend side, truncated quote, no SNAT', (t) => {
  const vip = 'fd00:96::a', be = 'fd00:1::5', client = 'fd00::1', router = 'fd00:1::1';
  const s = scenario(t, singleService({ vip, port: 80, proto: 'TCP', be, bport: 8080 }));
  const base = { proto: 'TCP', sport: 40000, flags: 'PA', seq: 1, ack: 1, payload: new Uint8Array(100).fill(7) };
  s.step('data', cli({ ...base, src: client, dst: vip, dport: 80 }), fwd(BE_PORT, toBe({ ...base, src: client, dst: be, dport: 8080, ttl: 63 })));
  const quoted = B.ipPacket({ ...base, src: client, dst: be, dport: 8080, ttl: 63 });
  const expectInner = B.ipPacket({ ...base, src: client, dst: vip, dport: 80, ttl: 63 });
  // quote cut inside the TCP payload: the inner TCP checksum is present and must be adjusted
  s.step('packet too big', B.icmpError({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: router, dst: client, kind: 'packet_too_big', mtu: 1280, inner: quoted, quoteLen: 80 }),
    { verdict: 'forward', reason: 'fwd_icmp_error', outPort: CLIENT_PORT,
      frame: B.icmpError({ srcMac: MAC.node, dstMac: MAC.client, src: router, dst: client, kind: 'packet_too_big', mtu: 1280, inner: expectInner, quoteLen: 80, ttl: 63 }) }, { inPort: BE_PORT });
});

test('ICMP error from the client about a reply goes back toward the backend', (t) => {
  const vip = '10.96.0.10', be = '10.1.0.5', client = '10.0.0.1';
  const s = scenario(t, singleService({ vip, port: 53, proto: 'UDP', be, bport: 5353 }));
  s.step('query', cli({ proto: 'UDP', src: client, dst: vip, sport: 1111, dport: 53 }), fwd(BE_PORT, toBe({ proto: 'UDP', src: client, dst: be, sport: 1111, dport: 5353, ttl: 63 })));
  s.step('answer', fromBe({ proto: 'UDP', src: be, dst: client, sport: 5353, dport: 1111, payload: 'a' }),
    reply(toCli({ proto: 'UDP', src: vip, dst: client, sport: 53, dport: 1111, payload: 'a', ttl: 63 })), { inPort: BE_PORT });
  const quoted = B.ipPacket({ proto: 'UDP', src: vip, dst: client, sport: 53, dport: 1111, payload: 'a', ttl: 63 });
  const expectInner = B.ipPacket({ proto: 'UDP', src: be, dst: client, sport: 5353, dport: 1111, payload: 'a', ttl: 63 });
  s.step('client port unreachable', B.icmpError({ srcMac: MAC.client, dstMac: MAC.node, src: client, dst: vip, kind: 'port_unreachable', inner: quoted }),
    { verdict: 'forward', reason: 'fwd_icmp_error', outPort: BE_PORT,
      frame: B.icmpError({ srcMac: MAC.beSrc, dstMac: MAC.beDst, src: client, dst: be, kind: 'port_unreachable', inner: expectInner, ttl: 63 }) });
});

test('ICMP error quoting no known flow is routed / sent to the host', (t) => {
  const s = scenario(t, singleService({ vip: '10.96.0.10', port: 53, proto: 'UDP', be: '10.1.0.5', bport: 53 }));
  const quoted = B.ipPacket({ proto: 'UDP', src: '10.0.0.9', dst: '10.1.0.5', sport: 1, dport: 53 });
  s.step('unknown', B.icmpError({ src: '10.1.0.5', dst: '10.0.0.9', inner: quoted }), { verdict: 'to_host', reason: 'host_no_match' });
});

// ---- backend selection -----------------------------------------------------------------------

test('Maglev selection: the backend is maglev[flowHash % M] for each of many flows', (t) => {
  const bes = [1, 2, 3, 4, 5].map((i) => backend({ id: i, addr: `10.1.0.${i}`, port: 8080, outPort: 10 + i }));
  const fe = frontend({ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP' }, bes);
  const s = scenario(t, mkIr({ frontends: [fe], backends: bes }));
  const seen = new Set();
  for (let sport = 20000; sport < 20040; sport++) {
    const h = flowHash(parseAddr('10.0.0.1').bytes, parseAddr('10.96.0.10').bytes, sport, 80, 6);
    const b = bes.find((x) => x.id === fe.maglev[h % fe.maglev.length]);
    seen.add(b.id);
    s.step(`sport ${sport}`, cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.96.0.10', sport, dport: 80 }),
      fwd(b.outPort, toBe({ proto: 'TCP', src: '10.0.0.1', dst: b.addr, sport, dport: 8080, ttl: 63 })));
  }
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
  const s = scenario(t, mkIr({ frontends: [fe3], backends: bes3 }));
  const syn = (sport) => cli({ proto: 'TCP', src: client, dst: '10.96.0.10', sport, dport: 80 });
  const toB = (b, sport) => fwd(b.outPort, toBe({ proto: 'TCP', src: client, dst: b.addr, sport, dport: 8080, ttl: 63 }));
  for (let i = 0; i < 5; i++) s.step(`flow ${i}`, syn(30000 + i), toB(first, 30000 + i), { now: 1000 + i });
  s.apply(mkIr({ frontends: [fe6], backends: bes6 }));
  s.step('within the timeout: still the first backend', syn(31000), toB(first, 31000), { now: 1000 + timeout });
  s.step('after the timeout: re-selected by the new table', syn(31001), toB(later, 31001), { now: tLater });
  s.step('and sticks there', syn(31002), toB(later, 31002), { now: 1000 + 2 * timeout + 6 });
  t.true(s.core.flows().some((f) => f.flags.includes('affinity')));
});

test('terminating fallback: no ready endpoint -> a serving-terminating one is used', (t) => {
  const bes = [backend({ id: 1, addr: '10.1.0.1', port: 80, state: L.BES_TERMINATING_SERVING }), backend({ id: 2, addr: '10.1.0.2', port: 80, state: L.BES_NOT_SERVING })];
  const fe = frontend({ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP' }, bes);
  t.true((fe.flags & L.FEF_FALLBACK) !== 0);
  const s = scenario(t, mkIr({ frontends: [fe], backends: bes }));
  s.step('SYN', cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.96.0.10', sport: 1234, dport: 80 }),
    fwd(1, toBe({ proto: 'TCP', src: '10.0.0.1', dst: '10.1.0.1', sport: 1234, dport: 80, ttl: 63 })));
  t.deepEqual(s.core.flows()[0].flags, ['fallback']);
  const r = s.core.trace([cli({ proto: 'TCP', src: '10.0.0.2', dst: '10.96.0.10', sport: 1234, dport: 80 })], CLIENT_PORT)[0];
  t.is(r.trace.select, L.TRSEL_FALLBACK_TERMINATING);
});

test('source ranges: allowed client forwarded, others dropped', (t) => {
  const s = scenario(t, singleService({ vip: '10.96.0.10', port: 80, proto: 'TCP', be: '10.1.0.1', bport: 80, sourceRanges: ['10.0.0.0/24', '192.168.7.7/32'] }));
  s.step('in range', cli({ proto: 'TCP', src: '10.0.0.77', dst: '10.96.0.10', sport: 1, dport: 80 }),
    fwd(BE_PORT, toBe({ proto: 'TCP', src: '10.0.0.77', dst: '10.1.0.1', sport: 1, dport: 80, ttl: 63 })));
  s.step('exact /32', cli({ proto: 'TCP', src: '192.168.7.7', dst: '10.96.0.10', sport: 1, dport: 80 }),
    fwd(BE_PORT, toBe({ proto: 'TCP', src: '192.168.7.7', dst: '10.1.0.1', sport: 1, dport: 80, ttl: 63 })));
  s.step('out of range', cli({ proto: 'TCP', src: '10.0.1.1', dst: '10.96.0.10', sport: 1, dport: 80 }), dropped('drop_source_range'));
  s.step('neighbour of the /32', cli({ proto: 'TCP', src: '192.168.7.6', dst: '10.96.0.10', sport: 1, dport: 80 }), dropped('drop_source_range'));
});

// ---- SNAT --------------------------------------------------------------------------------------

for (const { fam, vip, be, snat } of [{ fam: 4, vip: '10.96.0.10', be: '10.1.0.5', snat: '10.1.0.254' }, { fam: 6, vip: 'fd00:96::a', be: 'fd00:1::5', snat: 'fd00:1::fe' }]) {
  test(`IPv${fam} hairpin: a backend reaching its own service is SNATed to the node address`, (t) => {
    const s = scenario(t, singleService({ vip, port: 80, proto: 'TCP', be, bport: 8080, snatV4: fam === 4 ? snat : undefined, snatV6: fam === 6 ? snat : undefined }));
    const h = flowHash(parseAddr(be).bytes, parseAddr(vip).bytes, 45000, 80, 6);
    const nport = SNAT_MIN + (h % (SNAT_MAX - SNAT_MIN + 1));
    s.step('SYN from the backend to the VIP', fromBe({ proto: 'TCP', src: be, dst: vip, sport: 45000, dport: 80 }),
      fwd(BE_PORT, toBe({ proto: 'TCP', src: snat, dst: be, sport: nport, dport: 8080, ttl: 63 })), { inPort: BE_PORT });
    s.step('SYN-ACK to the SNAT address', fromBe({ proto: 'TCP', src: be, dst: snat, sport: 8080, dport: nport, flags: 'SA' }),
      { verdict: 'forward', reason: 'fwd_reply', outPort: BE_PORT, frame: toBe({ proto: 'TCP', src: vip, dst: be, sport: 80, dport: 45000, flags: 'SA', ttl: 63 }) }, { inPort: BE_PORT });
    t.like(s.core.flows()[0], { natSource: snat, natSourcePort: nport, flags: ['snat', 'replied'] });
  });
}

test('masquerade: external traffic SNATed; two clients on the same source port get distinct ports', (t) => {
  const node = '192.168.1.10', snat = '10.1.0.254';
  const s = scenario(t, singleService({ vip: node, port: 30080, proto: 'TCP', be: '10.1.0.5', bport: 8080, flags: L.FEF_MASQUERADE | L.FEF_EXTERNAL, snatV4: snat }));
  const ports = [];
  for (const client of ['203.0.113.1', '203.0.113.2']) {
    const h = flowHash(parseAddr(client).bytes, parseAddr(node).bytes, 5000, 30080, 6);
    const nport = SNAT_MIN + (h % (SNAT_MAX - SNAT_MIN + 1));
    ports.push(nport);
    s.step(client, cli({ proto: 'TCP', src: client, dst: node, sport: 5000, dport: 30080 }),
      fwd(BE_PORT, toBe({ proto: 'TCP', src: snat, dst: '10.1.0.5', sport: nport, dport: 8080, ttl: 63 })));
  }
  t.not(ports[0], ports[1]);
  t.is(s.core.counters().global.snat, 2);
});

test('SNAT port probing: a taken start port moves to the next free one', (t) => {
  // a port range of 2: the second flow whose hash picks the same start must take the other port
  const snat = '10.1.0.254', vip = '192.168.1.10';
  const ir = singleService({ vip, port: 80, proto: 'UDP', be: '10.1.0.5', bport: 80, flags: L.FEF_MASQUERADE, snatV4: snat });
  const s = scenario(t, ir, { snatPortMin: 40000, snatPortMax: 40001 });
  const startOf = (sport) => 40000 + (flowHash(parseAddr('203.0.113.1').bytes, parseAddr(vip).bytes, sport, 80, 17) % 2);
  const a = 1000; let b = 1001;
  while (startOf(b) !== startOf(a)) b++;
  const first = startOf(a), second = first === 40000 ? 40001 : 40000;
  s.step('first', cli({ proto: 'UDP', src: '203.0.113.1', dst: vip, sport: a, dport: 80 }), fwd(BE_PORT, toBe({ proto: 'UDP', src: snat, dst: '10.1.0.5', sport: first, dport: 80, ttl: 63 })));
  s.step('second', cli({ proto: 'UDP', src: '203.0.113.1', dst: vip, sport: b, dport: 80 }), fwd(BE_PORT, toBe({ proto: 'UDP', src: snat, dst: '10.1.0.5', sport: second, dport: 80, ttl: 63 })));
  s.step('third: exhausted', cli({ proto: 'UDP', src: '203.0.113.1', dst: vip, sport: b + 1, dport: 80 }), dropped('drop_snat_exhausted'));
});

// ---- TTL, fragments, VLAN, host traffic, routing ------------------------------------------------

test('TTL: 1 on arrival is dropped (service, reply, routed); 2 is forwarded with 1', (t) => {
  const ir = singleService({ vip: '10.96.0.10', port: 80, proto: 'TCP', be: '10.1.0.5', bport: 80 });
  ir.routes = [{ prefix: '172.16.0.0/16', outPort: 7, dstMac: MAC.rtDst, srcMac: MAC.rtSrc }];
  const s = scenario(t, ir);
  s.step('ttl 1 to VIP', cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.96.0.10', sport: 1, dport: 80, ttl: 1 }), dropped('drop_ttl_exceeded'));
  s.step('ttl 1 routed', cli({ proto: 'UDP', src: '10.0.0.1', dst: '172.16.3.3', sport: 1, dport: 2, ttl: 1 }), dropped('drop_ttl_exceeded'));
  s.step('ttl 2 to VIP', cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.96.0.10', sport: 2, dport: 80, ttl: 2 }),
    fwd(BE_PORT, toBe({ proto: 'TCP', src: '10.0.0.1', dst: '10.1.0.5', sport: 2, dport: 80, ttl: 1 })));
  s.step('ttl 1 reply', fromBe({ proto: 'TCP', src: '10.1.0.5', dst: '10.0.0.1', sport: 80, dport: 2, flags: 'SA', ttl: 1 }), dropped('drop_ttl_exceeded'), { inPort: BE_PORT });
  s.step('routed', cli({ proto: 'UDP', src: '10.0.0.1', dst: '172.16.3.3', sport: 1, dport: 2, ttl: 9 }),
    { verdict: 'forward', reason: 'fwd_routed', outPort: 7, frame: B.frame({ srcMac: MAC.rtSrc, dstMac: MAC.rtDst, proto: 'UDP', src: '10.0.0.1', dst: '172.16.3.3', sport: 1, dport: 2, ttl: 8 }) });
  s.step('no route', cli({ proto: 'UDP', src: '10.0.0.1', dst: '8.8.8.8', sport: 1, dport: 2 }), { verdict: 'to_host', reason: 'host_no_match' });
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
  const s = scenario(t, ir);
  const payload = new Uint8Array(64).fill(1);
  // a first fragment carries the UDP header; its checksum covers the whole datagram, so the
  // expected output is built with the same (whole-datagram) checksum, adjusted by the NAT only
  const first = B.frame({ srcMac: MAC.client, dstMac: MAC.node, proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport: 9, dport: 53, payload, mf: true, id: 77 });
  const firstOut = B.frame({ srcMac: MAC.beSrc, dstMac: MAC.beDst, proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', sport: 9, dport: 53, payload, mf: true, id: 77, ttl: 63 });
  s.step('v4 first fragment', first, fwd(BE_PORT, firstOut));
  s.step('v4 later fragment', cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', rawL4: new Uint8Array(16), fragOffset: 9, id: 77 }),
    fwd(BE_PORT, toBe({ proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', rawL4: new Uint8Array(16), fragOffset: 9, id: 77, ttl: 63 })));
  s.step('v4 later fragment of an unseen datagram', cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', rawL4: new Uint8Array(16), fragOffset: 9, id: 78 }), dropped('drop_fragment'));
  s.step('v6 first fragment', cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:96::a', sport: 9, dport: 53, payload, v6Ext: [{ type: 44, offset: 0, more: true }] }),
    fwd(BE_PORT, toBe({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:1::5', sport: 9, dport: 53, payload, v6Ext: [{ type: 44, offset: 0, more: true }], ttl: 63 })));
  s.step('v6 later fragment', cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:96::a', rawL4: new Uint8Array(16), v6Ext: [{ type: 44, offset: 9 }] }),
    fwd(BE_PORT, toBe({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:1::5', rawL4: new Uint8Array(16), v6Ext: [{ type: 44, offset: 9 }], ttl: 63 })));
  s.step('v6 later fragment of an unseen datagram', cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:96::a', rawL4: new Uint8Array(16), v6Ext: [{ type: 44, offset: 9, id: 5 }] }), dropped('drop_fragment'));
  s.step('v6 ext headers before UDP', cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:96::a', sport: 10, dport: 53, v6Ext: [{ type: 0 }, { type: 60, bytes: 24 }] }),
    fwd(BE_PORT, toBe({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:1::5', sport: 10, dport: 53, v6Ext: [{ type: 0 }, { type: 60, bytes: 24 }], ttl: 63 })));
  s.step('v6 nine ext headers', cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00:96::a', sport: 11, dport: 53, v6Ext: Array.from({ length: 9 }, () => ({ type: 60 })) }), dropped('drop_ipv6_ext_headers'));
});

test('VLAN-tagged frames keep their tag and are translated like untagged ones', (t) => {
  const s = scenario(t, singleService({ vip: '10.96.0.10', port: 80, proto: 'TCP', be: '10.1.0.5', bport: 8080 }));
  s.step('tagged SYN', cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.96.0.10', sport: 5, dport: 80, vlan: 42 }),
    fwd(BE_PORT, toBe({ proto: 'TCP', src: '10.0.0.1', dst: '10.1.0.5', sport: 5, dport: 8080, vlan: 42, ttl: 63 })));
  s.step('tagged reply', fromBe({ proto: 'TCP', src: '10.1.0.5', dst: '10.0.0.1', sport: 8080, dport: 5, flags: 'SA', vlan: 42 }),
    reply(toCli({ proto: 'TCP', src: '10.96.0.10', dst: '10.0.0.1', sport: 80, dport: 5, flags: 'SA', vlan: 42, ttl: 63 })), { inPort: BE_PORT });
  s.step('tagged ARP', B.arpRequest({ senderMac: MAC.client, senderIp: '10.0.0.1', targetIp: '10.0.0.254', vlan: 42 }), { verdict: 'to_host', reason: 'host_arp' });
});

test('ARP, neighbour discovery and other ethertypes go to the host', (t) => {
  const s = scenario(t, mkIr());
  s.step('ARP request', B.arpRequest({ senderMac: MAC.client, senderIp: '10.0.0.1', targetIp: '10.0.0.254' }), { verdict: 'to_host', reason: 'host_arp' });
  s.step('neighbour solicitation', B.neighborSolicitation({ senderMac: MAC.client, senderIp: 'fe80::1', targetIp: 'fd00::fe' }), { verdict: 'to_host', reason: 'host_nd' });
  const lldp = B.ethernet({ dstMac: '01:80:c2:00:00:0e', srcMac: MAC.client }, 0x88cc, new Uint8Array(40));
  s.step('LLDP', lldp, { verdict: 'to_host', reason: 'host_not_ip' });
  s.step('multicast source', cli({ proto: 'UDP', src: '224.0.0.5', dst: '10.0.0.1', sport: 1, dport: 2 }), dropped('drop_martian'));
  s.step('v6 multicast source', cli({ proto: 'UDP', src: 'ff02::1', dst: 'fd00::1', sport: 1, dport: 2 }), dropped('drop_martian'));
});

test('stale backend: a flow whose backend vanished is re-selected to a live one', (t) => {
  const bes = [backend({ id: 1, addr: '10.1.0.1', port: 80, outPort: 11 }), backend({ id: 2, addr: '10.1.0.2', port: 80, outPort: 12 })];
  const fe = frontend({ id: 1, addr: '10.96.0.10', port: 80, proto: 'UDP' }, bes);
  const s = scenario(t, mkIr({ frontends: [fe], backends: bes }));
  const h = flowHash(parseAddr('10.0.0.1').bytes, parseAddr('10.96.0.10').bytes, 777, 80, 17);
  const firstId = fe.maglev[h % fe.maglev.length];
  const first = bes.find((b) => b.id === firstId), other = bes.find((b) => b.id !== firstId);
  const pkt = cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport: 777, dport: 80 });
  s.step('first', pkt, fwd(first.outPort, toBe({ proto: 'UDP', src: '10.0.0.1', dst: first.addr, sport: 777, dport: 80, ttl: 63 })));
  const fe2 = frontend({ id: 1, addr: '10.96.0.10', port: 80, proto: 'UDP' }, [other]);
  s.apply(mkIr({ frontends: [fe2], backends: [other] }));
  s.step('after the backend vanished', pkt, fwd(other.outPort, toBe({ proto: 'UDP', src: '10.0.0.1', dst: other.addr, sport: 777, dport: 80, ttl: 63 })));
  t.is(s.core.counters().global.ct_reselect, 1);
  t.is(s.model.global[L.GC_CT_RESELECT], 1);
  // the old backend's reply no longer matches; the new one's does
  s.step('reply from the new backend', fromBe({ proto: 'UDP', src: other.addr, dst: '10.0.0.1', sport: 80, dport: 777 }),
    reply(toCli({ proto: 'UDP', src: '10.96.0.10', dst: '10.0.0.1', sport: 80, dport: 777, ttl: 63 })), { inPort: other.outPort });
});

test('malformed frames get their specific drop reason', (t) => {
  const s = scenario(t, mkIr());
  const good = cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2 });
  s.step('13 bytes', good.subarray(0, 13), dropped('drop_truncated_l2'));
  s.step('truncated IPv4 header', good.subarray(0, 30), dropped('drop_truncated_l3'));
  s.step('bad version', cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, version: 5 }), dropped('drop_bad_ip_version'));
  s.step('IHL 4', cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, ihl: 4 }), dropped('drop_bad_ihl'));
  s.step('total length > frame', cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, totalLength: 100 }), dropped('drop_bad_ip_length'));
  s.step('TCP cut', cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.0.0.2', rawL4: new Uint8Array(12) }), dropped('drop_truncated_l4'));
  const badDoff = cli({ proto: 'TCP', src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2 });
  badDoff[14 + 20 + 12] = 0x40;
  s.step('TCP data offset 4', badDoff, dropped('drop_bad_l4_header'));
  s.step('UDP cut', cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.0.0.2', rawL4: new Uint8Array(7) }), dropped('drop_truncated_l4'));
  s.step('v6 truncated', cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00::2', sport: 1, dport: 2 }).subarray(0, 50), dropped('drop_truncated_l3'));
  s.step('v6 payload length > frame', cli({ proto: 'UDP', src: 'fd00::1', dst: 'fd00::2', sport: 1, dport: 2, payloadLength: 200 }), dropped('drop_bad_ip_length'));
  const big = new Uint8Array(2049); big.set(good);
  s.step('oversize', big, dropped('drop_oversize'));
  s.step('in_port PORT_NONE', good, dropped('drop_bad_port'), { inPort: L.PORT_NONE });
});

test('expiry: an idle UDP flow times out; its late reply no longer matches; the client starts a new flow', (t) => {
  const s = scenario(t, singleService({ vip: '10.96.0.10', port: 53, proto: 'UDP', be: '10.1.0.5', bport: 53 }),
    { timeouts: { udpMs: 1000, udpRepliedMs: 5000 } });
  const q = cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport: 999, dport: 53 });
  const qOut = toBe({ proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', sport: 999, dport: 53, ttl: 63 });
  const a = fromBe({ proto: 'UDP', src: '10.1.0.5', dst: '10.0.0.1', sport: 53, dport: 999 });
  const aOut = toCli({ proto: 'UDP', src: '10.96.0.10', dst: '10.0.0.1', sport: 53, dport: 999, ttl: 63 });
  s.step('query', q, fwd(BE_PORT, qOut), { now: 1000 });
  s.step('answer within 1 s', a, reply(aOut), { now: 1999, inPort: BE_PORT });
  s.step('answer after 5 s idle (replied timeout) still matches', a, reply(aOut), { now: 1999 + 5000, inPort: BE_PORT });
  s.step('answer 5.001 s after that: expired', a, { verdict: 'to_host', reason: 'host_no_match' }, { now: 1999 + 10001, inPort: BE_PORT });
  s.step('the client again: a new flow', q, fwd(BE_PORT, qOut), { now: 1999 + 10002 });
  t.is(s.core.counters().global.ct_new, 2);
  t.is(s.core.counters().global.ct_expired, 1);
  // ct_expire_all frees every expired flow at once, in the core and in the model
  t.is(s.core.exports.ct_expire_all(1999 + 10002 + 999), 0);
  t.is(s.model.expireAll(1999 + 10002 + 999), 0);
  t.is(s.core.exports.ct_expire_all(1999 + 10002 + 1001), 1);
  t.is(s.model.expireAll(1999 + 10002 + 1001), 1);
  t.deepEqual(s.core.flows(), []);
  t.deepEqual(s.model.activeFlows(), []);
});

test('eviction: a full table evicts an unreplied flow, never a replied one', (t) => {
  const s = scenario(t, singleService({ vip: '10.96.0.10', port: 53, proto: 'UDP', be: '10.1.0.5', bport: 53 }), { flows: 16 });
  const q = (sport) => cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport, dport: 53 });
  const qOut = (sport) => toBe({ proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', sport, dport: 53, ttl: 63 });
  const a = (sport) => fromBe({ proto: 'UDP', src: '10.1.0.5', dst: '10.0.0.1', sport: 53, dport: sport });
  const aOut = (sport) => toCli({ proto: 'UDP', src: '10.96.0.10', dst: '10.0.0.1', sport: 53, dport: sport, ttl: 63 });
  for (let i = 0; i < 16; i++) s.step(`flow ${i}`, q(2000 + i), fwd(BE_PORT, qOut(2000 + i)));
  for (let i = 0; i < 16; i++) if (i !== 9) s.step(`reply ${i}`, a(2000 + i), reply(aOut(2000 + i)), { inPort: BE_PORT });
  s.step('17th flow evicts the only unreplied one', q(3000), fwd(BE_PORT, qOut(3000)));
  s.step('the evicted flow lost its state', a(2009), { verdict: 'to_host', reason: 'host_no_match' }, { inPort: BE_PORT });
  s.step('reply to the 17th', a(3000), reply(aOut(3000)), { inPort: BE_PORT });
  s.step('18th flow: all replied -> table full', q(3001), dropped('drop_ct_full'));
  s.step('replied flows keep working', a(2003), reply(aOut(2003)), { inPort: BE_PORT });
  t.is(s.core.counters().global.ct_evicted, 1);
  t.is(s.model.global[L.GC_CT_EVICTED], 1);
});

test('an ICMP-shaped payload under the other family\'s ICMP protocol number is not an ICMP error (whatever came before)', (t) => {
  // Regression: the core once kept the ICMP type of an earlier frame at the same batch index and
  // translated an IPv4 packet with protocol 58 as an ICMP error about a live flow.
  const s = scenario(t, singleService({ vip: '10.96.0.10', port: 53, proto: 'UDP', be: '10.1.0.5', bport: 5353 }));
  s.step('query', cli({ proto: 'UDP', src: '10.0.0.1', dst: '10.96.0.10', sport: 1111, dport: 53 }),
    fwd(BE_PORT, toBe({ proto: 'UDP', src: '10.0.0.1', dst: '10.1.0.5', sport: 1111, dport: 5353, ttl: 63 })));
  s.step('a genuine, unrelated ICMP error first', B.icmpError({ src: '10.9.9.9', dst: '10.0.0.1', inner: B.ipPacket({ src: '10.0.0.1', dst: '10.9.9.8', proto: 'UDP', sport: 1, dport: 2 }) }),
    { verdict: 'to_host', reason: 'host_no_match' });
  const inner = B.ipPacket({ src: '10.0.0.1', dst: '10.1.0.5', proto: 'UDP', sport: 1111, dport: 5353, ttl: 63 });
  const body = new Uint8Array(8 + inner.length); body[0] = 3; body[1] = 3; body.set(inner, 8);
  s.step('IPv4 protocol 58 with an ICMP-error-shaped body', fromBe({ src: '10.1.0.5', dst: '10.0.0.1', proto: 58, rawL4: body }),
    { verdict: 'to_host', reason: 'host_no_match' }, { inPort: BE_PORT });
  const inner6 = B.ipPacket({ src: 'fd00::1', dst: 'fd00::5', proto: 'UDP', sport: 1, dport: 2 });
  const body6 = new Uint8Array(8 + inner6.length); body6[0] = 1; body6[1] = 4; body6.set(inner6, 8);
  s.step('IPv6 next header 1 with an ICMPv6-error-shaped body', fromBe({ src: 'fd00::5', dst: 'fd00::1', proto: 1, rawL4: body6 }),
    { verdict: 'to_host', reason: 'host_no_match' }, { inPort: BE_PORT });
});
