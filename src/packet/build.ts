// Frame builders: complete Ethernet frames as Uint8Array with correct checksums, for tests,
// golden tables, benchmarks and the API's POST /trace. Pure functions, no state; every checksum is
// computed from scratch with src/packet/checksum.ts (never the core's incremental code).
//
// High level:  frame({ src: '10.0.0.1', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80,
//                      flags: 'S' })                      -> Ethernet frame (v4/v6 from the address)
//              ipPacket(spec)                              -> the same without Ethernet (to quote)
//              icmpError({ src, dst, kind: 'port_unreachable', inner: ipPacket(...) })
//              arpRequest({ senderMac, senderIp, targetIp }), neighborSolicitation({ ... })
// Bad input (unparsable address, mixed families, out-of-range numbers) throws an Error with a
// clear message: a builder never silently produces a different packet than the one asked for.
import { parseAddr, parseMac } from '../util/addr.js';
import { crc32c, internetChecksum, pseudoHeaderSum } from './checksum.js';

export const ETH_P_IPV4 = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;

export const DEFAULT_SRC_MAC = '02:00:00:00:00:01';
export const DEFAULT_DST_MAC = '02:00:00:00:00:02';

export type L4Proto = 'TCP' | 'UDP' | 'SCTP' | 'ICMP';
type Bytes = Uint8Array;

const PROTO_NUMBERS: Record<string, number> = { TCP: IPPROTO_TCP, UDP: IPPROTO_UDP, SCTP: IPPROTO_SCTP };

function toBytes(p: Bytes | string | number[] | undefined): Bytes {
  if (p === undefined) return new Uint8Array(0);
  if (typeof p === 'string') return new TextEncoder().encode(p);
  if (Array.isArray(p)) return Uint8Array.from(p);
  return p;
}

