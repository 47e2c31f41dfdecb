// ICMP errors quoting a NATed flow (destination unreachable, time exceeded, parameter problem,
// packet too big): the quoted packet and the outer header are translated like the flow's packets,
// so path MTU discovery and error reporting work through the NAT. Semantics: docs/core.md
// "ICMP error translation".
import * as L from "./layout";
import { flowHash } from "./hash";
import { csumApply, sumBytes, csumFinal } from "./checksum";
import { addrEq, addrCopy, addrSet4, macCopy } from "./addr";
import {
  ETH_DST, ETH_SRC, IP4_HLEN, IP4_VER_IHL, IP4_FRAG, IP4_OFFSET, IP4_PROTO, IP4_CSUM, IP4_SRC, IP4_DST,
  IP6_HLEN, IP6_NEXT, IP6_SRC, IP6_DST, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_ICMPV6,
  L4_SPORT, L4_DPORT, TCP_CSUM, UDP_HLEN, UDP_CSUM, UDP_CSUM_ZERO, ICMP_HLEN, ICMP_CSUM,
  ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED, ICMP_PARAMETERPROB, ICMP6_DST_UNREACH, ICMP6_PARAM_PROB,
  ICMP_ECHO, ICMP_TIMESTAMP, ICMP_INFO_REQUEST, ICMP_ADDRESS, ICMP6_ECHO_REQUEST, ICMP6_NI_QUERY,
} from "./net";
import { flowAt, flowSnatAddr, countFrontBackend, gLive } from "./regions";
import { ctLookup, ctFree } from "./conntrack";
import { snatHolds, backendHolds, heldFrontId, heldFrontIdOf, flowFrontLookup, keepsAddress, keptRoute, udpReplyStale } from "./stale";
import { addrReplace, portReplace, ttlStep, ttlSpent, srcOff, dstOff } from "./rewrite";
import { Frame, setResult, drop } from "./frame";
import { ip6SkipExt, gExtProto, gExtFrag, EXT_FRAG_LATER } from "./parse";

// Quoted (inner) and outer addresses as 16-byte values: [0..15] inner, [16..31] outer.
const TMP_A: usize = memory.data(32, 16);   // inner source, outer source
const TMP_B: usize = memory.data(32, 16);   // inner destination, outer destination

@inline export function isIcmpError(family: u32, type: u32): bool {
  if (family == 4) return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB;
  return type >= ICMP6_DST_UNREACH && type <= ICMP6_PARAM_PROB;
}

/** An ICMP query the kernel's conntrack tracks as a new connection (echo, timestamp, information
 * and address-mask requests; ICMPv6 echo request and node information query). Replies and other
 * types are "invalid" to it, so kube-proxy's `ct state new` rules never see them. */
@inline export function isIcmpQuery(family: u32, type: u32): bool {
  if (family == 4) return type == ICMP_ECHO || type == ICMP_TIMESTAMP || type == ICMP_INFO_REQUEST || type == ICMP_ADDRESS;
  return type == ICMP6_ECHO_REQUEST || type == ICMP6_NI_QUERY;
}

/** The protocol of the packet readQuote() last read. */
export let gQuoteProto: u32 = 0;

/** Reads the packet an ICMP error quotes at q (its IP header; the frame's IP packet ends at end):
 * its addresses into isrc/idst (16 bytes each, IPv4 zero-padded), its protocol into
 * gQuoteProto; returns the address of its L4 header — 0 when it is not a whole, first-fragment
 * TCP/UDP/SCTP header with ports. IPv6: extension headers are skipped by the main parser's walk
 * (parse.ts ip6SkipExt), as the kernel's conntrack does for the quote (ipv6_get_l4proto:
 * ipv6_skip_exthdr, no tuple for a non-first fragment). Runs for ICMP errors only. */
