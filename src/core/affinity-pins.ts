// sessionAffinity pins whose backend left the set their frontend selects from: voided when a table
// apply rewrites that frontend (docs/core.md "Affinity table", "Stale pins").
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
// A voided entry keeps its slot (client, front, hash, last seen) with AFF_BACKEND = 0: the core's
// lookup treats a match with backend 0 as unusable and overwrites it in place, and a non-empty slot
// keeps the probe chains of the other clients intact (an emptied slot would end their lookups
// early). Invariant this keeps: a live entry's backend is in its key frontend's set, which is what
// the reference model checks on every generation (src/reference/model.ts setIr).
//
// Cost: O(upserted frontends) to see whether any has affinity; when one has, one pass over the
// affinity table (AFF_SLOTS entries, 16384 by default) with a Set lookup per entry of such a
// frontend, plus, for each upserted affinity frontend that has entries, a Set of its backend ids:
// measured on a loaded 2-core VM: 16384 slots all holding entries, ~50 us when none is the
// upserted frontend's, ~130 us when all are; 262144 slots (60k entries of it) ~2 ms. Nothing on the
// packet path.
import * as L from '../../assembly/layout.js';
import type { Ir, IrFrontend } from '../ir/ir.js';
import type { IrList } from '../ir/list.js';

/** The memory an affinity table lives in (a Core): u32 words, little-endian as linear memory. */
export interface AffinityTableView {
  readonly u32: Uint32Array;
  readonly map: { readonly aff: number; readonly affSlots: number };
}

const FRONT_WORD = L.AFF_FRONT >> 2, BACKEND_WORD = L.AFF_BACKEND >> 2, ENTRY_WORDS = L.AFF_SIZE >> 2;

/** Voids (AFF_BACKEND = 0) the entries keyed by a frontend of `upserts` that has FEF_AFFINITY
 * whose backend is not in that frontend's set in `next` (the Ir just applied). Returns how many. */
export function voidStalePins(core: AffinityTableView, upserts: IrList<IrFrontend>, next: Ir): number {
  let touched: Set<number> | null = null;
  upserts.forEach((f) => { if (f.flags & L.FEF_AFFINITY) (touched ??= new Set()).add(f.id); });
  if (touched === null) return 0;
  const fronts: Set<number> = touched;
  const u32 = core.u32, { aff, affSlots } = core.map;
  const sets = new Map<number, Set<number> | null>();
  const setOf = (front: number): Set<number> | null => {
    let set = sets.get(front);
    if (set === undefined) {
      const f = next.frontends.get(front);
      set = f ? new Set(f.backends) : null;
      sets.set(front, set);
    }
    return set;
  };
  // the last entry's frontend and its answer (undefined: not upserted; null: gone), kept apart:
  // the slots hold one busy Service's entries many times over
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
