// Header rewrite of forwarded frames: address and port translation with incremental checksums
// (RFC 1624), the one TTL / hop-limit decrement, SCTP's CRC, and the Ethernet header toward a
// backend. Semantics: docs/core.md "Rewrite and checksums".
import * as L from "./layout";
import { d32, d16, csumApply, crc32c } from "./checksum";
import { macCopy } from "./addr";
import {
  ETH_DST, ETH_SRC, IP4_SRC, IP4_DST, IP4_TTL, IP4_CSUM, IP6_SRC, IP6_DST, IP6_HOP_LIMIT,
  L4_SPORT, L4_DPORT, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, TCP_CSUM, UDP_CSUM, UDP_CSUM_ZERO, SCTP_CSUM,
} from "./net";
import { Frame, setResult } from "./frame";

@inline export function srcOff(family: u32): usize { return family == 4 ? IP4_SRC : IP6_SRC; }
@inline export function dstOff(family: u32): usize { return family == 4 ? IP4_DST : IP6_DST; }

/** Delta of replacing the address at p (4 or 16 bytes) with the one at n, and the copy. */
@inline export function addrReplace(p: usize, n: usize, family: u32): u64 {
  if (family == 4) {
    const o = load<u32>(p), w = load<u32>(n);
    store<u32>(p, w);
    return d32(o, w);
  }
  const o0 = load<u32>(p), o1 = load<u32>(p, 4), o2 = load<u32>(p, 8), o3 = load<u32>(p, 12);
  const n0 = load<u32>(n), n1 = load<u32>(n, 4), n2 = load<u32>(n, 8), n3 = load<u32>(n, 12);
  store<u32>(p, n0); store<u32>(p, n1, 4); store<u32>(p, n2, 8); store<u32>(p, n3, 12);
  return d32(o0, n0) + d32(o1, n1) + d32(o2, n2) + d32(o3, n3);
}

/** Replaces the 16-bit port at p with `port` (host order); returns the checksum delta. */
@inline export function portReplace(p: usize, port: u32): u64 {
  const o = <u32>load<u16>(p), n = <u32>bswap<u16>(<u16>port);
  store<u16>(p, <u16>n);
  return d16(o, n);
}

/** Decrements the TTL (IPv4, then the header checksum is fixed for it and the address delta
 * `acc` at once) or the hop limit (IPv6, no header checksum) of the IP header at l3. Every
 * forwarded frame passes here once; the caller checked TTL > 1. */
@inline export function ttlDecrement(l3: usize, family: u32, acc: u64): void {
  if (family == 4) {
    // TTL is the low byte of the little-endian load of the TTL/protocol word
    const o = <u32>load<u16>(l3, IP4_TTL);
    const n = o - 1;
    store<u16>(l3, <u16>n, IP4_TTL);
    csumApply(l3 + IP4_CSUM, acc + d16(o, n));
  } else {
    store<u8>(l3, load<u8>(l3, IP6_HOP_LIMIT) - 1, IP6_HOP_LIMIT);
  }
}

/** The TTL step of a forwarded frame: decremented (ttlDecrement, with the address delta `acc`),
 * except with the node itself at one end of the packet (`node`: a flow's FLOW_NODE, a routed
 * packet from or to a node address) — delivered to the host stack as the kernel delivers locally,
 * or the node's own output: neither takes a TTL decrement (only ip_forward / ip6_forward do) —
 * and except a spent TTL (0 or 1), which gets this far only with the node at one end (ttl.ts).
 * Left as it is, only `acc` goes into the IPv4 header checksum. */
@inline export function ttlStep(l3: usize, fr: Frame, acc: u64, node: bool): void {
  const family = <u32>fr.family;
  if (!node && ttlOk(fr)) ttlDecrement(l3, family, acc);
  else if (family == 4) csumApply(l3 + IP4_CSUM, acc);
}

/** Rewrites the IP/L4 header of a parsed frame: optional new source (addr, port), optional new
 * destination, TTL/hop limit decrement unless `node` (ttlStep), checksums. Ports are host order; a
 * 0 address = unchanged. */
export function natRewrite(f: usize, fr: Frame, newSrc: usize, newSport: u32, newDst: usize, newDport: u32, node: bool): void {
  const family = <u32>fr.family;
  const proto = <u32>fr.proto;
  const l3 = f + <usize>fr.l3;
  const l4 = f + <usize>fr.l4;
  let acc: u64 = 0;
  if (newSrc != 0) acc += addrReplace(l3 + srcOff(family), newSrc, family);
  if (newDst != 0) acc += addrReplace(l3 + dstOff(family), newDst, family);
  // a later fragment has no L4 header (the first fragment's checksum update covers the datagram)
  if (fr.laterFragment) { ttlStep(l3, fr, acc, node); return; }
  let l4acc = acc;
  if (newSrc != 0) l4acc += portReplace(l4 + L4_SPORT, newSport);
  if (newDst != 0) l4acc += portReplace(l4 + L4_DPORT, newDport);
  ttlStep(l3, fr, acc, node);
  if (proto == IPPROTO_TCP) {
    csumApply(l4 + TCP_CSUM, l4acc);
  } else if (proto == IPPROTO_UDP) {
    if (load<u16>(l4, UDP_CSUM) != 0) {
      if (csumApply(l4 + UDP_CSUM, l4acc) == 0) store<u16>(l4, UDP_CSUM_ZERO, UDP_CSUM);
    }
  } else if (proto == IPPROTO_SCTP) {
    if (fr.firstFragment == 0) {
      const end = f + <usize>fr.end;
      store<u32>(l4, 0, SCTP_CSUM);
      store<u32>(l4, crc32c(l4, <u32>(end - l4)), SCTP_CSUM);
    }
  }
}

/** Forward toward the backend: DNAT to (backend addr, bport), SNAT to (snat, nport) when snat != 0,
 * out of port `out` to next hop dstMac from srcMac (the backend entry's hop, or for a flow whose
 * backend left, the route's to its address); `node`: the flow's client or backend is the node
 * itself (its TTL kept, ttlStep). */
export function fwdOrig(f: usize, fr: Frame, beAddr: usize, bport: u32, snat: usize, nport: u32, dstMac: usize, srcMac: usize, out: u32, node: bool): void {
  natRewrite(f, fr, snat, nport, beAddr, bport, node);
  macCopy(f + ETH_DST, dstMac);
  macCopy(f + ETH_SRC, srcMac);
  fr.stages |= L.TS_DNAT | (snat != 0 ? L.TS_SNAT : 0);
  setResult(fr, L.V_FORWARD, L.REASON_FWD_NAT, out);
}

@inline export function ttlOk(fr: Frame): bool { return fr.ttl > 1; }

/** Whether a packet has spent its TTL / hop limit (ttl.ts ttlExceeded answers it): never when the node
 * itself is at either end (`node`: a flow's FLOW_NODE, nodeEnds of a new flow, routedNode) —
 * local delivery and the node's own output check no TTL, and the translation leaves it as it is
 * (ttlStep). */
@inline export function ttlSpent(fr: Frame, node: bool): bool {
  return !node && !ttlOk(fr);
}
