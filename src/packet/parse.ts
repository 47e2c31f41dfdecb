// Frame decoder: an Ethernet frame -> a plain object, for test assertions and the API's trace
// output. Never throws on malformed input: whatever could not be decoded is reported in `error`
// (the fields decoded before it stay filled in). Independent of the core's parser.
import { formatAddr, formatMac } from '../util/addr.js';
import { tcpFlagString } from './build.js';

export interface ParsedL4 {
  proto: number;
  protoName: string;               // tcp | udp | sctp | icmp | icmpv6 | other
  sport?: number; dport?: number;
  // TCP
  flags?: string; flagBits?: number; seq?: number; ack?: number; window?: number; dataOffset?: number;
  // UDP
  udpLength?: number;
  // SCTP
  vtag?: number; chunkType?: number;
  // ICMP
  icmpType?: number; icmpCode?: number; icmpId?: number; icmpSeq?: number; icmpRest?: number;
  checksum?: number;
  payload?: Uint8Array;
  /** Quoted packet of an ICMP error. */
  inner?: ParsedIp;
}

export interface ParsedIp extends Partial<ParsedL4> {
  family: 4 | 6;
  src: string; dst: string;
  ttl: number;                     // TTL / hop limit
  proto: number;                   // upper-layer protocol (after IPv6 extension headers)
  ipId?: number; df?: boolean; mf?: boolean; fragOffset?: number; ihl?: number;
  totalLength?: number; payloadLength?: number; ipChecksum?: number;
  extHeaders?: number[];           // IPv6 extension header types in order
  fragment?: { offset: number; more: boolean; id: number };
  l3Offset: number; l4Offset?: number; end: number;
  error?: string;
}

export interface ParsedFrame extends Partial<Omit<ParsedIp, 'family' | 'error'>> {
  dstMac: string; srcMac: string;
  vlan?: number; pcp?: number;
  ethertype: number;
  length: number;
  kind: 'ipv4' | 'ipv6' | 'arp' | 'other';
  family?: 4 | 6;
  arp?: { op: number; senderMac: string; senderIp: string; targetMac: string; targetIp: string };
  nd?: { type: number; target?: string };
  error?: string;
}

const rd16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const rd32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

function protoName(p: number): string {
  return p === 6 ? 'tcp' : p === 17 ? 'udp' : p === 132 ? 'sctp' : p === 1 ? 'icmp' : p === 58 ? 'icmpv6' : 'other';
}

function parseL4(b: Uint8Array, ip: ParsedIp, off: number, end: number, quoted: boolean): void {
  const len = end - off;
  ip.protoName = protoName(ip.proto);
  const need = (n: number, what: string) => {
    if (len >= n) return true;
    if (!quoted) ip.error = `truncated ${what}: ${len} < ${n} bytes`;
    return false;
  };
  switch (ip.proto) {
    case 6: {
      if (len >= 4) { ip.sport = rd16(b, off); ip.dport = rd16(b, off + 2); }
      if (len >= 8) ip.seq = rd32(b, off + 4);
      if (len >= 12) ip.ack = rd32(b, off + 8);
      if (len >= 14) { ip.dataOffset = (b[off + 12] >> 4) * 4; ip.flagBits = b[off + 13]; ip.flags = tcpFlagString(b[off + 13]); }
      if (len >= 16) ip.window = rd16(b, off + 14);
      if (len >= 18) ip.checksum = rd16(b, off + 16);
      if (!need(20, 'TCP header')) return;
      if (ip.dataOffset! < 20 || ip.dataOffset! > len) { if (!quoted) ip.error = `bad TCP data offset ${ip.dataOffset}`; return; }
      ip.payload = b.slice(off + ip.dataOffset!, end);
      return;
    }
    case 17:
      if (len >= 4) { ip.sport = rd16(b, off); ip.dport = rd16(b, off + 2); }
      if (len >= 6) ip.udpLength = rd16(b, off + 4);
      if (len >= 8) ip.checksum = rd16(b, off + 6);
      if (!need(8, 'UDP header')) return;
      ip.payload = b.slice(off + 8, end);
      return;
    case 132:
      if (len >= 4) { ip.sport = rd16(b, off); ip.dport = rd16(b, off + 2); }
      if (len >= 8) ip.vtag = rd32(b, off + 4);
      if (len >= 12) ip.checksum = (b[off + 8] | (b[off + 9] << 8) | (b[off + 10] << 16) | (b[off + 11] << 24)) >>> 0;
      if (!need(12, 'SCTP header')) return;
      if (len >= 13) ip.chunkType = b[off + 12];
      ip.payload = b.slice(off + 12, end);
      return;
    case 1:
    case 58: {
      if (len >= 1) ip.icmpType = b[off];
      if (len >= 2) ip.icmpCode = b[off + 1];
      if (len >= 4) ip.checksum = rd16(b, off + 2);
      if (!need(8, 'ICMP header')) return;
      ip.icmpId = rd16(b, off + 4); ip.icmpSeq = rd16(b, off + 6); ip.icmpRest = rd32(b, off + 4);
      ip.payload = b.slice(off + 8, end);
      const t = ip.icmpType!;
      const isError = ip.proto === 1 ? (t === 3 || t === 11 || t === 12) : (t >= 1 && t <= 4);
      if (isError && !quoted && len > 8) ip.inner = parseIp(b, off + 8, end, true);
      return;
    }
    default:
      ip.payload = b.slice(off, end);
  }
}

/** Decode an IP packet at b[off, end). `quoted`: inside an ICMP error (may be truncated, length
 *  fields then refer to the original packet). */
