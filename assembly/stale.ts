// Whether a conntrack flow's translation still holds in the generation in force. A flow keeps its
// backend by id, but the compiler hands a freed id to the next new backend (src/compiler/ids.ts,
// first-in-first-out, no delay), so a usable id alone does not mean the flow's pod still exists:
// the id must still name the address, port and family the flow was translated to. A source-NATed
// flow also needs the SNAT address it was created with to be CONFIG's address of its family
// (without one the rewrite would write a zeroed source; with another one its replies are lost) —
// the hairpin address for a flow translated to it (CTF_HAIRPIN).
// Cost on a hit: one 16-byte compare and two small ones on the backend entry the hit loads anyway;
// masqueraded flows also hash their reply key once.
// A closing TCP flow that sees a new pure SYN from its client is stale too: the client reopened
// the 5-tuple for a new connection, which Linux conntrack (kube-proxy) load-balances afresh by
// deleting the old entry and looking the packet up again; keeping the old backend would send the
// new connection to a pod that may be terminating by now. Cost: one compare on a TCP hit.
// A UDP flow whose backend stopped serving (BES_NOT_SERVING: not ready and not a serving
// terminating one) is stale while the port its packet addresses has serving endpoints:
// kube-proxy deletes such UDP conntrack entries (pkg/proxy/conntrack/cleanup.go), so a client that
// keeps its source port reaches a serving pod instead of one that went away; TCP and SCTP flows
// are left alone, as there, and with no serving endpoint left nothing is cleaned. Cost: one
// compare on a UDP hit; the service lookup only for a flow whose backend is not serving.
// Semantics: docs/core.md "Original-direction hit" step 1.
import * as L from "./layout";
import { CtFlow, Backend } from "./records";
import { Frame } from "./frame";
import { IPPROTO_TCP, IPPROTO_UDP, TCP_SYN, TCP_ACK, TCP_FIN, TCP_RST } from "./net";
import { addrEq } from "./addr";
import { backendAt, frontendAt, hasSnat, hasHairpin, flowSnatAddr } from "./regions";
import { replyKeyHash } from "./conntrack";
import { backendUsable, svcLookup } from "./select";

/** The flow's backend entry if the flow still holds in the generation in force, else null (the
 * flow is stale: re-select it, or drop what cannot be re-selected). */
@inline export function flowBackend(e: CtFlow): Backend | null {
  const bid = e.backendId;
  if (!backendUsable(bid)) return null;
  const be = backendAt(bid);
  if (<u32>be.port != <u32>e.bport || be.family != e.family || !addrEq(be.addrPtr, e.backendAddr)) return null;
  if ((e.flags & L.CTF_SNAT) != 0) {
    const family = <u32>e.family;
    if (!hasSnat(family) || ((e.flags & L.CTF_HAIRPIN) != 0 && !hasHairpin(family))) return null;
    // The flow does not store its SNAT address, but its reply-key hash was made with it: a
    // different hash under CONFIG's address means the address changed (its replies, addressed to
    // the old one, no longer reach it). Costs one key hash, on masqueraded flows' hits only.
    if (replyKeyHash(e.backendAddr, flowSnatAddr(<u32>e.flags, family), <u32>e.bport, <u32>e.nport, <u32>e.proto, family) != e.replyHash) return null;
  }
  return be;
}

/** Whether frame fr (a hit in the original direction of flow e) opens a new connection on the
 * 5-tuple of a closed one: TCP, the flow is closing and fr is a pure SYN (no ACK, FIN or RST).
 * Such a flow is stale: it is freed and the SYN selects a backend again. */
@inline export function reopensClosed(e: CtFlow, fr: Frame): bool {
  return <u32>fr.proto == IPPROTO_TCP && <u32>e.state == L.CTS_TCP_CLOSING &&
    (<u32>fr.tcpFlags & (TCP_SYN | TCP_ACK | TCP_FIN | TCP_RST)) == TCP_SYN;
}

/** For frame fr (a UDP hit in the original direction) on backend be: when be no longer serves
 * (BES_NOT_SERVING) while the service port the packet addresses has serving endpoints (a Maglev
 * set, or FEF_POLICY_DROP: endpoints elsewhere) — kube-proxy's UDP conntrack cleanup — the flow is
 * stale and this is that port's frontend, which the packet selects a backend of again (the caller
 * frees the flow); else 0. Returning the frontend spares the re-selection a second lookup. */
@inline export function udpReselectFront(be: Backend, fr: Frame): u32 {
  if (<u32>fr.proto != IPPROTO_UDP || <u32>be.state != L.BES_NOT_SERVING) return 0;
  const front = svcLookup(fr.dstAddr, <u32>fr.dport, IPPROTO_UDP, <u32>fr.family);
  if (front == 0) return 0;
  const fe = frontendAt(front);
  return fe.maglevSize != 0 || (fe.flags & L.FEF_POLICY_DROP) != 0 ? front : 0;
}