function concat(...parts: Bytes[]): Bytes {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function checkInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

function w16(b: Bytes, o: number, v: number): void { b[o] = (v >>> 8) & 0xff; b[o + 1] = v & 0xff; }
function w32(b: Bytes, o: number, v: number): void { w16(b, o, (v >>> 16) & 0xffff); w16(b, o + 2, v & 0xffff); }

/** Address bytes on the wire (4 or 16) and family, from a string. */
export function addrBytes(s: string): { family: 4 | 6; wire: Bytes } {
  const a = parseAddr(s);
  return { family: a.family, wire: a.family === 4 ? a.bytes.slice(0, 4) : a.bytes.slice() };
}

function macBytes(m: string | Bytes | undefined, dflt: string): Bytes {
  if (m === undefined) return parseMac(dflt);
  if (typeof m === 'string') return parseMac(m);
  if (m.length !== 6) throw new Error(`MAC must be 6 bytes, got ${m.length}`);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Ethernet

export interface EthSpec {
  srcMac?: string | Bytes;
  dstMac?: string | Bytes;
  /** 802.1Q VLAN id (0..4095); the tag goes between the MACs and the ethertype. */
  vlan?: number;
  /** 802.1Q priority code point (0..7). */
  pcp?: number;
  /** Pad the frame with zero bytes up to this length (e.g. 60: the Ethernet minimum without FCS). */
  padTo?: number;
}

export function ethernet(spec: EthSpec, ethertype: number, payload: Bytes): Bytes {
  const dst = macBytes(spec.dstMac, DEFAULT_DST_MAC);
  const src = macBytes(spec.srcMac, DEFAULT_SRC_MAC);
  const tagged = spec.vlan !== undefined;
  const hl = tagged ? 18 : 14;
  const len = Math.max(hl + payload.length, spec.padTo ?? 0);
  const f = new Uint8Array(len);
  f.set(dst, 0); f.set(src, 6);
  if (tagged) {
    checkInt('vlan', spec.vlan!, 0, 4095);
    const pcp = checkInt('pcp', spec.pcp ?? 0, 0, 7);
    w16(f, 12, ETH_P_8021Q);
    w16(f, 14, (pcp << 13) | spec.vlan!);
    w16(f, 16, ethertype);
  } else {
    w16(f, 12, ethertype);
  }
  f.set(payload, hl);
  return f;
}

// ---------------------------------------------------------------------------------------------
// L4 segments (need the addresses for the pseudo header)

export interface TcpSpec {
  sport: number; dport: number;
  /** Flag letters: F S R P A U E C (e.g. "S", "SA", "A", "FA", "R", "PA"). Default "S". */
  flags?: string;
  seq?: number; ack?: number; window?: number; urgent?: number;
  /** Raw TCP options (padded with zero bytes to a multiple of 4). */
  options?: Bytes;
  payload?: Bytes | string | number[];
  /** Override the computed checksum (to build deliberately broken packets). */
  checksum?: number;
}

const TCP_FLAG_BITS: Record<string, number> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, A: 0x10, U: 0x20, E: 0x40, C: 0x80 };

export function tcpFlagBits(flags: string): number {
  let bits = 0;
  for (const ch of flags.toUpperCase()) {
    const b = TCP_FLAG_BITS[ch];
    if (b === undefined) throw new Error(`unknown TCP flag ${JSON.stringify(ch)} in ${JSON.stringify(flags)} (use F S R P A U E C)`);
    bits |= b;
  }
  return bits;
}

export function tcpFlagString(bits: number): string {
  let s = '';
  for (const ch of 'SAFRPUEC') if (bits & TCP_FLAG_BITS[ch]) s += ch;
  return s;
}

function l4Checksum(seg: Bytes, ckOff: number, src: Bytes, dst: Bytes, proto: number, family: 4 | 6): number {
  seg[ckOff] = seg[ckOff + 1] = 0;
  return internetChecksum(seg, 0, seg.length, pseudoHeaderSum(src, dst, proto, seg.length, family));
}

export function tcpSegment(spec: TcpSpec, src: Bytes, dst: Bytes, family: 4 | 6): Bytes {
  const opts = toBytes(spec.options);
  const optLen = (opts.length + 3) & ~3;
  const payload = toBytes(spec.payload);
  const hl = 20 + optLen;
  if (hl > 60) throw new Error(`TCP options too long (${opts.length} bytes, max 40)`);
  const s = new Uint8Array(hl + payload.length);
  w16(s, 0, checkInt('sport', spec.sport, 0, 65535));
  w16(s, 2, checkInt('dport', spec.dport, 0, 65535));
  w32(s, 4, checkInt('seq', spec.seq ?? 1000, 0, 0xffffffff));
  w32(s, 8, checkInt('ack', spec.ack ?? 0, 0, 0xffffffff));
  s[12] = (hl / 4) << 4;
  s[13] = tcpFlagBits(spec.flags ?? 'S');
  w16(s, 14, checkInt('window', spec.window ?? 65535, 0, 65535));
  w16(s, 18, checkInt('urgent', spec.urgent ?? 0, 0, 65535));
  s.set(opts, 20);
  s.set(payload, hl);
  const ck = l4Checksum(s, 16, src, dst, IPPROTO_TCP, family);
  w16(s, 16, spec.checksum ?? ck);
  return s;
}

export interface UdpSpec {
  sport: number; dport: number;
  payload?: Bytes | string | number[];
  /** false: leave the checksum 0 ("no checksum", IPv4 only by the RFCs; allowed here for tests). */
  udpChecksum?: boolean;
  checksum?: number;
  /** Override the UDP length field. */
  udpLength?: number;
}

export function udpDatagram(spec: UdpSpec, src: Bytes, dst: Bytes, family: 4 | 6): Bytes {
  const payload = toBytes(spec.payload);
  const d = new Uint8Array(8 + payload.length);
  if (d.length > 65535) throw new Error(`UDP datagram too long (${d.length})`);
  w16(d, 0, checkInt('sport', spec.sport, 0, 65535));
  w16(d, 2, checkInt('dport', spec.dport, 0, 65535));
  w16(d, 4, d.length);
  d.set(payload, 8);
  if (spec.udpChecksum !== false) {
    let ck = l4Checksum(d, 6, src, dst, IPPROTO_UDP, family);
    if (ck === 0) ck = 0xffff; // RFC 768: a computed 0 is sent as all ones
    w16(d, 6, ck);
  }
  if (spec.checksum !== undefined) w16(d, 6, spec.checksum);
  if (spec.udpLength !== undefined) w16(d, 4, checkInt('udpLength', spec.udpLength, 0, 65535));
  return d;
}

/** SCTP chunk types (RFC 9260 section 3.2) a test may put first in a packet. */
export const SCTP_CHUNK_TYPES = {
  DATA: 0, INIT: 1, INIT_ACK: 2, SACK: 3, HEARTBEAT: 4, HEARTBEAT_ACK: 5, ABORT: 6, SHUTDOWN: 7,
  SHUTDOWN_ACK: 8, ERROR: 9, COOKIE_ECHO: 10, COOKIE_ACK: 11, SHUTDOWN_COMPLETE: 14,
} as const;
export type SctpChunk = keyof typeof SCTP_CHUNK_TYPES;

export interface SctpSpec {
  sport: number; dport: number;
  /** Verification tag (0 for INIT, by RFC 4960). */
  vtag?: number;
  /** 'INIT' (default when no payload) or 'DATA' (default with payload); another type is a chunk
   *  of that type with the payload as its value (no other chunk follows). */
  chunk?: SctpChunk;
  payload?: Bytes | string | number[];
  initiateTag?: number;
  tsn?: number;
  checksum?: number;
}

export function sctpPacket(spec: SctpSpec): Bytes {
  const payload = toBytes(spec.payload);
  const kind = spec.chunk ?? (payload.length ? 'DATA' : 'INIT');
  let chunk: Bytes;
  if (kind === 'INIT') {
    chunk = new Uint8Array(20);
    chunk[0] = 1; w16(chunk, 2, 20);
    w32(chunk, 4, spec.initiateTag ?? 0x12345678);
    w32(chunk, 8, 65536);        // a_rwnd
    w16(chunk, 12, 10); w16(chunk, 14, 10); // outbound / inbound streams
    w32(chunk, 16, spec.tsn ?? 1);
  } else if (kind !== 'DATA') {
    const len = 4 + payload.length;
    chunk = new Uint8Array((len + 3) & ~3);
    chunk[0] = SCTP_CHUNK_TYPES[kind]; w16(chunk, 2, len);
    chunk.set(payload, 4);
  } else {
    const len = 16 + payload.length;
    chunk = new Uint8Array((len + 3) & ~3);
    chunk[0] = 0; chunk[1] = 0x03; // B|E: an unfragmented user message
    w16(chunk, 2, len);
    w32(chunk, 4, spec.tsn ?? 1);
    w16(chunk, 8, 0); w16(chunk, 10, 0); w32(chunk, 12, 0);
    chunk.set(payload, 16);
  }
  const p = new Uint8Array(12 + chunk.length);
  w16(p, 0, checkInt('sport', spec.sport, 0, 65535));
  w16(p, 2, checkInt('dport', spec.dport, 0, 65535));
  w32(p, 4, spec.vtag ?? (kind === 'INIT' ? 0 : 0x12345678));
  p.set(chunk, 12);
  const crc = spec.checksum ?? crc32c(p);
  // RFC 4960 App. B: the CRC's least significant byte goes first
  p[8] = crc & 0xff; p[9] = (crc >>> 8) & 0xff; p[10] = (crc >>> 16) & 0xff; p[11] = (crc >>> 24) & 0xff;
  return p;
}

export interface IcmpSpec {
  /** ICMP type/code; defaults: echo request (v4 8, v6 128). */
  icmpType?: number; icmpCode?: number;
  /** Echo id / sequence. */
  icmpId?: number; icmpSeq?: number;
  /** Second header word for errors (e.g. MTU for frag-needed / packet-too-big). Overrides id/seq. */
  rest?: number;
  payload?: Bytes | string | number[];
  checksum?: number;
}

export function icmpMessage(spec: IcmpSpec, src: Bytes, dst: Bytes, family: 4 | 6): Bytes {
  const payload = toBytes(spec.payload);
  const m = new Uint8Array(8 + payload.length);
  m[0] = checkInt('icmpType', spec.icmpType ?? (family === 4 ? 8 : 128), 0, 255);
  m[1] = checkInt('icmpCode', spec.icmpCode ?? 0, 0, 255);
  if (spec.rest !== undefined) w32(m, 4, spec.rest >>> 0);
  else { w16(m, 4, spec.icmpId ?? 0x1234); w16(m, 6, spec.icmpSeq ?? 1); }
  m.set(payload, 8);
  const ck = family === 4
    ? internetChecksum(m)
    : internetChecksum(m, 0, m.length, pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, m.length, 6));
  w16(m, 2, spec.checksum ?? ck);
  return m;
}

