// Steering for several workers sharing one interface (PACKET_FANOUT): which worker owns each frame
// of a received burst, so that both directions of a translated flow meet the same conntrack.
// Runs before process() on the frames the host read from its ports; frames owned elsewhere are
// handed to their worker by the host (src/daemon/steer-ring.ts). Why steering and not a shared
// flow table: docs/performance.md "Several workers on one interface".
//
// The flow's owner is keyed by its client, which both directions carry:
//   to a frontend (dst:dport a service)         -> the source address (the client)
//   from the SNAT address (the node as client)  -> (source address, source port)
//   to the SNAT address (a masqueraded reply)   -> (destination address, destination port): the
//                                                  worker whose SNAT port it is (snat.ts); on a port
//                                                  outside the SNAT range once a node port there was
//                                                  removed (a deleted node port's client, the
//                                                  host's) -> the source address
//   to the hairpin address (the node's answer   -> (destination address, destination port), as
//   to itself through a Service)                   above: the port was allocated under it
//   anything else (a reply to a client, routed) -> the destination address, except a client's
//                                                  frame to a Service deleted (or a port removed)
//                                                  under its kept flow: see keptFlowOwner (which
//                                                  may ask the source's worker to look first:
//                                                  STEER_RECHECK)
// Keys without the port keep a client's connections on one worker, so sessionAffinity (an
// affinity table per worker) stays one decision per client; masqueraded flows spread by port.
// ICMP errors are keyed by the packet they quote, turned around (it is one we sent). ARP and
// neighbour discovery go to worker 0 (it alone probes, so it hears the answers). Frames without a
// flow to find (not IP, malformed, ICMP queries, other protocols without ports) stay where they
// were read. A later fragment (no ports) to or from the SNAT address, or to the hairpin address,
// also stays: its port is unknown here.
import * as L from "./layout";
import { IPPROTO_ICMP, IPPROTO_ICMPV6, ICMP_HLEN, L4_SPORT, L4_DPORT } from "./net";
import { descAt, slotAt, loadConfig, loadTableSet, hasSnat, snatAddr, hasHairpin, hairpinAddr, gSteerWorkers, gSteerSelf, gPortMin, gPortMax } from "./regions";
import { svcLookup } from "./select";
import { frameAt } from "./frame";
import { parse } from "./parse";
import { isIcmpError, readQuote, gQuoteProto } from "./icmp";
import { ownerOf } from "./owner";
import { ctLookup } from "./conntrack";
import { flowHash } from "./hash";
import { routeLookup } from "./select";
import { addrEq, addrCopy } from "./addr";

const LOCAL: u32 = <u32>L.STEER_LOCAL;
const RECHECK: u32 = <u32>L.STEER_RECHECK;
const ISRC: usize = memory.data(16, 16);
const IDST: usize = memory.data(16, 16);

// The addresses of frontends the applies removed (the host keeps the list: src/core/retired-fronts.ts):
// entries of 16 bytes of address and a u32 family (0: empty), linear probing from slotOf; at most
// STEER_RETIRED_MAX of STEER_RETIRED_SLOTS in use, so a probe ends at an empty entry. Before them
// one 16-byte address the host stages for steerRetiredAdd / steerRetiredFilterAdd. Addresses past
// the newest STEER_RETIRED_MAX go into a filter of STEER_RETIRED_FILTER_BITS bits (one bit an
// address): no address once retired is forgotten while a flow to it may live; one that was never
// retired may share a bit, which costs its frames a hand-over (they are routed or meet their flow
// alike), never a wrong worker. The host clears the bits no worker's flow needs any more (it
// rewrites the filter in place: steerRetiredFilter, steerRetiredFilterSet; src/core/retired-fronts.ts).
const RS_SLOTS: u32 = <u32>L.STEER_RETIRED_SLOTS;
const RS_ENTRY: usize = 20;
const RS_STAGE: usize = memory.data(16 + <i32>RS_SLOTS * <i32>RS_ENTRY, 16);
const RS_TABLE: usize = RS_STAGE + 16;
const RS_FILTER_BITS: u32 = <u32>L.STEER_RETIRED_FILTER_BITS;
const RS_FILTER: usize = memory.data(<i32>(RS_FILTER_BITS >> 3), 16);
let gRetired: u32 = 0;
let gFiltered: u32 = 0;
let gFilterHits: u64 = 0;

