// Restoring saved flows (a daemon restart or upgrade; src/core/flow-export.ts is the host side).
// The host stages one flow entry in the layout's CT_SIZE format; this hashes its two keys with the
// core's own flowHash (the words a packet of either direction hashes: one source of truth; against
// two host flowHash calls per entry, 0.62x the CPU per flow restored, bench/profile-restore.mjs),
// sets CT_REPLY_HASH and inserts it through the core's own lookup, allocation and index insert:
// the free list, the active count and the index stay exactly as if the core had created the flow.
// Its reply-key index slot is what marks a masqueraded flow's SNAT port as taken (the port
// allocator probes the index), so restored flows and new ones never share a port.
// ctRecordedFront gives the host the frontend id the core records such a flow under, on the
// tables in force.
import * as L from "./layout";
import { loadConfig, loadTableSet, beginBatch, flowAt, flowSnatAddr, frontendAt, tFeMax } from "./regions";
import { CtFlow } from "./records";
import { ctAlloc, ctLookup, idxInsert } from "./conntrack";
import { flowHash } from "./hash";
import { shortCircuits, shortCircuitKind } from "./select";
import { nodeItself } from "./snat";

/** ct_restore's answer when the entry's original or reply key belongs to a live flow already. */
export const RESTORE_CLASH: u32 = 0xffffffff;

/** Inserts the flow entry staged at `src` (CT_SIZE bytes; CT_REPLY_HASH is overwritten; FLOW_NODE
 * of CT_FLAGS is set from the node addresses of the tables in force), `now`
 * the core clock its times are relative to. Its original key (client, VIP, CT_CPORT's ports word)
 * and reply key (backend, the flow's SNAT or hairpin address when masqueraded else the client,
 * CT_BPORT's ports word) are hashed as a packet of that direction is. Returns the flow index;
 * RESTORE_CLASH when a live flow owns its original or reply key (an expired one is freed, as a
 * lookup does); 0 when no entry is free. The host stops before the free list runs out
 * (ct_active() < flows), so a restore never evicts. Call only after a successful init(). */
export function ctRestore(src: usize, now: u32): u32 {
  loadConfig();
  beginBatch(now, true);
  const proto = <u32>load<u8>(src, L.CT_PROTO), family = <u32>load<u8>(src, L.CT_FAMILY);
  const flags = <u32>load<u8>(src, L.CT_FLAGS);
  const natd = (flags & L.CTF_SNAT) ? flowSnatAddr(flags, family) : src + L.CT_CLIENT;
  const origHash = flowHash(src + L.CT_CLIENT, src + L.CT_VIP, load<u32>(src, L.CT_CPORT), proto);
  const replyHash = flowHash(src + L.CT_BACKEND, natd, load<u32>(src, L.CT_BPORT), proto);
  store<u32>(src, replyHash, L.CT_REPLY_HASH);
  if (ctLookup(origHash, src + L.CT_CLIENT, src + L.CT_VIP, load<u32>(src, L.CT_CPORT), proto, family) != 0 ||
      ctLookup(replyHash, src + L.CT_BACKEND, natd, load<u32>(src, L.CT_BPORT), proto, family) != 0) {
    return RESTORE_CLASH;
  }
  const flow = ctAlloc();
  if (flow == 0) return 0;
  const e = flowAt(flow).ptr;
  memory.copy(e, src, L.CT_SIZE);
  // FLOW_NODE from the node addresses in force, as a new flow's (the saved bit is not read: a
  // checkpoint of a build without it restores the same)
  loadTableSet();
  const node = nodeItself(e + L.CT_CLIENT, family) || nodeItself(e + L.CT_BACKEND, family);
  store<u8>(e, <u8>((flags & ~L.FLOW_NODE) | (node ? L.FLOW_NODE : 0)), L.CT_FLAGS);
  idxInsert(origHash, flow << 1);
  idxInsert(replyHash, (flow << 1) | 1);
  return flow;
}

/** The frontend id the core records a flow like the entry at `e` under (pipeline.ts newFlow) when
 * the service map has frontend `front` for its (VIP, port, protocol) in the table set in force:
 * front's cluster front when front short-circuits the entry's client — its address, and the port
 * it came in on (CT_CLIENT_PORT, as the host has it now) — else front (0 stays 0). A restore finds
 * a saved flow's frontend by (VIP, port) and derives this, so that a pod's or the node's flow to
 * an externalTrafficPolicy Local frontend is the cluster front's again, as it was before: counted,
 * traced and listed under it (stale.ts heldFrontId). Costs a scan of the local-source entries. */
export function ctRecordedFront(e: usize, front: u32): u32 {
  loadTableSet();
  if (front == 0 || front > tFeMax) return front;
  const fe = frontendAt(front);
  if (!shortCircuits(fe)) return front;
  const f = changetype<CtFlow>(e);
  return shortCircuitKind(fe, f.clientAddr, <u32>f.family, <u32>f.clientPort) != 0 ? fe.clusterFront : front;
}