// ---------------------------------------------------------------------------------------------
// IP

/** IPv6 extension header for `v6Ext`: hop-by-hop (0), routing (43), destination options (60) of
 *  `bytes` total length (multiple of 8, default 8; filled with PadN), or a fragment header (44). */
export type V6Ext =
  | { type: 0 | 43 | 60; bytes?: number }
  | { type: 44; offset?: number; more?: boolean; id?: number };

export interface IpSpec {
  src: string; dst: string;
  ttl?: number;            // IPv4 TTL / IPv6 hop limit (default 64)
  tos?: number;            // IPv4 TOS / IPv6 traffic class
  id?: number;             // IPv4 identification (default 0x1234)
  df?: boolean;            // IPv4 don't-fragment
  mf?: boolean;            // IPv4 more-fragments
  /** IPv4 fragment offset in 8-byte units (the header field). */
  fragOffset?: number;
  /** IPv4 options (padded with zero = end-of-options to a multiple of 4). */
  ipOptions?: Bytes | number[];
  flowLabel?: number;      // IPv6
  v6Ext?: V6Ext[];         // IPv6 extension headers in order, before the L4 header
  /** Override fields to build malformed packets. */
  ipChecksum?: number; totalLength?: number; ihl?: number; version?: number; payloadLength?: number;
}

