// Whether a conntrack flow's translation still holds in the generation in force. A flow keeps its
// backend by id, but the compiler hands a freed id to the next new backend (src/compiler/ids.ts,
// first-in-first-out, no delay), so a usable id alone does not mean the flow's pod still exists:
// the id must still name the address, port and family the flow was translated to. A source-NATed
// flow also needs the SNAT address it was created with to be CONFIG's address of its family
// (without one the rewrite would write a zeroed source; with another one its replies are lost) —
// the hairpin address for a flow translated to it (CTF_HAIRPIN).
// Cost on a hit: one 16-byte compare and two small ones on the backend entry the hit loads anyway;
// masqueraded flows also hash their reply key once. The frontend id likewise (heldFrontId): a
// Service re-created at a new ClusterIP may keep the flow's backend while its id names another
// frontend; a 16-byte compare on the frontend entry (prefetched with the backend's), measured at
// +3-15 ns per established frame (docs/performance.md, "Forwarding core").
// A TCP or SCTP flow whose backend left (its id no longer names its address) is not stale: like
// the kernel's conntrack entry, which kube-proxy leaves alone, it keeps its translation and is
// forwarded to its own address through the routes (keepsAddress, keptRoute) — unless a pure SYN
// opens a new connection on its 5-tuple. Cost per packet of such flows only: a route-cache lookup
// (the route scan once per address and table generation: route-cache.ts), and a service lookup
// for one whose frontend entry no longer names it (heldFrontId).
// A closing TCP flow that sees a new pure SYN from its client is stale too: the client reopened
// the 5-tuple for a new connection, which Linux conntrack (kube-proxy) load-balances afresh by
// deleting the old entry and looking the packet up again; keeping the old backend would send the
// new connection to a pod that may be terminating by now. Cost: one compare on a TCP hit.
// A UDP flow whose backend left, or stopped serving (BES_NOT_SERVING: not ready and not a
// serving terminating one) while its service port is in force, is stale: kube-proxy's UDP
// conntrack cleanup (pkg/proxy/conntrack/cleanup.go) deletes the UDP entries of a service IP:port
// or NodePort whose DNAT target is not a serving endpoint of the port — also when the port has
// none left (kubernetes#139629), and those of a deleted Service's ports (kubernetes#141371) — so
// the client's next datagram is a new connection: to a serving pod, refused while the port has no
// endpoint, unanswered once its Service is gone; TCP and SCTP flows are left alone, as there.
// Cost: one compare on a UDP hit; the service lookup only for a flow whose backend is not serving.
// Semantics: docs/core.md "Original-direction hit" (terms, steps 1 and 2).
import * as L from "./layout";
import { CtFlow, Backend, Route } from "./records";
import { Frame } from "./frame";
import { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, TCP_SYN, TCP_ACK, TCP_FIN, TCP_RST } from "./net";
import { addrEq } from "./addr";
import { backendAt, frontendAt, hasSnat, hasHairpin, flowSnatAddr, tFeMax } from "./regions";
import { replyKeyHash } from "./conntrack";
import { backendUsable, svcLookup } from "./select";
import { cachedRouteLookup } from "./route-cache";

/** Whether a source-translated flow's SNAT (or hairpin) address is still CONFIG's address of its
 * family; true for a flow without CTF_SNAT. Without it the rewrite would write a zeroed source,
 * with another one the flow's replies (addressed to the old one) are lost: the flow is stale
 * whatever became of its backend. */
@inline export function snatHolds(e: CtFlow): bool {
  if ((e.flags & L.CTF_SNAT) == 0) return true;
  const family = <u32>e.family;
  if (!hasSnat(family) || ((e.flags & L.CTF_HAIRPIN) != 0 && !hasHairpin(family))) return false;
  // The flow does not store its SNAT address, but its reply-key hash was made with it: a
  // different hash under CONFIG's address means the address changed (its replies, addressed to
  // the old one, no longer reach it). Costs one key hash, on masqueraded flows' hits only.
  return replyKeyHash(e.backendAddr, flowSnatAddr(<u32>e.flags, family), <u32>e.bport, <u32>e.nport, <u32>e.proto, family) == e.replyHash;
}

/** The flow's backend entry if its id is usable in the generation in force and still names the
 * address, port and family the flow was translated to; else null (the backend left the
 * endpoints, or its id was handed to another one). */
