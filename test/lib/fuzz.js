// The random-seed fuzzer shared by test/fuzz-random.test.js (a bounded run on every CI run) and
// scripts/fuzz.js (`npm run fuzz -- --minutes N`, the long mode).
//
// Frames are mutations of a corpus of valid frames (every parser and NAT path: TCP/UDP/SCTP/ICMP
// over IPv4 and IPv6, VLAN, IP options, IPv6 extension headers, fragments, ARP, ND, replies and ICMP
// errors quoting live flows): random bit flips, byte sets, 16-bit header fields set to boundary
// values, truncations, extensions (up to past the slot size), splices of two frames, inserted or
// removed VLAN tags and purely random bytes, arriving on random input ports (valid ones mostly, but
// also 0, PORT_NONE and random values), with a clock that mostly ticks but sometimes jumps by
// seconds, hours or across the u32 wrap. The flow table is small (64 flows, 16 affinity slots, a
// 16-port SNAT range) so that eviction, expiry, SNAT probing and affinity replacement run all the
// time; the service tables flip between two generations now and then, and some batches run with
// trace on or as a dry run. After EVERY batch, for every frame:
//   * no trap (an exception out of process());
//   * nothing written outside the frame: every slot is filled with a canary first, and the bytes
//     past max(input length, output length) must still be the canary, as must unused slots, unused
//     descriptors and the trace area (trace off);
//   * the static regions are unchanged: the CONFIG block, both table sets, the padding between
//     regions and the memory past the map (compared byte for byte with a copy taken after the
//     last apply);
//   * a valid verdict and reason, an out port and length consistent with the verdict;
//   * the counters equal the tally of the descriptors (rx packets/bytes, per verdict, per reason,
//     batches), ct_active equals the live entries of the flow table, and the conntrack index holds
//     exactly the two keys of every live flow, each reachable from its home slot;
//   * a dry run changes no state and no counter.
// Optionally (`model: true`) every frame also runs through the reference model, which must agree
// on verdict, reason, out port and output bytes (slower: the differential part of a run).
//
// Everything is drawn from one seeded PRNG, so a seed reproduces a run exactly (the core has no
// other source of randomness). A failure throws FuzzFailure, whose message names the seed, the
// batch, the frame (hex), its input port and how it was made.
import { randomInt } from 'node:crypto';
import { mulberry32 } from '../../dist/src/util/rng.js';
import { Core } from '../../dist/src/core/host.js';
import { ReferenceModel } from '../../dist/src/reference/model.js';
import * as B from '../../dist/src/packet/build.js';
import { REASON_NAMES, VERDICT_NAMES } from '../../dist/src/core/names.js';
import { compileFilter, emptyTuple, readTuple, tupleSrc, tupleDst } from '../../dist/src/observe/filter.js';
import { writeCoreFilter, setActive, setBudget, budgetLeft, matchCount, missedCount, readMatch } from '../../dist/src/observe/core-filter.js';
import { backend, frontend, mkIr, summarize, MAC, L } from './packets.js';

export const SLOT = 2048;
export const BATCH = 64;
const CANARY = 0xa5;
const MAX_FRAME = 4200;   // largest mutated frame (past the slot: drop_oversize)

/** Core and model options: a small flow table so eviction, expiry and SNAT probing run; a short
 * eviction window so a full table (drop_ct_full: every entry examined confirmed — established TCP,
 * a UDP stream, an established SCTP association) is reached too: with the kernel's SCTP states
 * (an association not yet established, or shutting down, is evictable) and the corpus's SCTP
 * chunks, a window of 4 left it at 0–1 in 400k frames; 3 gives 4–6, as 4 did before. */
export const FUZZ_CORE_OPTS = {
  flows: 64, affinitySlots: 16, batchMax: BATCH, slotSize: SLOT, expireBudget: 8, evictWindow: 3,
  snatPortMin: 40000, snatPortMax: 40015,
  timeouts: { tcpSynMs: 3000, tcpEstablishedMs: 20000, tcpCloseMs: 2000, udpMs: 4000, udpRepliedMs: 8000, sctpMs: 10000 },
  // small table sets: comparing both with their copy after every batch stays cheap (~120 KB)
  capacities: { frontends: 64, backends: 256, maglevWords: 8192, cidrs: 64, routes: 16 },
  // egress MTUs (docs/core.md "Egress MTU"): port 1's 720 stops the 700-byte seed, port 2's 64
  // nearly everything, port 4 (the routes) below the IPv6 minimum exercises the 1280 clamp
  portMtu: { 1: 720, 2: 64, 3: 1500, 4: 100 },
};

/** The seed of this run: WDP_FUZZ_SEED if set (decimal or 0x hex), else a fresh random one. */
export function fuzzSeed(env = process.env) {
  const s = env.WDP_FUZZ_SEED;
  if (s !== undefined && s !== '') {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`WDP_FUZZ_SEED must be an integer in 0..2^32-1, got ${JSON.stringify(s)}`);
    return n;
  }
  return randomInt(0, 0xffffffff);
}

export class FuzzFailure extends Error {
  constructor(seed, message) {
    super(`fuzz seed ${seed} (reproduce: WDP_FUZZ_SEED=${seed}): ${message}`);
    this.seed = seed;
  }
}

// ---- service tables: two generations -----------------------------------------------------------

const CLIENT_V4 = '10.0.0.1', CLIENT_V6 = 'fd00::1';

/** Generation `g` (0 or 1) of the fuzz tables. Generation 1 drops backend 2, turns backend 6
 * terminating and adds a frontend, so flips move flows (reselect), empty a service and add one. */
