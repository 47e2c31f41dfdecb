// Reject for a frontend without endpoints: an ICMP / ICMPv6 port unreachable that quotes the
// packet, sent back where the frame came from, for every protocol (TCP too), as the nftables
// proxier's bare `reject` answers (nft's default for `reject` in an ip / ip6 table: icmp
// port-unreachable / icmpv6 port-unreachable; never a TCP reset). Its source is the one the
// kernel's __icmp_send / icmp6_send would choose (rejectSource); what the node would forward
// meets ip_forward's TTL check and decrement before the filter-forward hook rejects it. Built by
// icmp-answer.ts, under the rate limit (ratelimit.ts). Semantics: docs/core.md "Reject".
import * as L from "./layout";
import { IPPROTO_TCP, TCP_RST, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, ICMP6_DST_UNREACH, ICMP6_PORT_UNREACH } from "./net";
import { gPortAddr } from "./regions";
import { Frame, drop } from "./frame";
import { rejectAllowed } from "./ratelimit";
import { nodeEnds, NODE_CLIENT, NODE_BACKEND } from "./node-addr";
import { ttlSpent } from "./rewrite";
import { ttlExceeded } from "./ttl";
import { answer } from "./icmp-answer";

/** The source of a reject's ICMP error, chosen as the kernel's __icmp_send (net/ipv4/icmp.c) and
 * icmp6_send (net/ipv6/icmp.c) choose it for the nftables proxier's `reject`: the rejected
 * packet's destination when that address is the node's own (its route RTCF_LOCAL / ipv6_chk_addr:
 * a NodePort's node address, an external IP the node holds — refused in filter-input), else the
 * address of the route back to the sender (icmp_errors_use_inbound_ifaddr is 0 by default): for
 * the node's own packet (refused in filter-output) the route to its own source address, which is
 * that address; for what the node would forward (a ClusterIP, an external or LB IP the node does
 * not hold — refused in filter-forward) the node's address toward the sender, for the core the in
 * port's PORT_ADDR entry, the address a routed packet's time exceeded comes from (ttl.ts). Returns
 * the address (4 / 16 bytes of the family), or 0 for the destination — also when the in port has
 * no address of the family (a port the host gave none: the client is still refused; the kernel
 * would have some address). `ends`: nodeEnds of the frame's source and destination (nodeAddrLoad
 * of this batch, pipeline.ts). */
function rejectSource(fr: Frame, ends: u32): usize {
  const family = <u32>fr.family;
  if ((ends & NODE_BACKEND) != 0) return 0;
  if ((ends & NODE_CLIENT) != 0) return fr.srcAddr;   // (IPv4: its first 4 bytes)
  const pa = gPortAddr + <usize>(<u32>fr.inPort) * L.PA_SIZE;
  if (family == 4) return load<u32>(pa, L.PA_V4) != 0 ? pa + L.PA_V4 : 0;
  return (load<u64>(pa, L.PA_V6) | load<u64>(pa, L.PA_V6 + 8)) != 0 ? pa + L.PA_V6 : 0;
}

/** Answers the frame with an ICMP / ICMPv6 port unreachable from rejectSource (icmp-answer.ts);
 * the verdict is reject with `reason`. A packet the node would forward (neither end the node
 * itself) with a spent TTL gets the time exceeded ip_forward / ip6_forward sends before any
 * filter-forward rule sees it (ttl.ts, from the in port's address); otherwise its quote shows the
 * TTL that hook saw, one lower. A TCP RST is never answered: it is dropped
 * (`drop_rst_no_endpoints`; the kernel's conntrack finds a RST without an entry invalid, never
 * new, so kube-proxy's `ct state new` checks never see it). An answer over the rate limit
 * (ratelimit.ts) is not made: the frame is dropped, `drop_reject_rate_limited`. */
export function reject(f: usize, fr: Frame, reason: u32): void {
  const family = <u32>fr.family;
  const ends = nodeEnds(fr.srcAddr, fr.dstAddr, family);
  if (ttlSpent(fr, ends != 0)) { ttlExceeded(f, fr, 0); return; }
  if (<u32>fr.proto == IPPROTO_TCP && (<u32>fr.tcpFlags & TCP_RST) != 0) {
    drop(fr, L.REASON_DROP_RST_NO_ENDPOINTS);
    fr.stages |= L.TS_REJECT;
    return;
  }
  if (!rejectAllowed(fr.srcAddr, family)) {
    drop(fr, L.REASON_DROP_REJECT_RATE_LIMITED);
    fr.stages |= L.TS_REJECT;
    return;
  }
  answer(f, fr, reason, family == 4 ? ICMP_DEST_UNREACH : ICMP6_DST_UNREACH, family == 4 ? ICMP_PORT_UNREACH : ICMP6_PORT_UNREACH, 0, rejectSource(fr, ends), ends == 0);
}

