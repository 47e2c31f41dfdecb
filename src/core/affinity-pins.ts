// sessionAffinity pins that no longer hold: voided when a table apply rewrites or removes the
// frontends of their Service port (docs/core.md "Affinity table", "Stale pins").
//
// The entries are a Service port's: keyed by its ClusterIP frontend of the family, whichever
// frontend selected (assembly/select.ts affinityKey: FE_CLUSTER_FRONT, through a ClusterPolicy
// frontend's with FEF_AFFINITY_SHARED). kube-proxy keeps one affinity set per endpoint while some
// chain of the port can reach the endpoint (pkg/proxy/nftables/proxier.go
// allLocallyReachableEndpoints: the cluster and local endpoints its chains use), and each chain
// consults the sets of its own endpoints only (writeServiceToEndpointRules). The core does the
// second per new flow (FEF_AFFINITY_IN_SET: the frontend's backend list); this file the first:
// an entry is voided when its backend is in no set of the frontends keyed like it — or every
// entry of a key that is not, now, an affinity frontend keyed by itself.
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
// early). Invariant this keeps: a live entry's key is an affinity frontend keyed by itself and
// its backend is in the set of some frontend keyed by it, which is what the reference model
// checks on every generation (src/reference/model.ts setIr).
//
// Cost: O(upserted and removed frontends) to see whether any has or had affinity (for each one,
// its entry in the table set in force: a byte, a flags word, and two FE_CLUSTER_FRONT words when
// it had affinity; ~0.3 ms for 30k upserted frontends on a loaded 2-core VM, most of it the scan
// of the upserts the pass needs anyway); when one has, two passes over the new set's frontend
// entries (TSH_FRONT_MAX of them; typed arrays, ~30 us for 8192 on a loaded 2-core VM), one over
// the affinity table (AFF_SLOTS entries, 16384 by default) with a Set lookup per entry of a
// checked key, plus, for each checked key that has entries, a Set of its frontends' backend ids:
// the affinity pass measured on a loaded 2-core VM: 16384 slots all holding entries, ~50 us when
// none is a checked key's, ~140 us when all are; 262144 slots (60k entries of it) ~2 ms. Nothing
// on the packet path.
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
// (module constants: a namespace property read per frontend entry doubled the pass)
const FE_WORDS = L.FE_SIZE >> 2, FE_FLAGS_WORD = L.FE_FLAGS >> 2, FE_CF_WORD = L.FE_CLUSTER_FRONT >> 2, FE_FAMILY = L.FE_FAMILY;
const FEF_AFFINITY = L.FEF_AFFINITY, FEF_AFFINITY_SHARED = L.FEF_AFFINITY_SHARED;

/** The table set in force: its frontend entries' offset and capacity (0 before the first apply). */
function frontEntries(core: AffinityTableView): { front: number; frontMax: number } {
  const dv = core.dv, set = core.map.tableSets[dv.getUint32(core.map.cfg + L.CFG_GEN, true) & 1];
  return { front: dv.getUint32(set + L.TSH_FRONT_OFF, true), frontMax: dv.getUint32(set + L.TSH_FRONT_MAX, true) };
}

/** The key (assembly/select.ts affinityKey) of frontend `id` in the entries at `front` (ids 1..
 * frontMax); the core's two reads: its FE_CLUSTER_FRONT, then that one's when it has
 * FEF_AFFINITY_SHARED. */
function keyIn(core: AffinityTableView, front: number, frontMax: number, id: number): number {
  const dv = core.dv;
  const k = dv.getUint32(front + id * L.FE_SIZE + L.FE_CLUSTER_FRONT, true);
  if (k === 0 || k > frontMax) return id;
  const kf = front + k * L.FE_SIZE, k2 = dv.getUint32(kf + L.FE_CLUSTER_FRONT, true);
  return (dv.getUint32(kf + L.FE_FLAGS, true) & L.FEF_AFFINITY_SHARED) && k2 !== 0 && k2 <= frontMax ? k2 : k;
}

