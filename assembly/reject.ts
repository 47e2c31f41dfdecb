// Reject for a frontend without endpoints: an ICMP / ICMPv6 port unreachable that quotes the
// packet, sent back where the frame came from, for every protocol (TCP too), as the nftables
// proxier's bare `reject` answers (nft's default for `reject` in an ip / ip6 table: icmp
// port-unreachable / icmpv6 port-unreachable; never a TCP reset). Its source is the one the
// kernel's __icmp_send / icmp6_send would choose (rejectSource). Semantics: docs/core.md "Reject".
// The ICMP answer is also the one an oversize packet gets (mtu.ts: fragmentation needed / packet
// too big) and a spent TTL (ttl.ts: time exceeded), with its own type, code and MTU field; the
// packet too big is never rate-limited (the kernel does not limit path MTU discovery), the reject
// answers are (ratelimit.ts).
import * as L from "./layout";
import { sumBytes, csumFinal } from "./checksum";
import { addrCopy, macCopy } from "./addr";
import {
  ETH_DST, ETH_SRC, IP4_HLEN, IP4_VER_IHL, IP4_TOS, IP4_TOT_LEN, IP4_ID, IP4_FRAG, IP4_TTL,
  IP4_PROTO, IP4_CSUM, IP4_SRC, IP4_DST, IP4_MIN_MTU, IP6_HLEN, IP6_PLEN, IP6_NEXT, IP6_HOP_LIMIT,
  IP6_SRC, IP6_DST, IP6_MIN_MTU, DEFAULT_TTL, IPPROTO_TCP, IPPROTO_ICMP, IPPROTO_ICMPV6,
  TCP_RST, ICMP_HLEN, ICMP_TYPE, ICMP_CODE, ICMP_CSUM, ICMP_REST,
  ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, ICMP6_DST_UNREACH, ICMP6_PORT_UNREACH, IPTOS_TOS_MASK,
  IPTOS_PREC_INTERNETCONTROL,
} from "./net";
import { gSlot, gLive, gPortAddr } from "./regions";
import { srcOff, dstOff } from "./rewrite";
import { Frame, setResult, drop } from "./frame";
import { rejectAllowed } from "./ratelimit";
import { icmp6FlowLabel } from "./flow-label";
import { nodeEnds } from "./node-addr";

// The IPv4 ID of the core's last ICMP error: each error takes the next (a dry run reads it, never
// moves it), as the kernel gives each of its errors an ID (ip_select_ident: they are sent without DF).
let gIcmpId: u32 = 0;

/** The ID of the ICMP error being built (16 bits; the counter moves only in a live batch). */
function nextIcmpId(): u32 {
  const id = (gIcmpId + 1) & 0xffff;
  if (gLive) gIcmpId = id;
  return id;
}

// The answer can be longer than the frame (an ICMP error quotes it), so it is built here and copied
// into the slot; never longer than CFG_SLOT_SIZE.
const SCRATCH: usize = memory.data(2048, 64);

/** The source of a reject's ICMP error, chosen as the kernel's __icmp_send (net/ipv4/icmp.c) and
 * icmp6_send (net/ipv6/icmp.c) choose it for the nftables proxier's `reject`: the rejected
 * packet's destination when that address is the node's own (its route RTCF_LOCAL / ipv6_chk_addr:
 * a NodePort's node address, an external IP the node holds — refused in filter-input), else the
 * node's address on the route back to the sender (a ClusterIP, an external or LB IP the node does
 * not hold — refused in filter-forward): for the core the in port's PORT_ADDR entry, the address a
 * routed packet's time exceeded comes from (ttl.ts). Returns that entry's address, or 0 for the
 * destination — also when the in port has no address of the family (a port the host gave none:
 * the client is still refused; the kernel would have some address). Needs nodeAddrLoad of this
 * batch (pipeline.ts). */
function rejectSource(fr: Frame): usize {
  const family = <u32>fr.family;
  if (nodeEnds(fr.dstAddr, fr.dstAddr, family) != 0) return 0;
  const pa = gPortAddr + <usize>(<u32>fr.inPort) * L.PA_SIZE;
  if (family == 4) return load<u32>(pa, L.PA_V4) != 0 ? pa + L.PA_V4 : 0;
  return (load<u64>(pa, L.PA_V6) | load<u64>(pa, L.PA_V6 + 8)) != 0 ? pa + L.PA_V6 : 0;
}

/** Builds an ICMP / ICMPv6 port unreachable answering the frame (in SCRATCH) from rejectSource,
 * copies it into the slot; the verdict is reject with `reason`. A TCP RST is never answered: it is
 * dropped (`drop_rst_no_endpoints`; the kernel's conntrack finds a RST without an entry invalid,
 * never new, so kube-proxy's `ct state new` checks never see it). An answer over the rate limit
 * (ratelimit.ts) is not made: the frame is dropped, `drop_reject_rate_limited`. */