export function readQuote(q: usize, end: usize, family: u32, isrc: usize, idst: usize): usize {
  let il4: usize;
  let iproto: u32;
  if (family == 4) {
    if (q + IP4_HLEN > end) return 0;
    const vi = <u32>load<u8>(q, IP4_VER_IHL);
    if ((vi >>> 4) != 4 || (vi & 15) < 5) return 0;
    if ((<u32>bswap<u16>(load<u16>(q, IP4_FRAG)) & IP4_OFFSET) != 0) return 0;
    il4 = q + <usize>((vi & 15) << 2);
    iproto = <u32>load<u8>(q, IP4_PROTO);
    addrSet4(isrc, load<u32>(q, IP4_SRC));
    addrSet4(idst, load<u32>(q, IP4_DST));
  } else {
    if (q + IP6_HLEN > end) return 0;
    if ((load<u8>(q) >>> 4) != 6) return 0;
    il4 = q + IP6_HLEN;
    iproto = <u32>load<u8>(q, IP6_NEXT);
    il4 = ip6SkipExt(il4, iproto, end);
    // (a non-first fragment quotes no L4 header)
    if (il4 == 0 || gExtFrag == EXT_FRAG_LATER) return 0;
    iproto = gExtProto;
    addrCopy(isrc, q + IP6_SRC);
    addrCopy(idst, q + IP6_DST);
  }
  if (iproto != IPPROTO_TCP && iproto != IPPROTO_UDP && iproto != IPPROTO_SCTP) return 0;
  if (il4 + 4 > end) return 0;
  gQuoteProto = iproto;
  return il4;
}

/** ICMP error quoting a NATed flow: translate the quoted packet and the outer header. Returns
 * false when the quote does not match a flow, or matches a UDP flow kube-proxy's cleanup deletes
 * (freed: the caller then routes it like any packet, untranslated). */