function v6ExtBytes(ext: V6Ext, next: number): Bytes {
  if (ext.type === 44) {
    const h = new Uint8Array(8);
    h[0] = next;
    const off = checkInt('fragment offset', ext.offset ?? 0, 0, 8191);
    w16(h, 2, (off << 3) | (ext.more ? 1 : 0));
    w32(h, 4, ext.id ?? 0xabcd);
    return h;
  }
  const n = ext.bytes ?? 8;
  if (n < 8 || n % 8 || n > 2048) throw new Error(`IPv6 extension header length must be a multiple of 8 in [8, 2048], got ${n}`);
  const h = new Uint8Array(n);
  h[0] = next; h[1] = n / 8 - 1;
  if (ext.type === 43) { h[2] = 0; h[3] = 0; } // routing type 0, segments left 0: nothing to do
  else { h[2] = 1; h[3] = n - 4; }             // PadN over the rest
  return h;
}

/** An IPv4 packet around `l4` (protocol number `proto`). */
export function ipv4(spec: IpSpec, proto: number, l4: Bytes): Bytes {
  const s = addrBytes(spec.src), d = addrBytes(spec.dst);
  if (s.family !== 4 || d.family !== 4) throw new Error(`ipv4: ${spec.src} -> ${spec.dst} is not an IPv4 pair`);
  const opts = toBytes(spec.ipOptions as Bytes | number[] | undefined);
  const hl = 20 + ((opts.length + 3) & ~3);
  if (hl > 60) throw new Error(`IPv4 options too long (${opts.length} bytes, max 40)`);
  const total = hl + l4.length;
  if (total > 65535) throw new Error(`IPv4 packet too long (${total})`);
  const p = new Uint8Array(total);
  p[0] = ((spec.version ?? 4) << 4) | (spec.ihl ?? hl / 4);
  p[1] = checkInt('tos', spec.tos ?? 0, 0, 255);
  w16(p, 2, spec.totalLength ?? total);
  w16(p, 4, checkInt('id', spec.id ?? 0x1234, 0, 65535));
  const fo = checkInt('fragOffset', spec.fragOffset ?? 0, 0, 8191);
  w16(p, 6, (spec.df ? 0x4000 : 0) | (spec.mf ? 0x2000 : 0) | fo);
  p[8] = checkInt('ttl', spec.ttl ?? 64, 0, 255);
  p[9] = proto;
  p.set(s.wire, 12); p.set(d.wire, 16);
  p.set(opts, 20);
  w16(p, 10, spec.ipChecksum ?? internetChecksum(p, 0, hl));
  p.set(l4, hl);
  return p;
}

