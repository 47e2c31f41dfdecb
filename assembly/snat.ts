// Source NAT of new flows (masquerade of external traffic, hairpin): whether a flow needs it and
// which source port it gets. The prefetch pass uses the same decision and first port to touch the
// index slot the allocation will probe first. Semantics: docs/core.md "New flow" step 7.
import * as L from "./layout";
import { flowHash } from "./hash";
import { addrEq } from "./addr";
import { gPortMin, gPortMax, gSteerWorkers, gSteerSelf, hasSnat, snatAddr, hasHairpin, hairpinAddr } from "./regions";
import { ownerOf } from "./owner";
import { ctLookup } from "./conntrack";
import { nodeAddress } from "./select";
import { NODE_CLIENT, NODE_BACKEND, nodeEnds } from "./node-addr";

/** snatKind: no source translation, the SNAT (masquerade) address, the hairpin address. */
export const SNAT_NONE: u32 = 0;
export const SNAT_MASQ: u32 = 1;
export const SNAT_HAIRPIN: u32 = 2;

const SNAT_TRIES: u32 = <u32>L.SNAT_PROBE_MAX;

/** Whether addr is the node itself: the SNAT address of its family or another node address (a
 * hostNetwork endpoint of this node). Scans the node entries (a handful). */
export function nodeItself(addr: usize, family: u32): bool {
  return (hasSnat(family) && addrEq(addr, snatAddr(family))) || nodeAddress(addr, family);
}

/** snatKind with the flow's ends already known (node-addr.ts nodeEnds): the new-flow path needs
 * them for the TTL anyway. */
@inline export function snatKindOf(masquerade: bool, client: usize, beAddr: usize, family: u32, ends: u32): u32 {
  if (!hasSnat(family)) return SNAT_NONE;
  const self = addrEq(client, beAddr);
  const beNode = (ends & NODE_BACKEND) != 0;
  if (beNode && (ends & NODE_CLIENT) != 0 && hasHairpin(family)) return SNAT_HAIRPIN;
  return (masquerade && !beNode) || self ? SNAT_MASQ : SNAT_NONE;
}

/** How a new flow toward beAddr is source-translated (SNAT_*). A backend at a node address (the
 * SNAT address or any other address of the node: a hostNetwork endpoint of this node) is the node
 * itself. When the client is the node too (the host reaching itself through a Service) and CONFIG
 * has a hairpin address of the family, the flow takes that one: translated to a node address, or
 * left at one, the packet would reach the node from a local address (a martian to Linux) and its
 * reply would stay inside the node's stack. Otherwise the flow is masqueraded to the SNAT address
 * when it is to be masqueraded (its frontend's FEF_MASQUERADE, or the node itself short-circuited
 * by an externalTrafficPolicy Local frontend) and the backend is not the node (masqueraded to a
 * node address it would arrive from a local address, like kube-proxy, which does not masquerade
 * what the node delivers to itself) — or the client is the backend itself (a pod reaching itself).
 * Nothing without a SNAT address of the family. The prefetch pass's: it asks nodeEnds (this
 * batch's node addresses, nodeAddrLoad) only when the flow may be masqueraded or CONFIG has a
 * hairpin address; the decision, which has the ends already, calls snatKindOf. */
@inline export function snatKind(masquerade: bool, client: usize, beAddr: usize, family: u32): u32 {
  if (!hasSnat(family)) return SNAT_NONE;
  // neither masquerade nor a hairpin address: nothing to decide
  if (!masquerade && !addrEq(client, beAddr) && !hasHairpin(family)) return SNAT_NONE;
  return snatKindOf(masquerade, client, beAddr, family, nodeEnds(client, beAddr, family));
}

/** The source address of a flow translated as `kind` (SNAT_MASQ or SNAT_HAIRPIN). */
@inline export function snatSource(kind: u32, family: u32): usize {
  return kind == SNAT_HAIRPIN ? hairpinAddr(family) : snatAddr(family);
}

/** Whether the configured port range is usable (PORT_MIN != 0, MAX >= MIN). */
@inline export function snatRangeOk(): bool { return gPortMax >= gPortMin && gPortMin != 0; }

/** The first port tried for flow hash h (snatRangeOk() must hold). */
@inline export function snatFirstPort(h: u32): u32 { return gPortMin + h % (gPortMax - gPortMin + 1); }

/** Index hash of the reply key (backend, SNAT address, bport, port). */
@inline export function snatReplyHash(beAddr: usize, snat: usize, bport: u32, port: u32, proto: u32): u32 {
  return flowHash(beAddr, snat, bport | (port << 16), proto);
}

/** A source port whose reply key (backend:bport -> snat:port) no live flow owns, probing linearly
 * from snatFirstPort(h) for up to SNAT_PROBE_MAX ports; 0 = none (drop_snat_exhausted). With
 * several workers sharing the interfaces (CFG_STEER_WORKERS > 1) only ports whose key (snat, port)
 * this worker owns (owner.ts) are tried — about 1 in N, skipped without a lookup — so the replies
 * are steered back here. */
export function snatAllocPort(h: u32, beAddr: usize, snat: usize, bport: u32, proto: u32, family: u32): u32 {
  if (!snatRangeOk()) return 0;
  const range = gPortMax - gPortMin + 1;
  const workers = gSteerWorkers, self = gSteerSelf;
  let p = snatFirstPort(h);
  const tries = SNAT_TRIES < range ? SNAT_TRIES : range;
  for (let s: u32 = 0, t: u32 = 0; s < range && t < tries; s++) {
    if (workers <= 1 || ownerOf(snat, p, workers) == self) {
      t++;
      const rh = snatReplyHash(beAddr, snat, bport, p, proto);
      if (ctLookup(rh, beAddr, snat, bport | (p << 16), proto, family) == 0) return p;
    }
    p = p >= gPortMax ? gPortMin : p + 1;
  }
  return 0;
}
