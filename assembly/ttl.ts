// Time exceeded: a packet whose TTL / hop limit runs out at the node is answered as Linux's
// ip_forward / ip6_forward answer it — an ICMP time exceeded (type 11 code 0) / ICMPv6 time
// exceeded (type 3 code 0) to its source, quoting it as received, out of the port it came in by to
// the sender's MAC, under the reject rate limit (the kernel's icmp_ratemask / icmpv6 limit covers
// time exceeded). A routed packet's answer comes from the node's address on that port (the
// PORT_ADDR region the host fills: a gateway address of the port, on an uplink else a node
// address). A service packet's answer comes from the address conntrack's NAT of the RELATED error
// gives it: the kernel attaches the error to the packet's conntrack entry (icmp_glue_bits /
// icmpv6_getfrag: nf_ct_attach, a new flow's unconfirmed entry too) and nf_nat_icmp_reply_translation
// rewrites it back — from the service address the client sent to (or the SNAT address a reply was
// sent to), quoting the packet as the sender sent it. What icmp_send / icmpv6_send never answer is
// dropped silently. A packet with the node itself at one end is never checked (and keeps its TTL:
// rewrite.ts ttlStep): to the node — a Service endpoint at the node (hostNetwork), a routed packet
// to a node address — the kernel delivers it locally (ip_local_deliver checks no TTL), and what
// the node sends — its answers, its own connections, its routed packets — is its output, never
// forwarded (only ip_forward / ip6_forward check). Semantics: docs/core.md "Time exceeded".
import * as L from "./layout";
import {
  ETH_DST, IPPROTO_ICMP, IPPROTO_ICMPV6, ICMP_TIME_EXCEEDED, ICMP6_TIME_EXCEEDED,
} from "./net";
import { gPortAddr } from "./regions";
import { Frame, drop } from "./frame";
import { answer } from "./icmp-answer";
import { rejectAllowed } from "./ratelimit";
import { icmpNeverAnswered } from "./mtu";
import { nodeEnds } from "./node-addr";

/** Whether the kernel would send a time exceeded for this frame at all: a frame sent to the node's
 * MAC (not to an Ethernet group address: ip_forward drops what is not PACKET_HOST), to a unicast
 * destination (not 224.0.0.0/4 or 255.255.255.255; not ff00::/8), from a source that names one
 * node (not 0.0.0.0 / ::; multicast sources were dropped as martians), no fragment but the first
 * (offset 0; IPv4: icmp_send answers no other; both families: under kube-proxy conntrack's defrag
 * — nf_defrag_ipv4 / nf_ct_frag6_gather in PREROUTING — reassembles the datagram before ip_forward
 * / ip6_forward, which answers it once, and a later fragment alone is never reassembled) and no
 * ICMP error (icmpNeverAnswered). */
function eligible(f: usize, fr: Frame): bool {
  if ((load<u8>(f, ETH_DST) & 1) != 0 || fr.laterFragment) return false;
  const family = <u32>fr.family;
  const dst = fr.dstAddr, src = fr.srcAddr;
  if (family == 4) {
    const d = <u32>load<u8>(dst);
    if ((d & 0xf0) == 0xe0 || load<u32>(dst) == 0xffffffff) return false;
    if (load<u32>(src) == 0) return false;
    if (<u32>fr.proto == IPPROTO_ICMP && icmpNeverAnswered(4, <u32>fr.icmpType)) return false;
  } else {
    if (<u32>load<u8>(dst) == 0xff) return false;
    if ((load<u64>(src) | load<u64>(src, 8)) == 0) return false;
    if (<u32>fr.proto == IPPROTO_ICMPV6 && icmpNeverAnswered(6, <u32>fr.icmpType)) return false;
  }
  return true;
}

/** Whether a routed packet is from or to the node itself (a node address, nodeItself of either):
 * the node's output, or what the kernel delivers locally — its TTL kept (ttlStep), a spent one
 * never answered. Compares with the node's addresses of the batch (node-addr.ts). */
@inline export function routedNode(fr: Frame): bool {
  return nodeEnds(fr.srcAddr, fr.dstAddr, <u32>fr.family) != 0;
}

/** A frame whose TTL / hop limit is spent: answered with a time exceeded (verdict reject,
 * `reject_ttl_exceeded`) from `from` (4 / 16 bytes of the frame's family; 0: the in port's
 * PORT_ADDR entry), or dropped — `drop_ttl_exceeded` (never answered), `drop_ttl_no_address` (no
 * `from` and its in port has no address of its family), `drop_reject_rate_limited` (over the
 * limit). Nothing else changes: no flow is created or touched. */
export function ttlExceeded(f: usize, fr: Frame, from: usize): void {
  if (!eligible(f, fr)) { drop(fr, L.REASON_DROP_TTL_EXCEEDED); return; }
  const family = <u32>fr.family;
  if (from == 0) {
    const pa = gPortAddr + <usize>(<u32>fr.inPort) * L.PA_SIZE;
    if (family == 4) {
      from = pa + L.PA_V4;
      if (load<u32>(from) == 0) { drop(fr, L.REASON_DROP_TTL_NO_ADDRESS); return; }
    } else {
      from = pa + L.PA_V6;
      if ((load<u64>(from) | load<u64>(from, 8)) == 0) { drop(fr, L.REASON_DROP_TTL_NO_ADDRESS); return; }
    }
  }
  if (!rejectAllowed(fr.srcAddr, family)) {
    drop(fr, L.REASON_DROP_REJECT_RATE_LIMITED);
    fr.stages |= L.TS_REJECT;
    return;
  }
  answer(f, fr, L.REASON_REJECT_TTL_EXCEEDED, family == 4 ? ICMP_TIME_EXCEEDED : ICMP6_TIME_EXCEEDED, 0, 0, from);
}
