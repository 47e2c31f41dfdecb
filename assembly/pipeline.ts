// The frame pipeline: per chunk of the batch, parse every frame (pass 1), prefetch what the chunk
// will touch, then decide frame by frame in order (pass 2): conntrack hit (original or reply
// direction), new flow to a frontend, ICMP error translation, plain routing, or the host. Each
// decision writes its result into the frame's record (frame.ts), which is then copied into the
// descriptor, the counters and, when tracing, the trace record. Semantics: docs/core.md.
import * as L from "./layout";
import { CtFlow, Backend } from "./records";
import { macCopy } from "./addr";
import { ETH_DST, ETH_SRC, ETH_HLEN, IP4_HLEN, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_ICMP, IPPROTO_ICMPV6, TCP_SYN, TCP_ACK, TCP_FIN, TCP_RST } from "./net";
import {
  gLive, loadConfig, loadTableSet, beginBatch, config, descAt, slotAt, traceAt, flowAt,
  backendAt, frontendAt, flowSnatAddr, count, countFrontBackend, setFlowsActive, gBatchMax,
} from "./regions";
import { Frame, frameAt, CHUNK, SPEC_FRONT, SPEC_BID, SPEC_RHASH, setResult, drop } from "./frame";
import { parse } from "./parse";
import { prefetchChunk } from "./prefetch";
import {
  ctLookup, ctFree, ctCreate, stateOnOrig, stateOnReply, replyKeyHash, expireSweep, flowsActive,
} from "./conntrack";
import { svcLookup, sourceAllowed, localSource, shortCircuits, shortCircuitKind, routeLookup, maglevPick, backendUsable, selectAffinity, affinityKey } from "./select";
import { snatKindOf, snatSource, snatAllocPort, SNAT_NONE, SNAT_HAIRPIN } from "./snat";
import { nodeAddrLoad, nodeEnds } from "./node-addr";
import { natRewrite, fwdOrig, ttlStep, ttlSpent } from "./rewrite";
import { isIcmpError, isIcmpQuery, icmpError } from "./icmp";
import { reject } from "./reject";
import { fitsPort } from "./mtu";
import { ttlExceeded, routedNode } from "./ttl";
import { snatHolds, backendHolds, heldBackendId, heldFrontId, keepsAddress, pureSyn, keptRoute, reopensClosed, udpReselectFront, udpReplyStale } from "./stale";
import { fragRemember, fragFollow } from "./fragment";
import { keyHash } from "./hash";
import { writeTrace, traceFilterBegin, traceFilterChunk } from "./trace";
import { routeCacheEpoch } from "./route-cache";

// Keeps the prefetch loads alive: a value that depends on all of them, stored where the optimizer
// cannot prove it unread.
let gSink: u32 = 0;

// ---- conntrack hits ---------------------------------------------------------------------------------
function hitOrig(f: usize, fr: Frame, flow: u32): void {
  const e = flowAt(flow);
  let be: Backend | null = null;
  // the frontend a stale flow re-selects on, when a check below already looked it up
  let front: u32 = 0;
  if (!reopensClosed(e, fr) && snatHolds(e)) {
    be = backendHolds(e);
    // the backend left the endpoints: an open TCP/SCTP connection stays on its address, as the
    // kernel's conntrack keeps it under kube-proxy; a new SYN on its tuple re-selects (below), and
    // so does a UDP flow (kube-proxy's UDP cleanup deletes its entry)
    if (be == null && !pureSyn(fr) && keepsAddress(e)) { hitLeft(f, fr, flow, heldFrontId(e)); return; }
  }
  // a UDP flow whose backend stopped serving: the frontend it is decided on again (one lookup)
  if (be != null) { front = udpReselectFront(be, fr); if (front != 0) be = null; }
  if (be == null) {
    // a later fragment never starts a flow: its first fragment re-selected, or will
    if (fr.laterFragment) { drop(fr, L.REASON_DROP_FRAGMENT); return; }
    // The flow's SNAT address is gone, or a UDP flow's backend left the current generation (or
    // its id now names another backend) or stopped serving: decided again as a new flow (a
    // backend of the port in force; refused while it has none; kube-proxy's UDP conntrack cleanup
    // deletes such entries). A new SYN on a closing flow, or on one whose backend left, re-selects
    // too (a new connection, load-balanced like Linux conntrack does).
    if (front == 0) front = svcLookup(fr.dstAddr, <u32>fr.dport, <u32>fr.proto, <u32>fr.family);
    if (gLive) ctFree(flow);
    if (front != 0) {
      fr.stages |= L.TS_STALE_RESELECT;
      newFlow(f, fr, front, true);
    } else {
      noFrontend(f, fr);
    }
    return;
  }
  // the flow's frontend id, while it is still its frontend's (a Service re-created with a new
  // ClusterIP may leave the backend in place and hand the id to another frontend)
  const bid = e.backendId;
  if (!hitOrigBegin(f, fr, flow, heldFrontId(e), bid, L.TS_CT_HIT_ORIG)) return;
  if (be.outPort == L.PORT_NONE) { drop(fr, L.REASON_DROP_NO_ROUTE); return; }
  hitOrigForward(f, fr, e, bid, be.dstMacPtr, be.srcMacPtr, <u32>be.outPort);
}

