// The reference model: the forwarding core's semantics (docs/core.md and the "Behaviour" contract)
// written as slow, readable TypeScript over an `Ir`. Used by the differential tests (the same
// frames through the Wasm core and through this; every verdict, reason, out port and output byte
// compared) and as the benchmark's plain-JS baseline.
//
// Everything observable is modelled exactly: verdict, reason, out port, output bytes, counters,
// trace fields, and the state that decides later packets — flow-entry numbering (free-list order,
// expiry and eviction cursors), SNAT port probing, the affinity table's slots and its replacement
// rule. What is not observable is modelled simply: the conntrack index is a Map keyed by the
// tuple (the core's open-addressed hash index is an implementation detail).
//
// Written from the contract, then reconciled with the core (assembly/) decision by decision; where
// the two differ from the contract the difference is noted below as "core:" and reported.
//
// Cost: a few microseconds per packet (string-keyed Maps, fresh arrays per frame): fine for tests;
// the benchmark reports it as the baseline the Wasm core is compared with.
import * as L from '../../assembly/layout.js';
import type { Ir, IrBackend, IrFrontend } from '../ir/ir.js';
import { PROTO_NUMBER, maglevBackendAt } from '../ir/ir.js';
import { parseAddr, parseCidr, cidrContains, parseMac, type Addr, type Cidr, type Family } from '../util/addr.js';
import { affinityHash, flowHash, freshPickHash } from '../core/hash.js';
import { DEFAULT_TIMEOUTS, type Timeouts } from '../core/timeouts.js';
import { crc32c, internetChecksum, pseudoHeaderSum } from '../packet/checksum.js';

export interface ModelOptions {
  flows?: number;           // conntrack capacity (default 65536, as the host)
  affinitySlots?: number;   // default 16384 (rounded up to a power of two, min 16, as the host)
  slotSize?: number;        // default 2048
  timeouts?: Partial<Timeouts>;
  expireBudget?: number;    // default 64
  evictWindow?: number;     // default 64
  snatPortMin?: number;     // default 32768
  snatPortMax?: number;     // default 60999
  fragments?: number;       // fragment table entries (default 4096, as the host; 0 = none)
  portMtu?: Record<number, number>; // egress MTU per port index (0 / absent = unknown, unchecked; as the host)
  portAddresses?: Record<number, string[]>; // per port index the source addresses of the core's ICMP errors (time exceeded, reject; as the host)
}

/** A fragment table entry (the core's FragEntry): a first fragment's ports. */
interface FragSlot { src: Uint8Array; dst: Uint8Array; proto: number; family: number; id: number; sport: number; dport: number; lastSeen: number }

export interface ModelTrace {
  stages: number; verdict: number; reason: number; outPort: number;
  front: number; backend: number; flow: number; ct: number; select: number;
  proto: number; family: number; l3: number; l4: number; hash: number;
}

export interface ModelResult {
  verdict: number;          // L.V_*
  reason: number;           // L.REASON_*
  outPort: number;          // L.PORT_NONE when dropped or sent to the host
  frame: Uint8Array;        // output bytes: the input rewritten, or the generated reject
  trace: ModelTrace;
}

export interface ModelFlow {
  index: number;
  family: 4 | 6; proto: number;
  client: Uint8Array; vip: Uint8Array; backend: Uint8Array; // 16-byte layout addresses
  cport: number; vport: number; bport: number; nport: number;
  state: number; flags: number;
  lastSeen: number; created: number;
  front: number; backendId: number;
  clientPort: number; outPort: number;
  clientMac: Uint8Array; localMac: Uint8Array;
  /** Reply-key destination as built at creation: the SNAT address or the client. */
  natDst: Uint8Array;
}

interface AffinitySlot { client: Uint8Array; front: number; backend: number; lastSeen: number; hash: number }

// ---------------------------------------------------------------------------------------------
// Byte helpers (frames are network order)

const rd16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const rd32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const wr16 = (b: Uint8Array, o: number, v: number) => { b[o] = (v >>> 8) & 0xff; b[o + 1] = v & 0xff; };
const wr32 = (b: Uint8Array, o: number, v: number) => { wr16(b, o, v >>> 16); wr16(b, o + 2, v & 0xffff); };
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

function addr16(b: Uint8Array, off: number, family: 4 | 6): Uint8Array {
  const a = new Uint8Array(16);
  a.set(b.subarray(off, off + (family === 4 ? 4 : 16)));
  return a;
}
function eqBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
function tupleKey(family: number, proto: number, src: Uint8Array, dst: Uint8Array, sport: number, dport: number): string {
  return `${family}/${proto}/${hex(src)}/${hex(dst)}/${sport}/${dport}`;
}

/** RFC 1624 eqn 3 over changed 16-bit words: HC' = ~(~HC + sum(~m) + sum(m')). The core updates
 *  checksums this way; a correct input checksum stays correct and a wrong one stays exactly as
 *  wrong — which is why the model does not simply recompute (fuzzed inputs must match too). */
class CsumDelta {
  private acc = 0;
  word(o: number, n: number): void { this.acc += ((~o) & 0xffff) + (n & 0xffff); }
  /** Replacing bytes o by n (even length, even offset within the checksummed data). */
  bytes(o: Uint8Array, n: Uint8Array): void { for (let i = 0; i < o.length; i += 2) this.word((o[i] << 8) | o[i + 1], (n[i] << 8) | n[i + 1]); }
  apply(hc: number): number {
    let s = ((~hc) & 0xffff) + this.acc;
    while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
    return (~s) & 0xffff;
  }
}

const TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_RST = 0x04, TCP_ACK = 0x10;

/** A pure SYN (no ACK, FIN or RST) on a closing TCP flow: the client opened a new connection on
 * the closed one's 5-tuple, so the flow is stale and the SYN selects a backend again (Linux
 * conntrack deletes the old entry and looks the packet up afresh). Mirrors assembly/stale.ts
 * reopensClosed. */
function reopensClosed(state: number, proto: number, tcpFlags: number): boolean {
  return state === L.CTS_TCP_CLOSING && pureSyn(proto, tcpFlags);
}

/** A pure TCP SYN: a new connection. Mirrors assembly/stale.ts pureSyn. */
function pureSyn(proto: number, tcpFlags: number): boolean {
  return proto === 6 && (tcpFlags & (TCP_SYN | TCP_ACK | TCP_FIN | TCP_RST)) === TCP_SYN;
}

/** State after a FIN or RST: the first FIN of an established flow, one past the backend's
 * SYN-ACK or one picked up mid-stream (the kernel's ESTABLISHED / SYN_RECV + FIN -> FIN_WAIT)
 * half-closes it (`half` for this direction; a repeated FIN of the same side keeps it); the other
 * side's FIN, a RST, or a FIN on a TCP_SYN or TCP_CLOSING flow closes it. Mirrors
 * assembly/conntrack.ts closeState. */
function closeState(state: number, tcpFlags: number, half: number): number {
  if (tcpFlags & TCP_RST) return L.CTS_TCP_CLOSING;
  const open = state === L.CTS_TCP_EST || state === L.CTS_TCP_SYN_RECV || state === L.CTS_TCP_MIDSTREAM;
  return open || state === half ? half : L.CTS_TCP_CLOSING;
}

// SCTP conntrack: the kernel's nf_conntrack_proto_sctp transition table, written out per chunk
// type as rows over the core's SCTP states (columns, SCTP_COLS order); '=' keeps the state (the
// kernel's "stay", and its invalid sIV, which leaves the entry as it is). SHUTDOWN_SENT and
// SHUTDOWN_RECD are one state (their columns are the same). The core (assembly/conntrack.ts
// sctpState) writes the same table as code; diff-core compares the two.
const SCTP_COLS = [L.CTS_SCTP_CLOSED, L.CTS_SCTP_COOKIE_WAIT, L.CTS_SCTP_COOKIE_ECHOED, L.CTS_SCTP,
  L.CTS_SCTP_SHUTDOWN, L.CTS_SCTP_SHUTDOWN_ACK_SENT, L.CTS_SCTP_HEARTBEAT_SENT];
const [sCL, sCW, sCE, sES, sSH, sSA, sHS] = SCTP_COLS;
type SctpRow = Array<number | '='>;
//                               CL    CW   CE   ES   SH   SA   HS
const SCTP_ORIG: Record<number, SctpRow> = {
  1: /* INIT */              [sCL, '=', '=', '=', sCL, '=', sCW],
  2: /* INIT_ACK */          [sCL, '=', '=', '=', '=', '=', sCL],
  6: /* ABORT */             [sCL, sCL, sCL, sCL, sCL, sCL, sCL],
  7: /* SHUTDOWN */          [sCL, '=', '=', sSH, '=', '=', sCL],
  8: /* SHUTDOWN_ACK */      [sCL, '=', '=', '=', sSA, '=', sSA],
  9: /* ERROR */             [sCL, '=', '=', '=', '=', '=', sCL],
  10: /* COOKIE_ECHO */      [sCL, sCE, '=', '=', '=', '=', sCL],
  11: /* COOKIE_ACK */       [sCL, '=', sES, '=', '=', '=', sCL],
  14: /* SHUTDOWN_COMPLETE */ [sCL, '=', '=', '=', '=', sCL, sCL],
  4: /* HEARTBEAT */         [sCL, '=', '=', '=', '=', '=', sHS],
  5: /* HEARTBEAT_ACK */     [sCL, '=', '=', '=', '=', '=', sHS],
};
const SCTP_REPLY: Record<number, SctpRow> = {
  1: /* INIT */              [sCL, '=', '=', '=', '=', '=', '='],
  2: /* INIT_ACK */          [sCW, '=', '=', '=', '=', '=', '='],
  6: /* ABORT */             [sCL, sCL, sCL, sCL, sCL, sCL, '='],
  7: /* SHUTDOWN */          [sCL, '=', '=', sSH, '=', '=', '='],
  8: /* SHUTDOWN_ACK */      [sCL, '=', '=', '=', sSA, '=', '='],
  9: /* ERROR */             [sCL, '=', sCL, '=', '=', '=', '='],
  10: /* COOKIE_ECHO */      [sCL, sCE, '=', '=', '=', '=', '='],
  11: /* COOKIE_ACK */       [sCL, '=', sES, '=', '=', '=', '='],
  14: /* SHUTDOWN_COMPLETE */ [sCL, '=', '=', '=', '=', sCL, '='],
  4: /* HEARTBEAT */         [sCL, '=', '=', '=', '=', '=', sHS],
  5: /* HEARTBEAT_ACK */     [sCL, '=', '=', '=', '=', '=', sES],
};

/** The SCTP state after a packet whose first chunk is `chunk` on a flow in `state` (`reply`:
 * backend -> client). Mirrors assembly/conntrack.ts sctpState. */
function sctpNext(state: number, chunk: number, reply: boolean): number {
  const row = (reply ? SCTP_REPLY : SCTP_ORIG)[chunk];
  const col = SCTP_COLS.indexOf(state);
  if (!row || col < 0) return state;
  const v = row[col];
  return v === '=' ? state : v;
}

/** A new SCTP flow's state from its first packet's first chunk: the kernel's NONE column (a
 * HEARTBEAT picks up a path, a SHUTDOWN-ACK is answered by SHUTDOWN-COMPLETE, anything else is
 * CLOSED until an INIT-ACK). Mirrors assembly/conntrack.ts initialState. */
function sctpInitial(chunk: number): number {
  return chunk === 4 ? L.CTS_SCTP_HEARTBEAT_SENT : chunk === 8 ? L.CTS_SCTP_SHUTDOWN_ACK_SENT : L.CTS_SCTP_CLOSED;
}

// ---------------------------------------------------------------------------------------------
// Parsing: which reason each malformation gets, in the order the core checks

export interface Parsed {
  l3: number; l4: number; end: number;       // frame offsets; end = IP packet end (padding ignored)
  family: 4 | 6; proto: number;
  src: Uint8Array; dst: Uint8Array;           // 16-byte layout addresses
  sport: number; dport: number;               // 0 unless TCP/UDP/SCTP
  hasPorts: boolean;
  tcpFlags: number;
  ttl: number;
  icmpType: number;
  /** first fragment of a fragmented packet (SCTP CRC cannot be recomputed over a part) */
  fragment: boolean;
  /** a fragment with offset != 0: no L4 header; ports come from the fragment table */
  later: boolean;
  /** IP ID of a fragment (IPv4 16 bits, IPv6 32 bits) */
  fragId: number;
}

export type ParseOutcome =
  | { ok: true; p: Parsed }
  | { ok: false; verdict: number; reason: number; l3: number; family: number; proto: number };

function isMartian(src: Uint8Array, family: 4 | 6): boolean {
  if (family === 4) return (src[0] & 0xf0) === 0xe0 || (src[0] === 255 && src[1] === 255 && src[2] === 255 && src[3] === 255);
  return src[0] === 0xff;
}

