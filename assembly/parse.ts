// Pass 1: parse and hash one frame into its Frame record. Stateless; every frame byte read is
// preceded by a length check against the descriptor length or the IP packet end. A frame that
// fails a check is decided here (Frame.reason != 0). Semantics: docs/core.md "Parsing".
import * as L from "./layout";
import { keyHash } from "./hash";
import { addrCopy, addrSet4 } from "./addr";
import {
  ETH_TYPE, ETH_HLEN, VLAN_TYPE, VLAN_ETH_HLEN, ETH_P_IP, ETH_P_ARP, ETH_P_8021Q, ETH_P_IPV6,
  IP4_HLEN, IP4_VER_IHL, IP4_TOT_LEN, IP4_ID, IP4_FRAG, IP4_TTL, IP4_PROTO, IP4_SRC, IP4_DST, IP4_MF, IP4_OFFSET,
  IP4_BROADCAST, IP4_CLASS_D_MASK, IP4_CLASS_D, IP6_EXT_NEXT, IP6_EXT_LEN, IP6_FRAG_HLEN, IP6_FRAG_OFFLG, IP6_HLEN, IP6_PLEN, IP6_NEXT, IP6_HOP_LIMIT, IP6_SRC, IP6_DST, IP6_EXT_MAX, IP6_EXT_MIN,
  IP6_FRAG_OFFSET, IP6_FRAG_M, IP6_FRAG_ID, IP6_MULTICAST, IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT,
  IPPROTO_DSTOPTS, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_ICMP, IPPROTO_ICMPV6,
  L4_SPORT, L4_DPORT, TCP_HLEN, TCP_DOFF, TCP_FLAGS, UDP_HLEN, SCTP_HLEN, ICMP_HLEN, ICMP_TYPE,
  ND_ROUTER_SOLICIT, ND_REDIRECT,
} from "./net";
import { gSlot, descAt, slotAt } from "./regions";
import { Frame } from "./frame";

@inline function early(fr: Frame, verdict: u32, reason: u32): void {
  fr.reason = <u8>reason;
  fr.verdict = <u8>verdict;
}

/** The IPv6 extension headers the core follows (hop-by-hop, routing, fragment, destination
 * options). */
@inline function isIp6ExtHeader(proto: u32): bool {
  return proto == IPPROTO_HOPOPTS || proto == IPPROTO_ROUTING || proto == IPPROTO_DSTOPTS || proto == IPPROTO_FRAGMENT;
}

/** What ip6SkipExt found: the protocol after the extension headers, and the fragment header's
 * identification and state (EXT_FRAG_*) when there was one. */
export let gExtProto: u32 = 0;
export let gExtFrag: u32 = 0;
export let gExtFragId: u32 = 0;
export const EXT_FRAG_NONE: u32 = 0;   // no fragment header
export const EXT_FRAG_WHOLE: u32 = 1;  // one with offset 0 and M clear (the whole datagram)
export const EXT_FRAG_FIRST: u32 = 2;  // offset 0, M set
export const EXT_FRAG_LATER: u32 = 3;  // offset != 0: what follows its header is datagram data

/** Walks the IPv6 extension headers starting at `at` (the first one, of type `proto`) within
 * `end` (absolute addresses), for the packet's own headers (parse) and for the packet an ICMPv6
 * error quotes (icmp.ts readQuote), as the kernel's ipv6_skip_exthdr: at most IP6_EXT_MAX, each
 * within end. Returns the address past them — past a later fragment's fragment header, whatever
 * follows — with gExtProto / gExtFrag / gExtFragId set; 0 when they are malformed. */
@inline export function ip6SkipExt(at: usize, proto: u32, end: usize): usize {
  gExtFrag = EXT_FRAG_NONE;
  let n: u32 = 0;
  while (isIp6ExtHeader(proto)) {
    if (++n > IP6_EXT_MAX || at + IP6_EXT_MIN > end) return 0;
    const next = <u32>load<u8>(at, IP6_EXT_NEXT);
    if (proto == IPPROTO_FRAGMENT) {
      const fo = <u32>bswap<u16>(load<u16>(at, IP6_FRAG_OFFLG));
      gExtFragId = bswap<u32>(load<u32>(at, IP6_FRAG_ID));
      at += IP6_FRAG_HLEN;
      if ((fo & IP6_FRAG_OFFSET) != 0) { gExtFrag = EXT_FRAG_LATER; proto = next; break; }
      gExtFrag = (fo & IP6_FRAG_M) ? EXT_FRAG_FIRST : EXT_FRAG_WHOLE;
    } else {
      at += (<usize>load<u8>(at, IP6_EXT_LEN) + 1) << 3;
      if (at > end) return 0;
    }
    proto = next;
  }
  gExtProto = proto;
  return at;
}

