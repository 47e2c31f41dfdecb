// The ICMP / ICMPv6 errors the core answers with — a reject's port unreachable (reject.ts), a
// packet too big (mtu.ts), a time exceeded (ttl.ts): built as the kernel's icmp_send /
// icmpv6_send build theirs (header, quote, flow label), sent back out of the frame's in port to
// the sender's MAC. Semantics: docs/core.md "Reject".
import * as L from "./layout";
import { sumBytes, csumFinal } from "./checksum";
import { addrCopy, macCopy } from "./addr";
import {
  ETH_DST, ETH_SRC, IP4_HLEN, IP4_VER_IHL, IP4_TOS, IP4_TOT_LEN, IP4_ID, IP4_FRAG, IP4_TTL,
  IP4_PROTO, IP4_CSUM, IP4_SRC, IP4_DST, IP4_MIN_MTU, IP6_HLEN, IP6_PLEN, IP6_NEXT, IP6_HOP_LIMIT,
  IP6_SRC, IP6_DST, IP6_MIN_MTU, DEFAULT_TTL, IPPROTO_ICMP, IPPROTO_ICMPV6,
  ICMP_HLEN, ICMP_TYPE, ICMP_CODE, ICMP_CSUM, ICMP_REST, IPTOS_TOS_MASK, IPTOS_PREC_INTERNETCONTROL,
} from "./net";
import { gSlot, gLive } from "./regions";
import { srcOff, dstOff, ttlDecrement } from "./rewrite";
import { Frame, setResult } from "./frame";
import { icmp6FlowLabel } from "./flow-label";

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

/** The ICMP error `type`/`code` answering the frame, with `rest` in its 4 type-specific bytes,
 * quoting the IP packet as received — with its TTL / hop limit one lower when `forwarded` (what
 * the kernel's filter-forward hook rejects went through ip_forward / ip6_forward's decrement
 * first) — cut so the answer is at most 576 / 1280 bytes (as the kernel's icmp_send and
 * icmpv6_send cut theirs) and fits the slot, sent back out of its in port from the address it
 * was sent to (or from `from`: 4 / 16 bytes of the frame's family, when not 0), with verdict
 * reject and `reason`. */
export function answer(f: usize, fr: Frame, reason: u32, type: u32, code: u32, rest: u32, from: usize = 0, forwarded: bool = false): void {
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
  // (the caller saw a TTL above 1; the quote holds the whole IP header: qlen is never below it)
  if (forwarded) ttlDecrement(t + ICMP_HLEN, family, 0);
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