/** Stage 1 for a frame already known to be 14..slotSize bytes with a valid in_port. */
export function parseForCore(f: Uint8Array, len: number): ParseOutcome {
  let l3 = 0, family = 0, proto = 0;
  const stop = (verdict: number, reason: number): ParseOutcome => ({ ok: false, verdict, reason, l3, family, proto });
  let et = rd16(f, 12);
  if (et === 0x8100) {
    if (len < 18) return stop(L.V_DROP, L.REASON_DROP_TRUNCATED_L2);
    et = rd16(f, 16);
    l3 = 18;
  } else {
    l3 = 14;
  }
  if (et === 0x0806) return stop(L.V_TO_HOST, L.REASON_HOST_ARP);
  const avail = len - l3;
  let l4: number, end: number, ttl: number, fragment = false, later = false, fragId = 0;
  let src: Uint8Array, dst: Uint8Array;
  if (et === 0x0800) {
    if (avail < 20) return stop(L.V_DROP, L.REASON_DROP_TRUNCATED_L3);
    if (f[l3] >> 4 !== 4) return stop(L.V_DROP, L.REASON_DROP_BAD_IP_VERSION);
    const ihl = (f[l3] & 15) * 4;
    if (ihl < 20) return stop(L.V_DROP, L.REASON_DROP_BAD_IHL);
    const total = rd16(f, l3 + 2);
    if (total > avail || total < ihl) return stop(L.V_DROP, L.REASON_DROP_BAD_IP_LENGTH);
    family = 4;
    end = l3 + total; l4 = l3 + ihl; proto = f[l3 + 9]; ttl = f[l3 + 8];
    src = addr16(f, l3 + 12, 4); dst = addr16(f, l3 + 16, 4);
    if (isMartian(src, 4)) return stop(L.V_DROP, L.REASON_DROP_MARTIAN);
    const fo = rd16(f, l3 + 6);
    fragment = (fo & 0x2000) !== 0 && (fo & 0x1fff) === 0;
    if (fo & 0x3fff) fragId = rd16(f, l3 + 4);
    later = (fo & 0x1fff) !== 0;
  } else if (et === 0x86dd) {
    if (avail < 40) return stop(L.V_DROP, L.REASON_DROP_TRUNCATED_L3);
    if (f[l3] >> 4 !== 6) return stop(L.V_DROP, L.REASON_DROP_BAD_IP_VERSION);
    const plen = rd16(f, l3 + 4);
    if (plen + 40 > avail) return stop(L.V_DROP, L.REASON_DROP_BAD_IP_LENGTH);
    family = 6;
    end = l3 + 40 + plen; ttl = f[l3 + 7];
    src = addr16(f, l3 + 8, 6); dst = addr16(f, l3 + 24, 6);
    if (isMartian(src, 6)) return stop(L.V_DROP, L.REASON_DROP_MARTIAN);
    proto = f[l3 + 6]; l4 = l3 + 40;
    const x = skipIp6Ext(f, l4, proto, end);
    if (!x) return stop(L.V_DROP, L.REASON_DROP_IPV6_EXT_HEADERS);
    ({ l4, proto } = x);
    if (x.frag !== 'none') fragId = x.fragId;
    if (x.frag === 'later') later = true;
    else if (x.frag === 'first') fragment = true;
  } else {
    return stop(L.V_TO_HOST, L.REASON_HOST_NOT_IP);
  }
  if (later) {
    return { ok: true, p: { l3, l4, end, family: family as 4 | 6, proto, src, dst, sport: 0, dport: 0, hasPorts: false, tcpFlags: 0, ttl, icmpType: 0, fragment, later, fragId } };
  }
  let hasPorts = false, tcpFlags = 0, icmpType = 0;
  if (proto === 6) {
    if (l4 + 20 > end) return stop(L.V_DROP, L.REASON_DROP_TRUNCATED_L4);
    const doff = (f[l4 + 12] >> 4) * 4;
    if (doff < 20) return stop(L.V_DROP, L.REASON_DROP_BAD_L4_HEADER);
    if (l4 + doff > end) return stop(L.V_DROP, L.REASON_DROP_TRUNCATED_L4);
    tcpFlags = f[l4 + 13];
    hasPorts = true;
  } else if (proto === 17) {
    if (l4 + 8 > end) return stop(L.V_DROP, L.REASON_DROP_TRUNCATED_L4);
    hasPorts = true;
  } else if (proto === 132) {
    if (l4 + 12 > end) return stop(L.V_DROP, L.REASON_DROP_TRUNCATED_L4);
    // core: parse.ts — the first chunk's type in tcpFlags (0 without a chunk: DATA's, no state change)
    if (l4 + 12 < end) tcpFlags = f[l4 + 12];
    hasPorts = true;
  } else if ((proto === 1 && family === 4) || (proto === 58 && family === 6)) {
    if (l4 + 8 > end) return stop(L.V_DROP, L.REASON_DROP_TRUNCATED_L4);
    icmpType = f[l4];
    if (family === 6 && icmpType >= 133 && icmpType <= 137) return stop(L.V_TO_HOST, L.REASON_HOST_ND);
  }
  const sport = hasPorts ? rd16(f, l4) : 0, dport = hasPorts ? rd16(f, l4 + 2) : 0;
  return { ok: true, p: { l3, l4, end, family: family as 4 | 6, proto, src, dst, sport, dport, hasPorts, tcpFlags, ttl, icmpType, fragment, later, fragId } };
}

// ---------------------------------------------------------------------------------------------
// Table view of an Ir (what the core reads from the active table set)

interface FrontView { f: IrFrontend; addr: Uint8Array; protoNum: number; cidrs: Cidr[] }
interface BackView { b: IrBackend; addr: Uint8Array; dstMac: Uint8Array; srcMac: Uint8Array }
interface RouteView { c: Cidr; outPort: number; dstMac: Uint8Array; srcMac: Uint8Array; serviceCidr: boolean }
interface LocalView { c: Cidr; node: boolean; port?: number }

function svcKey(addr: Uint8Array, port: number, proto: number, family: number): string {
  return `${family}/${proto}/${port}/${hex(addr)}`;
}

/** What a frontend id named, for udpCleanup: its Service port ("service|portName"), kind and
 * service-map key. */
interface FrontKey { kind: string; servicePort: string; addr: string; port: number; proto: string; family: number }

function frontKeysOf(ir: Ir): Map<number, FrontKey> {
  const out = new Map<number, FrontKey>();
  for (const f of ir.frontends.values()) out.set(f.id, { kind: f.kind, servicePort: `${f.service}|${f.portName}`, addr: f.addr, port: f.port, proto: f.proto, family: f.family });
  return out;
}

class Tables {
  svc = new Map<string, FrontView>();
  /** frontends by id (an externalTrafficPolicy Local frontend names its cluster front by id) */
  fronts = new Map<number, FrontView>();
  /** kube-proxy's local-traffic detector: pod entries, then the node's (the table writer's order) */
  local: LocalView[] = [];
  /** ClusterIP addresses (family/hex): the core's catch-all service-map keys */
  clusterIps = new Set<string>();
  backs = new Map<number, BackView>();
  routes: RouteView[] = [];
  snat: [Uint8Array | undefined, Uint8Array | undefined] = [undefined, undefined];
  hairpin: [Uint8Array | undefined, Uint8Array | undefined] = [undefined, undefined];
  constructor(ir: Ir) {
    for (const f of ir.frontends.values()) {
      const a = parseAddr(f.addr);
      const v: FrontView = { f, addr: a.bytes, protoNum: PROTO_NUMBER[f.proto], cidrs: f.sourceRanges.map(parseCidr) };
      this.fronts.set(f.id, v);
      if (f.kind === 'ClusterPolicy') continue; // not in the service map: only another frontend's cluster front
      this.svc.set(svcKey(a.bytes, f.port, v.protoNum, f.family), v);
      if (f.kind === 'ClusterIP') this.clusterIps.add(svcKey(a.bytes, L.SM_ANY_PORT, L.SM_ANY_PROTO, f.family));
    }
    for (const b of ir.backends.values()) {
      this.backs.set(b.id, { b, addr: parseAddr(b.addr).bytes, dstMac: parseMac(b.dstMac), srcMac: parseMac(b.srcMac) });
    }
    // longest prefix first; equal lengths keep Ir order (Array.prototype.sort is stable, as in the
    // table writer)
    this.local = ir.routes.filter((r) => r.localSource === 'pod' || r.localSource === 'podPort').concat(ir.routes.filter((r) => r.localSource === 'node'))
      .map((r) => (r.localSource === 'podPort' ? { c: parseCidr('0.0.0.0/0'), node: false, port: r.outPort } : { c: parseCidr(r.prefix), node: r.localSource === 'node' }));
    this.routes = ir.routes.filter((r) => !r.localSource).map((r) => ({ c: parseCidr(r.prefix), outPort: r.outPort, dstMac: parseMac(r.dstMac), srcMac: parseMac(r.srcMac), serviceCidr: !!r.serviceCidr }))
      .sort((a, b) => b.c.plen - a.c.plen);
    if (ir.snatV4) this.snat[0] = parseAddr(ir.snatV4).bytes;
    if (ir.snatV6) this.snat[1] = parseAddr(ir.snatV6).bytes;
    if (ir.hairpinV4) this.hairpin[0] = parseAddr(ir.hairpinV4).bytes;
    if (ir.hairpinV6) this.hairpin[1] = parseAddr(ir.hairpinV6).bytes;
  }
  /** The frontend id frontend f's sessionAffinity entries are keyed by (core: select.ts
   * affinityKey): its cluster front, or that one's when it names another with
   * FEF_AFFINITY_SHARED (a ClusterPolicy frontend naming its ClusterIP); f itself without one. */
  affinityKey(f: IrFrontend): number {
    const k = f.clusterFront ?? 0;
    if (!k) return f.id;
    const kf = this.fronts.get(k)?.f, k2 = kf?.clusterFront ?? 0;
    return kf && (kf.flags & L.FEF_AFFINITY_SHARED) && k2 ? k2 : k;
  }
  /** The first detector entry holding the client — a pod-port entry by the port the frame arrived
   * on — or undefined: a source from outside the cluster (core: select.ts localSource). */
  localSource(client: Addr, inPort: number): LocalView | undefined {
    return this.local.find((l) => (l.port !== undefined ? l.port === inPort : cidrContains(l.c, client)));
  }
  /** Whether the 16-byte address is the node's own: a node entry of the detector holds it (core:
   * select.ts nodeAddress). */
  nodeAddress(bytes: Uint8Array, family: Family): boolean {
    return this.local.some((l) => l.node && cidrContains(l.c, { family, bytes }));
  }
  /** Whether the 16-byte address is the node itself: the SNAT address of its family or a node
   * address (core: snat.ts nodeItself). */
  nodeItself(bytes: Uint8Array, family: Family): boolean {
    const snat = this.snat[family === 4 ? 0 : 1];
    return (snat !== undefined && eqBytes(bytes, snat)) || this.nodeAddress(bytes, family);
  }
  /** CONFIG's address for a source-translated flow of these CTF_* flags (core: flowSnatAddr). */
  snatFor(flags: number, family: number): Uint8Array | undefined {
    return ((flags & L.CTF_HAIRPIN) ? this.hairpin : this.snat)[family === 4 ? 0 : 1];
  }
  /** The backend if it exists in this generation (state != ABSENT). */
  usable(id: number): BackView | undefined {
    const b = this.backs.get(id);
    return b && b.b.state !== L.BES_ABSENT ? b : undefined;
  }
  /** Whether a source-NATed flow's SNAT (or hairpin) address is still the family's (true without
   * CTF_SNAT). Mirrors assembly/stale.ts snatHolds (which compares the flow's reply-key hash, made
   * with that address, against one made with CONFIG's). */
  snatHolds(fl: ModelFlow): boolean {
    if (!(fl.flags & L.CTF_SNAT)) return true;
    const cur = this.snatFor(fl.flags, fl.family);
    return !!cur && eqBytes(cur, fl.natDst);
  }
  /** The flow's backend if its id is usable and still names the address, port and family the flow
   * was translated to (ids are reused). Mirrors assembly/stale.ts backendHolds. */
  backendHolds(fl: ModelFlow): BackView | undefined {
    const bv = this.usable(fl.backendId);
    if (!bv || bv.b.port !== fl.bport || bv.b.family !== fl.family || !eqBytes(bv.addr, fl.backend)) return undefined;
    return bv;
  }
  /** The flow's backend id while it names the flow's backend (backendHolds), else 0. Mirrors
   * assembly/stale.ts heldBackendId. */
  heldBackendId(fl: ModelFlow): number { return this.backendHolds(fl) ? fl.backendId : 0; }
  /** The frontend id a hit on flow fl is traced and counted under: its own while that frontend
   * names the flow's (VIP, port, protocol, family), or while the frontend the service map has
   * for that key is it or has it as cluster front; else 0 (the Service port is gone or was
   * re-created elsewhere; the id may name another frontend). Mirrors assembly/stale.ts
   * heldFrontId. */
  heldFrontId(fl: ModelFlow): number {
    const own = this.fronts.get(fl.front);
    if (own && own.f.family === fl.family && own.f.port === fl.vport && own.protoNum === fl.proto && eqBytes(own.addr, fl.vip)) return fl.front;
    const fv = this.svc.get(svcKey(fl.vip, fl.vport, fl.proto, fl.family));
    if (!fv) return 0;
    return fv.f.id === fl.front || (fv.f.clusterFront ?? 0) === fl.front ? fl.front : 0;
  }
  /** The route a TCP/SCTP flow whose backend left reaches its own address by (the first route of
   * the family holding it, as plain routing), or undefined when none does, it is a service CIDR's
   * or it has no port. Mirrors assembly/stale.ts keptRoute. */
  keptRoute(fl: ModelFlow): RouteView | undefined {
    const dst = { family: fl.family, bytes: fl.backend };
    const r = this.routes.find((rt) => cidrContains(rt.c, dst));
    return r && !r.serviceCidr && r.outPort !== L.PORT_NONE ? r : undefined;
  }
  /** A UDP hit whose backend no longer serves (BES_NOT_SERVING) on a service port in force (the
   * packet's key has a frontend): stale, like kube-proxy's UDP conntrack cleanup, whatever else
   * the port has. Mirrors assembly/stale.ts udpReselectFront (which also returns the frontend it looked up). */
  udpLeftServing(bv: BackView, p: Parsed): boolean {
    if (p.proto !== 17 || bv.b.state !== L.BES_NOT_SERVING) return false;
    return this.svc.has(svcKey(p.dst, p.dport, 17, p.family));
  }
  /** A UDP flow kube-proxy's cleanup deletes, seen from a reply or an ICMP error about it: its
   * backend left, or stopped serving while its (VIP, port) is a service port in force. Mirrors
   * assembly/stale.ts udpReplyStale. */
  udpReplyStale(fl: ModelFlow): boolean {
    if (fl.proto !== 17) return false;
    const bv = this.backendHolds(fl);
    if (!bv) return !this.udpOrphan(fl);
    return (bv.b.state === L.BES_NOT_SERVING && this.svc.has(svcKey(fl.vip, fl.vport, 17, fl.family)));
  }
  /** Whether a flow whose backend left stays on its address: TCP and SCTP (kube-proxy cleans UDP
   * conntrack entries only), and an orphaned UDP flow (udpOrphan). Mirrors assembly/stale.ts
   * keepsAddress. */
  keepsAddress(fl: ModelFlow): boolean {
    return fl.proto === 6 || fl.proto === 132 || (fl.proto === 17 && this.udpOrphan(fl));
  }
  /** A UDP flow to an address that left its live Service port (front 0, set by the model's
   * udpCleanup) while no frontend has its (VIP, port): no entry kube-proxy's cleanup looks at.
   * Mirrors assembly/stale.ts udpOrphan. */
  udpOrphan(fl: ModelFlow): boolean {
    return fl.front === 0 && !this.svc.has(svcKey(fl.vip, fl.vport, fl.proto, fl.family));
  }
}