@inline function retiredAt(i: u32): usize { return RS_TABLE + <usize>i * RS_ENTRY; }

@inline function folded(addr: usize): u32 { return load<u32>(addr, 0) ^ load<u32>(addr, 4) ^ load<u32>(addr, 8) ^ load<u32>(addr, 12); }

/** The first slot of an address: its four words folded, one multiply (a probe sits on the replies'
 * path; the addresses are few and the host's, not chosen by a sender). */
@inline function slotOf(addr: usize): u32 {
  return (folded(addr) * 0x9e3779b1) >>> (32 - <u32>ctz(RS_SLOTS));
}

/** The filter's bit of an address (another multiply than slotOf's, so that addresses sharing a
 * slot seldom share a bit). */
@inline function filterBit(addr: usize): u32 {
  return (folded(addr) * 0x85ebca6b) >>> (32 - <u32>ctz(RS_FILTER_BITS));
}

/** Where the host stages an address for steerRetiredAdd (16 bytes). */
export function steerRetiredStage(): usize { return RS_STAGE; }

/** No address retired in the exact set (the filter keeps its bits). */
export function steerRetiredClear(): void { memory.fill(RS_TABLE, 0, <usize>RS_SLOTS * RS_ENTRY); gRetired = 0; }

/** The staged address of `family` retired; false when the set is full (STEER_RETIRED_MAX). */
export function steerRetiredAdd(family: u32): bool {
  if (family != 4 && family != 6) return false;
  if (retiredExactly(RS_STAGE, family)) return true;
  if (gRetired >= <u32>L.STEER_RETIRED_MAX) return false;
  let i = slotOf(RS_STAGE);
  while (load<u32>(retiredAt(i), 16) != 0) i = (i + 1) & (RS_SLOTS - 1);
  addrCopy(retiredAt(i), RS_STAGE);
  store<u32>(retiredAt(i), family, 16);
  gRetired++;
  return true;
}

/** The staged address (past the newest STEER_RETIRED_MAX) into the filter. */
export function steerRetiredFilterAdd(): void {
  const b = filterBit(RS_STAGE);
  const w = RS_FILTER + (<usize>(b >>> 5) << 2);
  store<u32>(w, load<u32>(w) | (<u32>1 << (b & 31)));
  gFiltered++;
}

/** Where the filter's STEER_RETIRED_FILTER_BITS bits are (bit b: word b >> 5, bit b & 31), for the
 * host to rewrite; then steerRetiredFilterSet. */
export function steerRetiredFilter(): usize { return RS_FILTER; }

/** The host rewrote the filter: `bits` of it are set (0: a probe skips it). */
export function steerRetiredFilterSet(bits: u32): void { gFiltered = bits; }

/** Frames whose destination only the filter called retired (some may be false positives). */
export function steerRetiredFilterHits(): u64 { return gFilterHits; }

/** Whether `addr` of `family` is in the exact set. */
function retiredExactly(addr: usize, family: u32): bool {
  if (gRetired == 0) return false;
  let i = slotOf(addr);
  let f = load<u32>(retiredAt(i), 16);
  while (f != 0) {
    if (f == family && addrEq(retiredAt(i), addr)) return true;
    i = (i + 1) & (RS_SLOTS - 1);
    f = load<u32>(retiredAt(i), 16);
  }
  return false;
}

/** Whether `addr` of `family` was a frontend's address that an apply removed (or, past the exact
 * set, shares a bit of the filter with one). */
function retired(addr: usize, family: u32): bool {
  if (retiredExactly(addr, family)) return true;
  if (gFiltered == 0) return false;
  const b = filterBit(addr);
  if ((load<u32>(RS_FILTER + (<usize>(b >>> 5) << 2)) & (<u32>1 << (b & 31))) == 0) return false;
  gFilterHits++;
  return true;
}