export function fuzzIr(g = 0) {
  const bes = [
    backend({ id: 1, addr: '10.1.0.1', port: 8080, outPort: 1 }),
    backend({ id: 2, addr: '10.1.0.2', port: 8080, outPort: 2 }),
    backend({ id: 3, addr: 'fd00:1::1', port: 8080, outPort: 1 }),
    backend({ id: 4, addr: '10.1.0.3', port: 5353, outPort: 1 }),
    backend({ id: 5, addr: 'fd00:1::3', port: 7001, outPort: 2 }),
    backend({ id: 6, addr: '10.1.0.6', port: 9000, outPort: 1, state: g ? L.BES_TERMINATING_SERVING : L.BES_READY }),
    backend({ id: 7, addr: '10.1.0.7', port: 9000, outPort: L.PORT_NONE }),
    backend({ id: 8, addr: CLIENT_V4, port: 8443, outPort: 3 }),   // hairpin: a backend that is also a client
  ].filter((b) => !(g && b.id === 2));
  const b = (ids) => bes.filter((x) => ids.includes(x.id));
  const fronts = [
    frontend({ id: 1, addr: '10.96.0.1', port: 80, proto: 'TCP', flags: L.FEF_AFFINITY, affinityTimeoutMs: 2500 }, b([1, 2])),
    frontend({ id: 2, addr: 'fd00:96::1', port: 80, proto: 'TCP', flags: L.FEF_AFFINITY, affinityTimeoutMs: 2500 }, b([3])),
    frontend({ id: 3, addr: '10.96.0.2', port: 53, proto: 'UDP', flags: L.FEF_MASQUERADE }, b([4])),
    frontend({ id: 4, addr: 'fd00:96::2', port: 7000, proto: 'SCTP' }, b([5])),
    frontend({ id: 5, addr: '10.96.0.3', port: 53, proto: 'UDP' }, []),
    frontend({ id: 6, addr: 'fd00:96::3', port: 80, proto: 'TCP' }, []),
    frontend({ id: 7, addr: '10.96.0.4', port: 9000, proto: 'TCP' }, b([6, 7])),
    frontend({ id: 8, addr: '10.96.0.5', port: 443, proto: 'TCP', flags: L.FEF_MASQUERADE }, b([8])),
    frontend({ id: 9, addr: '192.0.2.10', port: 80, proto: 'TCP', kind: 'LoadBalancer', sourceRanges: ['10.0.0.0/31'] }, b([1])),
  ];
  if (g) fronts.push(frontend({ id: 10, addr: '10.96.0.6', port: 81, proto: 'UDP' }, b([4])));
  return mkIr({
    frontends: fronts, backends: bes,
    routes: [
      { prefix: '172.16.0.0/12', outPort: 4, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
      { prefix: '172.16.1.0/24', outPort: L.PORT_NONE, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
      { prefix: 'fd00:aaaa::/32', outPort: 4, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
    ],
    snatV4: '10.255.0.1', snatV6: 'fd00:ff::1',
  });
}

// ---- corpus ------------------------------------------------------------------------------------

/** Valid frames covering every parser and NAT path, with the input port each arrives on. Client
 * frames come first, so the replies and ICMP errors after them match the flows they create. */
export function fuzzCorpus() {
  const c = { srcMac: MAC.client, dstMac: MAC.node };
  const be = { srcMac: MAC.beDst, dstMac: MAC.beSrc };
  const cli = (s, inPort = 3) => ({ frame: B.frame({ ...c, ...s }), inPort });
  const fromBe = (s, inPort = 1) => ({ frame: B.frame({ ...be, ...s }), inPort });
  const v4 = CLIENT_V4, v6 = CLIENT_V6;
  const out = [
    cli({ src: v4, dst: '10.96.0.1', proto: 'TCP', sport: 1000, dport: 80, flags: 'S', tcpOptions: Uint8Array.from([2, 4, 5, 180]) }),
    cli({ src: v4, dst: '10.96.0.2', proto: 'UDP', sport: 1001, dport: 53, payload: 'abcdefgh' }),
    cli({ src: v4, dst: '10.96.0.2', proto: 'UDP', sport: 1011, dport: 53, udpChecksum: false, payload: 'q' }),
    cli({ src: v6, dst: 'fd00:96::1', proto: 'TCP', sport: 1002, dport: 80, flags: 'PA', payload: 'hello' }),
    cli({ src: v6, dst: 'fd00:96::2', proto: 'SCTP', sport: 1003, dport: 7000, payload: 'data!' }),
    // the chunks the SCTP states change on (assembly/conntrack.ts sctpState), on that flow and new ones
    ...['INIT', 'COOKIE_ECHO', 'HEARTBEAT', 'SHUTDOWN', 'SHUTDOWN_ACK', 'SHUTDOWN_COMPLETE', 'ABORT'].map((chunk, i) =>
      cli({ src: v6, dst: 'fd00:96::2', proto: 'SCTP', sport: i % 2 ? 1003 : 1020 + i, dport: 7000, chunk })),
    cli({ src: v4, dst: '10.96.0.3', proto: 'UDP', sport: 1004, dport: 53, payload: new Uint8Array(700), df: true }),
    cli({ src: v6, dst: 'fd00:96::3', proto: 'TCP', sport: 1005, dport: 80, flags: 'S' }),
    cli({ src: v4, dst: '10.96.0.1', proto: 'TCP', sport: 1006, dport: 80, flags: 'S', vlan: 9 }),
    cli({ src: v4, dst: '10.96.0.2', proto: 'UDP', sport: 1007, dport: 53, ipOptions: [1, 1, 1, 1, 7, 3, 4], mf: true }),
    cli({ src: v6, dst: 'fd00:96::1', proto: 'TCP', sport: 1008, dport: 80, v6Ext: [{ type: 0 }, { type: 43, bytes: 16 }, { type: 44, more: true }] }),
    cli({ src: v4, dst: '10.96.0.4', proto: 'TCP', sport: 1009, dport: 9000, flags: 'S' }),
    cli({ src: v4, dst: '10.96.0.5', proto: 'TCP', sport: 1010, dport: 443, flags: 'S' }),
    cli({ src: v4, dst: '192.0.2.10', proto: 'TCP', sport: 1012, dport: 80, flags: 'S' }),
    cli({ src: '10.0.0.7', dst: '192.0.2.10', proto: 'TCP', sport: 1013, dport: 80, flags: 'S' }),
    cli({ src: v4, dst: '10.96.0.6', proto: 'UDP', sport: 1014, dport: 81, payload: 'gen1' }),
    cli({ src: v4, dst: '10.96.0.1', proto: 'TCP', sport: 1015, dport: 80, flags: 'S', ttl: 1 }),
    cli({ src: v4, dst: '10.96.0.1', proto: 'TCP', sport: 1016, dport: 80, flags: 'R' }),
    cli({ src: v4, dst: '172.16.5.5', proto: 'ICMP' }),
    cli({ src: v4, dst: '172.16.1.5', proto: 'UDP', sport: 5, dport: 6 }),
    cli({ src: v6, dst: 'fd00:aaaa::5', proto: 'UDP', sport: 5, dport: 6, payload: 'r6' }),
    cli({ src: v4, dst: '172.16.5.5', proto: 47, payload: 'gre' }),
    cli({ src: v4, dst: '198.51.100.1', proto: 'UDP', sport: 7, dport: 7 }),
    { frame: B.arpRequest({ senderMac: MAC.client, senderIp: v4, targetIp: '10.0.0.2' }), inPort: 3 },
    { frame: B.neighborSolicitation({ senderMac: MAC.client, senderIp: 'fe80::1', targetIp: 'fd00::2' }), inPort: 3 },
    // replies (frontend 1 has two backends: both tried) and ICMP errors about the flows above
    fromBe({ src: '10.1.0.1', dst: v4, proto: 'TCP', sport: 8080, dport: 1000, flags: 'SA' }),
    fromBe({ src: '10.1.0.2', dst: v4, proto: 'TCP', sport: 8080, dport: 1000, flags: 'SA' }, 2),
    fromBe({ src: 'fd00:1::1', dst: v6, proto: 'TCP', sport: 8080, dport: 1002, flags: 'A' }),
    fromBe({ src: '10.1.0.3', dst: '10.255.0.1', proto: 'UDP', sport: 5353, dport: 40000, payload: 'answer' }),
    fromBe({ src: 'fd00:1::3', dst: v6, proto: 'SCTP', sport: 7001, dport: 1003, payload: 'ack' }, 2),
    ...['INIT_ACK', 'COOKIE_ACK', 'HEARTBEAT_ACK', 'SHUTDOWN', 'SHUTDOWN_ACK', 'SHUTDOWN_COMPLETE', 'ABORT', 'ERROR'].map((chunk) =>
      fromBe({ src: 'fd00:1::3', dst: v6, proto: 'SCTP', sport: 7001, dport: 1003, chunk }, 2)),
    fromBe({ src: '10.1.0.6', dst: v4, proto: 'TCP', sport: 9000, dport: 1009, flags: 'FA' }),
    fromBe({ src: v4, dst: '10.255.0.1', proto: 'TCP', sport: 8443, dport: 40001, flags: 'SA' }, 3),
    { frame: B.icmpError({ ...be, src: '10.1.0.1', dst: v4, inner: B.ipPacket({ src: v4, dst: '10.1.0.1', proto: 'TCP', sport: 1000, dport: 8080, ttl: 63 }), quoteLen: 28 }), inPort: 1 },
    { frame: B.icmpError({ ...be, src: '10.1.0.2', dst: v4, kind: 'time_exceeded', inner: B.ipPacket({ src: v4, dst: '10.1.0.2', proto: 'TCP', sport: 1000, dport: 8080, ttl: 63, payload: 'xx' }) }), inPort: 2 },
    { frame: B.icmpError({ ...be, src: 'fd00:1::1', dst: v6, kind: 'packet_too_big', mtu: 1280, inner: B.ipPacket({ src: v6, dst: 'fd00:1::1', proto: 'TCP', sport: 1002, dport: 8080, ttl: 63, payload: 'hello' }) }), inPort: 1 },
    { frame: B.icmpError({ ...be, src: '10.1.0.3', dst: '10.255.0.1', kind: 'frag_needed', mtu: 1400, inner: B.ipPacket({ src: '10.255.0.1', dst: '10.1.0.3', proto: 'UDP', sport: 40000, dport: 5353, ttl: 63 }) }), inPort: 1 },
    { frame: B.icmpError({ ...c, src: v4, dst: '10.96.0.1', inner: B.ipPacket({ src: '10.96.0.1', dst: v4, proto: 'TCP', sport: 80, dport: 1000, ttl: 63 }) }), inPort: 3 },
  ];
  return out;
}

// ---- mutation ----------------------------------------------------------------------------------

const INTERESTING8 = [0, 1, 0x7f, 0x80, 0xff, 0x40, 0x45, 0x46, 0x4f, 0x60, 0x06, 0x11, 0x84, 0x3a, 0x01, 0x2c, 0x00];
const INTERESTING16 = [0, 1, 0xffff, 0x7fff, 0x8000, 0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806, 20, 40, 60, 0x2000, 0x1fff, 0x3fff, 64, 1500, 2048];
const ETHERTYPES = [0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806, 0x9100, 0x1234];

export const MUTATIONS = ['valid', 'bitflip', 'byteset', 'field16', 'truncate', 'extend', 'splice', 'vlan', 'random'];

/** Mutates corpus frames into `buf` (a MAX_FRAME-byte scratch buffer); returns the length. */
class Mutator {
  /** liveFlows(): the core's flows now (FlowInfo[], from the flow table, not from the clock). */
  constructor(rnd, corpus, liveFlows) {
    this.rnd = rnd;
    this.corpus = corpus;
    this.liveFlows = liveFlows;
    this.tmp = new Uint8Array(MAX_FRAME);
    // untagged client TCP/UDP/SCTP frames without IP options or extension headers: where the
    // source port and the last byte of the source address are
    this.newFlowBases = corpus.filter((c) => c.inPort === 3).map((c) => {
      const f = c.frame, et = (f[12] << 8) | f[13];
      if (et === 0x0800 && f[14] === 0x45 && [6, 17, 132].includes(f[23]) && !(f[20] & 0x3f)) return { ...c, sportAt: 34, srcLastByte: 29 };
      if (et === 0x86dd && [6, 17, 132].includes(f[20])) return { ...c, sportAt: 54, srcLastByte: 37 };
      return undefined;
    }).filter(Boolean);
  }

  int(n) { return Math.floor(this.rnd() * n); }
  pick(a) { return a[this.int(a.length)]; }
  /** An offset biased toward the headers (first 80 bytes), where the parser branches. */
  at(len) { return this.rnd() < 0.8 ? this.int(Math.min(len, 80)) : this.int(len); }

  /** One frame into buf: returns { len, inPort, how }. Most start from a corpus frame; some are
   * new flows (a client frame with a fresh source port and address, to fill the flow table), and
   * some are replies or repeats of a flow the core holds now (to establish and close flows). */
  next(buf) {
    const src = this.rnd();
    let base, how;
    if (src < 0.12) { base = this.newFlow(); how = ['newflow']; }
    else if (src < 0.22) { base = this.ofLiveFlow(this.rnd() < 0.75); how = [base ? 'reply' : 'none']; }
    if (!base) { base = this.pick(this.corpus); how = []; }
    let len = base.frame.length;
    buf.set(base.frame, 0);
    let inPort = base.inPort;
    const steps = how.length ? (this.rnd() < 0.7 ? 0 : 1) : this.rnd() < 0.75 ? 1 : 2 + this.int(3);
    for (let s = 0; s < steps; s++) {
      const m = this.rnd() < 0.08 ? 'valid' : MUTATIONS[1 + this.int(MUTATIONS.length - 1)];
      how.push(m);
      len = this.apply(m, buf, len);
    }
    if (!how.length) how.push('valid');
    const p = this.rnd();
    if (p < 0.04) { inPort = this.pick([0, L.PORT_NONE, 5, 15, 16, 255, 256, 0xfffe]); how.push(`port ${inPort}`); }
    else if (p < 0.12) { inPort = 1 + this.int(4); }
    return { len, inPort, how: how.join('+') };
  }

  /** A client frame of the corpus with a source port from a pool of 512 and a client address
   * from a pool of 12: enough distinct flows to fill a 64-flow table, with repeats. */
  newFlow() {
    const c = this.pick(this.newFlowBases);
    const f = c.frame.slice();
    const sport = 1024 + this.int(512);
    f[c.sportAt] = sport >> 8; f[c.sportAt + 1] = sport & 0xff;
    f[c.srcLastByte] = 1 + this.int(12);
    return { frame: f, inPort: c.inPort };
  }

  /** A reply to (or, when !reply, a repeat of) a flow the core holds now. */
  ofLiveFlow(reply) {
    const flows = this.liveFlows();
    if (!flows.length) return undefined;
    const fl = this.pick(flows);
    const proto = fl.proto === 'OTHER' ? 'UDP' : fl.proto;
    const spec = reply
      ? { srcMac: MAC.beDst, dstMac: MAC.beSrc, src: fl.backend, dst: fl.natSource ?? fl.client, proto, sport: fl.backendPort, dport: fl.natSourcePort ?? fl.clientPort }
      : { srcMac: MAC.client, dstMac: MAC.node, src: fl.client, dst: fl.vip, proto, sport: fl.clientPort, dport: fl.vipPort };
    if (proto === 'TCP') spec.flags = this.pick(reply ? ['SA', 'SA', 'A', 'PA', 'FA', 'R'] : ['A', 'PA', 'PA', 'FA', 'R', 'S']);
    if (this.rnd() < 0.3) spec.payload = 'data';
    return { frame: B.frame(spec), inPort: reply ? 1 + this.int(2) : 3 };
  }

  apply(m, buf, len) {
    switch (m) {
      case 'valid': return len;
      case 'bitflip': {
        if (!len) return len;
        const n = 1 + this.int(4);
        for (let k = 0; k < n; k++) buf[this.at(len)] ^= 1 << this.int(8);
        return len;
      }
      case 'byteset': {
        if (!len) return len;
        const n = 1 + this.int(3);
        for (let k = 0; k < n; k++) buf[this.at(len)] = this.rnd() < 0.5 ? this.pick(INTERESTING8) : this.int(256);
        return len;
      }
      case 'field16': {
        if (len < 2) return len;
        const o = this.at(len - 1);
        const v = this.rnd() < 0.2 ? (len - 14 + this.int(5) - 2) & 0xffff : this.pick(INTERESTING16);
        buf[o] = v >> 8; buf[o + 1] = v & 0xff;
        return len;
      }
      case 'truncate': return len ? this.int(len) : 0;
      case 'extend': {
        const r = this.rnd();
        const add = r < 0.6 ? 1 + this.int(64) : r < 0.9 ? this.int(1500) : SLOT - len + this.int(MAX_FRAME - SLOT);
        const n = Math.max(0, Math.min(MAX_FRAME, len + add));
        const fill = this.int(3);
        for (let k = len; k < n; k++) buf[k] = fill === 0 ? 0 : fill === 1 ? 0xff : this.int(256);
        return n;
      }
      case 'splice': {
        // head of this frame, tail of another from a random point (headers of one, L4 of another)
        const other = this.pick(this.corpus).frame;
        const cut = this.int(len + 1), from = this.int(other.length + 1);
        const n = Math.min(MAX_FRAME, cut + other.length - from);
        buf.set(other.subarray(from, from + (n - cut)), cut);
        return n;
      }
      case 'vlan': {
        if (len < 14) return len;
        if (this.rnd() < 0.5 && len + 4 <= MAX_FRAME) {
          // insert an 802.1Q / 802.1ad tag after the MACs
          this.tmp.set(buf.subarray(12, len));
          const tpid = this.pick([0x8100, 0x88a8, 0x8100, 0x9100]);
          buf[12] = tpid >> 8; buf[13] = tpid & 0xff; buf[14] = this.int(256); buf[15] = this.int(256);
          buf.set(this.tmp.subarray(0, len - 12), 16);
          return len + 4;
        }
        const et = this.pick(ETHERTYPES);
        buf[12] = et >> 8; buf[13] = et & 0xff;
        return len;
      }
      case 'random': {
        const n = this.rnd() < 0.9 ? this.int(128) : this.int(MAX_FRAME);
        for (let k = 0; k < n; k++) buf[k] = this.int(256);
        if (n >= 14 && this.rnd() < 0.7) {
          const et = this.pick(ETHERTYPES);
          buf[12] = et >> 8; buf[13] = et & 0xff;
          if (n > 14 && et === 0x0800) buf[14] = 0x45;
          if (n > 14 && et === 0x86dd) buf[14] = 0x60;
        }
        return n;
      }
      default: throw new Error(`unknown mutation ${m}`);
    }
  }
}

// ---- the run -----------------------------------------------------------------------------------

const hex = (b, n = 600) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex').slice(0, n);

/** Regions of linear memory the core may write during a batch; everything else in [cfg, end of
 * memory) must stay as the host left it. */
function mutableRegions(core) {
  const m = core.map, batch = core.batchMax;
  return [
    [m.desc, batch * L.DESC_SIZE], [m.arena, batch * core.slotSize], [m.trace, batch * L.TRACE_SIZE],
    [m.counters, (L.GC_COUNT + L.REASON_COUNT) * 8],
    [m.svcCounters, (m.svcMax + 1) * L.PC_SIZE], [m.beCounters, (m.beMax + 1) * L.PC_SIZE],
    [m.ctIndex, m.ctIndexSlots * L.CTI_SIZE], [m.ctFlows, (m.ctFlowsMax + 1) * L.CT_SIZE],
    [m.aff, m.affSlots * L.AFF_SIZE],
    // the fragment table (first fragments' ports), right after the affinity table
    ...(m.frag ? [[m.frag, m.fragBuckets * L.FRAG_WAYS * L.FRAG_SIZE]] : []),
  ].sort((a, b) => a[0] - b[0]);
}

/** End of the state a dry run must leave alone (counters .. affinity table, fragment table). */
function stateEnd(core) {
  const m = core.map;
  return m.frag ? m.frag + m.fragBuckets * L.FRAG_WAYS * L.FRAG_SIZE : m.aff + m.affSlots * L.AFF_SIZE;
}

/** The static ranges: the CONFIG block, then every byte from the first region to the end of memory
 * outside the mutable regions (table sets, padding, memory past the map). */
function staticRanges(core) {
  const out = [[core.map.cfg, L.CFG_SIZE]];
  let p = core.map.desc;
  for (const [at, n] of mutableRegions(core)) {
    if (at > p) out.push([p, at - p]);
    p = Math.max(p, at + n);
  }
  const end = core.memory.buffer.byteLength;
  if (end > p) out.push([p, end - p]);
  return out;
}

const PROTO_NAMES = { 6: 'TCP', 17: 'UDP', 132: 'SCTP', 1: 'ICMP', 58: 'ICMP' };

/** 1..TF_SLOTS random live trace filters written into the core, active, with random budgets; each
 * made of fields of a frame of the batch (so some match), an in port and/or a reason. */
function liveFilters(core, mut, inputs, inLen, inPorts, n) {
  const dv = core.dv, base = core.traceFilterBase, out = [];
  const count = 1 + mut.int(L.TF_SLOTS);
  let mask = 0;
  for (let s = 0; s < count; s++) {
    const i = mut.int(n), t = readTuple(inputs[i], 0, inLen[i], emptyTuple()), f = {};
    const pickIf = (p) => mut.int(100) < p;
    if (t.family && pickIf(30)) f.src = `${tupleSrc(t)}/${mut.int(t.family === 4 ? 33 : 129)}`;
    if (t.family && pickIf(30)) f.dst = tupleDst(t);
    if (t.family && pickIf(15)) f.host = pickIf(50) ? tupleSrc(t) : tupleDst(t);
    if (pickIf(25)) f.sport = t.sport;
    if (pickIf(25)) f.dport = t.dport;
    if (pickIf(10)) f.port = t.dport;
    if (PROTO_NAMES[t.proto] && pickIf(25)) f.proto = PROTO_NAMES[t.proto];
    if (pickIf(30)) f.inPort = inPorts[mut.int(n)];
    if (pickIf(30)) f.reason = REASON_NAMES[1 + mut.int(REASON_NAMES.length - 1)] || 'drop';
    writeCoreFilter(core, s, compileFilter(f), {});
    const budget = mut.int(4) === 0 ? 0 : mut.int(300);
    setBudget(dv, base, s, budget);
    mask |= 1 << s;
    out.push({ slot: s, filter: f, budget });
  }
  setActive(core, mask);
  return out;
}

/** The match records of a batch run with live filters: consistent with the descriptors and the
 * budgets; a filter of only in port and reason matched exactly the frames it names (up to its
 * budget). Then the filters are switched off. */
function checkMatches(core, filters, n, inPorts, fail, batchNo) {
  const dv = core.dv, base = core.traceFilterBase;
  const m = matchCount(dv, base), missed = missedCount(dv, base);
  const show = () => `batch ${batchNo}, filters ${JSON.stringify(filters)}`;
  if (m > L.TM_MAX || m > n) fail(`${m} match records for ${n} frames (${show()})`);
  const per = filters.map(() => []);
  let last = -1;
  const t = emptyTuple();
  for (let k = 0; k < m; k++) {
    const r = readMatch(core, k, t);
    if (r.index <= last || r.index >= n) fail(`match ${k} names frame ${r.index} after ${last} of ${n} (${show()})`);
    last = r.index;
    const d = core.descriptor(r.index);
    if (r.trace.verdict !== d.verdict || r.trace.reason !== d.reason || r.trace.outPort !== d.outPort) fail(`match ${k}'s trace record ${JSON.stringify(r.trace)} disagrees with descriptor ${r.index} (${show()})`);
    filters.forEach((f, j) => { if (r.filters & (1 << f.slot)) per[j].push(r.index); });
    if (r.filters & ~filters.reduce((a, f) => a | (1 << f.slot), 0)) fail(`match ${k} names an inactive filter: ${r.filters} (${show()})`);
  }
  filters.forEach((f, j) => {
    const used = f.budget - budgetLeft(dv, base, f.slot);
    if (used < 0 || used > f.budget || (missed === 0 && used !== per[j].length)) fail(`filter ${j}: budget ${f.budget}, ${used} used, ${per[j].length} recorded (${show()})`);
    const keys = Object.keys(f.filter);
    if (missed === 0 && keys.every((key) => key === 'inPort' || key === 'reason')) {
      const want = [];
      for (let i = 0; i < n && want.length < f.budget; i++) {
        const d = core.descriptor(i), rn = REASON_NAMES[d.reason], vn = VERDICT_NAMES[d.verdict];
        if (f.filter.inPort !== undefined && inPorts[i] !== f.filter.inPort) continue;
        if (f.filter.reason !== undefined && f.filter.reason !== rn && f.filter.reason !== vn) continue;
        want.push(i);
      }
      if (want.join() !== per[j].join()) fail(`filter ${JSON.stringify(f.filter)} (budget ${f.budget}) matched frames ${per[j]}, not ${want} (batch ${batchNo})`);
    }
  });
  setActive(core, 0);
  return m;
}

/**
 * Runs the fuzzer. opts: seed (required), frames (stop after this many) and/or deadline
 * (performance.now() value to stop at), model (also compare every frame with the reference
 * model), progress(stats) called every ~1 s, afterBatch(core, batchNo, count) called right after
 * each process() (the checks' own test uses it to break things on purpose). Returns stats; throws
 * FuzzFailure.
 */
export function runFuzz({ seed, frames = Infinity, deadline = Infinity, model = false, progress, afterBatch } = {}) {
  if (!Number.isFinite(frames) && !Number.isFinite(deadline)) throw new Error('runFuzz needs frames or deadline');
  const rnd = mulberry32(seed);
  const corpus = fuzzCorpus();
  let core;
  let flowsCache;   // the core's flows, read once per batch when a frame needs them
  const mut = new Mutator(rnd, corpus, () => (flowsCache ??= core.flows({ includeExpired: true }, now)));
  const irs = [fuzzIr(0), fuzzIr(1)];
  let gen = 0;
  core = Core.create(FUZZ_CORE_OPTS);
  core.applyIr(irs[0]);
  const ref = model ? new ReferenceModel(irs[0], FUZZ_CORE_OPTS) : undefined;
  const fail = (msg) => { throw new FuzzFailure(seed, msg); };

  const inputs = Array.from({ length: BATCH }, () => new Uint8Array(MAX_FRAME));
  const inLen = new Int32Array(BATCH), inPorts = new Int32Array(BATCH);
  const hows = new Array(BATCH);
  const canarySlot = Buffer.alloc(SLOT, CANARY);
  const canaryArena = Buffer.alloc(BATCH * SLOT, CANARY);
  const mem = () => Buffer.from(core.memory.buffer);

  let snapshot;   // [at, copy] of every static range
  const takeSnapshot = () => { const b = mem(); snapshot = staticRanges(core).map(([at, n]) => [at, Buffer.from(b.subarray(at, at + n))]); };
  takeSnapshot();

  // expected counters (tally of the descriptors)
  const want = { rx: 0, bytes: 0, verdicts: [0, 0, 0, 0], reasons: new Array(L.REASON_COUNT).fill(0), batches: 0 };
  const stats = { seed, frames: 0, batches: 0, flips: 0, traced: 0, filtered: 0, matched: 0, dryRuns: 0, flushes: 0, reasons: {}, mutations: {} };

  let now = 1000;
  let batchNo = 0;
  const t0 = performance.now();
  let nextProgress = t0 + 1000;

  while (stats.frames < frames && performance.now() < deadline) {
    batchNo++;
    // ---- between batches: generation flips, flushes, the clock ----
    const ev = rnd();
    if (ev < 0.004) {
      gen ^= 1;
      core.applyIr(irs[gen]);
      ref?.setIr(irs[gen]);
      takeSnapshot();
      stats.flips++;
    } else if (ev < 0.0045) {
      core.ctFlush(); ref?.flush(); stats.flushes++;
    }
    const tj = rnd();
    now = (now + (tj < 0.9 ? 1 + mut.int(20) : tj < 0.97 ? 1000 + mut.int(9000) : tj < 0.995 ? 60_000 + mut.int(3_600_000) : 0xffffffff - mut.int(5000) - now)) >>> 0;
    const mode = rnd();
    const traceFlags = mode < 0.02 ? L.TRACE_ON : mode < 0.03 ? L.TRACE_ON | L.TRACE_DRY_RUN : 0;
    const dryRun = (traceFlags & L.TRACE_DRY_RUN) !== 0;

    // ---- build the batch ----
    flowsCache = undefined;
    const n = Math.min(BATCH, 1 + mut.int(BATCH * 1.5), frames - stats.frames);
    const b = mem();
    const { arena, desc, trace } = core.map;
    b.fill(CANARY, arena, arena + BATCH * SLOT);
    b.fill(CANARY, desc, desc + BATCH * L.DESC_SIZE);
    b.fill(CANARY, trace, trace + BATCH * L.TRACE_SIZE);
    for (let i = 0; i < n; i++) {
      const r = mut.next(inputs[i]);
      inLen[i] = r.len; inPorts[i] = r.inPort; hows[i] = r.how;
      core.writeFrame(i, inputs[i].subarray(0, r.len), r.inPort);
    }
    const frameDesc = (i) => `batch ${batchNo} frame ${i} (${hows[i]}, in port ${inPorts[i]}, len ${inLen[i]}, t=${now}${traceFlags ? `, trace ${traceFlags}` : ''}): ${hex(inputs[i].subarray(0, inLen[i]))}`;
    let stateBefore;
    if (dryRun) stateBefore = Buffer.from(b.subarray(core.map.counters, stateEnd(core)));
    const mres = ref?.processBatch(Array.from({ length: n }, (_, i) => ({ frame: inputs[i].slice(0, inLen[i]), inPort: inPorts[i] })), now, { dryRun });

    // ---- live trace filters (some live batches): the core tests them on every frame ----
    const filters = !dryRun && mode >= 0.03 && mode < 0.06 ? liveFilters(core, mut, inputs, inLen, inPorts, n) : [];

    // ---- the batch ----
    core.setCfg32(L.CFG_TRACE, traceFlags);
    try {
      core.process(n, now);
    } catch (e) {
      fail(`trap in process(): ${e.message}; frames of the batch:\n${Array.from({ length: n }, (_, i) => frameDesc(i)).join('\n')}`);
    } finally {
      core.setCfg32(L.CFG_TRACE, 0);
    }
    afterBatch?.(core, batchNo, n);
    if (filters.length) { stats.matched += checkMatches(core, filters, n, inPorts, fail, batchNo); stats.filtered++; }

    // ---- per-frame checks ----
    const after = mem();
    const dv = core.dv;
    for (let i = 0; i < n; i++) {
      const d = desc + i * L.DESC_SIZE;
      const verdict = dv.getUint8(d + L.D_VERDICT), reason = dv.getUint8(d + L.D_REASON);
      const outPort = dv.getUint16(d + L.D_OUT_PORT, true), outLen = dv.getUint16(d + L.D_LEN, true);
      const inPort = inPorts[i];
      const len = inLen[i], slotLen = Math.min(len, SLOT);
      if (verdict > 3) fail(`bad verdict ${verdict}: ${frameDesc(i)}`);
      if (!reason || !REASON_NAMES[reason]) fail(`bad reason ${reason}: ${frameDesc(i)}`);
      if ((verdict === L.V_DROP || verdict === L.V_TO_HOST) && outPort !== L.PORT_NONE) fail(`out port ${outPort} with verdict ${verdict}: ${frameDesc(i)}`);
      if (verdict === L.V_FORWARD && outPort === L.PORT_NONE) fail(`forward to PORT_NONE: ${frameDesc(i)}`);
      if (verdict === L.V_REJECT && outPort !== inPort) fail(`reject to port ${outPort}, not the input port: ${frameDesc(i)}`);
      if (verdict === L.V_REJECT && (outLen < 14 || outLen > SLOT)) fail(`reject length ${outLen}: ${frameDesc(i)}`);
      if (verdict !== L.V_REJECT && outLen !== Math.min(len, 0xffff)) fail(`length changed to ${outLen}: ${frameDesc(i)}`);
      if (dv.getUint16(d + L.D_IN_PORT, true) !== inPort) fail(`input port overwritten: ${frameDesc(i)}`);
      const written = Math.max(slotLen, verdict === L.V_REJECT ? outLen : 0);
      const s = arena + i * SLOT;
      if (!after.subarray(s + written, s + SLOT).equals(canarySlot.subarray(written))) {
        let k = s + written; while (after[k] === CANARY) k++;
        fail(`slot ${i} written at +${k - s}, past the frame's ${written} bytes: ${frameDesc(i)}`);
      }
      if (traceFlags) {
        const tr = core.traceRecord(i);
        if (tr.verdict !== verdict || tr.reason !== reason || tr.outPort !== outPort) fail(`trace record ${JSON.stringify(tr)} disagrees with the descriptor: ${frameDesc(i)}`);
      }
      if (mres) {
        const c = summarize({ verdictCode: verdict, reasonCode: reason, outPort, frame: core.readFrame(i) });
        const m = summarize(mres[i]);
        if (c.verdict !== m.verdict || c.reason !== m.reason || c.outPort !== m.outPort || c.hex !== m.hex) {
          fail(`core and reference model differ: ${frameDesc(i)}\n  core  ${JSON.stringify(c)}\n  model ${JSON.stringify(m)}`);
        }
      }
      if (!dryRun) {
        want.verdicts[verdict]++; want.reasons[reason]++; want.rx++; want.bytes += Math.min(len, 0xffff);
      }
      stats.reasons[REASON_NAMES[reason]] = (stats.reasons[REASON_NAMES[reason]] ?? 0) + 1;
      for (const h of hows[i].split('+')) if (!h.startsWith('port')) stats.mutations[h] = (stats.mutations[h] ?? 0) + 1;
    }

    // ---- batch-wide checks ----
    if (!after.subarray(arena + n * SLOT, arena + BATCH * SLOT).equals(canaryArena.subarray(n * SLOT))) fail(`unused slots written (batch ${batchNo}, ${n} frames)`);
    for (let k = desc + n * L.DESC_SIZE; k < desc + BATCH * L.DESC_SIZE; k++) if (after[k] !== CANARY) fail(`unused descriptor written at +${k - desc} (batch ${batchNo}, ${n} frames)`);
    const traceUsed = traceFlags ? n * L.TRACE_SIZE : 0;
    for (let k = trace + traceUsed; k < trace + BATCH * L.TRACE_SIZE; k++) if (after[k] !== CANARY) fail(`trace area written at +${k - trace} (batch ${batchNo}, trace ${traceFlags})`);
    for (const [at, copy] of snapshot) {
      if (!after.subarray(at, at + copy.length).equals(copy)) {
        let k = 0; while (after[at + k] === copy[k]) k++;
        fail(`static memory changed at ${at + k} (range ${at}+${copy.length}; batch ${batchNo}, frames:\n${Array.from({ length: n }, (_, i) => frameDesc(i)).join('\n')})`);
      }
    }
    if (dryRun) {
      const end = stateEnd(core);
      if (!after.subarray(core.map.counters, end).equals(stateBefore)) fail(`a dry run changed counters or state (batch ${batchNo})`);
      stats.dryRuns++;
    } else {
      want.batches++;
    }
    if (traceFlags) stats.traced++;
    checkCounters(core, want, fail, batchNo);
    checkConntrack(core, fail, batchNo);
    if (ref && ((batchNo & 63) === 0 || ev < 0.0045)) compareModelCounters(core, ref, fail, batchNo);

    stats.frames += n;
    stats.batches++;
    if (progress && performance.now() >= nextProgress) {
      nextProgress = performance.now() + 1000;
      progress({ ...stats, seconds: (performance.now() - t0) / 1000 });
    }
  }
  if (ref) compareModelCounters(core, ref, fail, batchNo);
  stats.seconds = (performance.now() - t0) / 1000;
  stats.ctActive = core.exports.ct_active();
  stats.counters = core.counters().global;
  return stats;
}

/** Global and per-reason counters against the tally of the descriptors. */
function checkCounters(core, want, fail, batchNo) {
  const base = core.map.counters, dv = core.dv;
  const g = (i) => Number(dv.getBigUint64(base + i * 8, true));
  const bad = [];
  if (g(L.GC_RX_PACKETS) !== want.rx) bad.push(`rx_packets ${g(L.GC_RX_PACKETS)} != ${want.rx}`);
  if (g(L.GC_RX_BYTES) !== want.bytes) bad.push(`rx_bytes ${g(L.GC_RX_BYTES)} != ${want.bytes}`);
  if (g(L.GC_DROP) !== want.verdicts[L.V_DROP]) bad.push(`drop ${g(L.GC_DROP)} != ${want.verdicts[L.V_DROP]}`);
  if (g(L.GC_FORWARD) !== want.verdicts[L.V_FORWARD]) bad.push(`forward ${g(L.GC_FORWARD)} != ${want.verdicts[L.V_FORWARD]}`);
  if (g(L.GC_REJECT) !== want.verdicts[L.V_REJECT]) bad.push(`reject ${g(L.GC_REJECT)} != ${want.verdicts[L.V_REJECT]}`);
  if (g(L.GC_TO_HOST) !== want.verdicts[L.V_TO_HOST]) bad.push(`to_host ${g(L.GC_TO_HOST)} != ${want.verdicts[L.V_TO_HOST]}`);
  if (g(L.GC_BATCHES) !== want.batches) bad.push(`batches ${g(L.GC_BATCHES)} != ${want.batches}`);
  for (let r = 0; r < L.REASON_COUNT; r++) {
    const v = g(L.GC_COUNT + r);
    if (v !== want.reasons[r]) bad.push(`reason ${REASON_NAMES[r] || r} ${v} != ${want.reasons[r]}`);
  }
  if (bad.length) fail(`counters disagree with the descriptors after batch ${batchNo}: ${bad.join('; ')}`);
}

/** The flow table and its index: ct_active = live entries = the counter; the index holds exactly
 * the original and reply key of every live flow once, each reachable by probing from its home slot
 * (no empty slot in between: the backward-shift deletion's invariant). */
function checkConntrack(core, fail, batchNo) {
  const m = core.map, u8 = core.u8, dv = core.dv;
  let live = 0;
  const liveSet = new Uint8Array(m.ctFlowsMax + 1);
  for (let f = 1; f <= m.ctFlowsMax; f++) {
    if (u8[m.ctFlows + f * L.CT_SIZE + L.CT_STATE] !== L.CTS_NONE) { live++; liveSet[f] = 1; }
  }
  const active = core.exports.ct_active();
  const gauge = Number(dv.getBigUint64(m.counters + L.GC_CT_ACTIVE * 8, true));
  if (active !== live) fail(`ct_active() ${active} but ${live} live flow entries (batch ${batchNo})`);
  if (gauge !== live) fail(`ct_active counter ${gauge} but ${live} live flow entries (batch ${batchNo})`);
  const seen = new Uint8Array((m.ctFlowsMax + 1) * 2);
  const mask = m.ctIndexSlots - 1;
  for (let s = 0; s <= mask; s++) {
    const p = m.ctIndex + s * L.CTI_SIZE;
    const ref = dv.getUint32(p + L.CTI_REF, true);
    if (ref === 0) continue;
    const flow = ref >>> 1;
    if (flow < 1 || flow > m.ctFlowsMax || !liveSet[flow]) fail(`conntrack index slot ${s} refers to ${flow <= m.ctFlowsMax ? 'free' : 'nonexistent'} flow ${flow} (batch ${batchNo})`);
    if (seen[ref]++) fail(`conntrack index holds key ${ref} twice (batch ${batchNo})`);
    for (let h = dv.getUint32(p + L.CTI_HASH, true) & mask; h !== s; h = (h + 1) & mask) {
      if (dv.getUint32(m.ctIndex + h * L.CTI_SIZE + L.CTI_REF, true) === 0) fail(`conntrack index slot ${s} (flow ${flow}) unreachable from its home slot (batch ${batchNo})`);
    }
  }
  for (let f = 1; f <= m.ctFlowsMax; f++) {
    if (liveSet[f] && (!seen[f << 1] || !seen[(f << 1) | 1])) fail(`live flow ${f} missing from the conntrack index (batch ${batchNo})`);
  }
}

/** The core's counters against the reference model's (differential runs only): global, per
 * reason, per frontend and per backend. */
function compareModelCounters(core, ref, fail, batchNo) {
  const dv = core.dv, base = core.map.counters;
  for (let i = 0; i < L.GC_COUNT + L.REASON_COUNT; i++) {
    const v = Number(dv.getBigUint64(base + i * 8, true));
    const m = i < L.GC_COUNT ? ref.global[i] : ref.reasons[i - L.GC_COUNT];
    if (v !== m) fail(`${i < L.GC_COUNT ? 'global counter' : 'reason counter'} ${i < L.GC_COUNT ? i : REASON_NAMES[i - L.GC_COUNT]}: core ${v}, model ${m} (batch ${batchNo})`);
  }
  const c = core.counters();
  for (const [kind, mine, theirs] of [['frontend', c.frontends, ref.frontCounters], ['backend', c.backends, ref.backCounters]]) {
    for (const [id, v] of Object.entries(mine)) {
      const m = theirs.get(Number(id)) ?? { packets: 0, bytes: 0 };
      if (v.packets !== m.packets || v.bytes !== m.bytes) fail(`${kind} ${id} counters: core ${JSON.stringify(v)}, model ${JSON.stringify(m)} (batch ${batchNo})`);
    }
  }
}
