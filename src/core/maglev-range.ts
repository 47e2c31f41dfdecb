// A frontend's Maglev range in the table sets' Maglev words (assembly/layout.ts, "Maglev range"):
// its backend list (u32 ids), then its slots, each an index into that list, as wide as the list's
// length needs. The table writer places and writes ranges; the core reads a slot and its list entry.
import * as L from '../../assembly/layout.js';

/** Bytes of one Maglev slot of a frontend with `backends` backends. */
export function maglevSlotBytes(backends: number): 1 | 2 | 4 {
  return backends <= L.MAGLEV_SLOT_U8_MAX ? 1 : backends <= L.MAGLEV_SLOT_U16_MAX ? 2 : 4;
}

/** Words of a frontend's Maglev range with `slots` slots over `backends` backends (0 without slots:
 * a frontend without endpoints has no range). */
export function maglevRangeWords(slots: number, backends: number): number {
  return slots === 0 ? 0 : backends + Math.ceil((slots * maglevSlotBytes(backends)) / 4);
}