// ---------------------------------------------------------------------------------------------

interface RateLimitEntry { addr: Uint8Array; family: number; tokens: number; last: number }

interface Frame {
  f: Uint8Array;            // working copy (output bytes)
  len: number;              // input length (counters)
  inPort: number;
  p: Parsed;
  t: ModelTrace;
  // result
  verdict: number; reason: number; outPort: number; out?: Uint8Array;
}

export class ReferenceModel {
  readonly opts: Required<Omit<ModelOptions, 'timeouts' | 'portMtu' | 'portAddresses'>> & { timeouts: Timeouts };
  /** egress MTU per port index (core: the PORT_MTU region; absent = 0 = unchecked) */
  private readonly portMtus = new Map<number, number>();
  /** the core's ICMP errors' source per port index and family (time exceeded, a reject not to the node; core: the PORT_ADDR region) */
  private readonly portAddrs = new Map<number, Map<number, Uint8Array>>();
  private tables: Tables;
  ir: Ir;
  /** flows[i], i in 1..capacity; undefined = free. */
  readonly flows: Array<ModelFlow | undefined>;
  private freeList: number[] = [];           // stack: the last element is handed out next
  private index = new Map<string, { flow: number; dir: 0 | 1 }>();
  readonly affinity: Array<AffinitySlot | undefined>;
  private expireCursor = 1;
  private evictCursor = 1;
  /** fragment table: buckets x FRAG_WAYS slots (undefined = empty), as the core's */
  private frags: Array<FragSlot | undefined>;
  private fragBuckets: number;
  readonly global = new Array<number>(L.GC_COUNT).fill(0);
  readonly reasons = new Array<number>(L.REASON_COUNT).fill(0);
  readonly frontCounters = new Map<number, { packets: number; bytes: number }>();
  readonly backCounters = new Map<number, { packets: number; bytes: number }>();
  private live = true;      // false in dry-run: no state, no counters
  private icmpId = 0;       // the IPv4 ID of the last ICMP error (core: reject.ts gIcmpId)
  private now = 0;
  /** the reject rate limit (core: assembly/ratelimit.ts): global credit in thousandths of an
   *  answer and its refill stamp; client entries, RL_BUCKETS x RL_WAYS (undefined = empty) */
  private rlCredit = L.RL_GLOBAL_BURST * 1000;
  private rlStamp = 0;
  private readonly rlClients = new Array<RateLimitEntry | undefined>(L.RL_BUCKETS * L.RL_WAYS).fill(undefined);

  constructor(ir: Ir, opts: ModelOptions = {}) {
    let aff = 1;
    while (aff < Math.max(16, opts.affinitySlots ?? 16384)) aff *= 2;
    this.opts = {
      flows: Math.max(16, opts.flows ?? 65536), affinitySlots: aff, slotSize: opts.slotSize ?? L.DEFAULT_SLOT_SIZE,
      timeouts: { ...DEFAULT_TIMEOUTS, ...(opts.timeouts ?? {}) },
      expireBudget: opts.expireBudget ?? 64, evictWindow: opts.evictWindow ?? 64,
      snatPortMin: opts.snatPortMin ?? 32768, snatPortMax: opts.snatPortMax ?? 60999,
      fragments: opts.fragments ?? 4096,
    };
    let fb = 1;
    while (fb < Math.ceil(this.opts.fragments / L.FRAG_WAYS)) fb *= 2;
    this.fragBuckets = this.opts.fragments === 0 ? 0 : fb;
    this.frags = new Array(this.fragBuckets * L.FRAG_WAYS).fill(undefined);
    this.ir = ir;
    this.tables = new Tables(ir);
    this.flows = new Array(this.opts.flows + 1).fill(undefined);
    this.affinity = new Array(aff).fill(undefined);
    this.resetFreeList();
    this.affinityFronts = this.affinityFrontIds();
    this.frontKeys = frontKeysOf(ir);
    for (const [port, mtu] of Object.entries(opts.portMtu ?? {})) this.setPortMtu(Number(port), mtu);
    for (const [port, addrs] of Object.entries(opts.portAddresses ?? {})) this.setPortAddresses(Number(port), addrs);
  }

  /** The addresses port `port` answers a spent TTL or a reject from: the first of each family, as Core.setPortAddresses. */
  setPortAddresses(port: number, addrs: readonly string[]): void {
    const m = new Map<number, Uint8Array>();
    for (const s of addrs) {
      const a = parseAddr(s);
      if (!m.has(a.family) && a.bytes.some((b) => b !== 0)) m.set(a.family, a.bytes);
    }
    this.portAddrs.set(port, m);
  }

  /** Port `port`'s egress MTU (0 = unknown: unchecked), as Core.setPortMtu. */
  setPortMtu(port: number, mtu: number): void {
    if (mtu === 0) this.portMtus.delete(port); else this.portMtus.set(port, mtu);
  }

  private resetFreeList(): void {
    this.freeList = [];
    for (let i = this.opts.flows; i >= 1; i--) this.freeList.push(i); // flow 1 first
  }

  /** A new generation: the whole Ir (flows and affinity survive, as in the core). The counters of
   * frontends and backends this generation removes are dropped, as the host's table writer zeroes
   * them (only on removal: what a stale flow counts on a removed id afterwards stays). */
  setIr(ir: Ir): void {
    for (const id of this.ir.frontends.keys()) if (!ir.frontends.has(id)) this.frontCounters.delete(id);
    for (const id of this.ir.backends.keys()) if (!ir.backends.has(id)) this.backCounters.delete(id);
    this.ir = ir;
    this.tables = new Tables(ir);
    this.voidStalePins();
    this.udpCleanup();
    this.nodeFlagSweep();
  }

  /** Every flow's FLOW_NODE decided again from this generation's node addresses (core: the host's
   * src/core/node-flag-sweep.ts, which asks assembly/node-sweep.ts only when an apply changes
   * them — deciding again when they did not change gives the same flags). */
  private nodeFlagSweep(): void {
    for (const fl of this.flows) {
      if (!fl) continue;
      const node = this.tables.nodeItself(fl.client, fl.family) || this.tables.nodeItself(fl.backend, fl.family);
      fl.flags = node ? fl.flags | L.FLOW_NODE : fl.flags & ~L.FLOW_NODE;
    }
  }

  /** Each frontend id's key at the last setIr (or construction): the Ir a caller passes may be
   * one object patched in place, so the previous one cannot say what a removed id was. */
  private frontKeys: Map<number, FrontKey>;

  /** kube-proxy's UDP conntrack cleanup of the UDP frontends this generation removed (or whose id
   * names another frontend now): a Service port deleted in its family (its ClusterIP frontend of
   * the family gone, none in its place) frees their UDP flows; an address that left a live port
   * orphans them (front 0: kept on their translation, stale.ts udpOrphan) — a NodePort one only
   * when no NodePort frontend of its port, family and node port is left; a ClusterPolicy one
   * neither. Flows in index order, as the core's host (src/core/udp-cleanup.ts). */
  private udpCleanup(): void {
    const prev = this.frontKeys, next = frontKeysOf(this.ir);
    this.frontKeys = next;
    const sameKey = (a: FrontKey, b: FrontKey | undefined): boolean => !!b && a.kind === b.kind && a.servicePort === b.servicePort &&
      a.addr === b.addr && a.port === b.port && a.proto === b.proto && a.family === b.family;
    const gone: Array<[number, FrontKey]> = [];
    for (const [id, k] of prev) if (k.proto === 'UDP' && !sameKey(k, next.get(id))) gone.push([id, k]);
    if (gone.length === 0) return;
    const livePorts = new Set<string>(), liveNodePorts = new Set<string>();
    for (const k of next.values()) {
      if (k.kind === 'ClusterIP') livePorts.add(`${k.servicePort}|${k.family}`);
      if (k.kind === 'NodePort' && k.proto === 'UDP') liveNodePorts.add(`${k.servicePort}|${k.family}|${k.port}`);
    }
    const deleted = new Set<string>();
    for (const [, k] of gone) if (k.kind === 'ClusterIP' && !livePorts.has(`${k.servicePort}|${k.family}`)) deleted.add(`${k.servicePort}|${k.family}`);
    const free = new Set<number>(), orphan = new Set<number>();
    for (const [id, k] of gone) {
      if (deleted.has(`${k.servicePort}|${k.family}`)) free.add(id);
      else if (k.kind === 'NodePort') { if (!liveNodePorts.has(`${k.servicePort}|${k.family}|${k.port}`)) orphan.add(id); }
      else if (k.kind !== 'ClusterPolicy') orphan.add(id);
    }
    for (let i = 1; i < this.flows.length; i++) {
      const fl = this.flows[i];
      if (!fl || fl.proto !== 17) continue;
      if (free.has(fl.front)) this.freeFlow(i);
      else if (orphan.has(fl.front)) fl.front = 0;
    }
  }

  /** The frontend ids with FEF_AFFINITY at the last setIr (or construction): the Ir a caller
   * passes may be one object patched in place (the compiler's), so the previous one cannot say. */
  private affinityFronts = new Set<number>();

  /** A pin holds only while its backend is in the set its (key) frontend selects from now:
   * kube-proxy's chain consults the affinity of its own endpoint list only, and deletes the
   * affinity sets of a Service port without ClientIP affinity. Every entry keyed by a frontend
   * with FEF_AFFINITY whose set lacks its backend, or by a frontend that had FEF_AFFINITY in
   * the previous generation and has not now (gone, or without it), gets backend 0 (kept in its
   * slot, as a match to overwrite; core: src/core/affinity-pins.ts, which checks the frontends an
   * apply rewrites or removes — the same entries, as an unchanged set keeps its entries' backends). */
  private voidStalePins(): void {
    const had = this.affinityFronts;
    this.affinityFronts = this.affinityFrontIds();
    // the backends each key's frontends (the frontends of a Service port and family, affinityKey)
    // select from now: kube-proxy keeps an endpoint's affinity set while some chain of the port
    // lists it (allLocallyReachableEndpoints)
    const pinSets = new Map<number, Set<number>>();
    for (const id of this.affinityFronts) {
      const f = this.tables.fronts.get(id)!.f, k = this.tables.affinityKey(f);
      let set = pinSets.get(k);
      if (!set) pinSets.set(k, set = new Set());
      for (let i = 0; i < f.backends.length; i++) set.add(f.backends[i]);
    }
    for (const s of this.affinity) {
      if (!s || s.backend === 0) continue;
      const f = this.tables.fronts.get(s.front)?.f;
      if (f && (f.flags & L.FEF_AFFINITY)) {
        // keyed by a frontend that is not its port's key now (a key that changed): never consulted
        if (this.tables.affinityKey(f) !== s.front || !pinSets.get(s.front)!.has(s.backend)) s.backend = 0;
      } else if (had.has(s.front)) s.backend = 0;
    }
  }

