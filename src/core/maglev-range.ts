// A frontend's Maglev range in the table sets' Maglev words (assembly/layout.ts, "Maglev range"):
// its slots, each an index into its backend list, as wide as the list's length needs, in whole
// words; then the list (u32 ids) with room for a power of two of them, so that a change of the
// backend count alone keeps the range's size (the writer rewrites it in place). The table writer
// places and writes ranges; the core reads a slot and its list entry.
import * as L from '../../assembly/layout.js';

/** Bytes of one Maglev slot of a frontend with `backends` backends. */
export function maglevSlotBytes(backends: number): 1 | 2 | 4 {
  return backends <= L.MAGLEV_SLOT_U8_MAX ? 1 : backends <= L.MAGLEV_SLOT_U16_MAX ? 2 : 4;
}

/** Words the slots of a range take (where its backend list starts). */
export function maglevSlotWords(slots: number, backends: number): number {
  return Math.ceil((slots * maglevSlotBytes(backends)) / 4);
}

/** Words a range keeps for a list of `backends` ids: the next power of two, at least 4. */
export function maglevListRoom(backends: number): number {
  let room = 4;
  while (room < backends) room *= 2;
  return room;
}

/** Words of a frontend's Maglev range with `slots` slots over `backends` backends (0 without slots:
 * a frontend without endpoints has no range). */
export function maglevRangeWords(slots: number, backends: number): number {
  return slots === 0 ? 0 : maglevSlotWords(slots, backends) + maglevListRoom(backends);
}