/** The frontends an apply of `diff` touches for sessionAffinity: those it upserts with
 * FEF_AFFINITY, and those it removes or upserts that have FEF_AFFINITY in the table set in force
 * — with, for the latter, the key their entries were under (a port whose frontend left or changed
 * pins to what its other frontends select from). Call before the apply: it reads the set the core
 * reads until the apply's flip. null when none. */
export function pinFronts(core: AffinityTableView, diff: Pick<IrDiff, 'frontendsUpsert' | 'frontendsRemove'>): Set<number> | null {
  const u8 = core.u8, dv = core.dv, { front, frontMax } = frontEntries(core);
  let out: Set<number> | null = null;
  // (TSH_FRONT_MAX is the set's capacity: 0 only before the first apply)
  const had = frontMax === 0 ? null : (id: number): void => {
    const fe = front + id * L.FE_SIZE;
    if (id >= 1 && id <= frontMax && u8[fe + L.FE_FAMILY] !== 0 && (dv.getUint32(fe + L.FE_FLAGS, true) & L.FEF_AFFINITY)) {
      (out ??= new Set()).add(id);
      out.add(keyIn(core, front, frontMax, id));
    }
  };
  diff.frontendsUpsert.forEach((f) => {
    if (f.flags & L.FEF_AFFINITY) (out ??= new Set()).add(f.id);
    if (had !== null) had(f.id);
  });
  if (had !== null) diff.frontendsRemove.forEach((id) => had(id));
  return out;
}

/** Voids (AFF_BACKEND = 0) the entries whose backend no frontend of their port selects from now.
 * `touched` (pinFronts, before the apply) names the frontends the apply rewrote or removed; after
 * it (the set in force is `next`'s) one pass over the frontend entries finds the keys of every
 * affinity frontend that is touched or names a touched one, and each such key's frontends (its
 * port's). An entry keyed by one of those keys, or by a touched frontend, is voided when its
 * backend is in none of the key's frontends' sets in `next` (kube-proxy keeps an endpoint's
 * affinity set while some chain of the port lists it: allLocallyReachableEndpoints) — every
 * entry when the frontend it is keyed by has no FEF_AFFINITY now, is gone, or is not its own key.
 * Returns how many. */