@inline export function backendHolds(e: CtFlow): Backend | null {
  const bid = e.backendId;
  if (!backendUsable(bid)) return null;
  const be = backendAt(bid);
  if (<u32>be.port != <u32>e.bport || be.family != e.family || !addrEq(be.addrPtr, e.backendAddr)) return null;
  return be;
}

/** The backend id a hit on flow e is traced and counted under: its id while that still names the
 * flow's backend (backendHolds), else 0 — a backend that left, whose id may name another backend
 * by now (a reply from the old pod, an ICMP error about it), is no backend's traffic. Costs the
 * compares of backendHolds on an entry the prefetch has loaded (stage 3). */
@inline export function heldBackendId(e: CtFlow): u32 {
  return backendHolds(e) != null ? e.backendId : 0;
}

/** The frontend the flow's (VIP, port, protocol) names in the generation in force (0: none) —
 * one service lookup, which an ICMP error about a flow whose backend left makes once for its
 * trace (heldFrontIdOf). */
@inline export function flowFrontLookup(e: CtFlow): u32 {
  return svcLookup(e.vipAddr, <u32>e.vport, <u32>e.proto, <u32>e.family);
}

/** Whether flow e's frontend id names, in the generation in force, a frontend of the flow's own
 * (VIP, port, protocol, family): that frontend's entry holds the key (a removed frontend's entry
 * is zeroed; an id handed to another frontend holds that frontend's key). The common case of
 * heldFrontId, without a service lookup. Costs the frontend entry's load (the prefetch loads it,
 * stage 3) and a 16-byte compare. */
@inline function frontNamesFlow(e: CtFlow): bool {
  const front = e.front;
  if (front == 0 || front > tFeMax) return false;
  const fe = frontendAt(front);
  return fe.family == e.family && <u32>fe.port == <u32>e.vport && fe.proto == e.proto && addrEq(fe.addrPtr, e.vipAddr);
}

/** Whether fid (the frontend the service map has for the flow's key, 0: none) is the flow's
 * frontend or names it as its cluster front. */
@inline function fidHoldsFront(e: CtFlow, fid: u32): bool {
  const front = e.front;
  return fid != 0 && (fid == front || frontendAt(fid).clusterFront == front);
}

/** heldFrontId with the flow's flowFrontLookup (fid) already made. */
@inline export function heldFrontIdOf(e: CtFlow, fid: u32): u32 {
  return frontNamesFlow(e) || fidHoldsFront(e, fid) ? e.front : 0;
}

/** The frontend id a hit on flow e is traced and counted under, whatever became of its backend:
 * CT_FRONT while that frontend is still the flow's — its entry names the flow's (VIP, port,
 * protocol, family) (frontNamesFlow), or it is the cluster front (where an externalTrafficPolicy
 * Local frontend sends in-cluster sources) of the frontend the service map has for that key —
 * else 0: the Service port is gone or was re-created elsewhere (a new ClusterIP), and the compiler
 * may have handed its id to another frontend, which must not count or trace this traffic. A
 * service lookup only for flows of a cluster front or whose frontend is not theirs any more. */
@inline export function heldFrontId(e: CtFlow): u32 {
  return frontNamesFlow(e) || fidHoldsFront(e, flowFrontLookup(e)) ? e.front : 0;
}

/** Whether flow e, whose backend left (backendHolds null, snatHolds true), stays on the address
 * and port it was translated to, forwarded by the route to it (keptRoute), as the kernel keeps
 * translating a conntrack entry kube-proxy leaves alone: TCP and SCTP flows, which kube-proxy
 * never cleans (pkg/proxy/conntrack/cleanup.go cleans UDP only) — the old pod keeps serving an
 * open connection while it runs (a blue/green switch of a Service's selector, a targetPort
 * change) — and an orphaned UDP flow (udpOrphan). Another UDP flow re-selects (its entry would be
 * cleaned), and so does a pure SYN (the caller checks it): a new connection must reach a current
 * endpoint. */
@inline export function keepsAddress(e: CtFlow): bool {
  const proto = <u32>e.proto;
  return proto == IPPROTO_TCP || proto == IPPROTO_SCTP || (proto == IPPROTO_UDP && udpOrphan(e));
}

