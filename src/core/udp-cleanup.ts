// kube-proxy's UDP conntrack cleanup for the frontends an apply removes (docs/core.md "Flows of
// endpoints that stop serving or go away").
//
// kube-proxy (pkg/proxy/conntrack/cleanup.go CleanStaleEntries, after every sync, per IP family)
// deletes a UDP entry when its original destination is a UDP service IP (ClusterIP, external or
// LoadBalancer IP) — or its original destination port a UDP node port — and its reply source is
// not a serving endpoint of it; a Service port deleted in the sync counts with no endpoint at all
// (kubernetes#141371), and a family's proxier sees a Service that lost its cluster IP of that
// family as deleted. An entry whose destination is no current service IP or node port is never
// looked at again: the kernel keeps translating it to its endpoint, whatever becomes of that.
//
// The core applies the rule for live service ports lazily, on a flow's next packet (stale.ts).
// What it cannot see there is how a frontend went away, so this pass settles it at the apply,
// for each UDP frontend the apply removes (or hands its id to another frontend):
// - its Service port is deleted in its family (the port's ClusterIP frontend of the family goes
//   and none comes in its place): the frontend's UDP flows are freed now, as kube-proxy's cleanup
//   of a deleted Service port deletes them at that sync;
// - else its address left a port that lives on (an external or LoadBalancer IP removed, a
//   ClusterIP replaced, a node port renumbered or the port no longer a NodePort): its UDP flows
//   become orphans, CT_FRONT = 0 (stale.ts udpOrphan), kept on their translation like the
//   kernel's entry — also once their endpoint stops serving or leaves;
// - a NodePort frontend whose node port lives on at other node addresses (nodePortAddresses
//   changed): nothing — kube-proxy matches node port entries by port, whichever address, and
//   the core's lazy rule cleans the flow once its endpoint leaves (its not-serving case, which
//   the core looks up by the packet's address, is a known difference).
// A ClusterPolicy frontend is no address: only the deletion of its port frees its flows.
//
// Cost: per apply, one look at each removed id's record, and at each upserted id that has a UDP
// record (the id's key compared); when some UDP frontend goes, one pass over the conntrack
// entries (CT_FLOWS_MAX + 1 entries, a byte compare for most), plus, when a NodePort frontend of
// a live port goes, one pass over the frontend records. Nothing on the packet path.
import * as L from '../../assembly/layout.js';
import type { IrFrontend } from '../ir/ir.js';
import type { IrDiff } from '../ir/diff.js';
import type { FrontRecords } from './front-records.js';

/** The conntrack entries of a core and how it frees one. */
export interface FlowTableView {
  readonly u32: Uint32Array;
  readonly map: { readonly ctFlows: number; readonly ctFlowsMax: number };
  /** Frees flow `f` through the core (index slots, free list). */
  freeFlow(f: number): void;
}

/** What an apply's removed UDP frontends mean for their flows (udpCleanupPlan). */
export interface UdpCleanupPlan {
  /** Frontends of Service ports deleted in their family: their UDP flows are freed. */
  readonly free: Set<number>;
  /** Addresses that left a live port: their UDP flows become orphans. */
  readonly orphan: Set<number>;
  /** NodePort frontends of a live port, by "service|port|family|nodePort": orphans unless a
   * NodePort frontend of that key is in the tables after the apply. */
  readonly nodePorts: Map<number, string>;
}

const portKey = (servicePort: string, family: number): string => `${servicePort}|${family}`;

/** Whether frontend `f` is the one record `id` of `recs` was written for (same Service port,
 * kind and service-map key). */
function sameFrontend(recs: FrontRecords, id: number, f: IrFrontend): boolean {
  return recs.sameKey(id, f) && recs.kindOf(id) === f.kind && recs.servicePortOf(id) === `${f.service}|${f.portName}`;
}

/** Reads what an apply of `diff` does to UDP frontends, from the records before it (`recs`: the
 * table writer's, front-records.ts). null when it removes none. Call before the apply. */