export function parseIp(b: Uint8Array, off: number, end: number, quoted = false): ParsedIp {
  const ip: ParsedIp = { family: 4, src: '', dst: '', ttl: 0, proto: 0, l3Offset: off, end };
  if (end - off < 1) { ip.error = 'no IP header'; return ip; }
  const v = b[off] >> 4;
  if (v === 4) {
    if (end - off < 20) { ip.error = `truncated IPv4 header: ${end - off} bytes`; return ip; }
    ip.family = 4;
    ip.ihl = (b[off] & 15) * 4;
    ip.totalLength = rd16(b, off + 2);
    ip.ipId = rd16(b, off + 4);
    const fo = rd16(b, off + 6);
    ip.df = !!(fo & 0x4000); ip.mf = !!(fo & 0x2000); ip.fragOffset = fo & 0x1fff;
    ip.ttl = b[off + 8]; ip.proto = b[off + 9]; ip.ipChecksum = rd16(b, off + 10);
    ip.src = formatAddr(b, 4, off + 12); ip.dst = formatAddr(b, 4, off + 16);
    if (ip.ihl < 20 || ip.ihl > end - off) { ip.error = `bad IHL ${ip.ihl}`; return ip; }
    if (ip.totalLength < ip.ihl) { ip.error = `IPv4 total length ${ip.totalLength} < IHL ${ip.ihl}`; return ip; }
    let pend = off + ip.totalLength;
    if (pend > end) {
      if (!quoted) { ip.error = `IPv4 total length ${ip.totalLength} exceeds the ${end - off} bytes present`; return ip; }
      pend = end;
    }
    ip.end = pend;
    ip.l4Offset = off + ip.ihl;
    if (ip.fragOffset !== 0) { ip.protoName = protoName(ip.proto); ip.payload = b.slice(ip.l4Offset, pend); return ip; }
    parseL4(b, ip, ip.l4Offset, pend, quoted);
    return ip;
  }
  if (v === 6) {
    if (end - off < 40) { ip.error = `truncated IPv6 header: ${end - off} bytes`; return ip; }
    ip.family = 6;
    ip.payloadLength = rd16(b, off + 4);
    ip.ttl = b[off + 7];
    ip.src = formatAddr(b, 6, off + 8); ip.dst = formatAddr(b, 6, off + 24);
    let pend = off + 40 + ip.payloadLength;
    if (pend > end) {
      if (!quoted) { ip.error = `IPv6 payload length ${ip.payloadLength} exceeds the ${end - off - 40} bytes present`; return ip; }
      pend = end;
    }
    ip.end = pend;
    let nh = b[off + 6];
    let p = off + 40;
    ip.extHeaders = [];
    for (let n = 0; ; n++) {
      if (nh !== 0 && nh !== 43 && nh !== 60 && nh !== 44) break;
      if (n >= 16) { ip.error = 'too many IPv6 extension headers'; return ip; }
      if (p + 8 > pend) { ip.error = `truncated IPv6 extension header ${nh}`; ip.proto = nh; return ip; }
      ip.extHeaders.push(nh);
      if (nh === 44) {
        const fo = rd16(b, p + 2);
        ip.fragment = { offset: fo >> 3, more: !!(fo & 1), id: rd32(b, p + 4) };
        nh = b[p]; p += 8;
      } else {
        const next = b[p]; p += (b[p + 1] + 1) * 8; nh = next;
      }
    }
    ip.proto = nh;
    if (p > pend) { ip.error = 'IPv6 extension headers exceed the packet'; return ip; }
    ip.l4Offset = p;
    if (ip.fragment && ip.fragment.offset !== 0) { ip.protoName = protoName(nh); ip.payload = b.slice(p, pend); return ip; }
    parseL4(b, ip, p, pend, quoted);
    return ip;
  }
  ip.error = `bad IP version ${v}`;
  return ip;
}

/** Decode an Ethernet frame. */
export function parseFrame(frame: Uint8Array): ParsedFrame {
  const f: ParsedFrame = { dstMac: '', srcMac: '', ethertype: 0, length: frame.length, kind: 'other' };
  if (frame.length < 14) { f.error = `truncated Ethernet header: ${frame.length} bytes`; return f; }
  f.dstMac = formatMac(frame, 0); f.srcMac = formatMac(frame, 6);
  let off = 12;
  f.ethertype = rd16(frame, 12);
  if (f.ethertype === 0x8100) {
    if (frame.length < 18) { f.error = 'truncated 802.1Q tag'; return f; }
    const tci = rd16(frame, 14);
    f.vlan = tci & 0xfff; f.pcp = tci >> 13;
    off = 16; f.ethertype = rd16(frame, 16);
  }
  off += 2;
  if (f.ethertype === 0x0806) {
    f.kind = 'arp';
    if (frame.length - off < 28) { f.error = 'truncated ARP'; return f; }
    f.arp = {
      op: rd16(frame, off + 6), senderMac: formatMac(frame, off + 8), senderIp: formatAddr(frame, 4, off + 14),
      targetMac: formatMac(frame, off + 18), targetIp: formatAddr(frame, 4, off + 24),
    };
    return f;
  }
  if (f.ethertype !== 0x0800 && f.ethertype !== 0x86dd) return f;
  f.kind = f.ethertype === 0x0800 ? 'ipv4' : 'ipv6';
  const ip = parseIp(frame, off, frame.length, false);
  Object.assign(f, ip);
  if (ip.error) f.error = ip.error;
  if (ip.family === 6 && ip.proto === 58 && ip.icmpType !== undefined && ip.icmpType >= 133 && ip.icmpType <= 137) {
    f.nd = { type: ip.icmpType };
    if ((ip.icmpType === 135 || ip.icmpType === 136) && ip.payload && ip.payload.length >= 16) f.nd.target = formatAddr(ip.payload, 6, 0);
  }
  return f;
}
