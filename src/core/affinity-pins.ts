// sessionAffinity pins that no longer hold: voided when a table apply rewrites or removes the
// frontend they are keyed by (docs/core.md "Affinity table", "Stale pins").
//
// kube-proxy's service chain consults the affinity set of each endpoint OF THAT CHAIN only
// (pkg/proxy/nftables/proxier.go writeServiceToEndpointRules: one `ip saddr @affinity-<ep> goto
// <ep chain>` rule per endpoint of the cluster or local list), so a pin on an endpoint the list no
// longer holds is never consulted. In the core a backend id is shared by a Service port's
// frontends whose sets differ (ClusterIP vs its internalTrafficPolicy Local set, the
// externalTrafficPolicy Local frontends), so the backend's state cannot tell; checking membership
// in the Maglev table per new flow would cost O(table) (tens of thousands of slots for a big
// Service). Instead the pins are checked here, off the packet path, when a set can have changed:
// an apply that upserts a frontend with FEF_AFFINITY.
//
// kube-proxy also deletes the affinity sets of a Service port that no longer has ClientIP affinity
// (syncProxyRules: sets outside activeAffinitySets are deleted at once), so turning affinity off
// and on again, or deleting a Service and creating it again, starts without pins. The compiler
// hands freed ids out again (first in, first out) and a re-created Service often gets its old
// frontend and backend ids back: entries keyed by a frontend that had FEF_AFFINITY before the
// apply and has not after it (removed, or upserted without it) are voided too, whatever their
// backend (pinFronts reads that from the table set in force, before the apply).
//
// A voided entry keeps its slot (client, front, hash, last seen) with AFF_BACKEND = 0: the core's
// lookup treats a match with backend 0 as unusable and overwrites it in place, and a non-empty slot
// keeps the probe chains of the other clients intact (an emptied slot would end their lookups
// early). Invariant this keeps: a live entry's backend is in its key frontend's set, and its key
// frontend has FEF_AFFINITY, which is what the reference model checks on every generation
// (src/reference/model.ts setIr).
//
// Cost: O(upserted and removed frontends) to see whether any has or had affinity (for each one
// without it now, its entry in the table set in force: a byte, and a flags word when the id is
// in use; ~0.3 ms for 30k upserted frontends on a loaded 2-core VM, ~0.2 ms of it the scan of the
// upserts the pass needs anyway); when one has, one pass over the affinity table (AFF_SLOTS entries, 16384 by default) with
// a Set lookup per entry of such a frontend, plus, for each upserted affinity frontend that has
// entries, a Set of its backend ids: measured on a loaded 2-core VM: 16384 slots all holding
// entries, ~50 us when none is the upserted frontend's, ~140 us when all are; 262144 slots (60k
// entries of it) ~2 ms. Nothing on the packet path.
import * as L from '../../assembly/layout.js';
import type { Ir } from '../ir/ir.js';
import type { IrDiff } from '../ir/diff.js';

/** The memory an affinity table and the table sets live in (a Core): little-endian as linear
 * memory. */
export interface AffinityTableView {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly dv: DataView;
  readonly map: { readonly cfg: number; readonly tableSets: readonly [number, number]; readonly aff: number; readonly affSlots: number };
}

const FRONT_WORD = L.AFF_FRONT >> 2, BACKEND_WORD = L.AFF_BACKEND >> 2, ENTRY_WORDS = L.AFF_SIZE >> 2;

/** The frontends whose pins an apply of `diff` may leave stale: those it upserts with
 * FEF_AFFINITY (their entries are checked against the new set), and those it removes or upserts
 * without FEF_AFFINITY that have it in the table set in force (every entry of theirs goes). Call
 * before the apply: it reads the set the core reads until the apply's flip. null when none. */
export function pinFronts(core: AffinityTableView, diff: Pick<IrDiff, 'frontendsUpsert' | 'frontendsRemove'>): Set<number> | null {
  const u8 = core.u8, dv = core.dv, set = core.map.tableSets[dv.getUint32(core.map.cfg + L.CFG_GEN, true) & 1];
  const front = dv.getUint32(set + L.TSH_FRONT_OFF, true), frontMax = dv.getUint32(set + L.TSH_FRONT_MAX, true);
  let out: Set<number> | null = null;
  // (TSH_FRONT_MAX is the set's capacity: 0 only before the first apply)
  const had = frontMax === 0 ? null : (id: number): void => {
    const fe = front + id * L.FE_SIZE;
    if (id >= 1 && id <= frontMax && u8[fe + L.FE_FAMILY] !== 0 && (dv.getUint32(fe + L.FE_FLAGS, true) & L.FEF_AFFINITY)) (out ??= new Set()).add(id);
  };
  diff.frontendsUpsert.forEach((f) => {
    if (f.flags & L.FEF_AFFINITY) (out ??= new Set()).add(f.id);
    else if (had !== null) had(f.id);
  });
  if (had !== null) diff.frontendsRemove.forEach((id) => had(id));
  return out;
}

/** Voids (AFF_BACKEND = 0) the entries keyed by a frontend of `fronts` (pinFronts, before the
 * apply) whose backend is not in that frontend's set in `next` (the Ir just applied) — every
 * entry of one without FEF_AFFINITY in `next`, or gone. Returns how many. */
export function voidStalePins(core: AffinityTableView, fronts: ReadonlySet<number> | null, next: Ir): number {
  if (fronts === null) return 0;
  const u32 = core.u32, { aff, affSlots } = core.map;
  const sets = new Map<number, Set<number> | null>();
  // null: every entry of it goes (a frontend without affinity now, or gone)
  const setOf = (front: number): Set<number> | null => {
    let set = sets.get(front);
    if (set === undefined) {
      const f = next.frontends.get(front);
      set = f && (f.flags & L.FEF_AFFINITY) ? new Set(f.backends) : null;
      sets.set(front, set);
    }
    return set;
  };
  // the last entry's frontend and its answer (undefined: not in `fronts`; null: every entry
  // goes), kept apart: the slots hold one busy Service's entries many times over
  let lastFront = 0, lastSet: Set<number> | null | undefined;
  let voided = 0;
  for (let w = aff >> 2, end = w + affSlots * ENTRY_WORDS; w < end; w += ENTRY_WORDS) {
    const front = u32[w + FRONT_WORD];
    if (front === 0) continue;
    if (front !== lastFront) { lastFront = front; lastSet = fronts.has(front) ? setOf(front) : undefined; }
    if (lastSet === undefined) continue;
    const bid = u32[w + BACKEND_WORD];
    if (bid !== 0 && (lastSet === null || !lastSet.has(bid))) { u32[w + BACKEND_WORD] = 0; voided++; }
  }
  return voided;
}
