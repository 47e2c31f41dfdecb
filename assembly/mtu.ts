// Egress MTU: an IP packet larger than the MTU of the port it is about to leave by is not sent —
// the port could not send it (AF_PACKET fails with EMSGSIZE) or the link would lose it. As a
// Linux router's ip_forward / ip6_forward: IPv4 with DF and IPv6 get an ICMP "fragmentation
// needed" (type 3 code 4) / ICMPv6 "packet too big" (type 2) carrying the port's MTU, sent back to
// the packet's source quoting the packet as it arrived (before any translation: a client of a
// ClusterIP sees its own packet to the ClusterIP), so path MTU discovery works through the
// service; IPv4 without DF is dropped (the kernel would fragment; the core does not). Semantics:
// docs/core.md "Egress MTU".
//
// Cost: one u16 load and one compare per forwarded packet (fitsPort, inlined at each call site
// before the rewrite: an unknown MTU is stored as 0xffff, which every packet fits); the answer is
// built only for packets that do not fit.
import * as L from "./layout";
import {
  IP4_FRAG, IP4_DF, IP4_OFFSET, IP6_MIN_MTU, IPPROTO_ICMP, IPPROTO_ICMPV6,
  ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP6_PACKET_TOO_BIG,
} from "./net";
import { gPortMtu } from "./regions";
import { Frame, drop } from "./frame";
import { answer } from "./icmp-answer";

/** Whether the frame's IP packet may leave by port `out` (its MTU is unknown, or the packet fits);
 * false: it does not fit and has been answered or dropped (verdict and reason set). Call before
 * the frame is rewritten: the answer quotes it as received. */
@inline export function fitsPort(f: usize, fr: Frame, out: u32): bool {
  const mtu = <u32>load<u16>(gPortMtu + (<usize>(out & 0xffff) << 1));
  return <u32>fr.end - <u32>fr.l3 <= mtu || fitsClamped(f, fr, mtu);
}

/** An ICMP message the kernel never answers with an error: ICMPv4 destination unreachable, source
 * quench, redirect, time exceeded, parameter problem and any type above 18 (icmp_send: "an ICMP
 * error to an ICMP error"); ICMPv6 types below 128, the errors (icmpv6_send's is_ineligible). */
@inline export function icmpNeverAnswered(family: u32, type: u32): bool {
  if (family == 6) return type < 128;
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12 || type > 18;
}

/** A packet larger than the port's MTU `mtu`: IPv6 reports (and checks against) at least 1280,
 * the IPv6 minimum link MTU (ip6_forward's clamp); the kernel never answers an ICMP error nor a
 * non-first IPv4 fragment (icmp_send / icmpv6_send), so those, and IPv4 without DF, are dropped. */
function fitsClamped(f: usize, fr: Frame, mtu: u32): bool {
  const family = <u32>fr.family;
  const l3 = f + <usize>fr.l3;
  if (family == 6 && mtu < IP6_MIN_MTU) {
    mtu = IP6_MIN_MTU;
    if (<u32>fr.end - <u32>fr.l3 <= mtu) return true;
  }
  const proto = <u32>fr.proto;
  const icmpErr = ((family == 4 && proto == IPPROTO_ICMP) || (family == 6 && proto == IPPROTO_ICMPV6)) &&
    !fr.laterFragment && icmpNeverAnswered(family, <u32>fr.icmpType);
  if (family == 4) {
    const frag = <u32>bswap<u16>(load<u16>(l3, IP4_FRAG));
    if ((frag & IP4_DF) == 0 || (frag & IP4_OFFSET) != 0 || icmpErr) { drop(fr, L.REASON_DROP_PACKET_TOO_BIG); return false; }
    answer(f, fr, L.REASON_REJECT_PACKET_TOO_BIG, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu);
  } else {
    if (icmpErr) { drop(fr, L.REASON_DROP_PACKET_TOO_BIG); return false; }
    answer(f, fr, L.REASON_REJECT_PACKET_TOO_BIG, ICMP6_PACKET_TOO_BIG, 0, mtu);
  }
  return false;
}