/** An IPv6 packet around `l4` (upper-layer protocol `proto`), with optional extension headers. */
export function ipv6(spec: IpSpec, proto: number, l4: Bytes): Bytes {
  const s = addrBytes(spec.src), d = addrBytes(spec.dst);
  if (s.family !== 6 || d.family !== 6) throw new Error(`ipv6: ${spec.src} -> ${spec.dst} is not an IPv6 pair`);
  const exts = spec.v6Ext ?? [];
  const extParts: Bytes[] = [];
  for (let i = 0; i < exts.length; i++) extParts.push(v6ExtBytes(exts[i], i + 1 < exts.length ? exts[i + 1].type : proto));
  const ext = concat(...extParts);
  const plen = ext.length + l4.length;
  if (plen > 65535) throw new Error(`IPv6 payload too long (${plen})`);
  const p = new Uint8Array(40 + plen);
  const tc = checkInt('tos', spec.tos ?? 0, 0, 255);
  const fl = checkInt('flowLabel', spec.flowLabel ?? 0, 0, 0xfffff);
  w32(p, 0, (((spec.version ?? 6) << 28) | (tc << 20) | fl) >>> 0);
  w16(p, 4, spec.payloadLength ?? plen);
  p[6] = exts.length ? exts[0].type : proto;
  p[7] = checkInt('ttl', spec.ttl ?? 64, 0, 255);
  p.set(s.wire, 8); p.set(d.wire, 24);
  p.set(ext, 40);
  p.set(l4, 40 + ext.length);
  return p;
}

// ---------------------------------------------------------------------------------------------
// High level

export interface PacketSpec extends IpSpec, EthSpec {
  proto: L4Proto | number;
  sport?: number; dport?: number;
  // TCP
  flags?: string; seq?: number; ack?: number; window?: number; tcpOptions?: Bytes;
  // UDP
  udpChecksum?: boolean; udpLength?: number;
  // SCTP
  vtag?: number; chunk?: SctpChunk; tsn?: number;
  // ICMP / ICMPv6
  icmpType?: number; icmpCode?: number; icmpId?: number; icmpSeq?: number; rest?: number;
  payload?: Bytes | string | number[];
  /** Override the L4 checksum (TCP/UDP/ICMP 16-bit, SCTP 32-bit). */
  l4Checksum?: number;
  /** Raw L4 bytes instead of a built header (non-first fragments, junk, truncated headers).
   *  Used as-is; `proto` then only sets the protocol number. */
  rawL4?: Bytes | number[];
  /** Override the Ethernet type (default from the address family). */
  ethertype?: number;
}

function protoNumber(proto: L4Proto | number, family: 4 | 6): number {
  if (typeof proto === 'number') return checkInt('proto', proto, 0, 255);
  if (proto === 'ICMP') return family === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
  const n = PROTO_NUMBERS[proto];
  if (n === undefined) throw new Error(`unknown protocol ${JSON.stringify(proto)} (TCP, UDP, SCTP, ICMP or a number)`);
  return n;
}