export function udpCleanupPlan(recs: FrontRecords, diff: Pick<IrDiff, 'frontendsUpsert' | 'frontendsRemove'>): UdpCleanupPlan | null {
  // (no record: the first apply, where a full sync's upserts are read from the compiler's
  // columns — nothing to read them for)
  if (recs.size === 0) return null;
  const gone: number[] = [];
  const udp = (id: number): boolean => recs.has(id) && recs.protoOf(id) === 'UDP';
  diff.frontendsRemove.forEach((id) => { if (udp(id)) gone.push(id); });
  // an id handed to another frontend in this apply: its old frontend is gone too. The upserts'
  // records are read only when some upserted id has a UDP record (a list read from columns
  // gives its ids without building records)
  const ups = diff.frontendsUpsert;
  let udpUpserts = true;
  if (ups.forEachId) { udpUpserts = false; ups.forEachId((id) => { if (!udpUpserts && udp(id)) udpUpserts = true; }); }
  if (udpUpserts) ups.forEach((f) => { if (udp(f.id) && !sameFrontend(recs, f.id, f)) gone.push(f.id); });
  if (gone.length === 0) return null;
  // Service ports deleted in a family: their ClusterIP frontend of the family went, and the apply
  // brings none for them (one ClusterIP frontend a port and family)
  const comes = new Set<string>();
  diff.frontendsUpsert.forEach((f) => { if (f.kind === 'ClusterIP') comes.add(portKey(`${f.service}|${f.portName}`, f.family)); });
  const deleted = new Set<string>();
  for (const id of gone) {
    const k = portKey(recs.servicePortOf(id), recs.familyOf(id));
    if (recs.kindOf(id) === 'ClusterIP' && !comes.has(k)) deleted.add(k);
  }
  const plan: UdpCleanupPlan = { free: new Set(), orphan: new Set(), nodePorts: new Map() };
  for (const id of gone) {
    const k = portKey(recs.servicePortOf(id), recs.familyOf(id)), kind = recs.kindOf(id);
    if (deleted.has(k)) plan.free.add(id);
    else if (kind === 'NodePort') plan.nodePorts.set(id, `${k}|${recs.portOf(id)}`);
    else if (kind !== 'ClusterPolicy') plan.orphan.add(id);
  }
  return plan;
}

/** Carries out `plan` after the apply (`recs`: the records after it): frees the flows of deleted
 * Service ports and orphans (CT_FRONT = 0) those of addresses that left a live port, UDP flows
 * only. Returns how many flows were freed and orphaned. */
export function udpCleanup(core: FlowTableView, recs: FrontRecords, plan: UdpCleanupPlan | null): { freed: number; orphaned: number } {
  const out = { freed: 0, orphaned: 0 };
  if (plan === null) return out;
  if (plan.nodePorts.size > 0) {
    const live = new Set<string>();
    recs.forEachId((id) => {
      if (recs.kindOf(id) === 'NodePort' && recs.protoOf(id) === 'UDP') live.add(`${portKey(recs.servicePortOf(id), recs.familyOf(id))}|${recs.portOf(id)}`);
    });
    for (const [id, key] of plan.nodePorts) if (!live.has(key)) plan.orphan.add(id);
  }
  if (plan.free.size === 0 && plan.orphan.size === 0) return out;
  // by 32-bit words (entries are 96-byte aligned): CT_PROTO and CT_STATE share the word at
  // CT_PROTO (proto, family, state, flags; little-endian), CT_FRONT is one
  const u32 = core.u32, { ctFlows, ctFlowsMax } = core.map;
  const PF = (ctFlows + L.CT_PROTO) >> 2, FRONT = (ctFlows + L.CT_FRONT) >> 2, STEP = L.CT_SIZE >> 2;
  const UDP_BYTE = 17, STATE_SHIFT = (L.CT_STATE - L.CT_PROTO) * 8;
  // the last frontend's verdict (0 none, 1 free, 2 orphan): busy frontends hold runs of entries
  let lastFront = -1, last = 0;
  for (let f = 1; f <= ctFlowsMax; f++) {
    const w = u32[PF + f * STEP];
    if ((w & 0xff) !== UDP_BYTE || ((w >>> STATE_SHIFT) & 0xff) === L.CTS_NONE) continue;
    const front = u32[FRONT + f * STEP];
    if (front !== lastFront) { lastFront = front; last = plan.free.has(front) ? 1 : plan.orphan.has(front) ? 2 : 0; }
    if (last === 1) { core.freeFlow(f); out.freed++; }
    else if (last === 2) { u32[FRONT + f * STEP] = 0; out.orphaned++; }
  }
  return out;
}