export function icmpError(f: usize, fr: Frame): bool {
  const family = <u32>fr.family;
  const l3 = f + <usize>fr.l3;
  const l4 = f + <usize>fr.l4;
  const end = f + <usize>fr.end;
  const q = l4 + ICMP_HLEN;
  const isrc = TMP_A, idst = TMP_B;
  const il4 = readQuote(q, end, family, isrc, idst);
  if (il4 == 0) return false;
  const iproto = gQuoteProto;
  const isport = <u32>bswap<u16>(load<u16>(il4, L4_SPORT)), idport = <u32>bswap<u16>(load<u16>(il4, L4_DPORT));
  // the quoted packet is one we sent; the flow key of the direction it travelled is reversed
  const ports = idport | (isport << 16);
  const h = flowHash(idst, isrc, ports, iproto);
  const ref = ctLookup(h, idst, isrc, ports, iproto, family);
  if (ref == 0) return false;
  const flow = ref >>> 1;
  const e = flowAt(flow);
  const held = backendHolds(e);
  // a UDP flow kube-proxy's cleanup deletes (its backend left, or stopped serving while its port
  // is in force: stale.ts udpReplyStale): with the kernel's entry gone, conntrack finds no flow for
  // the quote and the error passes untranslated (nf_conntrack_inet_error: no entry → NF_ACCEPT,
  // no NAT), whichever side sent it — freed here as the flow's own packets free it
  if (udpReplyStale(e, held != null ? e.backendId : 0)) {
    if (gLive) ctFree(flow);
    return false;
  }
  const snatFlag = (e.flags & L.CTF_SNAT) != 0;
  fr.stages |= L.TS_ICMP_INNER | ((ref & 1) ? L.TS_CT_HIT_REPLY : L.TS_CT_HIT_ORIG);
  fr.ct = <u8>((ref & 1) ? L.TRCT_HIT_REPLY : L.TRCT_HIT_ORIG);
  fr.select = <u8>L.TRSEL_EXISTING;
  fr.flow = flow;
  // the flow's backend and frontend ids only while they name the flow's own (see hitReply); the
  // checks and the service lookup are made once, for the trace and for case (b) below
  const fid = held == null ? flowFrontLookup(e) : 0;
  fr.backend = held != null ? e.backendId : 0;
  fr.front = held != null ? heldFrontId(e) : heldFrontIdOf(e, fid);
  if (held == null) fr.stages |= L.TS_BACKEND_LEFT;
  // the node itself at either end of the flow (FLOW_NODE): the error is delivered locally (to the
  // node as client, or to its hostNetwork endpoint) or is the node's own output — its TTL kept, a
  // spent one too. Otherwise a spent TTL drops it (an ICMP error is never answered)
  const node = (e.flags & L.FLOW_NODE) != 0;
  if (ttlSpent(fr, node)) { drop(fr, L.REASON_DROP_TTL_EXCEEDED); return true; }
  // new inner addresses/ports (0 = unchanged) and outer ones
  let nIsrc: usize = 0, nIsport: u32 = 0, nIdst: usize = 0, nIdport: u32 = 0;
  let nOsrc: usize = 0, nOdst: usize = 0;
  let out: u32;
  let dstMac: usize = 0, srcMac: usize = 0;
  const osrc = l3 + srcOff(family), odst = l3 + dstOff(family);
  const outerSrc = TMP_A + 16, outerDst = TMP_B + 16;
  if (family == 4) addrSet4(outerSrc, load<u32>(osrc)); else addrCopy(outerSrc, osrc);
  if (family == 4) addrSet4(outerDst, load<u32>(odst)); else addrCopy(outerDst, odst);
  if (ref & 1) {
    // (a) from the backend side about a packet we sent toward the backend
    nIdst = e.vipAddr; nIdport = <u32>e.vport;
    if (snatFlag) { nIsrc = e.clientAddr; nIsport = <u32>e.cport; nOdst = e.clientAddr; }
    if (addrEq(outerSrc, e.backendAddr)) nOsrc = e.vipAddr;
    out = <u32>e.clientPort;
    dstMac = e.clientMacPtr; srcMac = e.localMacPtr;
  } else {
    // (b) from the client about a reply we sent it
    // a flow whose backend left and that keeps its address (stale.ts keepsAddress: TCP, SCTP)
    // goes to it, as its packets do. A flow whose SNAT address is gone or changed has no path:
    // its own next packet is decided again, which an error cannot do (a UDP flow the cleanup
    // deletes was freed above). Its own reason, never drop_no_route: that one names fr.backend in
    // D_AUX and the worker would hold the frame for a next hop that can never send it anywhere.
    const snatOk = snatHolds(e);
    const be = snatOk ? held : null;
    if (be != null) {
      out = <u32>be.outPort;
      if (out == L.PORT_NONE) { drop(fr, L.REASON_DROP_NO_ROUTE); return true; }
      dstMac = be.dstMacPtr; srcMac = be.srcMacPtr;
    } else if (snatOk && keepsAddress(e)) {
      const rt = keptRoute(e);
      if (rt == null) { drop(fr, L.REASON_DROP_BACKEND_UNREACHABLE); return true; }
      out = <u32>rt.outPort;
      dstMac = rt.dstMacPtr; srcMac = rt.srcMacPtr;
    } else { drop(fr, L.REASON_DROP_ICMP_STALE_FLOW); return true; }
    nIsrc = e.backendAddr; nIsport = <u32>e.bport;
    if (snatFlag) {
      nIdst = flowSnatAddr(<u32>e.flags, family); nIdport = <u32>e.nport;
      nOsrc = nIdst;
    }
    if (addrEq(outerDst, e.vipAddr)) nOdst = e.backendAddr;
  }
  // inner rewrite: addresses (+ inner IPv4 header checksum), ports, inner L4 checksum if quoted
  let iacc: u64 = 0;
  if (nIsrc != 0) iacc += addrReplace(q + srcOff(family), nIsrc, family);
  if (nIdst != 0) iacc += addrReplace(q + dstOff(family), nIdst, family);
  if (family == 4 && iacc != 0) csumApply(q + IP4_CSUM, iacc);
  let pacc = iacc;
  if (nIsrc != 0) pacc += portReplace(il4 + L4_SPORT, nIsport);
  if (nIdst != 0) pacc += portReplace(il4 + L4_DPORT, nIdport);
  if (iproto == IPPROTO_TCP && il4 + TCP_CSUM + 2 <= end) csumApply(il4 + TCP_CSUM, pacc);
  else if (iproto == IPPROTO_UDP && il4 + UDP_HLEN <= end && load<u16>(il4, UDP_CSUM) != 0) {
    if (csumApply(il4 + UDP_CSUM, pacc) == 0) store<u16>(il4, UDP_CSUM_ZERO, UDP_CSUM);
  }
  // outer rewrite + TTL (kept for a node flow)
  let oacc: u64 = 0;
  if (nOsrc != 0) oacc += addrReplace(osrc, nOsrc, family);
  if (nOdst != 0) oacc += addrReplace(odst, nOdst, family);
  ttlStep(l3, fr, oacc, node);
  // ICMP checksum: recomputed over the whole message (it changed in several places)
  const ilen = <u32>(end - l4);
  store<u16>(l4, 0, ICMP_CSUM);
  let s = sumBytes(l4, ilen);
  if (family == 6) {
    // pseudo header: both (rewritten) outer addresses, upper-layer length, next header
    s += sumBytes(osrc, 32) + <u64>bswap<u16>(<u16>(ilen >>> 16)) + <u64>bswap<u16>(<u16>ilen) + (<u64>IPPROTO_ICMPV6 << 8);
  }
  store<u16>(l4, <u16>csumFinal(s), ICMP_CSUM);
  macCopy(f + ETH_DST, dstMac);
  macCopy(f + ETH_SRC, srcMac);
  setResult(fr, L.V_FORWARD, L.REASON_FWD_ICMP_ERROR, out);
  countFrontBackend(fr.front, fr.backend, <u32>fr.len);
  return true;
}