/** Whether UDP flow e is to an address no service port serves any more while its own port lives
 * on — an external or LoadBalancer IP removed from the port, a node port dropped — which
 * kube-proxy's UDP cleanup never looks at again: it matches entries by a current UDP service IP or
 * node port (pkg/proxy/conntrack/cleanup.go), so the kernel keeps translating such an entry to its
 * endpoint whatever becomes of it. The host marks such flows when the apply removes their frontend
 * (CT_FRONT = 0, src/core/udp-cleanup.ts); a flow restored without a frontend is one too. While
 * the service map has a frontend for the flow's (VIP, port) again the address is a service's once
 * more, and the cleanup's rules hold for it. Cost: a compare; the lookup only for such flows. */
@inline export function udpOrphan(e: CtFlow): bool {
  return e.front == 0 && flowFrontLookup(e) == 0;
}

/** Whether fr is a pure TCP SYN (SYN without ACK, FIN or RST): a new connection. */
@inline export function pureSyn(fr: Frame): bool {
  return <u32>fr.proto == IPPROTO_TCP && (<u32>fr.tcpFlags & (TCP_SYN | TCP_ACK | TCP_FIN | TCP_RST)) == TCP_SYN;
}

/** The route a kept flow (keepsAddress) reaches its own backend address by, as plain routing
 * would reach it (select.ts routeLookup: a neighbour's host route, else a NodeConfig route;
 * remembered per address while the tables are unchanged, route-cache.ts); null
 * when none does, when the address lies in a service CIDR, or when the route has no port: the
 * address is unreachable (the pod is gone), the packet is dropped, never sent elsewhere. */
export function keptRoute(e: CtFlow): Route | null {
  const rt = cachedRouteLookup(e.backendAddr, <u32>e.family);
  if (rt == null || <u32>rt.kind != L.RTK_FORWARD || <u32>rt.outPort == L.PORT_NONE) return null;
  return rt;
}

/** Whether frame fr (a hit in the original direction of flow e) opens a new connection on the
 * 5-tuple of a closed one: TCP, the flow is closing and fr is a pure SYN (no ACK, FIN or RST).
 * Such a flow is stale: it is freed and the SYN selects a backend again. */
@inline export function reopensClosed(e: CtFlow, fr: Frame): bool {
  return <u32>e.state == L.CTS_TCP_CLOSING && pureSyn(fr);
}

/** For frame fr (a UDP hit in the original direction) on backend be: when be no longer serves
 * (BES_NOT_SERVING) — kube-proxy's UDP conntrack cleanup deletes such an entry of a service port
 * in force, whatever else the port has — the flow is stale and this is the frontend the packet
 * addresses, which it is decided on again (the caller frees the flow: a backend of the port, a
 * refusal when it has none, a drop when a traffic policy leaves none); else 0. An address no
 * longer in the service map (an external IP removed from the port) is no entry the cleanup
 * looks at: the flow keeps its backend. Returning the frontend spares the re-selection a second
 * lookup. */
@inline export function udpReselectFront(be: Backend, fr: Frame): u32 {
  if (<u32>fr.proto != IPPROTO_UDP || <u32>be.state != L.BES_NOT_SERVING) return 0;
  return svcLookup(fr.dstAddr, <u32>fr.dport, IPPROTO_UDP, <u32>fr.family);
}

/** Whether a reply-direction packet of flow e (whose backend id in force is `bid`, heldBackendId)
 * finds the flow stale: a UDP flow whose backend left (bid 0; not an orphan: udpOrphan), or stopped serving
 * (BES_NOT_SERVING) while its (VIP, port) is a service port in force — the entry kube-proxy's UDP
 * cleanup deletes (udpReselectFront), after which the old pod's datagram matches no entry and is
 * not translated. The caller frees the flow. Cost on a UDP reply: one compare on the backend
 * entry heldBackendId loaded; the service lookup only for a backend that is not serving. */
@inline export function udpReplyStale(e: CtFlow, bid: u32): bool {
  if (<u32>e.proto != IPPROTO_UDP) return false;
  if (bid == 0) return !udpOrphan(e);
  return <u32>backendAt(bid).state == L.BES_NOT_SERVING && flowFrontLookup(e) != 0;
}