export function reject(f: usize, fr: Frame, reason: u32): void {
  const family = <u32>fr.family;
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
  answer(f, fr, reason, family == 4 ? ICMP_DEST_UNREACH : ICMP6_DST_UNREACH, family == 4 ? ICMP_PORT_UNREACH : ICMP6_PORT_UNREACH, 0, rejectSource(fr));
}

/** The ICMP error `type`/`code` answering the frame, with `rest` in its 4 type-specific bytes,
 * quoting the IP packet as received (cut so the answer is at most 576 / 1280 bytes, as the
 * kernel's icmp_send and icmpv6_send cut theirs, and fits the slot), sent back out of its in port
 * from the address it was sent to (or from `from`: 4 / 16 bytes of the frame's family, when not
 * 0), with verdict reject and `reason`. */
export function answer(f: usize, fr: Frame, reason: u32, type: u32, code: u32, rest: u32, from: usize = 0): void {
  const family = <u32>fr.family;
  const l3o = <u32>fr.l3;
  const l3 = f + <usize>l3o;
  const end = f + <usize>fr.end;
  const o = SCRATCH;
  // Ethernet (+ VLAN tag and ethertype kept as received), MACs swapped
  memory.copy(o, f, l3o);
  macCopy(o + ETH_DST, f + ETH_SRC);
  macCopy(o + ETH_SRC, f + ETH_DST);
  const ip = o + <usize>l3o;
  const iphl: u32 = family == 4 ? IP4_HLEN : IP6_HLEN;
  const osrc = l3 + srcOff(family), odst = from != 0 ? from : l3 + dstOff(family);
  const nh: u32 = family == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
  const t = ip + iphl;
  const maxTotal: u32 = family == 4 ? IP4_MIN_MTU : IP6_MIN_MTU;
  let qlen = <u32>(end - l3);
  if (qlen > maxTotal - iphl - ICMP_HLEN) qlen = maxTotal - iphl - ICMP_HLEN;
  if (l3o + iphl + ICMP_HLEN + qlen > gSlot) qlen = gSlot - l3o - iphl - ICMP_HLEN;
  const l4len = ICMP_HLEN + qlen;
  store<u8>(t, <u8>type, ICMP_TYPE);
  store<u8>(t, <u8>code, ICMP_CODE);
  store<u16>(t, 0, ICMP_CSUM);
  store<u32>(t, bswap<u32>(rest), ICMP_REST);
  memory.copy(t + ICMP_HLEN, l3, qlen);
  // IP header, from the VIP (or `from`) back to the sender
  let ps: u64;
  if (family == 4) {
    store<u8>(ip, 0x45, IP4_VER_IHL);
    store<u16>(ip, bswap<u16>(<u16>(IP4_HLEN + l4len)), IP4_TOT_LEN);
    // as icmp_send builds an error's: the quoted packet's TOS bits with precedence internetwork
    // control (no ECN, no other precedence), an ID of its own, no DF (its socket's
    // IP_PMTUDISC_DONT)
    store<u8>(ip, <u8>((<u32>load<u8>(l3, IP4_TOS) & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL), IP4_TOS);
    store<u16>(ip, bswap<u16>(<u16>nextIcmpId()), IP4_ID);
    store<u16>(ip, 0, IP4_FRAG);
    store<u8>(ip, <u8>DEFAULT_TTL, IP4_TTL);
    store<u8>(ip, <u8>nh, IP4_PROTO);
    store<u16>(ip, 0, IP4_CSUM);
    store<u32>(ip, load<u32>(odst), IP4_SRC);
    store<u32>(ip, load<u32>(osrc), IP4_DST);
    store<u16>(ip, <u16>csumFinal(sumBytes(ip, IP4_HLEN)), IP4_CSUM);
    ps = 0;   // (ICMPv4 has no pseudo header)
  } else {
    store<u16>(ip, bswap<u16>(<u16>l4len), IP6_PLEN);
    store<u8>(ip, <u8>nh, IP6_NEXT);
    store<u8>(ip, <u8>DEFAULT_TTL, IP6_HOP_LIMIT);
    addrCopy(ip + IP6_SRC, odst);
    addrCopy(ip + IP6_DST, osrc);
    // version 6, traffic class 0, the automatic flow label icmp6_send's output path gives an
    // ICMPv6 error (flow-label.ts)
    const label = icmp6FlowLabel(ip + IP6_SRC, ip + IP6_DST, type, code);
    store<u32>(ip, bswap<u32>(0x60000000 | label), 0);
    ps = sumBytes(ip + IP6_SRC, 32) + (<u64>nh << 8) + <u64>bswap<u16>(<u16>l4len);
  }
  const ck = csumFinal(ps + sumBytes(t, l4len));
  store<u16>(t + ICMP_CSUM, <u16>ck);
  const total = l3o + iphl + l4len;
  memory.copy(f, o, total);
  fr.lenOut = <u16>total;
  fr.stages |= L.TS_REJECT;
  setResult(fr, L.V_REJECT, reason, <u32>fr.inPort);
}