  private affinityFrontIds(): Set<number> {
    const out = new Set<number>();
    for (const [id, f] of this.ir.frontends) if (f.flags & L.FEF_AFFINITY) out.add(id);
    return out;
  }

  /** The core's ct_flush(): all flows and affinity entries gone, cursors reset (the reject rate
   *  limit's buckets are kept). */
  flush(): void {
    this.flows.fill(undefined);
    this.index.clear();
    this.affinity.fill(undefined);
    this.frags.fill(undefined);
    this.resetFreeList();
    this.expireCursor = 1; this.evictCursor = 1;
    this.global[L.GC_CT_ACTIVE] = 0;
  }

  /** The core's ct_expire_all(now): frees every expired flow (GC_CT_EXPIRED), returns how many. */
  expireAll(now: number): number {
    this.now = now >>> 0;
    let freed = 0;
    for (let i = 1; i <= this.opts.flows; i++) {
      const fl = this.flows[i];
      if (fl && this.expired(fl)) { this.freeFlow(i); freed++; }
    }
    this.global[L.GC_CT_EXPIRED] += freed;
    return freed;
  }

  activeFlows(): ModelFlow[] { return this.flows.filter((f): f is ModelFlow => f !== undefined); }
  /** The backend id the core's conntrack listing gives flow fl: its id while that still names the
   * flow's backend, else 0 (src/core/host.ts flowEntry). */
  listedBackendId(fl: ModelFlow): number { return this.tables.heldBackendId(fl); }

  // ---- conntrack -------------------------------------------------------------------------------

  private timeoutOf(state: number): number {
    const t = this.opts.timeouts;
    switch (state) {
      case L.CTS_TCP_SYN: return t.tcpSynMs;
      case L.CTS_TCP_EST: return t.tcpEstablishedMs;
      case L.CTS_TCP_CLOSING: return t.tcpCloseMs;
      case L.CTS_UDP: return t.udpMs;
      case L.CTS_UDP_REPLIED: return t.udpRepliedMs;
      case L.CTS_SCTP: return t.sctpMs;
      case L.CTS_SCTP_CLOSED: return t.sctpClosedMs;
      case L.CTS_SCTP_COOKIE_WAIT: case L.CTS_SCTP_COOKIE_ECHOED: return t.sctpHandshakeMs;
      case L.CTS_SCTP_SHUTDOWN: case L.CTS_SCTP_SHUTDOWN_ACK_SENT: return t.sctpShutdownMs;
      case L.CTS_SCTP_HEARTBEAT_SENT: return t.sctpHeartbeatMs;
      case L.CTS_TCP_SYN_RECV: case L.CTS_TCP_MIDSTREAM: return t.tcpUnconfirmedMs;
      case L.CTS_TCP_HALF_CLOSED_ORIG: case L.CTS_TCP_HALF_CLOSED_REPLY: return t.tcpHalfClosedMs;
      default: return 0;
    }
  }

  private expired(fl: ModelFlow): boolean { return ((this.now - fl.lastSeen) >>> 0) > this.timeoutOf(fl.state); }

  private origKey(fl: ModelFlow): string { return tupleKey(fl.family, fl.proto, fl.client, fl.vip, fl.cport, fl.vport); }
  private replyKey(fl: ModelFlow): string { return tupleKey(fl.family, fl.proto, fl.backend, fl.natDst, fl.bport, fl.nport); }

  private freeFlow(idx: number): void {
    const fl = this.flows[idx];
    if (!fl) return;
    this.index.delete(this.origKey(fl));
    this.index.delete(this.replyKey(fl));
    this.flows[idx] = undefined;
    this.freeList.push(idx);
    this.global[L.GC_CT_ACTIVE]--;
  }

  private expireSweep(): void {
    const n = this.opts.flows;
    const budget = Math.min(this.opts.expireBudget, n);
    for (let k = 0; k < budget; k++) {
      const i = this.expireCursor;
      this.expireCursor = i >= n ? 1 : i + 1;
      const fl = this.flows[i];
      if (fl && this.expired(fl)) { this.freeFlow(i); this.global[L.GC_CT_EXPIRED]++; }
    }
  }

  /** Core: evictable = not confirmed in both directions (TCP SYN, SYN_RECV, MIDSTREAM; UDP
   *  not a stream; SCTP without CTF_CONFIRMED) or TCP half-closed or closing (the kernel's
   *  tcp_can_early_drop) or SCTP shutting down (sctp_can_early_drop). */
  private static evictable(fl: ModelFlow): boolean {
    const st = fl.state;
    if (st === L.CTS_SCTP_SHUTDOWN || st === L.CTS_SCTP_SHUTDOWN_ACK_SENT) return true;
    if (SCTP_COLS.includes(st)) return (fl.flags & L.CTF_CONFIRMED) === 0;
    return st === L.CTS_TCP_SYN || st === L.CTS_TCP_SYN_RECV || st === L.CTS_TCP_MIDSTREAM || st === L.CTS_UDP
      || st === L.CTS_TCP_CLOSING || st === L.CTS_TCP_HALF_CLOSED_ORIG || st === L.CTS_TCP_HALF_CLOSED_REPLY;
  }

  /** Free list first; else the first expired (counted expired) or unconfirmed (counted evicted)
   *  entry within the eviction window from the rotating cursor; 0 = full of confirmed flows. */
  private allocFlow(): number {
    if (!this.freeList.length) {
      const n = this.opts.flows;
      const window = Math.min(this.opts.evictWindow, n);
      let victim = 0;
      for (let k = 0; k < window; k++) {
        const i = this.evictCursor;
        this.evictCursor = i >= n ? 1 : i + 1;
        const fl = this.flows[i];
        if (!fl) continue;
        if (this.expired(fl)) { this.freeFlow(i); this.global[L.GC_CT_EXPIRED]++; victim = i; break; }
        if (ReferenceModel.evictable(fl)) { this.freeFlow(i); this.global[L.GC_CT_EVICTED]++; victim = i; break; }
      }
      if (!victim) return 0;
    }
    this.global[L.GC_CT_ACTIVE]++;
    return this.freeList.pop()!;
  }

  /** Conntrack lookup by packet tuple. An expired match is a miss (freed unless dry-run). */
  private lookup(family: number, proto: number, src: Uint8Array, dst: Uint8Array, sport: number, dport: number): { flow: ModelFlow; dir: 0 | 1 } | undefined {
    const hit = this.index.get(tupleKey(family, proto, src, dst, sport, dport));
    if (!hit) return undefined;
    const fl = this.flows[hit.flow]!;
    // core: a source-NATed flow's reply key is matched against CONFIG's SNAT address of the
    // moment, so with that address removed (or changed) the reply key is no longer the flow's
    if (hit.dir === 1 && (fl.flags & L.CTF_SNAT)) {
      const cur = this.tables.snatFor(fl.flags, fl.family);
      if (!cur || !eqBytes(cur, fl.natDst)) return undefined;
    }
    if (this.expired(fl)) {
      if (this.live) { this.freeFlow(hit.flow); this.global[L.GC_CT_EXPIRED]++; }
      return undefined;
    }
    return { flow: fl, dir: hit.dir };
  }

  // ---- counters --------------------------------------------------------------------------------

  private countFrontBackend(front: number, backend: number, bytes: number): void {
    if (!this.live) return;
    const bump = (m: Map<number, { packets: number; bytes: number }>, id: number) => {
      let c = m.get(id);
      if (!c) m.set(id, (c = { packets: 0, bytes: 0 }));
      c.packets++; c.bytes += bytes;
    };
    if (front) bump(this.frontCounters, front);
    if (backend) bump(this.backCounters, backend);
  }

  // ---- batch -----------------------------------------------------------------------------------

  /** One batch, as core.process(count, now): frames with their in_port. */
  processBatch(frames: Array<Uint8Array | { frame: Uint8Array; inPort?: number }>, now: number, opts: { dryRun?: boolean } = {}): ModelResult[] {
    this.live = !opts.dryRun;
    this.now = now >>> 0;
    try {
      if (this.live) { this.expireSweep(); this.global[L.GC_BATCHES]++; }
      const out: ModelResult[] = [];
      for (const x of frames) {
        const r = x instanceof Uint8Array ? this.processOne(x, 0) : this.processOne(x.frame, x.inPort ?? 0);
        if (this.live) {
          this.global[L.GC_RX_PACKETS]++;
          this.global[L.GC_RX_BYTES] += Math.min((x instanceof Uint8Array ? x : x.frame).length, 0xffff); // D_LEN is a u16
          this.global[r.verdict === L.V_FORWARD ? L.GC_FORWARD : r.verdict === L.V_REJECT ? L.GC_REJECT : r.verdict === L.V_TO_HOST ? L.GC_TO_HOST : L.GC_DROP]++;
          this.reasons[r.reason]++;
        }
        out.push(r);
      }
      return out;
    } finally {
      this.live = true;
    }
  }

  /** A single frame as its own batch. */
  process(frame: Uint8Array, inPort = 0, now = 0, opts: { dryRun?: boolean } = {}): ModelResult {
    return this.processBatch([{ frame, inPort }], now, opts)[0];
  }

  private processOne(input: Uint8Array, inPort: number): ModelResult {
    const t: ModelTrace = { stages: 0, verdict: 0, reason: 0, outPort: L.PORT_NONE, front: 0, backend: 0, flow: 0, ct: L.TRCT_NONE, select: L.TRSEL_NONE, proto: 0, family: 0, l3: 0, l4: 0, hash: 0 };
    // the length field is a u16 in the descriptor (the host clamps longer frames to 0xffff)
    const len = Math.min(input.length, 0xffff);
    const f = input.slice(0, Math.min(len, this.opts.slotSize));
    const finish = (verdict: number, reason: number, outPort: number, out: Uint8Array = f): ModelResult => {
      if (verdict === L.V_DROP) outPort = L.PORT_NONE;
      Object.assign(t, { verdict, reason, outPort });
      return { verdict, reason, outPort, frame: out, trace: t };
    };
    if (inPort === L.PORT_NONE) return finish(L.V_DROP, L.REASON_DROP_BAD_PORT, L.PORT_NONE);
    if (len > this.opts.slotSize) return finish(L.V_DROP, L.REASON_DROP_OVERSIZE, L.PORT_NONE);
    if (len < 14) return finish(L.V_DROP, L.REASON_DROP_TRUNCATED_L2, L.PORT_NONE);
    const po = parseForCore(f, len);
    if (!po.ok) {
      t.l3 = po.l3; t.family = po.family; t.proto = po.proto;
      return finish(po.verdict, po.reason, L.PORT_NONE);
    }
    const p = po.p;
    t.l3 = p.l3; t.l4 = p.l4; t.proto = p.proto; t.family = p.family;
    // core: a later fragment's hash is set once its ports are known (0 until then)
    t.hash = p.later ? 0 : flowHash(p.src, p.dst, p.sport, p.dport, p.proto);
    t.stages = L.TS_PARSED;
    const x: Frame = { f, len, inPort, p, t, verdict: L.V_DROP, reason: 0, outPort: L.PORT_NONE };
    this.decide(x);
    return finish(x.verdict, x.reason, x.outPort, x.out ?? f);
  }

  private result(x: Frame, verdict: number, reason: number, outPort: number): void {
    x.verdict = verdict; x.reason = reason; x.outPort = outPort;
  }
  private drop(x: Frame, reason: number): void { this.result(x, L.V_DROP, reason, L.PORT_NONE); }

  // ---- fragments (core: assembly/fragment.ts) ---------------------------------------------------

  private fragBucket(p: Parsed): number {
    const h = flowHash(p.src, p.dst, p.fragId & 0xffff, p.fragId >>> 16, p.proto);
    return (h & (this.fragBuckets - 1)) * L.FRAG_WAYS;
  }

  private static fragMatch(e: FragSlot, p: Parsed): boolean {
    return e.family === p.family && e.proto === p.proto && e.id === p.fragId && eqBytes(e.src, p.src) && eqBytes(e.dst, p.dst);
  }

  /** Core: the entry with the key, else the bucket's first empty slot, else its oldest (ties: first). */
  private fragRemember(p: Parsed): void {
    if (!this.fragBuckets) return;
    const b = this.fragBucket(p);
    let hit = -1, empty = -1, oldest = 0, oldestAge = 0;
    for (let w = 0; w < L.FRAG_WAYS; w++) {
      const e = this.frags[b + w];
      if (!e) { if (empty < 0) empty = w; continue; }
      if (ReferenceModel.fragMatch(e, p)) { hit = w; break; }
      const age = (this.now - e.lastSeen) >>> 0;
      if (age > oldestAge) { oldestAge = age; oldest = w; }
    }
    const w = hit >= 0 ? hit : empty >= 0 ? empty : oldest;
    this.frags[b + w] = { src: p.src, dst: p.dst, proto: p.proto, family: p.family, id: p.fragId, sport: p.sport, dport: p.dport, lastSeen: this.now };
  }