export function parse(i: u32, fr: Frame): void {
  const d = descAt(i);
  const len = <u32>d.len;
  const f = slotAt(i);
  fr.len = <u16>len;
  fr.reason = 0;
  fr.family = 0;
  fr.proto = 0;
  fr.hasPorts = 0;
  fr.spec = 0;
  fr.icmpType = 0;
  fr.tcpFlags = 0;
  fr.hash = 0;
  fr.l3 = 0;
  fr.l4 = 0;
  fr.laterFragment = 0;
  fr.fragId = 0;
  if (d.inPort == L.PORT_NONE) { early(fr, L.V_DROP, L.REASON_DROP_BAD_PORT); return; }
  if (len > gSlot) { early(fr, L.V_DROP, L.REASON_DROP_OVERSIZE); return; }
  if (len < ETH_HLEN) { early(fr, L.V_DROP, L.REASON_DROP_TRUNCATED_L2); return; }
  let et = <u32>bswap<u16>(load<u16>(f, ETH_TYPE));
  let l3: u32 = ETH_HLEN;
  if (et == ETH_P_8021Q) {
    if (len < VLAN_ETH_HLEN) { early(fr, L.V_DROP, L.REASON_DROP_TRUNCATED_L2); return; }
    et = <u32>bswap<u16>(load<u16>(f, VLAN_TYPE));
    l3 = VLAN_ETH_HLEN;
  }
  fr.l3 = <u16>l3;
  if (et == ETH_P_ARP) { early(fr, L.V_TO_HOST, L.REASON_HOST_ARP); return; }
  let family: u32;
  let end: u32;
  let l4: u32;
  let proto: u32;
  const p = f + <usize>l3;
  if (et == ETH_P_IP) {
    if (len - l3 < IP4_HLEN) { early(fr, L.V_DROP, L.REASON_DROP_TRUNCATED_L3); return; }
    const vi = <u32>load<u8>(p, IP4_VER_IHL);
    if ((vi >>> 4) != 4) { early(fr, L.V_DROP, L.REASON_DROP_BAD_IP_VERSION); return; }
    const ihl = (vi & 15) << 2;
    if (ihl < IP4_HLEN) { early(fr, L.V_DROP, L.REASON_DROP_BAD_IHL); return; }
    const tot = <u32>bswap<u16>(load<u16>(p, IP4_TOT_LEN));
    if (tot > len - l3 || tot < ihl) { early(fr, L.V_DROP, L.REASON_DROP_BAD_IP_LENGTH); return; }
    family = 4;
    fr.family = 4;
    end = l3 + tot;
    l4 = l3 + ihl;
    proto = <u32>load<u8>(p, IP4_PROTO);
    const s = load<u32>(p, IP4_SRC);
    addrSet4(fr.srcAddr, s);
    addrSet4(fr.dstAddr, load<u32>(p, IP4_DST));
    fr.ttl = load<u8>(p, IP4_TTL);
    const fo = <u32>bswap<u16>(load<u16>(p, IP4_FRAG));
    // martian source: multicast (224.0.0.0/4: first byte, the low byte of the word) or broadcast
    if ((s & IP4_CLASS_D_MASK) == IP4_CLASS_D || s == IP4_BROADCAST) { early(fr, L.V_DROP, L.REASON_DROP_MARTIAN); return; }
    fr.firstFragment = (fo & IP4_MF) != 0 && (fo & IP4_OFFSET) == 0 ? 1 : 0;
    if ((fo & (IP4_MF | IP4_OFFSET)) != 0) fr.fragId = <u32>bswap<u16>(load<u16>(p, IP4_ID));
    if ((fo & IP4_OFFSET) != 0) fr.laterFragment = 1;
  } else if (et == ETH_P_IPV6) {
    if (len - l3 < IP6_HLEN) { early(fr, L.V_DROP, L.REASON_DROP_TRUNCATED_L3); return; }
    if ((load<u8>(p) >>> 4) != 6) { early(fr, L.V_DROP, L.REASON_DROP_BAD_IP_VERSION); return; }
    const pl = <u32>bswap<u16>(load<u16>(p, IP6_PLEN));
    if (pl + IP6_HLEN > len - l3) { early(fr, L.V_DROP, L.REASON_DROP_BAD_IP_LENGTH); return; }
    family = 6;
    fr.family = 6;
    end = l3 + IP6_HLEN + pl;
    addrCopy(fr.srcAddr, p + IP6_SRC);
    addrCopy(fr.dstAddr, p + IP6_DST);
    fr.ttl = load<u8>(p, IP6_HOP_LIMIT);
    fr.firstFragment = 0;
    if (<u32>load<u8>(p, IP6_SRC) == IP6_MULTICAST) { early(fr, L.V_DROP, L.REASON_DROP_MARTIAN); return; }
    proto = <u32>load<u8>(p, IP6_NEXT);
    l4 = l3 + IP6_HLEN;
    if (isIp6ExtHeader(proto)) {
      const past = ip6SkipExt(f + <usize>l4, proto, f + <usize>end);
      if (past == 0) { early(fr, L.V_DROP, L.REASON_DROP_IPV6_EXT_HEADERS); return; }
      l4 = <u32>(past - f);
      proto = gExtProto;
      if (gExtFrag != EXT_FRAG_NONE) fr.fragId = gExtFragId;
      // a later fragment: what follows is part of the datagram, no header to parse
      if (gExtFrag == EXT_FRAG_LATER) fr.laterFragment = 1;
      else if (gExtFrag == EXT_FRAG_FIRST) fr.firstFragment = 1;
    }
  } else {
    early(fr, L.V_TO_HOST, L.REASON_HOST_NOT_IP);
    return;
  }
  fr.l4 = <u16>l4;
  fr.end = <u16>end;
  fr.proto = <u8>proto;
  fr.sport = 0;
  fr.dport = 0;
  // a later fragment has no L4 header: its ports come from the fragment table in pass 2
  if (fr.laterFragment) return;
  const q = f + <usize>l4;
  if (proto == IPPROTO_TCP) {
    if (l4 + TCP_HLEN > end) { early(fr, L.V_DROP, L.REASON_DROP_TRUNCATED_L4); return; }
    const doff = (<u32>load<u8>(q, TCP_DOFF) >>> 4) << 2;
    if (doff < TCP_HLEN) { early(fr, L.V_DROP, L.REASON_DROP_BAD_L4_HEADER); return; }
    if (l4 + doff > end) { early(fr, L.V_DROP, L.REASON_DROP_TRUNCATED_L4); return; }
    fr.tcpFlags = load<u8>(q, TCP_FLAGS);
    fr.hasPorts = 1;
  } else if (proto == IPPROTO_UDP) {
    if (l4 + UDP_HLEN > end) { early(fr, L.V_DROP, L.REASON_DROP_TRUNCATED_L4); return; }
    fr.hasPorts = 1;
  } else if (proto == IPPROTO_SCTP) {
    if (l4 + SCTP_HLEN > end) { early(fr, L.V_DROP, L.REASON_DROP_TRUNCATED_L4); return; }
    // the first chunk's type, for conntrack's SCTP states (none: 0, a DATA chunk's, which changes nothing)
    if (l4 + SCTP_HLEN < end) fr.tcpFlags = load<u8>(q, SCTP_HLEN);
    fr.hasPorts = 1;
  } else if ((proto == IPPROTO_ICMP && family == 4) || (proto == IPPROTO_ICMPV6 && family == 6)) {
    if (l4 + ICMP_HLEN > end) { early(fr, L.V_DROP, L.REASON_DROP_TRUNCATED_L4); return; }
    const type = <u32>load<u8>(q, ICMP_TYPE);
    fr.icmpType = <u8>type;
    if (family == 6 && type >= ND_ROUTER_SOLICIT && type <= ND_REDIRECT) { early(fr, L.V_TO_HOST, L.REASON_HOST_ND); return; }
  }
  let sport: u32 = 0, dport: u32 = 0;
  if (fr.hasPorts) {
    sport = <u32>bswap<u16>(load<u16>(q, L4_SPORT));
    dport = <u32>bswap<u16>(load<u16>(q, L4_DPORT));
  }
  fr.sport = <u16>sport;
  fr.dport = <u16>dport;
  fr.hash = keyHash(fr.srcAddr, fr.dstAddr, sport | (dport << 16), proto, family);
}