/** The trace fields of an original-direction hit on flow `flow`, traced under frontend `front`
 * and backend `bid` with `stages`; false when its TTL is spent (answered from the address the
 * client sent to, ttl.ts, or dropped). */
@inline function hitOrigBegin(f: usize, fr: Frame, flow: u32, front: u32, bid: u32, stages: u32): bool {
  fr.stages |= stages;
  fr.ct = <u8>L.TRCT_HIT_ORIG;
  fr.select = <u8>L.TRSEL_EXISTING;
  fr.flow = flow;
  fr.front = front;
  fr.backend = bid;
  if (ttlSpent(fr, (flowAt(flow).flags & L.FLOW_NODE) != 0)) { ttlExceeded(f, fr, fr.dstAddr); return false; }
  return true;
}

/** An original-direction hit on flow e forwarded: state, the flow's translation, out of port
 * `out` to next hop dstMac from srcMac, counted under fr.front and backend `bid`. */
@inline function hitOrigForward(f: usize, fr: Frame, e: CtFlow, bid: u32, dstMac: usize, srcMac: usize, out: u32): void {
  // too big for the port: answered or dropped, the flow's state untouched (mtu.ts)
  if (!fitsPort(f, fr, out)) return;
  if (gLive) { stateOnOrig(e, fr); count(L.GC_CT_HIT, 1); }
  const snat = (e.flags & L.CTF_SNAT) ? flowSnatAddr(<u32>e.flags, <u32>e.family) : 0;
  fwdOrig(f, fr, e.backendAddr, <u32>e.bport, snat, <u32>e.nport, dstMac, srcMac, out, (e.flags & L.FLOW_NODE) != 0);
  countFrontBackend(fr.front, bid, <u32>fr.len);
}

/** An original-direction hit on a flow whose backend left the endpoints (or whose
 * backend id names another one now): translated to the address and port it was created with and
 * forwarded by the route to that address (stale.ts keptRoute), as the kernel keeps translating a
 * conntrack entry kube-proxy leaves alone; no route → dropped, never sent elsewhere. The id no
 * longer names the flow's backend: trace and counters carry backend 0 (and frontend 0 once the
 * Service port is gone too: stale.ts heldFrontId). */
function hitLeft(f: usize, fr: Frame, flow: u32, front: u32): void {
  const e = flowAt(flow);
  if (!hitOrigBegin(f, fr, flow, front, 0, L.TS_CT_HIT_ORIG | L.TS_BACKEND_LEFT)) return;
  const rt = keptRoute(e);
  if (rt == null) { drop(fr, L.REASON_DROP_BACKEND_UNREACHABLE); return; }
  hitOrigForward(f, fr, e, 0, rt.dstMacPtr, rt.srcMacPtr, <u32>rt.outPort);
}