/** The L4 bytes of a spec (without IP). */
export function l4Bytes(spec: PacketSpec): { proto: number; family: 4 | 6; l4: Bytes } {
  const s = addrBytes(spec.src), d = addrBytes(spec.dst);
  if (s.family !== d.family) throw new Error(`source ${spec.src} and destination ${spec.dst} are of different families`);
  const family = s.family;
  const proto = protoNumber(spec.proto, family);
  if (spec.rawL4 !== undefined) return { proto, family, l4: toBytes(spec.rawL4) };
  const need = (n: string, v: number | undefined) => { if (v === undefined) throw new Error(`${spec.proto} packet needs ${n}`); return v; };
  switch (proto) {
    case IPPROTO_TCP:
      return { proto, family, l4: tcpSegment({ sport: need('sport', spec.sport), dport: need('dport', spec.dport), flags: spec.flags, seq: spec.seq, ack: spec.ack, window: spec.window, options: spec.tcpOptions, payload: spec.payload, checksum: spec.l4Checksum }, s.wire, d.wire, family) };
    case IPPROTO_UDP:
      return { proto, family, l4: udpDatagram({ sport: need('sport', spec.sport), dport: need('dport', spec.dport), payload: spec.payload, udpChecksum: spec.udpChecksum, checksum: spec.l4Checksum, udpLength: spec.udpLength }, s.wire, d.wire, family) };
    case IPPROTO_SCTP:
      return { proto, family, l4: sctpPacket({ sport: need('sport', spec.sport), dport: need('dport', spec.dport), vtag: spec.vtag, chunk: spec.chunk, payload: spec.payload, tsn: spec.tsn, checksum: spec.l4Checksum }) };
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      if ((proto === IPPROTO_ICMP) !== (family === 4)) throw new Error(`protocol ${proto} does not match IPv${family} (use rawL4 to build such a packet deliberately)`);
      return { proto, family, l4: icmpMessage({ icmpType: spec.icmpType, icmpCode: spec.icmpCode, icmpId: spec.icmpId, icmpSeq: spec.icmpSeq, rest: spec.rest, payload: spec.payload, checksum: spec.l4Checksum }, s.wire, d.wire, family) };
    default:
      return { proto, family, l4: toBytes(spec.payload) };
  }
}

/** The IP packet (no Ethernet) of a spec: what an ICMP error quotes. */
export function ipPacket(spec: PacketSpec): Bytes {
  const { proto, family, l4 } = l4Bytes(spec);
  return family === 4 ? ipv4(spec, proto, l4) : ipv6(spec, proto, l4);
}

/** A complete Ethernet frame. Family is picked from the addresses. */
export function frame(spec: PacketSpec): Bytes {
  const ip = ipPacket(spec);
  return ethernet(spec, spec.ethertype ?? (addrBytes(spec.src).family === 6 ? ETH_P_IPV6 : ETH_P_IPV4), ip);
}

// ---------------------------------------------------------------------------------------------
// ICMP errors

export type IcmpErrorKind = 'port_unreachable' | 'host_unreachable' | 'frag_needed' | 'packet_too_big' | 'time_exceeded';

export interface IcmpErrorSpec extends EthSpec {
  /** Who sends the error / who receives it. Same family as the inner packet is not required. */
  src: string; dst: string;
  kind?: IcmpErrorKind;
  /** Or explicit type/code. */
  icmpType?: number; icmpCode?: number;
  /** MTU for frag_needed (v4) / packet_too_big (v6). */
  mtu?: number;
  /** The offending IP packet (e.g. ipPacket(...)) — quoted as given, or cut to `quoteLen` bytes. */
  inner: Bytes;
  quoteLen?: number;
  ttl?: number; id?: number; df?: boolean; tos?: number;
  flowLabel?: number;      // IPv6
}

const ICMP_KINDS: Record<IcmpErrorKind, { v4?: [number, number]; v6?: [number, number] }> = {
  port_unreachable: { v4: [3, 3], v6: [1, 4] },
  host_unreachable: { v4: [3, 1], v6: [1, 3] },
  frag_needed: { v4: [3, 4] },
  packet_too_big: { v6: [2, 0] },
  time_exceeded: { v4: [11, 0], v6: [3, 0] },
};

