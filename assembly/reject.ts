// Reject for a frontend without endpoints: a TCP RST, or an ICMP / ICMPv6 port unreachable that
// quotes the packet, sent back where the frame came from. Semantics: docs/core.md "Reject". The
// ICMP answer is also the one an oversize packet gets (mtu.ts: fragmentation needed / packet too
// big), with its own type, code and MTU field; that one is never rate-limited (the kernel does not
// limit path MTU discovery), the reject answers are (ratelimit.ts).
import * as L from "./layout";
import { sumBytes, csumFinal } from "./checksum";
import { addrCopy, macCopy } from "./addr";
import {
  ETH_DST, ETH_SRC, IP4_HLEN, IP4_VER_IHL, IP4_TOS, IP4_TOT_LEN, IP4_ID, IP4_FRAG, IP4_DF, IP4_TTL,
  IP4_PROTO, IP4_CSUM, IP4_SRC, IP4_DST, IP4_MIN_MTU, IP6_HLEN, IP6_PLEN, IP6_NEXT, IP6_HOP_LIMIT,
  IP6_SRC, IP6_DST, IP6_MIN_MTU, DEFAULT_TTL, IPPROTO_TCP, IPPROTO_ICMP, IPPROTO_ICMPV6, L4_SPORT, L4_DPORT,
  TCP_HLEN, TCP_SEQ, TCP_ACK_SEQ, TCP_DOFF, TCP_FLAGS, TCP_WINDOW, TCP_CSUM, TCP_URG_PTR,
  TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK, ICMP_HLEN, ICMP_TYPE, ICMP_CODE, ICMP_CSUM, ICMP_REST,
  ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, ICMP6_DST_UNREACH, ICMP6_PORT_UNREACH, IPTOS_TOS_MASK,
  IPTOS_PREC_INTERNETCONTROL,
} from "./net";
import { gSlot, gLive } from "./regions";
import { srcOff, dstOff } from "./rewrite";
import { Frame, setResult, drop } from "./frame";
import { rejectAllowed } from "./ratelimit";
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

/** Builds a TCP RST or ICMP port unreachable answering the frame (in SCRATCH), copies it into the
 * slot; the verdict is reject with `reason`. A TCP RST is never answered: it is dropped. An
 * answer over the rate limit (ratelimit.ts; a RST stands in for kube-proxy's ICMP error, so it
 * shares the limit) is not made: the frame is dropped, `drop_reject_rate_limited`. */
export function reject(f: usize, fr: Frame, reason: u32): void {
  const family = <u32>fr.family;
  const tcp = <u32>fr.proto == IPPROTO_TCP;
  if (tcp && (<u32>fr.tcpFlags & TCP_RST) != 0) {
    drop(fr, L.REASON_DROP_RST_NO_ENDPOINTS);
    fr.stages |= L.TS_REJECT;
    return;
  }
  if (!rejectAllowed(fr.srcAddr, family)) {
    drop(fr, L.REASON_DROP_REJECT_RATE_LIMITED);
    fr.stages |= L.TS_REJECT;
    return;
  }
  answer(f, fr, reason, tcp, family == 4 ? ICMP_DEST_UNREACH : ICMP6_DST_UNREACH, family == 4 ? ICMP_PORT_UNREACH : ICMP6_PORT_UNREACH, 0);
}

/** The answer to the frame, sent back out of its in port from the address it was sent to (or from
 * `from`: 4 / 16 bytes of the frame's family, when not 0), with verdict reject and `reason`: a TCP RST (tcpRst: the frame is a TCP segment without RST), else
 * the ICMP error `type`/`code` with `rest` in its 4 type-specific bytes, quoting the IP packet as
 * received (cut so the answer is at most 576 / 1280 bytes, as the kernel's icmp_send and
 * icmpv6_send cut theirs, and fits the slot). */