/** Set by ownerOfKey: the owner it returned is keyed by the destination of a frame with ports that
 * no frontend owns (a reply to a client, routed, or a client's frame to a deleted service address). */
let gByDst = false;

/** Owner of a frame seen as (src, dst, sport, dport) with ports (or, hasPorts false, a later
 * fragment: addresses only). */
function ownerOfKey(src: usize, dst: usize, sport: u32, dport: u32, proto: u32, family: u32, hasPorts: bool, workers: u32): u32 {
  const snat = hasSnat(family);
  const sn = snatAddr(family);
  // a reply to the hairpin address comes from the SNAT address (the node answering itself): its
  // port was allocated under the hairpin address, so that is its key, before the source's
  const hp = hasHairpin(family) && addrEq(dst, hairpinAddr(family));
  if (!hasPorts) {
    if (hp || (snat && (addrEq(src, sn) || addrEq(dst, sn)))) return LOCAL;
    return svcLookup(dst, L.SM_ANY_PORT, L.SM_ANY_PROTO, family) != 0 ? ownerOf(src, 0, workers) : ownerOf(dst, 0, workers);
  }
  if (hp) return ownerOf(dst, dport, workers);
  if (snat && addrEq(src, sn)) return ownerOf(src, sport, workers);
  if (svcLookup(dst, dport, proto, family) != 0) return ownerOf(src, 0, workers);
  // to the SNAT address: a masqueraded reply on a port of the SNAT range (keyed as allocated). On
  // another port, once a frontend there was removed (retired), a client's frame to a node port
  // deleted under its kept flow (keyed by the client) or a frame to the host that no flow holds;
  // else it may be the reply to the node's own unmasqueraded connection (keyed by its port)
  if (snat && addrEq(dst, sn)) return (dport < gPortMin || dport > gPortMax) && retired(dst, family) ? ownerOf(src, 0, workers) : ownerOf(dst, dport, workers);
  gByDst = true;
  return ownerOf(dst, 0, workers);
}

/** A frame with ports keyed by its destination `owner` (no frontend owns it) may be a client's
 * frame to a service address deleted under its kept flow, whose flow was created keyed by the
 * client (its source), on the source's worker. The flow of such a frame is therefore on the
 * source's worker (a kept flow), or on `owner` (a reply to a client at that address), or nowhere
 * (routed); a worker sees only its own table, so:
 *   * landed on the source's worker: stays when a flow of it is here, else goes to `owner`;
 *   * landed on `owner`: goes to the source's worker when its destination is in a service CIDR (a
 *     deleted ClusterIP: no client and no pod is addressed there), or is an address an apply
 *     removed from the frontends (retired) and no flow of it is here;
 *   * landed on neither (more than two workers: IPv6 on an uplink, which the fanout program gives
 *     to worker 0; AF_XDP queues placed by RSS), no flow of it here: to the source's worker for a
 *     service CIDR; to the source's worker marked STEER_RECHECK for a retired address — that
 *     worker steers it once more by the first rule, so a frame not its goes on to `owner`, at
 *     most two hand-overs; else to `owner`.
 * A routed frame to a retired address is handed to its source's worker, where it is routed alike.
 * Replies and routed frames land on `owner` (a pod port's fanout places them by destination)
 * outside the service CIDRs and pay one hash of the source and, for half of them, a probe of the
 * retired set (once a frontend was removed) and a route lookup; one that lands elsewhere pays a
 * flow lookup, and when not found the hash, probe and route lookup too. */