/** The IP packet of an ICMP/ICMPv6 error quoting `inner`. */
export function icmpErrorPacket(spec: IcmpErrorSpec): Bytes {
  const fam = addrBytes(spec.src).family;
  let type = spec.icmpType, code = spec.icmpCode ?? 0;
  if (type === undefined) {
    const k = ICMP_KINDS[spec.kind ?? 'port_unreachable'];
    const tc = fam === 4 ? k.v4 : k.v6;
    if (!tc) throw new Error(`ICMP error kind ${spec.kind} does not exist for IPv${fam}`);
    [type, code] = tc;
  }
  const quote = spec.quoteLen !== undefined ? spec.inner.subarray(0, spec.quoteLen) : spec.inner;
  let rest = 0;
  if ((fam === 4 && type === 3 && code === 4) || (fam === 6 && type === 2)) rest = (spec.mtu ?? 1500) >>> 0;
  if (fam === 4 && type === 3 && code === 4) rest &= 0xffff;
  return ipPacket({ src: spec.src, dst: spec.dst, proto: 'ICMP', icmpType: type, icmpCode: code, rest, payload: quote, ttl: spec.ttl, id: spec.id, df: spec.df, tos: spec.tos, flowLabel: spec.flowLabel });
}

/** An Ethernet frame carrying an ICMP/ICMPv6 error quoting `inner`. */
export function icmpError(spec: IcmpErrorSpec): Bytes {
  const ip = icmpErrorPacket(spec);
  return ethernet(spec, (ip[0] >> 4) === 6 ? ETH_P_IPV6 : ETH_P_IPV4, ip);
}

// ---------------------------------------------------------------------------------------------
// ARP and neighbour discovery

export interface ArpSpec extends EthSpec {
  senderMac: string; senderIp: string; targetIp: string;
  /** 1 request (default), 2 reply. */
  op?: number;
  targetMac?: string;
}

export function arp(spec: ArpSpec): Bytes {
  const sha = parseMac(spec.senderMac);
  const spa = addrBytes(spec.senderIp), tpa = addrBytes(spec.targetIp);
  if (spa.family !== 4 || tpa.family !== 4) throw new Error('ARP needs IPv4 sender and target addresses');
  const a = new Uint8Array(28);
  w16(a, 0, 1); w16(a, 2, ETH_P_IPV4); a[4] = 6; a[5] = 4;
  w16(a, 6, spec.op ?? 1);
  a.set(sha, 8); a.set(spa.wire, 14);
  if (spec.targetMac) a.set(parseMac(spec.targetMac), 18);
  a.set(tpa.wire, 24);
  return ethernet({ ...spec, srcMac: spec.srcMac ?? sha, dstMac: spec.dstMac ?? 'ff:ff:ff:ff:ff:ff' }, ETH_P_ARP, a);
}

export function arpRequest(spec: Omit<ArpSpec, 'op'>): Bytes { return arp({ ...spec, op: 1 }); }

export interface NsSpec extends EthSpec {
  senderMac: string; senderIp: string; targetIp: string;
}

/** ICMPv6 neighbour solicitation for targetIp, to its solicited-node multicast group. */
export function neighborSolicitation(spec: NsSpec): Bytes {
  const mac = parseMac(spec.senderMac);
  const t = addrBytes(spec.targetIp);
  if (t.family !== 6) throw new Error('neighbour solicitation needs an IPv6 target');
  const sn = `ff02::1:ff${t.wire[13].toString(16).padStart(2, '0')}:${((t.wire[14] << 8) | t.wire[15]).toString(16)}`;
  // target address, then the source link-layer address option (type 1, 8 bytes)
  const body = new Uint8Array(24);
  body.set(t.wire, 0);
  body[16] = 1; body[17] = 1; body.set(mac, 18);
  const ip = ipPacket({ src: spec.senderIp, dst: sn, proto: 'ICMP', icmpType: 135, icmpCode: 0, rest: 0, payload: body, ttl: 255 });
  const dstMac = spec.dstMac ?? Uint8Array.from([0x33, 0x33, 0xff, t.wire[13], t.wire[14], t.wire[15]]);
  return ethernet({ ...spec, srcMac: spec.srcMac ?? mac, dstMac }, ETH_P_IPV6, ip);
}

// ---------------------------------------------------------------------------------------------
// Helpers for tests

export function toHex(b: Uint8Array): string { return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex'); }
export function fromHex(s: string): Uint8Array { return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex')); }