@inline function hitReply(f: usize, fr: Frame, flow: u32): void {
  const e = flowAt(flow);
  // a UDP flow kube-proxy's cleanup would have deleted (its backend left or stopped serving): the
  // old pod's datagram is no reply of the Service any more — the flow is freed, the datagram
  // routed as it is
  const bid = heldBackendId(e);
  if (udpReplyStale(e, bid)) {
    if (gLive) ctFree(flow);
    noService(f, fr);
    return;
  }
  fr.stages |= L.TS_CT_HIT_REPLY;
  fr.ct = <u8>L.TRCT_HIT_REPLY;
  fr.select = <u8>L.TRSEL_EXISTING;
  fr.flow = flow;
  fr.front = heldFrontId(e);
  // a reply from a pod that left the endpoints (its TCP/SCTP flow kept) is no backend's: its id
  // may name another backend by now
  fr.backend = bid;
  if (bid == 0) fr.stages |= L.TS_BACKEND_LEFT;
  // a spent TTL: answered to the backend from the node — the SNAT address the reply was sent to,
  // else the in port's address; never with the node at either end (FLOW_NODE: the host's reply is
  // its output, a reply to the node is delivered locally), whose TTL is kept
  const node = (e.flags & L.FLOW_NODE) != 0;
  if (ttlSpent(fr, node)) { ttlExceeded(f, fr, (e.flags & L.CTF_SNAT) != 0 ? fr.dstAddr : 0); return; }
  if (!fitsPort(f, fr, <u32>e.clientPort)) return;
  if (gLive) { stateOnReply(e, fr); count(L.GC_CT_HIT, 1); }
  const snat = (e.flags & L.CTF_SNAT) != 0;
  natRewrite(f, fr, e.vipAddr, <u32>e.vport, snat ? e.clientAddr : 0, <u32>e.cport, node);
  macCopy(f + ETH_DST, e.clientMacPtr);
  macCopy(f + ETH_SRC, e.localMacPtr);
  fr.stages |= L.TS_REVERSE_NAT;
  setResult(fr, L.V_FORWARD, L.REASON_FWD_REPLY, <u32>e.clientPort);
  countFrontBackend(fr.front, fr.backend, <u32>fr.len);
}

/** D_AUX of a frame: when it is forwarded by a conntrack hit translated as its flow was created
 * (not toward a backend that left) and is IPv4 without options or VLAN tag, not a fragment, UDP or
 * TCP without SYN/FIN/RST — the frames the kernel path can carry (native/src/kernel_path.rs) —
 * its flow, with AUX_FLOW_REPLY for the reply direction; else 0. Whether the flow's state lets
 * the kernel path have them is the worker's to decide (src/daemon/kernel-path.ts). */
@inline function kernelPathFlow(fr: Frame): u32 {
  if (fr.verdict != L.V_FORWARD || fr.family != 4 || <u32>fr.l3 != ETH_HLEN || <u32>fr.l4 != ETH_HLEN + IP4_HLEN) return 0;
  if (fr.firstFragment != 0 || fr.laterFragment != 0 || (fr.stages & L.TS_BACKEND_LEFT) != 0) return 0;
  const p = <u32>fr.proto;
  if (p != IPPROTO_UDP && (p != IPPROTO_TCP || (<u32>fr.tcpFlags & (TCP_FIN | TCP_SYN | TCP_RST)) != 0)) return 0;
  if (fr.reason == L.REASON_FWD_NAT && fr.ct == L.TRCT_HIT_ORIG) return fr.flow;
  if (fr.reason == L.REASON_FWD_REPLY && fr.ct == L.TRCT_HIT_REPLY) return fr.flow | L.AUX_FLOW_REPLY;
  return 0;
}

// ---- new flow -------------------------------------------------------------------------------------------
/** The Maglev pick of a non-affinity frontend: the prefetch's when it picked for this frontend. */
@inline function maglevBackend(fr: Frame, front: u32, h: u32): u32 {
  if ((fr.spec & SPEC_BID) != 0 && fr.specFront == front) return fr.specBackend;
  return maglevPick(frontendAt(front), h);
}

/** A reply tuple owned by another flow may be taken over only by a pure TCP SYN when that flow is
 * closing: the client reused its port for a new connection (Linux picks ephemeral ports per
 * destination, so a port used toward one VIP can come back toward another VIP sharing the
 * backend), the same test as hitOrig's for a closing flow reopened on its own tuple. Refusing
 * it would drop every SYN retransmit until the old flow expires. Anything else: the live owner's
 * replies would be mistranslated. */
@inline function mayTakeOver(fr: Frame, owner: CtFlow): bool {
  return reopensClosed(owner, fr);
}