  private fragFollow(p: Parsed): boolean {
    if (!this.fragBuckets) return false;
    const b = this.fragBucket(p);
    for (let w = 0; w < L.FRAG_WAYS; w++) {
      const e = this.frags[b + w];
      if (e && ReferenceModel.fragMatch(e, p)) {
        if (((this.now - e.lastSeen) >>> 0) > this.opts.timeouts.fragmentMs) return false;
        p.sport = e.sport; p.dport = e.dport;
        return true;
      }
    }
    return false;
  }

  /** Core: laterFragment() in assembly/pipeline.ts. */
  private laterFragment(x: Frame): void {
    const p = x.p;
    if (!this.fragFollow(p)) return this.drop(x, L.REASON_DROP_FRAGMENT);
    if (p.proto === 6 || p.proto === 17 || p.proto === 132) {
      x.t.hash = flowHash(p.src, p.dst, p.sport, p.dport, p.proto);
      const hit = this.lookup(p.family, p.proto, p.src, p.dst, p.sport, p.dport);
      if (hit) {
        if (hit.dir === 1) this.hitReply(x, hit.flow); else this.hitOrig(x, hit.flow);
        return;
      }
      const fv = this.tables.svc.get(svcKey(p.dst, p.dport, p.proto, p.family));
      if (fv) return this.laterFragmentNoFlow(x, fv);
    }
    this.noService(x);
  }

  /** Core: laterFragmentNoFlow() in assembly/pipeline.ts — held with a first fragment that waits
   * for its backend's neighbour, else drop_fragment. */
  private laterFragmentNoFlow(x: Frame, fv: FrontView): void {
    const p = x.p, f = fv.f;
    if (f.maglev.length !== 0 && !f.clusterFront && (f.flags & (L.FEF_AFFINITY | L.FEF_SOURCE_RANGES)) === 0) {
      const bid = maglevBackendAt(f, x.t.hash % f.maglev.length);
      const bv = this.tables.usable(bid) ? this.tables.backs.get(bid) : undefined;
      // core: a spent TTL's first fragment was answered, never held — unless the node is at either end
      if (bv && bv.b.outPort === L.PORT_NONE && bv.b.family === p.family &&
          !this.ttlSpent(p, this.tables.nodeItself(p.src, p.family) || this.tables.nodeItself(bv.addr, p.family))) {
        x.t.front = f.id;
        x.t.backend = bid;
        return this.drop(x, L.REASON_DROP_NO_ROUTE);
      }
    }
    this.drop(x, L.REASON_DROP_FRAGMENT);
  }

  private decide(x: Frame): void {
    const p = x.p;
    if (p.later) return this.laterFragment(x);
    if (p.fragment && this.live) this.fragRemember(p);
    if (p.hasPorts) {
      const hit = this.lookup(p.family, p.proto, p.src, p.dst, p.sport, p.dport);
      if (hit) {
        if (hit.dir === 1) this.hitReply(x, hit.flow); else this.hitOrig(x, hit.flow);
        return;
      }
      const fv = this.tables.svc.get(svcKey(p.dst, p.dport, p.proto, p.family));
      if (fv) { this.newFlow(x, fv, false); return; }
      return this.noFrontend(x);
    } else {
      const icmp = (p.proto === 1 && p.family === 4) || (p.proto === 58 && p.family === 6);
      if (icmp && isIcmpError(p.family, p.icmpType)) {
        if (this.icmpError(x)) return;
      } else if ((!icmp || isIcmpQuery(p.family, p.icmpType)) && this.tables.clusterIps.has(svcKey(p.dst, L.SM_ANY_PORT, L.SM_ANY_PROTO, p.family))) {
        // core: pipeline.ts decide — a ping (or a protocol without ports) to an allocated ClusterIP
        return this.reject(x, L.REASON_REJECT_CLUSTER_IP_PROTO);
      }
    }
    this.noService(x);
  }

  // ---- conntrack hits --------------------------------------------------------------------------

  private hitOrig(x: Frame, fl: ModelFlow): void {
    const p = x.p, t = x.t;
    let bv: BackView | undefined;
    if (!reopensClosed(fl.state, p.proto, p.tcpFlags) && this.tables.snatHolds(fl)) {
      bv = this.tables.backendHolds(fl);
      // core: pipeline.ts hitOrig — a TCP/SCTP flow whose backend left stays on its address
      // (kube-proxy leaves its conntrack entry alone); a pure SYN on it re-selects
      if (!bv && !pureSyn(p.proto, p.tcpFlags) && this.tables.keepsAddress(fl)) return this.hitLeft(x, fl);
    }
    if (bv && this.tables.udpLeftServing(bv, p)) bv = undefined;  // core: stale.ts udpReselectFront
    if (!bv && p.later) return this.drop(x, L.REASON_DROP_FRAGMENT);  // core: a later fragment never starts a flow
    if (!bv) {
      // The flow's SNAT address is gone, or a UDP flow's backend left the current generation (or
      // its id now names another backend) or stopped serving, or a new SYN reopens a closing
      // flow's tuple or one whose backend left: the packet is decided again as a new flow of the
      // same frontend; with the frontend gone too, as a packet without one (noFrontend).
      // core: frees the entry and creates a new one from this packet (state, REPLIED flag,
      // created time and client MAC/port start over) rather than updating it in place as the
      // contract says; the model follows the core (verdict and bytes are the same either way).
      const fv = this.tables.svc.get(svcKey(p.dst, p.dport, p.proto, p.family));
      if (this.live) this.freeFlow(fl.index);
      if (fv) { t.stages |= L.TS_STALE_RESELECT; this.newFlow(x, fv, true); }
      else this.noFrontend(x);
      return;
    }
    t.stages |= L.TS_CT_HIT_ORIG;
    t.ct = L.TRCT_HIT_ORIG; t.select = L.TRSEL_EXISTING;
    // core: pipeline.ts hitOrig — the flow's frontend id only while it is still its frontend's
    t.flow = fl.index; t.front = this.tables.heldFrontId(fl); t.backend = fl.backendId;
    if (this.ttlSpent(p, nodeFlow(fl))) return this.ttlExceeded(x, p.dst);
    if (bv.b.outPort === L.PORT_NONE) return this.drop(x, L.REASON_DROP_NO_ROUTE);
    if (!this.fitsPort(x, bv.b.outPort)) return;
    this.origState(x, fl);
    const snat = (fl.flags & L.CTF_SNAT) ? this.tables.snatFor(fl.flags, fl.family) : undefined;
    this.fwdOrig(x, fl.backend, fl.bport, snat, fl.nport, bv.dstMac, bv.srcMac, bv.b.outPort, nodeFlow(fl));
    this.countFrontBackend(t.front, fl.backendId, x.len);
  }

  /** Core: pipeline.ts hitLeft — a TCP/SCTP flow whose backend left, translated as created and
   * forwarded by the route to its own address; none: dropped. Trace and counters: backend 0. */
  private hitLeft(x: Frame, fl: ModelFlow): void {
    const p = x.p, t = x.t;
    t.stages |= L.TS_CT_HIT_ORIG | L.TS_BACKEND_LEFT;
    t.ct = L.TRCT_HIT_ORIG; t.select = L.TRSEL_EXISTING;
    t.flow = fl.index; t.front = this.tables.heldFrontId(fl);
    if (this.ttlSpent(p, nodeFlow(fl))) return this.ttlExceeded(x, p.dst);
    const r = this.tables.keptRoute(fl);
    if (!r) return this.drop(x, L.REASON_DROP_BACKEND_UNREACHABLE);
    if (!this.fitsPort(x, r.outPort)) return;
    this.origState(x, fl);
    const snat = (fl.flags & L.CTF_SNAT) ? this.tables.snatFor(fl.flags, fl.family) : undefined;
    this.fwdOrig(x, fl.backend, fl.bport, snat, fl.nport, r.dstMac, r.srcMac, r.outPort, nodeFlow(fl));
    this.countFrontBackend(t.front, 0, x.len);
  }