export function voidStalePins(core: AffinityTableView, touched: ReadonlySet<number> | null, next: Ir): number {
  if (touched === null) return 0;
  const u32 = core.u32, u8 = core.u8, { aff, affSlots } = core.map, { front, frontMax } = frontEntries(core);
  // one pass over the frontend entries (u32 words: FE_SIZE and the region are word-aligned): each
  // affinity frontend's key (0: no affinity), and the keys to check — the touched frontends
  // themselves (entries keyed by them) and the key of each affinity frontend that is touched or
  // names a touched one (its port's pins)
  // (typed marks, not Set lookups: a lookup per frontend entry was most of the pass)
  const keyOf = new Uint32Array(frontMax + 1), mark = new Uint8Array(frontMax + 1), isKey = new Uint8Array(frontMax + 1);
  const keys = new Set<number>(touched);
  for (const id of touched) if (id <= frontMax) mark[id] = 1;
  const fw = front >> 2;
  for (let id = 1, w = fw + FE_WORDS; id <= frontMax; id++, w += FE_WORDS) {
    if ((u32[w + FE_FLAGS_WORD] & FEF_AFFINITY) === 0 || u8[(w << 2) + FE_FAMILY] === 0) continue;
    const cf = u32[w + FE_CF_WORD];
    let k = id;
    if (cf !== 0 && cf <= frontMax) {
      const kw = fw + cf * FE_WORDS, k2 = u32[kw + FE_CF_WORD];
      k = (u32[kw + FE_FLAGS_WORD] & FEF_AFFINITY_SHARED) !== 0 && k2 !== 0 && k2 <= frontMax ? k2 : cf;
    }
    keyOf[id] = k;
    if (mark[id] !== 0 || (cf <= frontMax && mark[cf] !== 0)) keys.add(k);
  }
  // each checked key's frontends: those keyed by it (null: every entry goes — a key that is not
  // an affinity frontend keyed by itself)
  const members = new Map<number, number[] | null>();
  for (const k of keys) {
    const own = k <= frontMax && keyOf[k] === k;
    members.set(k, own ? [] : null);
    if (own) isKey[k] = 1;
  }
  for (let id = 1; id <= frontMax; id++) {
    const k = keyOf[id];
    if (k !== 0 && isKey[k] !== 0) members.get(k)!.push(id);
  }
  // a key's pin set, built when an entry keyed by it is met (the Ir builds a frontend record per
  // get): the backends of its frontends
  const sets = new Map<number, Set<number> | null>();
  const setOf = (k: number): Set<number> | null | undefined => {
    let set = sets.get(k);
    if (set !== undefined) return set;
    const m = members.get(k);
    if (m === undefined) return undefined;
    set = m === null ? null : new Set<number>();
    if (m !== null) for (const id of m) {
      const bs = next.frontends.get(id)?.backends;
      if (bs) for (let i = 0; i < bs.length; i++) set!.add(bs[i]);
    }
    sets.set(k, set);
    return set;
  };
  // the last entry's frontend and its answer (undefined: not checked; null: every entry goes),
  // kept apart: the slots hold one busy Service's entries many times over
  let lastFront = 0, lastSet: Set<number> | null | undefined;
  let voided = 0;
  for (let w = aff >> 2, end = w + affSlots * ENTRY_WORDS; w < end; w += ENTRY_WORDS) {
    const f = u32[w + FRONT_WORD];
    if (f === 0) continue;
    if (f !== lastFront) { lastFront = f; lastSet = setOf(f); }
    if (lastSet === undefined) continue;
    const bid = u32[w + BACKEND_WORD];
    if (bid !== 0 && (lastSet === null || !lastSet.has(bid))) { u32[w + BACKEND_WORD] = 0; voided++; }
  }
  return voided;
}

/** Each affinity key's pin set in `ir` (what voidStalePins keeps): key (select.ts affinityKey) ->
 * the backends of the FEF_AFFINITY frontends keyed by it; a key that is not an affinity frontend
 * keyed by itself has none. For a restore, which re-places saved entries under the ids of `ir`
 * (one pass over its frontends, on first use). */
export function pinSetsOf(ir: Ir): Map<number, Set<number>> {
  const fronts = ir.frontends;
  const keyOf = (id: number, cf: number | undefined): number => affinityKeyIn(ir, id, cf);
  const out = new Map<number, Set<number>>();
  fronts.forEach((f) => {
    if (!(f.flags & L.FEF_AFFINITY)) return;
    const k = keyOf(f.id, f.clusterFront);
    let set = out.get(k);
    if (!set) out.set(k, set = new Set());
    for (let i = 0; i < f.backends.length; i++) set.add(f.backends[i]);
  });
  for (const k of [...out.keys()]) {
    const kf = fronts.get(k);
    if (!kf || !(kf.flags & L.FEF_AFFINITY) || keyOf(k, kf.clusterFront) !== k) out.delete(k);
  }
  return out;
}

/** The affinity key (select.ts affinityKey) of frontend `id` of `ir`, whose FE_CLUSTER_FRONT is
 * `cf` (undefined: look it up). */
export function affinityKeyIn(ir: Ir, id: number, cf = ir.frontends.get(id)?.clusterFront): number {
  if (!cf) return id;
  const kf = ir.frontends.get(cf), k2 = kf?.clusterFront ?? 0;
  return kf && (kf.flags & L.FEF_AFFINITY_SHARED) && k2 ? k2 : cf;
}