/** New (or re-selected) flow to frontend `front`. */
function newFlow(f: usize, fr: Frame, front: u32, reselect: bool): void {
  let fe = frontendAt(front);
  const family = <u32>fr.family, proto = <u32>fr.proto;
  let flags = fe.flags;
  const client = fr.srcAddr;
  fr.stages |= L.TS_SERVICE_MATCH;
  fr.front = front;
  fr.ct = <u8>(reselect ? L.TRCT_RESELECT : L.TRCT_NEW);
  if (flags & L.FEF_SOURCE_RANGES) {
    fr.stages |= L.TS_SOURCE_RANGE_CHECKED;
    if (!sourceAllowed(fe, client, family)) { drop(fr, L.REASON_DROP_SOURCE_RANGE); return; }
  }
  // externalTrafficPolicy Local holds only for sources outside the cluster: a pod or the node
  // itself is short-circuited to the cluster-wide endpoints (the cluster front: the port's
  // ClusterIP, or its ClusterPolicy frontend when internalTrafficPolicy is Local too), the node
  // masqueraded (kube-proxy's "short-circuit pod traffic" / "masquerade local traffic")
  let masqLocal = false;
  const cf = fe.clusterFront;
  // with FEF_AFFINITY_SHARED the cluster front only keys the affinity entries (select.ts affinityKey)
  if (shortCircuits(fe)) {
    const kind = shortCircuitKind(fe, client, family, <u32>fr.inPort);
    if (kind != 0) {
      front = cf;
      fe = frontendAt(cf);
      // the cluster front's FEF_MASQUERADE (masqueradeAll) is for traffic addressed to its
      // ClusterIP (kube-proxy matches the daddr), not for traffic short-circuited to its endpoints
      flags = fe.flags & ~L.FEF_MASQUERADE;
      fr.front = cf;
      fr.stages |= L.TS_LOCAL_SOURCE;
      masqLocal = kind == L.RTK_LOCAL_NODE;
    }
  } else if (flags & L.FEF_MASQUERADE_OUTSIDE) {
    // a ClusterIP reached from outside the pods: masqueraded (a scan of the detector's entries)
    masqLocal = localSource(client, family, <u32>fr.inPort) != L.RTK_LOCAL_POD;
  }
  if (fe.maglevSize == 0) {
    if (flags & L.FEF_POLICY_DROP) {
      // endpoints exist, the traffic policy leaves none for this traffic: kube-proxy drops
      drop(fr, (flags & L.FEF_EXTERNAL) ? L.REASON_DROP_ETP_NO_LOCAL : L.REASON_DROP_ITP_NO_LOCAL);
      return;
    }
    reject(f, fr, L.REASON_REJECT_NO_ENDPOINTS);
    if (fr.verdict == L.V_REJECT) countFrontBackend(front, 0, <u32>fr.len);
    return;
  }
  const h = fr.hash;
  fr.select = <u8>((flags & L.FEF_FALLBACK) ? L.TRSEL_FALLBACK_TERMINATING : L.TRSEL_MAGLEV);
  let bid: u32;
  if (flags & L.FEF_AFFINITY) {
    bid = selectAffinity(fr, fe, affinityKey(fe, front), client, h);
  } else {
    bid = maglevBackend(fr, front, h);
    if (!backendUsable(bid)) bid = 0;
  }
  if (bid == 0) { fr.select = <u8>L.TRSEL_NONE; drop(fr, L.REASON_DROP_NO_ROUTE); return; }
  const be = backendAt(bid);
  fr.backend = bid;
  fr.stages |= L.TS_BACKEND_SELECTED;
  // the node itself at either end (node-addr.ts): the flow keeps its TTL either way (FLOW_NODE),
  // and the source translation below is decided by it
  const ends = nodeEnds(client, be.addrPtr, family);
  // a spent TTL: answered from the service address once the backend is picked (kube-proxy's DNAT
  // and affinity update run in PREROUTING, before ip_forward's TTL check; its next hop is never
  // resolved), no flow created (the kernel's entry for it is never confirmed); with the node itself
  // at either end it goes on (local delivery, the node's own output)
  if (ttlSpent(fr, ends != 0)) { ttlExceeded(f, fr, fr.dstAddr); return; }
  if (be.outPort == L.PORT_NONE || <u32>be.family != family) { drop(fr, L.REASON_DROP_NO_ROUTE); return; }
  // too big for the backend's port: answered or dropped before any flow exists (the kernel's
  // conntrack entry of a packet ip_forward drops is never confirmed)
  if (!fitsPort(f, fr, <u32>be.outPort)) return;
  const beAddr = be.addrPtr;
  const bport = <u32>be.port;
  let nport = <u32>fr.sport;
  let snat: usize = 0;
  const sk = snatKindOf(masqLocal || (flags & L.FEF_MASQUERADE) != 0, client, beAddr, family, ends);
  const hairpin = sk == SNAT_HAIRPIN;
  if (sk != SNAT_NONE) {
    snat = snatSource(sk, family);
    // source port: deterministic start from the flow hash, linear probe for a free reply key
    nport = snatAllocPort(h, beAddr, snat, bport, proto, family);
    if (nport == 0) { drop(fr, L.REASON_DROP_SNAT_EXHAUSTED); return; }
  }
  const natd = snat != 0 ? snat : client;
  const replyHash = snat == 0 && (fr.spec & SPEC_RHASH) != 0 && fr.specBackend == bid && fr.specFront == front
    ? fr.specReplyHash : replyKeyHash(beAddr, natd, bport, nport, proto, family);
  const tcpf = <u32>fr.tcpFlags;
  if (proto != IPPROTO_TCP || (tcpf & TCP_RST) == 0) {
    const owner = snat == 0 ? ctLookup(replyHash, beAddr, natd, bport | (nport << 16), proto, family) : 0;
    if (owner != 0) {
      if (!mayTakeOver(fr, flowAt(owner >>> 1))) { drop(fr, L.REASON_DROP_CT_CLASH); return; }
      if (gLive) ctFree(owner >>> 1);
    }
    fr.stages |= L.TS_CT_NEW;
    if (gLive) {
      let cf: u32 = snat != 0 ? (hairpin ? L.CTF_SNAT | L.CTF_HAIRPIN : L.CTF_SNAT) : 0;
      if (fr.select == L.TRSEL_AFFINITY) cf |= L.CTF_AFFINITY;
      if (flags & L.FEF_FALLBACK) cf |= L.CTF_FALLBACK;
      if (ends != 0) cf |= L.FLOW_NODE;
      const flow = ctCreate(f, fr, front, bid, be, nport, cf, replyHash);
      if (flow == 0) { drop(fr, L.REASON_DROP_CT_FULL); return; }
      fr.flow = flow;
      count(reselect ? L.GC_CT_RESELECT : L.GC_CT_NEW, 1);
      if (snat != 0) count(L.GC_SNAT, 1);
    }
  } else {
    // a RST creates no flow; it is translated like the flow's packets would be
    fr.ct = <u8>L.TRCT_NONE;
  }
  fwdOrig(f, fr, beAddr, bport, snat, nport, be.dstMacPtr, be.srcMacPtr, <u32>be.outPort, ends != 0);
  countFrontBackend(front, bid, <u32>fr.len);
}