  /** Live: the state change of an original-direction packet forwarded on flow fl (core:
   * conntrack.ts stateOnOrig), last_seen, GC_CT_HIT. */
  private origState(x: Frame, fl: ModelFlow): void {
    const p = x.p;
    if (!this.live) return;
    if (this.udpStreams(fl)) fl.state = L.CTS_UDP_REPLIED;
    else if (p.proto === 6) {
      if (p.tcpFlags & (TCP_FIN | TCP_RST)) fl.state = closeState(fl.state, p.tcpFlags, L.CTS_TCP_HALF_CLOSED_ORIG);
      else if (fl.state === L.CTS_TCP_SYN_RECV && (p.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_ACK) {
        // the client's ACK of the SYN-ACK completes the handshake in both directions
        fl.state = L.CTS_TCP_EST;
        fl.flags |= L.CTF_CONFIRMED;
      }
    } else if (p.proto === 132) {
      // core: conntrack.ts sctpUpdate — an INIT on a flow that stays CLOSED does not renew its timeout
      const was = fl.state;
      this.sctpState(fl, p.tcpFlags, false);
      if (was === L.CTS_SCTP_CLOSED && fl.state === L.CTS_SCTP_CLOSED && p.tcpFlags === 1) {
        this.global[L.GC_CT_HIT]++;
        return;
      }
    }
    fl.lastSeen = this.now;
    this.global[L.GC_CT_HIT]++;
  }

  /** core: conntrack.ts sctpUpdate — the kernel's SCTP table; reaching ESTABLISHED confirms (ASSURED). */
  private sctpState(fl: ModelFlow, chunk: number, reply: boolean): void {
    fl.state = sctpNext(fl.state, chunk, reply);
    if (fl.state === L.CTS_SCTP) fl.flags |= L.CTF_CONFIRMED;
  }

  /** core: conntrack.ts udpStreams — a UDP flow becomes a stream (CTS_UDP_REPLIED) on a packet
   *  after a reply, more than UDP_STREAM_MS after its first packet (the kernel's UDP conntrack). */
  private udpStreams(fl: ModelFlow): boolean {
    return fl.state === L.CTS_UDP && (fl.flags & L.CTF_REPLIED) !== 0 && ((this.now - fl.created) >>> 0) > L.UDP_STREAM_MS;
  }

  private hitReply(x: Frame, fl: ModelFlow): void {
    const p = x.p, t = x.t;
    // core: pipeline.ts hitReply, stale.ts udpReplyStale — a UDP flow whose backend left or
    // stopped serving (on a service port in force) is freed; the old pod's datagram is routed as it is
    if (this.tables.udpReplyStale(fl)) {
      if (this.live) this.freeFlow(fl.index);
      return this.noService(x);
    }
    t.stages |= L.TS_CT_HIT_REPLY;
    t.ct = L.TRCT_HIT_REPLY; t.select = L.TRSEL_EXISTING;
    // core: pipeline.ts hitReply — a backend that left is no backend's (its id may name another)
    t.flow = fl.index; t.front = this.tables.heldFrontId(fl); t.backend = this.tables.heldBackendId(fl);
    if (t.backend === 0) t.stages |= L.TS_BACKEND_LEFT;
    // core: pipeline.ts hitReply — to the backend from the SNAT address it sent to, else the in port's
    if (this.ttlSpent(p, nodeFlow(fl))) return this.ttlExceeded(x, (fl.flags & L.CTF_SNAT) ? p.dst : undefined);
    if (!this.fitsPort(x, fl.clientPort)) return;
    if (this.live) {
      if (p.proto === 6) {
        if (p.tcpFlags & (TCP_FIN | TCP_RST)) fl.state = closeState(fl.state, p.tcpFlags, L.CTS_TCP_HALF_CLOSED_REPLY);
        else if (fl.state === L.CTS_TCP_SYN) {
          if ((p.tcpFlags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) fl.state = L.CTS_TCP_SYN_RECV;
        } else if (fl.state === L.CTS_TCP_MIDSTREAM) {
          // a valid answer to a flow picked up mid-stream confirms it
          fl.state = L.CTS_TCP_EST;
          fl.flags |= L.CTF_CONFIRMED;
        }
      } else if (p.proto === 132) this.sctpState(fl, p.tcpFlags, true);
      else if (this.udpStreams(fl)) fl.state = L.CTS_UDP_REPLIED; // (before CTF_REPLIED: the first reply never makes a stream)
      fl.flags |= L.CTF_REPLIED;
      fl.lastSeen = this.now;
      this.global[L.GC_CT_HIT]++;
    }
    const snat = (fl.flags & L.CTF_SNAT) !== 0;
    natRewrite(x.f, p, fl.vip, fl.vport, snat ? fl.client : undefined, fl.cport, nodeFlow(fl));
    x.f.set(fl.clientMac, 0); x.f.set(fl.localMac, 6);
    t.stages |= L.TS_REVERSE_NAT;
    this.result(x, L.V_FORWARD, L.REASON_FWD_REPLY, fl.clientPort);
    this.countFrontBackend(t.front, t.backend, x.len);
  }

  /** Core: rewrite.ts fwdOrig — out of port `out` to next hop dstMac from srcMac (the backend's
   * hop, or for a flow whose backend left, the route's to its address). */
  private fwdOrig(x: Frame, beAddr: Uint8Array, bport: number, snat: Uint8Array | undefined, nport: number, dstMac: Uint8Array, srcMac: Uint8Array, out: number, node: boolean): void {
    natRewrite(x.f, x.p, snat, nport, beAddr, bport, node);
    x.f.set(dstMac, 0); x.f.set(srcMac, 6);
    x.t.stages |= L.TS_DNAT | (snat ? L.TS_SNAT : 0);
    this.result(x, L.V_FORWARD, L.REASON_FWD_NAT, out);
  }

  // ---- new flows -------------------------------------------------------------------------------

  /** Affinity table: home slot = hash & mask, AFF_PROBE slots examined; the client's own entry is
   *  used while fresh and its backend is ready (serving-terminating on a fallback frontend), else overwritten; a new entry
   *  goes to the first empty slot, else replaces the least recently seen of the window. */
  private selectAffinity(x: Frame, fv: FrontView, client: Uint8Array): number {
    const f = fv.f;
    // core: select.ts affinityKey — the port's entries are keyed by its ClusterIP frontend
    const key = this.tables.affinityKey(f);
    const h = affinityHash(client, key);
    const mask = this.opts.affinitySlots - 1;
    const window = Math.min(L.AFF_PROBE, mask + 1);
    let free = -1, oldest = -1, oldestAge = 0;
    for (let k = 0; k < window; k++) {
      const i = (h + k) & mask;
      const s = this.affinity[i];
      if (!s) { free = i; break; }
      if (s.front === key && s.hash === h && eqBytes(s.client, client)) {
        if (((this.now - s.lastSeen) >>> 0) <= f.affinityTimeoutMs && s.backend !== 0) {
          const st = this.tables.backs.get(s.backend)?.b.state ?? L.BES_ABSENT;
          // core: select.ts — with FEF_AFFINITY_IN_SET the backend must be in this frontend's list
          if ((st === L.BES_READY || (st === L.BES_TERMINATING_SERVING && (f.flags & L.FEF_FALLBACK) !== 0)) &&
              (!(f.flags & L.FEF_AFFINITY_IN_SET) || Array.prototype.includes.call(f.backends, s.backend))) {
            if (this.live) { s.lastSeen = this.now; this.global[L.GC_AFF_HIT]++; }
            x.t.select = L.TRSEL_AFFINITY;
            return s.backend;
          }
        }
        free = i;
        break;
      }
      const age = (this.now - s.lastSeen) >>> 0;
      if (oldest < 0 || age > oldestAge) { oldest = i; oldestAge = age; }
    }
    // a miss picks like a new client: flow hash mixed with the clock (core: select.ts freshPickHash)
    const bid = maglevBackendAt(f, freshPickHash(x.t.hash, this.now) % f.maglev.length);
    if (!this.tables.usable(bid)) return 0;
    const slot = free >= 0 ? free : oldest;
    if (this.live && slot >= 0) {
      this.affinity[slot] = { client: client.slice(), front: key, backend: bid, lastSeen: this.now, hash: h };
      this.global[L.GC_AFF_NEW]++;
    }
    return bid;
  }

  private newFlow(x: Frame, fv: FrontView, reselect: boolean): void {
    const p = x.p, t = x.t;
    let f = fv.f;
    t.stages |= L.TS_SERVICE_MATCH;
    t.front = f.id;
    t.ct = reselect ? L.TRCT_RESELECT : L.TRCT_NEW;
    const client = { family: p.family, bytes: p.src };
    if (f.flags & L.FEF_SOURCE_RANGES) {
      t.stages |= L.TS_SOURCE_RANGE_CHECKED;
      if (!fv.cidrs.some((c) => cidrContains(c, client))) return this.drop(x, L.REASON_DROP_SOURCE_RANGE);
    }
    // core: pipeline.ts newFlow — externalTrafficPolicy Local holds for outside sources only: a pod
    // or the node itself goes to the cluster front's table, the node masqueraded
    let masqLocal = false;
    let masqFront = (f.flags & L.FEF_MASQUERADE) !== 0;
    if (f.clusterFront && !(f.flags & L.FEF_AFFINITY_SHARED)) {
      const hit = this.tables.localSource(client, x.inPort);
      if (hit && !(hit.node && (f.flags & L.FEF_NODE_SOURCE_DROP))) {
        fv = this.tables.fronts.get(f.clusterFront) ?? zeroFront(f.clusterFront);
        f = fv.f;
        t.front = f.id;
        t.stages |= L.TS_LOCAL_SOURCE;
        masqLocal = hit.node;
        masqFront = false; // core: the cluster front's masqueradeAll is for its ClusterIP's own traffic
      }
    } else if (f.flags & L.FEF_MASQUERADE_OUTSIDE) {
      // core: pipeline.ts newFlow — a ClusterIP reached from outside the pods is masqueraded
      const hit = this.tables.localSource(client, x.inPort);
      masqLocal = !hit || hit.node;
    }
    if (f.maglev.length === 0) {
      // endpoints exist but the traffic policy leaves none for this traffic: kube-proxy drops
      if (f.flags & L.FEF_POLICY_DROP) return this.drop(x, (f.flags & L.FEF_EXTERNAL) ? L.REASON_DROP_ETP_NO_LOCAL : L.REASON_DROP_ITP_NO_LOCAL);
      this.reject(x, L.REASON_REJECT_NO_ENDPOINTS);
      if (x.verdict === L.V_REJECT) this.countFrontBackend(f.id, 0, x.len);
      return;
    }
    const h = t.hash;
    t.select = (f.flags & L.FEF_FALLBACK) ? L.TRSEL_FALLBACK_TERMINATING : L.TRSEL_MAGLEV;
    let bid: number;
    if (f.flags & L.FEF_AFFINITY) bid = this.selectAffinity(x, fv, p.src);
    else {
      bid = maglevBackendAt(f, h % f.maglev.length);
      if (!this.tables.usable(bid)) bid = 0;
    }
    if (bid === 0) { t.select = L.TRSEL_NONE; return this.drop(x, L.REASON_DROP_NO_ROUTE); }
    const bv = this.tables.backs.get(bid)!;
    t.backend = bid;
    t.stages |= L.TS_BACKEND_SELECTED;
    // core: pipeline.ts newFlow — the node itself at either end (snat.ts nodeEnds): FLOW_NODE
    const node = this.tables.nodeItself(p.src, p.family) || this.tables.nodeItself(bv.addr, p.family);
    // core: pipeline.ts newFlow — from the service address once the backend is picked, no flow
    if (this.ttlSpent(p, node)) return this.ttlExceeded(x, p.dst);
    if (bv.b.outPort === L.PORT_NONE || bv.b.family !== p.family) return this.drop(x, L.REASON_DROP_NO_ROUTE);
    // core: pipeline.ts newFlow — too big for the backend's port: no flow is created
    if (!this.fitsPort(x, bv.b.outPort)) return;
    const bport = bv.b.port;
    let nport = p.sport;
    let snat: Uint8Array | undefined;
    let hairpin = false;
    const snatAddr = this.tables.snat[p.family === 4 ? 0 : 1];
    const hp = this.tables.hairpin[p.family === 4 ? 0 : 1];
    // core: snat.ts snatKind — a backend at a node address (the SNAT address or another) is the
    // node itself: not masqueraded toward it; the node reaching itself takes the hairpin address
    // (translated to, or left at, a node address the reply would stay in the node)
    const self = eqBytes(p.src, bv.addr);
    const beNode = snatAddr !== undefined && this.tables.nodeItself(bv.addr, p.family);
    hairpin = beNode && hp !== undefined && (self || eqBytes(p.src, snatAddr!) || this.tables.nodeAddress(p.src, p.family));
    if (snatAddr && (hairpin || ((masqLocal || masqFront) && !beNode) || self)) {
      snat = hairpin ? hp! : snatAddr;
      const min = this.opts.snatPortMin, max = this.opts.snatPortMax;
      if (max < min || min === 0) return this.drop(x, L.REASON_DROP_SNAT_EXHAUSTED);
      const range = max - min + 1;
      let port = min + (h % range);
      const tries = Math.min(L.SNAT_PROBE_MAX, range);
      let found = false;
      for (let k = 0; k < tries; k++) {
        if (!this.lookup(p.family, p.proto, bv.addr, snat, bport, port)) { found = true; break; }
        port = port >= max ? min : port + 1;
      }
      if (!found) return this.drop(x, L.REASON_DROP_SNAT_EXHAUSTED);
      nport = port;
    }
    const natDst = snat ?? p.src;
    const isRst = p.proto === 6 && (p.tcpFlags & TCP_RST) !== 0;
    if (!isRst) {
      const owner = snat ? undefined : this.lookup(p.family, p.proto, bv.addr, natDst, bport, nport);
      if (owner) {
        // core: a pure SYN takes over the reply tuple of a closing TCP flow (port reuse after a
        // close); any other owner's replies would be mistranslated
        if (!reopensClosed(owner.flow.state, p.proto, p.tcpFlags)) {
          return this.drop(x, L.REASON_DROP_CT_CLASH);
        }
        if (this.live) this.freeFlow(this.flows.indexOf(owner.flow));
      }
      t.stages |= L.TS_CT_NEW;
      if (this.live) {
        const idx = this.allocFlow();
        if (!idx) return this.drop(x, L.REASON_DROP_CT_FULL);
        let state = L.CTS_UDP;
        if (p.proto === 6) {
          // a pure SYN opens a handshake; any other packet (bare ACK, data) is a mid-stream pick-up
          state = (p.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN ? L.CTS_TCP_SYN : L.CTS_TCP_MIDSTREAM;
          if (p.tcpFlags & TCP_FIN) state = L.CTS_TCP_CLOSING;
        } else if (p.proto === 132) state = sctpInitial(p.tcpFlags);
        let flags = snat ? (hairpin ? L.CTF_SNAT | L.CTF_HAIRPIN : L.CTF_SNAT) : 0;
        if (t.select === L.TRSEL_AFFINITY) flags |= L.CTF_AFFINITY;
        if (f.flags & L.FEF_FALLBACK) flags |= L.CTF_FALLBACK;
        if (node) flags |= L.FLOW_NODE;
        const fl: ModelFlow = {
          index: idx, family: p.family, proto: p.proto,
          client: p.src, vip: p.dst, backend: bv.addr, natDst,
          cport: p.sport, vport: p.dport, bport, nport, state, flags,
          lastSeen: this.now, created: this.now, front: f.id, backendId: bid,
          clientPort: x.inPort, outPort: bv.b.outPort,
          clientMac: x.f.slice(6, 12), localMac: x.f.slice(0, 6),
        };
        this.flows[idx] = fl;
        this.index.set(this.origKey(fl), { flow: idx, dir: 0 });
        this.index.set(this.replyKey(fl), { flow: idx, dir: 1 });
        t.flow = idx;
        this.global[reselect ? L.GC_CT_RESELECT : L.GC_CT_NEW]++;
        if (snat) this.global[L.GC_SNAT]++;
      }
    } else {
      t.ct = L.TRCT_NONE;
    }
    this.fwdOrig(x, bv.addr, bport, snat, nport, bv.dstMac, bv.srcMac, bv.b.outPort, node);
    this.countFrontBackend(f.id, bid, x.len);
  }

  // ---- no service: routing / host --------------------------------------------------------------

  /** Core: pipeline.ts noFrontend — a ClusterIP on a port/protocol its Service does not define is
   * rejected; anything else has no service. */
  private noFrontend(x: Frame): void {
    const p = x.p;
    if (this.tables.clusterIps.has(svcKey(p.dst, L.SM_ANY_PORT, L.SM_ANY_PROTO, p.family))) return this.reject(x, L.REASON_REJECT_INVALID_PORT);
    this.noService(x);
  }

  private noService(x: Frame): void {
    const p = x.p;
    const dst = { family: p.family, bytes: p.dst };
    const r = this.tables.routes.find((rt) => cidrContains(rt.c, dst));
    if (!r) return this.result(x, L.V_TO_HOST, L.REASON_HOST_NO_MATCH, L.PORT_NONE);
    if (r.serviceCidr) return this.drop(x, L.REASON_DROP_NO_SERVICE_IP); // core: pipeline.ts noService
    // core: ttl.ts routedNode — from or to a node address: its TTL kept, a spent one goes on
    const node = this.tables.nodeItself(p.src, p.family) || this.tables.nodeItself(p.dst, p.family);
    if (this.ttlSpent(p, node)) return this.ttlExceeded(x);
    if (r.outPort === L.PORT_NONE) return this.drop(x, L.REASON_DROP_NO_ROUTE);
    if (!this.fitsPort(x, r.outPort)) return;
    ttlStep(x.f, p, new CsumDelta(), node);
    x.f.set(r.dstMac, 0); x.f.set(r.srcMac, 6);
    x.t.stages |= L.TS_ROUTED;
    this.result(x, L.V_FORWARD, L.REASON_FWD_ROUTED, r.outPort);
  }

  /** Core: rewrite.ts ttlSpent — a spent TTL, unless the node itself is at either end. */
  private ttlSpent(p: Parsed, node: boolean): boolean {
    return !node && p.ttl <= 1;
  }

  /** Core: ttl.ts ttlExceeded — a spent TTL: an ICMP time exceeded from `own` (a service
   *  packet: the address it was sent to) or else the in port's address, unless icmp_send /
   *  icmpv6_send would never answer it, there is no address of the family, or the reject rate
   *  limit refuses. */
  private ttlExceeded(x: Frame, own?: Uint8Array): void {
    const p = x.p, f = x.f;
    const never = (f[0] & 1) !== 0 || p.later ||
      (p.family === 4
        ? (p.dst[0] & 0xf0) === 0xe0 || p.dst.subarray(0, 4).every((b) => b === 255) || p.src.subarray(0, 4).every((b) => b === 0) ||
          (p.proto === 1 && icmpNeverAnswered(4, p.icmpType))
        : p.dst[0] === 0xff || p.src.every((b) => b === 0) || (p.proto === 58 && icmpNeverAnswered(6, p.icmpType)));
    if (never) return this.drop(x, L.REASON_DROP_TTL_EXCEEDED);
    const from = own ?? this.portAddrs.get(x.inPort)?.get(p.family);
    if (!from) return this.drop(x, L.REASON_DROP_TTL_NO_ADDRESS);
    if (!this.rejectAllowed(p.src, p.family)) { x.t.stages |= L.TS_REJECT; return this.drop(x, L.REASON_DROP_REJECT_RATE_LIMITED); }
    x.t.stages |= L.TS_REJECT;
    this.answerWith(x, L.REASON_REJECT_TTL_EXCEEDED, buildIcmpError(f, p, this.opts.slotSize, p.family === 4 ? 11 : 3, 0, 0, this.nextIcmpId(p.family), from));
  }

  // ---- egress MTU (core: assembly/mtu.ts) ---------------------------------------------------------

  /** Whether the IP packet may leave by port `out`; false: answered with ICMP fragmentation
   *  needed / packet too big (IPv4 with DF, IPv6; the MTU reported is at least 1280 for IPv6), or
   *  dropped (IPv4 without DF, a non-first IPv4 fragment, an ICMP error). */
  private fitsPort(x: Frame, out: number): boolean {
    const p = x.p;
    let mtu = this.portMtus.get(out) ?? 0;
    const len = p.end - p.l3;
    if (mtu === 0 || len <= mtu) return true;
    if (p.family === 6 && mtu < 1280) { mtu = 1280; if (len <= mtu) return true; }
    const icmpErr = p.proto === (p.family === 4 ? 1 : 58) && !p.later && icmpNeverAnswered(p.family, p.icmpType);
    if (p.family === 4) {
      const fo = rd16(x.f, p.l3 + 6);
      if ((fo & 0x4000) === 0 || (fo & 0x1fff) !== 0 || icmpErr) { this.drop(x, L.REASON_DROP_PACKET_TOO_BIG); return false; }
      this.answer(x, L.REASON_REJECT_PACKET_TOO_BIG, 3, 4, mtu);
    } else {
      if (icmpErr) { this.drop(x, L.REASON_DROP_PACKET_TOO_BIG); return false; }
      this.answer(x, L.REASON_REJECT_PACKET_TOO_BIG, 2, 0, mtu);
    }
    return false;
  }

  // ---- reject (no endpoints) --------------------------------------------------------------------

  /** Core: reject.ts reject — an ICMP / ICMPv6 port unreachable for every protocol (the nftables
   *  proxier's bare `reject`) from rejectSource, a RST dropped, under the rate limit; a packet the
   *  node would forward (neither end the node) meets ip_forward first: a spent TTL gets a time
   *  exceeded from the in port's address, the others are quoted with their TTL one lower. */
  private reject(x: Frame, reason: number): void {
    const p = x.p;
    const forwarded = !this.tables.nodeItself(p.src, p.family) && !this.tables.nodeItself(p.dst, p.family);
    if (this.ttlSpent(p, !forwarded)) return this.ttlExceeded(x);
    x.t.stages |= L.TS_REJECT;
    if (p.proto === 6 && (p.tcpFlags & TCP_RST)) {
      // a RST is never answered: dropped, counted under its own reason
      return this.drop(x, L.REASON_DROP_RST_NO_ENDPOINTS);
    }
    if (!this.rejectAllowed(p.src, p.family)) return this.drop(x, L.REASON_DROP_REJECT_RATE_LIMITED);
    let quoted = x.f;
    if (forwarded) { quoted = x.f.slice(); decTtl(quoted, p, new CsumDelta()); }
    x.t.stages |= L.TS_REJECT;
    this.answerWith(x, reason, buildIcmpError(quoted, p, this.opts.slotSize, p.family === 4 ? 3 : 1, p.family === 4 ? 3 : 4, 0, this.nextIcmpId(p.family), this.rejectSource(p, x.inPort)));
  }

  /** Core: reject.ts rejectSource — the error's source as __icmp_send / icmp6_send choose it: the
   *  destination when it is the node itself, else the source when that is (the node's own packet:
   *  the route back to its own address), else the in port's address of the family (the time
   *  exceeded's), else (no such address) the destination. */
  private rejectSource(p: Parsed, inPort: number): Uint8Array | undefined {
    if (this.tables.nodeItself(p.dst, p.family)) return undefined;
    if (this.tables.nodeItself(p.src, p.family)) return p.src;
    return this.portAddrs.get(inPort)?.get(p.family);
  }

  /** Core: ratelimit.ts rejectAllowed. The global bucket is looked at first, the client's charged,
   *  the global one charged only for an answer that goes; a new client (its bucket's first empty
   *  entry, else the one refilled longest ago, ties the first) starts with a full burst. */
  private rejectAllowed(client: Uint8Array, family: number): boolean {
    const now = this.now;
    const credit = Math.min(L.RL_GLOBAL_BURST * 1000, this.rlCredit + Math.min((now - this.rlStamp) >>> 0, 1000) * L.RL_GLOBAL_PER_SEC);
    if (credit < 1000) {
      if (this.live) { this.rlCredit = credit; this.rlStamp = now; }
      return false;
    }
    const ivl = family === 4 ? L.RL_HOST_INTERVAL_V4_MS : L.RL_HOST_INTERVAL_V6_MS;
    const cap = ivl * L.RL_HOST_BURST;
    const first = ((affinityHash(client, family) & (L.RL_BUCKETS - 1)) >>> 0) * L.RL_WAYS;
    let hit = -1, empty = -1, oldest = 0, oldestAge = 0;
    for (let w = 0; w < L.RL_WAYS; w++) {
      const e = this.rlClients[first + w];
      if (!e) { if (empty < 0) empty = w; continue; }
      if (e.family === family && eqBytes(e.addr, client)) { hit = w; break; }
      const age = (now - e.last) >>> 0;
      if (age > oldestAge) { oldestAge = age; oldest = w; }
    }
    const he = hit >= 0 ? this.rlClients[first + hit]! : undefined;
    const tokens = he ? Math.min(cap, he.tokens + Math.min((now - he.last) >>> 0, cap)) : cap;
    const ok = tokens >= ivl;
    if (this.live) {
      this.rlClients[first + (hit >= 0 ? hit : empty >= 0 ? empty : oldest)] = { addr: client.slice(), family, tokens: ok ? tokens - ivl : tokens, last: now };
      this.rlCredit = ok ? credit - 1000 : credit;
      this.rlStamp = now;
    }
    return ok;
  }

  /** An ICMP error type/code with `rest` in its type-specific word, quoting the packet, back out of
   *  the in port (core: reject.ts answer). */
  private answer(x: Frame, reason: number, type: number, code: number, rest: number): void {
    x.t.stages |= L.TS_REJECT;
    this.answerWith(x, reason, buildIcmpError(x.f, x.p, this.opts.slotSize, type, code, rest, this.nextIcmpId(x.p.family)));
  }

  /** Core: reject.ts nextIcmpId — the IPv4 ID of the ICMP error being built (IPv6: none, 0);
   *  moves only when live. */
  private nextIcmpId(family: number): number {
    if (family !== 4) return 0;
    const id = (this.icmpId + 1) & 0xffff;
    if (this.live) this.icmpId = id;
    return id;
  }

  private answerWith(x: Frame, reason: number, l3: Uint8Array): void {
    const f = x.f, p = x.p;
    const eth = f.slice(0, p.l3);
    eth.set(f.subarray(6, 12), 0); eth.set(f.subarray(0, 6), 6); // swap MACs, keep any VLAN tag
    const out = new Uint8Array(eth.length + l3.length);
    out.set(eth, 0); out.set(l3, eth.length);
    x.out = out;
    this.result(x, L.V_REJECT, reason, x.inPort);
  }

  // ---- ICMP errors quoting a NATed flow ----------------------------------------------------------

  private icmpError(x: Frame): boolean {
    const p = x.p, f = x.f, t = x.t;
    const q = parseQuoted(f, p.l4 + 8, p.end, p.family);
    if (!q) return false;
    // The quoted packet is one the dataplane sent, so its reversed tuple is a key of the flow:
    //   sent backend-ward, inner (client|snat):port -> backend:bport  => reply key (dir 1);
    //   sent client-ward,  inner VIP:vport -> client:cport             => original key (dir 0).
    const hit = this.lookup(p.family, q.proto, q.dst, q.src, q.dport, q.sport);
    if (!hit) return false;
    const fl = hit.flow;
    // core: icmp.ts — a UDP flow the cleanup deletes: freed, the error routed untranslated
    if (this.tables.udpReplyStale(fl)) {
      if (this.live) this.freeFlow(fl.index);
      return false;
    }
    const snatFlag = (fl.flags & L.CTF_SNAT) !== 0;
    const snatAddr = this.tables.snatFor(fl.flags, p.family) ?? new Uint8Array(16);
    t.stages |= L.TS_ICMP_INNER | (hit.dir ? L.TS_CT_HIT_REPLY : L.TS_CT_HIT_ORIG);
    t.ct = hit.dir ? L.TRCT_HIT_REPLY : L.TRCT_HIT_ORIG;
    t.select = L.TRSEL_EXISTING;
    // core: icmp.ts — the flow's backend id only while it names the flow's backend
    t.flow = fl.index; t.front = this.tables.heldFrontId(fl); t.backend = this.tables.heldBackendId(fl);
    if (t.backend === 0) t.stages |= L.TS_BACKEND_LEFT;
    // core: icmp.ts — a node flow's error keeps its TTL, a spent one too
    const node = nodeFlow(fl);
    if (this.ttlSpent(p, node)) { this.drop(x, L.REASON_DROP_TTL_EXCEEDED); return true; }
    let inner: { src?: Uint8Array; sport?: number; dst?: Uint8Array; dport?: number };
    let oSrc: Uint8Array | undefined, oDst: Uint8Array | undefined;
    let out: number, dstMac: Uint8Array, srcMac: Uint8Array;
    if (hit.dir === 1) {
      // (a) from the backend side, about a packet sent toward the backend
      inner = { dst: fl.vip, dport: fl.vport };
      if (snatFlag) { inner.src = fl.client; inner.sport = fl.cport; oDst = fl.client; }
      if (eqBytes(p.src, fl.backend)) oSrc = fl.vip;
      out = fl.clientPort; dstMac = fl.clientMac; srcMac = fl.localMac;
    } else {
      // (b) from the client, about a reply sent to it
      // core: icmp.ts — a TCP/SCTP flow whose backend left goes to its own address by its route
      const snatOk = this.tables.snatHolds(fl);
      const bv = snatOk ? this.tables.backendHolds(fl) : undefined;
      if (bv) {
        if (bv.b.outPort === L.PORT_NONE) { this.drop(x, L.REASON_DROP_NO_ROUTE); return true; }
        out = bv.b.outPort; dstMac = bv.dstMac; srcMac = bv.srcMac;
      } else if (snatOk && this.tables.keepsAddress(fl)) {
        const r = this.tables.keptRoute(fl);
        if (!r) { this.drop(x, L.REASON_DROP_BACKEND_UNREACHABLE); return true; }
        out = r.outPort; dstMac = r.dstMac; srcMac = r.srcMac;
      } else { this.drop(x, L.REASON_DROP_ICMP_STALE_FLOW); return true; }  // a stale flow: its own packets re-select
      inner = { src: fl.backend, sport: fl.bport };
      if (snatFlag) { inner.dst = snatAddr; inner.dport = fl.nport; oSrc = snatAddr; }
      if (eqBytes(p.dst, fl.vip)) oDst = fl.backend;
    }
    rewriteQuoted(f, q, inner);
    // outer addresses + TTL (IPv4 header checksum incrementally)
    const n = p.family === 4 ? 4 : 16;
    const so = p.l3 + (p.family === 4 ? 12 : 8), dof = p.l3 + (p.family === 4 ? 16 : 24);
    const d = new CsumDelta();
    if (oSrc) { d.bytes(f.slice(so, so + n), oSrc.subarray(0, n)); f.set(oSrc.subarray(0, n), so); }
    if (oDst) { d.bytes(f.slice(dof, dof + n), oDst.subarray(0, n)); f.set(oDst.subarray(0, n), dof); }
    ttlStep(f, p, d, node);
    // ICMP checksum: recomputed over the whole message (it changed in several places)
    wr16(f, p.l4 + 2, 0);
    const init = p.family === 6 ? pseudoHeaderSum(f.subarray(so, so + 16), f.subarray(dof, dof + 16), 58, p.end - p.l4, 6) : 0;
    wr16(f, p.l4 + 2, internetChecksum(f, p.l4, p.end, init));
    f.set(dstMac, 0); f.set(srcMac, 6);
    this.result(x, L.V_FORWARD, L.REASON_FWD_ICMP_ERROR, out);
    this.countFrontBackend(t.front, t.backend, x.len);
    return true;
  }
}

function isIcmpError(family: number, type: number): boolean {
  return family === 4 ? type === 3 || type === 11 || type === 12 : type >= 1 && type <= 4;
}

/** ICMP queries the kernel's conntrack tracks as new (core: icmp.ts isIcmpQuery). */
function isIcmpQuery(family: number, type: number): boolean {
  return family === 4 ? type === 8 || type === 13 || type === 15 || type === 17 : type === 128 || type === 139;
}

/** What the core reads for a frontend id the table set does not hold: a zeroed entry (no
 * endpoints: reject). */
function zeroFront(id: number): FrontView {
  const f: IrFrontend = { id, service: '', portName: '', kind: 'ClusterIP', addr: '0.0.0.0', family: 4, port: 0, proto: 'TCP', flags: 0, affinityTimeoutMs: 0, sourceRanges: [], backends: [], maglev: new Uint32Array(0) };
  return { f, addr: new Uint8Array(16), protoNum: 6, cidrs: [] };
}

// ---------------------------------------------------------------------------------------------
// Rewrites (in place on the frame copy)

/** TTL / hop limit - 1; for IPv4 the header checksum gets `d` (other header changes) plus the TTL
 *  word's change, incrementally. */
function decTtl(f: Uint8Array, p: Parsed, d: CsumDelta): void {
  if (p.family === 4) {
    const old = rd16(f, p.l3 + 8);
    f[p.l3 + 8]--;
    d.word(old, rd16(f, p.l3 + 8));
    wr16(f, p.l3 + 10, d.apply(rd16(f, p.l3 + 10)));
  } else {
    f[p.l3 + 7]--;
  }
}

/** Core: FLOW_NODE — the flow's client or backend is the node itself (its TTL kept). */
function nodeFlow(fl: ModelFlow): boolean {
  return (fl.flags & L.FLOW_NODE) !== 0;
}

/** Core: rewrite.ts ttlStep — TTL - 1, except with the node itself at one end (`node`: local
 *  delivery, the node's output) or a spent TTL, left as it is; IPv4's header checksum gets `d`
 *  either way. */
function ttlStep(f: Uint8Array, p: Parsed, d: CsumDelta, node: boolean): void {
  if (!node && p.ttl > 1) decTtl(f, p, d);
  else if (p.family === 4) wr16(f, p.l3 + 10, d.apply(rd16(f, p.l3 + 10)));
}

/** New source (addr, port) and/or destination (addr, port), TTL - 1, checksums: IPv4 header and
 *  TCP/UDP incrementally (UDP checksum 0 stays 0; a result of 0 is sent as 0xffff), SCTP CRC32c
 *  recomputed unless the packet is a first fragment (the CRC covers data not present). */
function natRewrite(f: Uint8Array, p: Parsed, src: Uint8Array | undefined, sport: number,
  dst: Uint8Array | undefined, dport: number, node: boolean): void {
  const n = p.family === 4 ? 4 : 16;
  const so = p.l3 + (p.family === 4 ? 12 : 8), dof = p.l3 + (p.family === 4 ? 16 : 24);
  const ipd = new CsumDelta(), l4d = new CsumDelta();
  const setAddr = (off: number, a: Uint8Array) => {
    const old = f.slice(off, off + n), nw = a.subarray(0, n);
    ipd.bytes(old, nw); l4d.bytes(old, nw);
    f.set(nw, off);
  };
  if (src) setAddr(so, src);
  if (dst) setAddr(dof, dst);
  // core: a later fragment has no L4 header (the first fragment's checksum update covers the datagram)
  if (p.later) { ttlStep(f, p, ipd, node); return; }
  if (src) { l4d.word(rd16(f, p.l4), sport); wr16(f, p.l4, sport); }
  if (dst) { l4d.word(rd16(f, p.l4 + 2), dport); wr16(f, p.l4 + 2, dport); }
  ttlStep(f, p, ipd, node);
  if (p.proto === 6) {
    wr16(f, p.l4 + 16, l4d.apply(rd16(f, p.l4 + 16)));
  } else if (p.proto === 17) {
    const old = rd16(f, p.l4 + 6);
    if (old !== 0) {
      const nv = l4d.apply(old);
      wr16(f, p.l4 + 6, nv === 0 ? 0xffff : nv);
    }
  } else if (p.proto === 132 && !p.fragment) {
    const c = f.slice(p.l4, p.end);
    c[8] = c[9] = c[10] = c[11] = 0;
    const crc = crc32c(c);
    f[p.l4 + 8] = crc & 0xff; f[p.l4 + 9] = (crc >>> 8) & 0xff; f[p.l4 + 10] = (crc >>> 16) & 0xff; f[p.l4 + 11] = crc >>> 24;
  }
}

interface Quoted { l3: number; l4: number; end: number; family: 4 | 6; proto: number; src: Uint8Array; dst: Uint8Array; sport: number; dport: number }

/** IPv6 extension headers from l4 (the first of type proto) within end, for a packet's own headers
 * and an ICMPv6 error's quote: at most 8, each must fit (undefined: malformed); a fragment header
 * with offset != 0 ends them (what follows is datagram data). */
function skipIp6Ext(f: Uint8Array, l4: number, proto: number, end: number): { l4: number; proto: number; frag: 'none' | 'whole' | 'first' | 'later'; fragId: number } | undefined {
  let n = 0, frag: 'none' | 'whole' | 'first' | 'later' = 'none', fragId = 0;
  while (proto === 0 || proto === 43 || proto === 60 || proto === 44) {
    if (++n > 8 || l4 + 8 > end) return undefined;
    const next = f[l4];
    if (proto === 44) {
      const fo = rd16(f, l4 + 2);
      fragId = ((rd16(f, l4 + 4) << 16) | rd16(f, l4 + 6)) >>> 0;
      l4 += 8;
      if ((fo & 0xfff8) !== 0) return { l4, proto: next, frag: 'later', fragId };
      frag = fo & 1 ? 'first' : 'whole';
    } else {
      l4 += (f[l4 + 1] + 1) * 8;
      if (l4 > end) return undefined;
    }
    proto = next;
  }
  return { l4, proto, frag, fragId };
}

/** The quoted packet of an ICMP error: a whole IP header of the outer family (IPv4: not a
 *  non-first fragment; IPv6: extension headers 0/43/60/44 skipped as parse() does — at most 8,
 *  each within the quote — and a fragment header with offset != 0 is not translated),
 *  TCP/UDP/SCTP, port bytes present. */
function parseQuoted(f: Uint8Array, l3: number, end: number, family: 4 | 6): Quoted | undefined {
  let l4: number, proto: number, src: Uint8Array, dst: Uint8Array;
  if (family === 4) {
    if (l3 + 20 > end) return undefined;
    if (f[l3] >> 4 !== 4 || (f[l3] & 15) < 5) return undefined;
    if ((rd16(f, l3 + 6) & 0x1fff) !== 0) return undefined;
    l4 = l3 + (f[l3] & 15) * 4;
    proto = f[l3 + 9];
    src = addr16(f, l3 + 12, 4); dst = addr16(f, l3 + 16, 4);
  } else {
    if (l3 + 40 > end) return undefined;
    if (f[l3] >> 4 !== 6) return undefined;
    l4 = l3 + 40;
    proto = f[l3 + 6];
    src = addr16(f, l3 + 8, 6); dst = addr16(f, l3 + 24, 6);
    // (a non-first fragment quotes no L4 header)
    const x = skipIp6Ext(f, l4, proto, end);
    if (!x || x.frag === 'later') return undefined;
    ({ l4, proto } = x);
  }
  if (proto !== 6 && proto !== 17 && proto !== 132) return undefined;
  if (l4 + 4 > end) return undefined;
  return { l3, l4, end, family, proto, src, dst, sport: rd16(f, l4), dport: rd16(f, l4 + 2) };
}

/** Rewrites the quoted packet's addresses/ports; fixes its IPv4 header checksum, and its TCP/UDP
 *  checksum when those bytes were quoted (UDP 0 stays 0). */
function rewriteQuoted(f: Uint8Array, q: Quoted, to: { src?: Uint8Array; sport?: number; dst?: Uint8Array; dport?: number }): void {
  const n = q.family === 4 ? 4 : 16;
  const so = q.l3 + (q.family === 4 ? 12 : 8), dof = q.l3 + (q.family === 4 ? 16 : 24);
  const ipd = new CsumDelta(), l4d = new CsumDelta();
  let changed = false;
  const setAddr = (off: number, a: Uint8Array) => {
    const old = f.slice(off, off + n), nw = a.subarray(0, n);
    ipd.bytes(old, nw); l4d.bytes(old, nw);
    f.set(nw, off);
    changed = true;
  };
  if (to.src) setAddr(so, to.src);
  if (to.dst) setAddr(dof, to.dst);
  if (q.family === 4 && changed) wr16(f, q.l3 + 10, ipd.apply(rd16(f, q.l3 + 10)));
  if (to.src) { l4d.word(rd16(f, q.l4), to.sport!); wr16(f, q.l4, to.sport!); }
  if (to.dst) { l4d.word(rd16(f, q.l4 + 2), to.dport!); wr16(f, q.l4 + 2, to.dport!); }
  if (q.proto === 6 && q.l4 + 18 <= q.end) wr16(f, q.l4 + 16, l4d.apply(rd16(f, q.l4 + 16)));
  else if (q.proto === 17 && q.l4 + 8 <= q.end && rd16(f, q.l4 + 6) !== 0) {
    const nv = l4d.apply(rd16(f, q.l4 + 6));
    wr16(f, q.l4 + 6, nv === 0 ? 0xffff : nv);
  }
}

// ---------------------------------------------------------------------------------------------
// Generated packets (reject)

/** An ICMP / ICMPv6 error (port unreachable: v4 type 3 code 3, v6 type 1 code 4; too big: v4 type
 *  3 code 4, v6 type 2; time exceeded: v4 type 11, v6 type 3) from the packet's destination (or `from`), `rest` in its 4 type-specific bytes, quoting
 *  the IP packet as received, cut so the reply is at most 576 (v4) / 1280 (v6) bytes and fits the slot. */
function buildIcmpError(f: Uint8Array, p: Parsed, slotSize: number, type: number, code: number, rest: number, id: number, from?: Uint8Array): Uint8Array {
  const iphl = p.family === 4 ? 20 : 40;
  let qlen = Math.min(p.end - p.l3, (p.family === 4 ? 576 : 1280) - iphl - 8);
  if (p.l3 + iphl + 8 + qlen > slotSize) qlen = slotSize - p.l3 - iphl - 8;
  const icmp = new Uint8Array(8 + qlen);
  icmp[0] = type; icmp[1] = code; wr32(icmp, 4, rest);
  icmp.set(f.subarray(p.l3, p.l3 + qlen), 8);
  const w = p.family === 4 ? 4 : 16;
  const src = (from ?? p.dst).subarray(0, w), dst = p.src.subarray(0, w);
  const ck = p.family === 4 ? internetChecksum(icmp) : internetChecksum(icmp, 0, icmp.length, pseudoHeaderSum(src, dst, 58, icmp.length, 6));
  wr16(icmp, 2, ck);
  return ipHeader(p.family, src, dst, p.family === 4 ? 1 : 58, icmp, { tos: (f[p.l3 + 1] & 0x1e) | 0xc0, id });
}

/** Core: mtu.ts icmpNeverAnswered — the ICMP types icmp_send / icmpv6_send never answer (errors). */
function icmpNeverAnswered(family: number, type: number): boolean {
  return family === 6 ? type < 128 : [3, 4, 5, 11, 12].includes(type) || type > 18;
}

/** An ICMP error's IP header: IPv4 no options, TTL 64, the error's TOS and ID, no DF; IPv6 traffic
 *  class 0, hop limit 64, the automatic flow label of its source, destination, type and code. */
function ipHeader(family: 4 | 6, src: Uint8Array, dst: Uint8Array, proto: number, l4: Uint8Array, icmp: { tos: number; id: number }): Uint8Array {
  if (family === 4) {
    const ip = new Uint8Array(20 + l4.length);
    ip[0] = 0x45; wr16(ip, 2, ip.length); ip[8] = 64; ip[9] = proto;
    ip[1] = icmp.tos; wr16(ip, 4, icmp.id);
    ip.set(src, 12); ip.set(dst, 16);
    wr16(ip, 10, internetChecksum(ip, 0, 20));
    ip.set(l4, 20);
    return ip;
  }
  const ip = new Uint8Array(40 + l4.length);
  // core: flow-label.ts — an ICMPv6 error's automatic flow label
  const h = flowHash(src, dst, l4[0]! | (l4[1]! << 8), 0, 58);
  const label = ((h << 16) | (h >>> 16)) & 0xfffff;
  wr32(ip, 0, (0x60000000 | label) >>> 0); wr16(ip, 4, l4.length); ip[6] = proto; ip[7] = 64;
  ip.set(src, 8); ip.set(dst, 24);
  ip.set(l4, 40);
  return ip;
}