// (@inline: the replies' path in steerBatch pays no call — ~1 ns a frame in bench/steer-ab.mjs;
// ownerOfQuote has a copy of its own)
@inline function keptFlowOwner(owner: u32, self: u32, src: usize, dst: usize, h: u32, ports: u32, proto: u32, family: u32, workers: u32): u32 {
  if (owner != self) {
    if (ctLookup(h, src, dst, ports, proto, family) != 0) return self;
    const bySrc = ownerOf(src, 0, workers);
    if (bySrc == self || bySrc == owner) return owner;
    if (retired(dst, family)) return bySrc | RECHECK;
    return inServiceCidr(dst, family) ? bySrc : owner;
  }
  const bySrc = ownerOf(src, 0, workers);
  if (bySrc == self) return owner;
  if (retired(dst, family)) return ctLookup(h, src, dst, ports, proto, family) != 0 ? owner : bySrc;
  return inServiceCidr(dst, family) ? bySrc : owner;
}

@inline function inServiceCidr(addr: usize, family: u32): bool {
  const rt = routeLookup(addr, family);
  return rt != null && <u32>rt.kind == L.RTK_SERVICE_CIDR;
}

/** The quoted packet of an ICMP error at frame offset l4, turned around and steered as that frame
 * would be (keptFlowOwner too: an error about a packet a kept flow sent from a deleted Service's
 * address quotes it from that address, turned around a client's frame to it): LOCAL when it
 * quotes nothing a flow could own. */
function ownerOfQuote(f: usize, l4: u32, end: u32, family: u32, self: u32, workers: u32): u32 {
  const il4 = readQuote(f + <usize>l4 + ICMP_HLEN, f + <usize>end, family, ISRC, IDST);
  if (il4 == 0) return LOCAL;
  const proto = gQuoteProto;
  const isport = <u32>bswap<u16>(load<u16>(il4, L4_SPORT)), idport = <u32>bswap<u16>(load<u16>(il4, L4_DPORT));
  gByDst = false;
  const owner = ownerOfKey(IDST, ISRC, idport, isport, proto, family, true, workers);
  if (!gByDst) return owner;
  // the flow key of the direction the quoted packet travelled, reversed (icmp.ts icmpError)
  const ports = idport | (isport << 16);
  return keptFlowOwner(owner, self, IDST, ISRC, flowHash(IDST, ISRC, ports, proto), ports, proto, family, workers);
}

/** Writes the owning worker of frames first..n-1 into their descriptors' D_VERDICT (STEER_LOCAL:
 * this core's, or a frame no flow can own; STEER_RECHECK set: that worker is to steer it once more,
 * keptFlowOwner) and returns how many another worker owns. Reads the
 * active table set; changes nothing else (process() overwrites D_VERDICT). */
export function steerBatch(first: u32, n: u32): u32 {
  loadConfig();
  loadTableSet();
  const workers = gSteerWorkers, self = gSteerSelf;   // as loadConfig() read them (snat.ts uses the same)
  let foreign: u32 = 0;
  const fr = frameAt(0);
  for (let i = first; i < n; i++) {
    const d = descAt(i);
    let owner = LOCAL;
    if (workers > 1) {
      parse(i, fr);
      const family = <u32>fr.family, proto = <u32>fr.proto;
      // ARP and neighbour discovery go to worker 0, the one that probes and learns neighbours
      if (fr.reason == L.REASON_HOST_ARP || fr.reason == L.REASON_HOST_ND) owner = 0;
      else if (fr.reason == 0 && family != 0) {
        if (fr.hasPorts || fr.laterFragment) {
          gByDst = false;
          owner = ownerOfKey(fr.srcAddr, fr.dstAddr, <u32>fr.sport, <u32>fr.dport, proto, family, fr.hasPorts != 0, workers);
          if (gByDst) owner = keptFlowOwner(owner, self, fr.srcAddr, fr.dstAddr, fr.hash, fr.ports, proto, family, workers);
        } else if (((proto == IPPROTO_ICMP && family == 4) || (proto == IPPROTO_ICMPV6 && family == 6)) && isIcmpError(family, <u32>fr.icmpType)) {
          owner = ownerOfQuote(slotAt(i), <u32>fr.l4, <u32>fr.end, family, self, workers);
        }
      }
      if (owner == self) owner = LOCAL;
    }
    d.verdict = <u8>owner;
    if (owner != LOCAL) foreign++;
  }
  return foreign;
}