// ---- no service ---------------------------------------------------------------------------------------
/** A TCP/UDP/SCTP packet that starts no flow and has no frontend: a ClusterIP on a port or
 * protocol its Service does not define is rejected (kube-proxy's cluster-ips check), anything
 * else has no service. */
function noFrontend(f: usize, fr: Frame): void {
  if (svcLookup(fr.dstAddr, L.SM_ANY_PORT, L.SM_ANY_PROTO, <u32>fr.family) != 0) { reject(f, fr, L.REASON_REJECT_INVALID_PORT); return; }
  noService(f, fr);
}

/** No flow, no frontend: plain routing, else to the host. */
function noService(f: usize, fr: Frame): void {
  const family = <u32>fr.family;
  const rt = routeLookup(fr.dstAddr, family);
  if (rt == null) { setResult(fr, L.V_TO_HOST, L.REASON_HOST_NO_MATCH, L.PORT_NONE); return; }
  // an address of the service CIDRs that no service owns (kube-proxy drops it rather than let it
  // leak to the default route)
  if (<u32>rt.kind == L.RTK_SERVICE_CIDR) { drop(fr, L.REASON_DROP_NO_SERVICE_IP); return; }
  // from or to the node itself (a node address): its output, or delivered locally — its TTL kept.
  // A spent TTL otherwise: ICMP time exceeded from the in port's address (ttl.ts)
  const node = routedNode(fr);
  if (ttlSpent(fr, node)) { ttlExceeded(f, fr, 0); return; }
  const out = <u32>rt.outPort;
  if (out == L.PORT_NONE) { drop(fr, L.REASON_DROP_NO_ROUTE); return; }
  if (!fitsPort(f, fr, out)) return;
  ttlStep(f + <usize>fr.l3, fr, 0, node);
  macCopy(f + ETH_DST, rt.dstMacPtr);
  macCopy(f + ETH_SRC, rt.srcMacPtr);
  fr.stages |= L.TS_ROUTED;
  setResult(fr, L.V_FORWARD, L.REASON_FWD_ROUTED, out);
}