export function answer(f: usize, fr: Frame, reason: u32, tcpRst: bool, type: u32, code: u32, rest: u32, from: usize = 0): void {
  const family = <u32>fr.family;
  const l3o = <u32>fr.l3;
  const l3 = f + <usize>l3o;
  const l4 = f + <usize>fr.l4;
  const end = f + <usize>fr.end;
  const tcpf = <u32>fr.tcpFlags;
  const o = SCRATCH;
  // Ethernet (+ VLAN tag and ethertype kept as received), MACs swapped
  memory.copy(o, f, l3o);
  macCopy(o + ETH_DST, f + ETH_SRC);
  macCopy(o + ETH_SRC, f + ETH_DST);
  const ip = o + <usize>l3o;
  const iphl: u32 = family == 4 ? IP4_HLEN : IP6_HLEN;
  const osrc = l3 + srcOff(family), odst = from != 0 ? from : l3 + dstOff(family);
  let l4len: u32;
  let nh: u32;
  const t = ip + iphl;
  if (tcpRst) {
    nh = IPPROTO_TCP;
    l4len = TCP_HLEN;
    const doff = (<u32>load<u8>(l4, TCP_DOFF) >>> 4) << 2;
    const payload = <u32>(end - l4) - doff;
    store<u16>(t, load<u16>(l4, L4_DPORT), L4_SPORT);
    store<u16>(t, load<u16>(l4, L4_SPORT), L4_DPORT);
    if (tcpf & TCP_ACK) {
      store<u32>(t, load<u32>(l4, TCP_ACK_SEQ), TCP_SEQ);  // seq = their ack (network order copy)
      store<u32>(t, 0, TCP_ACK_SEQ);
      store<u8>(t, <u8>TCP_RST, TCP_FLAGS);
    } else {
      const seq = bswap<u32>(load<u32>(l4, TCP_SEQ));
      const ack = seq + payload + ((tcpf & TCP_SYN) ? 1 : 0) + ((tcpf & TCP_FIN) ? 1 : 0);
      store<u32>(t, 0, TCP_SEQ);
      store<u32>(t, bswap<u32>(ack), TCP_ACK_SEQ);
      store<u8>(t, <u8>(TCP_RST | TCP_ACK), TCP_FLAGS);
    }
    store<u8>(t, <u8>((TCP_HLEN >> 2) << 4), TCP_DOFF);
    store<u16>(t, 0, TCP_WINDOW);
    store<u16>(t, 0, TCP_CSUM);
    store<u16>(t, 0, TCP_URG_PTR);
  } else {
    nh = family == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
    const maxTotal: u32 = family == 4 ? IP4_MIN_MTU : IP6_MIN_MTU;
    let qlen = <u32>(end - l3);
    if (qlen > maxTotal - iphl - ICMP_HLEN) qlen = maxTotal - iphl - ICMP_HLEN;
    if (l3o + iphl + ICMP_HLEN + qlen > gSlot) qlen = gSlot - l3o - iphl - ICMP_HLEN;
    l4len = ICMP_HLEN + qlen;
    store<u8>(t, <u8>type, ICMP_TYPE);
    store<u8>(t, <u8>code, ICMP_CODE);
    store<u16>(t, 0, ICMP_CSUM);
    store<u32>(t, bswap<u32>(rest), ICMP_REST);
    memory.copy(t + ICMP_HLEN, l3, qlen);
  }
  // IP header, from the VIP (or `from`) back to the sender
  let ps: u64;
  if (family == 4) {
    store<u8>(ip, 0x45, IP4_VER_IHL);
    store<u16>(ip, bswap<u16>(<u16>(IP4_HLEN + l4len)), IP4_TOT_LEN);
    if (tcpRst) {
      // as nf_reject_iphdr_put builds a reset's: TOS 0, ID 0, DF
      store<u8>(ip, 0, IP4_TOS);
      store<u16>(ip, 0, IP4_ID);
      store<u16>(ip, bswap<u16>(<u16>IP4_DF), IP4_FRAG);
    } else {
      // as icmp_send builds an error's: the quoted packet's TOS bits with precedence internetwork
      // control (no ECN, no other precedence), an ID of its own, no DF (its socket's
      // IP_PMTUDISC_DONT)
      store<u8>(ip, <u8>((<u32>load<u8>(l3, IP4_TOS) & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL), IP4_TOS);
      store<u16>(ip, bswap<u16>(<u16>nextIcmpId()), IP4_ID);
      store<u16>(ip, 0, IP4_FRAG);
    }
    store<u8>(ip, <u8>DEFAULT_TTL, IP4_TTL);
    store<u8>(ip, <u8>nh, IP4_PROTO);
    store<u16>(ip, 0, IP4_CSUM);
    store<u32>(ip, load<u32>(odst), IP4_SRC);
    store<u32>(ip, load<u32>(osrc), IP4_DST);
    store<u16>(ip, <u16>csumFinal(sumBytes(ip, IP4_HLEN)), IP4_CSUM);
    // TCP's pseudo header (ICMPv4 has none)
    ps = nh == IPPROTO_ICMP ? 0 : <u64>load<u32>(ip, IP4_SRC) + <u64>load<u32>(ip, IP4_DST) + (<u64>nh << 8) + <u64>bswap<u16>(<u16>l4len);
  } else {
    store<u16>(ip, bswap<u16>(<u16>l4len), IP6_PLEN);
    store<u8>(ip, <u8>nh, IP6_NEXT);
    store<u8>(ip, <u8>DEFAULT_TTL, IP6_HOP_LIMIT);
    addrCopy(ip + IP6_SRC, odst);
    addrCopy(ip + IP6_DST, osrc);
    // version 6, traffic class 0; flow label 0 on a reset (nf_reject_ip6hdr_put), an automatic one
    // on an ICMPv6 error (icmp6_send: flow-label.ts)
    const label = tcpRst ? 0 : icmp6FlowLabel(ip + IP6_SRC, ip + IP6_DST, type, code);
    store<u32>(ip, bswap<u32>(0x60000000 | label), 0);
    ps = sumBytes(ip + IP6_SRC, 32) + (<u64>nh << 8) + <u64>bswap<u16>(<u16>l4len);
  }
  const ck = csumFinal(ps + sumBytes(t, l4len));
  store<u16>(t + (tcpRst ? TCP_CSUM : ICMP_CSUM), <u16>ck);
  const total = l3o + iphl + l4len;
  memory.copy(f, o, total);
  fr.lenOut = <u16>total;
  fr.stages |= L.TS_REJECT;
  setResult(fr, L.V_REJECT, reason, <u32>fr.inPort);
}