// ---- fragments ------------------------------------------------------------------------------------------
/** A non-first fragment: with its first fragment's ports (fragment table) it follows that
 * datagram's flow, translated at L3 only; a fragment toward a service without a flow, or without
 * a remembered first fragment (it came first, or too late), is dropped (docs/core.md "Fragments"). */
function laterFragment(f: usize, fr: Frame): void {
  if (!fragFollow(fr)) { drop(fr, L.REASON_DROP_FRAGMENT); return; }
  const family = <u32>fr.family, proto = <u32>fr.proto;
  if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) {
    fr.hash = keyHash(fr.srcAddr, fr.dstAddr, fr.ports, proto, family);
    const ref = ctLookup(fr.hash, fr.srcAddr, fr.dstAddr, fr.ports, proto, family);
    if (ref != 0) {
      if (ref & 1) hitReply(f, fr, ref >>> 1); else hitOrig(f, fr, ref >>> 1);
      return;
    }
    const front = svcLookup(fr.dstAddr, <u32>fr.dport, proto, family);
    if (front != 0) { laterFragmentNoFlow(fr, front); return; }
  }
  noService(f, fr);
}

/** A later fragment toward a service whose datagram has no flow. When its first fragment waits
 * for its backend's neighbour (drop_no_route: the worker holds it, no flow yet), the same Maglev
 * pick — the first fragment's 5-tuple, so its hash — names that backend: the fragment is held
 * with it (drop_no_route, the backend in the descriptor) and released after it, in order, where
 * the kernel's neighbour queue would have kept the datagram too. Anything else drops
 * (drop_fragment): the first fragment was refused or dropped, or its pick is not a plain Maglev
 * pick of this frontend (session affinity, source ranges, a frontend that sends local sources to
 * its cluster front). */
function laterFragmentNoFlow(fr: Frame, front: u32): void {
  const fe = frontendAt(front);
  if (fe.maglevSize != 0 && fe.clusterFront == 0 && (fe.flags & (L.FEF_AFFINITY | L.FEF_SOURCE_RANGES)) == 0) {
    const bid = maglevBackend(fr, front, fr.hash);
    if (backendUsable(bid)) {
      const be = backendAt(bid);
      // (a first fragment whose TTL was spent was answered, never held — unless the node itself
      // is at either end: it went on, as newFlow's does)
      if (be.outPort == L.PORT_NONE && <u32>be.family == <u32>fr.family &&
          !ttlSpent(fr, nodeEnds(fr.srcAddr, be.addrPtr, <u32>fr.family) != 0)) {
        fr.front = front;
        fr.backend = bid;
        drop(fr, L.REASON_DROP_NO_ROUTE);
        return;
      }
    }
  }
  drop(fr, L.REASON_DROP_FRAGMENT);
}

// ---- pass 2 ---------------------------------------------------------------------------------------------
// @inline: one call site (the per-frame loop), which then makes no call per frame on the way in
@inline function decide(f: usize, fr: Frame): void {
  fr.stages = L.TS_PARSED;
  if (fr.laterFragment) { laterFragment(f, fr); return; }
  if (fr.firstFragment && gLive) fragRemember(fr);
  const family = <u32>fr.family;
  const proto = <u32>fr.proto;
  if (fr.hasPorts) {
    const ref = ctLookup(fr.hash, fr.srcAddr, fr.dstAddr, fr.ports, proto, family);
    if (ref != 0) {
      if (ref & 1) hitReply(f, fr, ref >>> 1); else hitOrig(f, fr, ref >>> 1);
      return;
    }
    const front = (fr.spec & SPEC_FRONT) != 0 ? fr.specFront : svcLookup(fr.dstAddr, <u32>fr.dport, proto, family);
    if (front != 0) { newFlow(f, fr, front, false); return; }
    noFrontend(f, fr);
    return;
  } else {
    const icmp = (proto == IPPROTO_ICMP && family == 4) || (proto == IPPROTO_ICMPV6 && family == 6);
    if (icmp && isIcmpError(family, <u32>fr.icmpType)) {
      if (icmpError(f, fr)) return;
    } else if ((!icmp || isIcmpQuery(family, <u32>fr.icmpType)) && svcLookup(fr.dstAddr, L.SM_ANY_PORT, L.SM_ANY_PROTO, family) != 0) {
      // a ping (or another protocol without ports) to an allocated ClusterIP: kube-proxy's
      // cluster-ips check ("ct state new ... daddr @cluster-ips reject") answers it
      reject(f, fr, L.REASON_REJECT_CLUSTER_IP_PROTO);
      return;
    }
  }
  noService(f, fr);
}

export function processBatch(n: u32, now: u32): void {
  loadConfig();
  loadTableSet();
  routeCacheEpoch();
  nodeAddrLoad();
  const traceFlags = config().trace;
  const traceOn = (traceFlags & L.TRACE_ON) != 0;
  const live = (traceFlags & L.TRACE_DRY_RUN) == 0;
  beginBatch(now, live);
  const filtering = live && traceFilterBegin();   // a live trace's filters (trace.ts)
  if (n > gBatchMax) n = gBatchMax;
  if (live) {
    expireSweep(config().expireBudget);
    count(L.GC_BATCHES, 1);
  }
  let fwd: u64 = 0, rej: u64 = 0, host: u64 = 0, drp: u64 = 0, bytes: u64 = 0;
  for (let base: u32 = 0; base < n; base += CHUNK) {
    const m = n - base < CHUNK ? n - base : CHUNK;
    // pass 1: parse + hash every frame of the chunk (independent work, overlaps cache misses)
    for (let k: u32 = 0; k < m; k++) parse(base + k, frameAt(k));
    gSink = prefetchChunk(m);
    // pass 2: conntrack, services, rewrite, in order
    for (let k: u32 = 0; k < m; k++) {
      const i = base + k;
      const fr = frameAt(k);
      const d = descAt(i);
      fr.stages = 0; fr.front = 0; fr.backend = 0; fr.flow = 0;
      fr.ct = <u8>L.TRCT_NONE; fr.select = <u8>L.TRSEL_NONE;
      fr.inPort = d.inPort;
      const len = <u32>d.len;
      fr.lenOut = <u16>len;
      if (fr.reason != 0) fr.outPort = <u16>L.PORT_NONE;   // decided while parsing
      else decide(slotAt(i), fr);
      const verdict = <u32>fr.verdict;
      if (verdict == L.V_DROP) fr.outPort = <u16>L.PORT_NONE;
      d.len = fr.lenOut;
      d.outPort = fr.outPort;
      d.verdict = fr.verdict;
      d.reason = fr.reason;
      d.hash = fr.hash;
      // the backend a no-route drop waited on (the hold queue's key), or a forwarded frame's flow
      // when the kernel path may carry the flow's frames of its kind
      d.aux = fr.reason == L.REASON_DROP_NO_ROUTE ? fr.backend : kernelPathFlow(fr);
      if (live) {
        bytes += len;
        if (verdict == L.V_FORWARD) fwd++;
        else if (verdict == L.V_REJECT) rej++;
        else if (verdict == L.V_TO_HOST) host++;
        else drp++;
        count(L.GC_COUNT + <i32>fr.reason, 1);
      }
      if (traceOn) writeTrace(traceAt(i), fr);
    }
    if (filtering) traceFilterChunk(base, m);
  }
  if (live) {
    count(L.GC_RX_PACKETS, <u64>n);
    count(L.GC_RX_BYTES, bytes);
    count(L.GC_FORWARD, fwd);
    count(L.GC_REJECT, rej);
    count(L.GC_TO_HOST, host);
    count(L.GC_DROP, drp);
    setFlowsActive(flowsActive());
  }
}
