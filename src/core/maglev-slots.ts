// A frontend's Maglev slots as the table writer checks and writes them: the compiler's indexed
// tables (u8/u16/u32 indexes into the frontend's backend list) are checked against the list's
// length and widened into the core's u32 backend ids; id tables are checked for id 0.
//
// Why a loop per element type: a loop that reads Uint8Array, Uint16Array and Uint32Array tables
// (frontends of few and of many backends) is compiled for all three, and every element read goes
// through the type dispatch. One function per type sees one type only. At 10k services x 10
// endpoints (2.5M one-byte slots) the check went from ~5.5 to ~2.8 ms and the widening from ~12
// to ~4 ms (in isolation, warm, on the 2-core VM; the widening also reads the backend ids from a
// typed lookup table instead of the frontend's number[]).
import type { MaglevSlots } from '../ir/ir.js';

/** Whether every slot of an indexed table is below `n` (the frontend's backends). */
export function slotsBelow(t: MaglevSlots, n: number): boolean {
  if (t instanceof Uint8Array) return n >= 0x100 || below8(t, n);
  if (t instanceof Uint16Array) return n >= 0x10000 || below16(t, n);
  return below32(t, n);
}

function below8(t: Uint8Array, n: number): boolean {
  for (let i = 0; i < t.length; i++) if (t[i] >= n) return false;
  return true;
}
function below16(t: Uint16Array, n: number): boolean {
  for (let i = 0; i < t.length; i++) if (t[i] >= n) return false;
  return true;
}
function below32(t: Uint32Array, n: number): boolean {
  for (let i = 0; i < t.length; i++) if (t[i] >= n) return false;
  return true;
}

/** The first slot of an indexed table that is not below `n` (-1: none): for an error message. */
export function firstSlotNotBelow(t: MaglevSlots, n: number): number {
  for (let i = 0; i < t.length; i++) if (t[i] >= n) return i;
  return -1;
}

/** The backend ids, as a typed lookup table (grown when a frontend has more backends). */
let lut = new Uint32Array(256);

/** Writes indexed table `t` as backend ids `ids[t[i]]` into m32[at ..]. Slots are below
 * ids.length (checked by slotsBelow first). */
export function widenSlots(m32: Uint32Array, at: number, ids: ArrayLike<number>, t: MaglevSlots): void {
  if (ids.length > lut.length) lut = new Uint32Array(Math.max(ids.length, lut.length * 2));
  const l = lut;
  for (let k = 0; k < ids.length; k++) l[k] = ids[k];
  if (t instanceof Uint8Array) widen8(m32, at, l, t);
  else if (t instanceof Uint16Array) widen16(m32, at, l, t);
  else widen32(m32, at, l, t);
}

function widen8(m32: Uint32Array, at: number, l: Uint32Array, t: Uint8Array): void {
  for (let i = 0; i < t.length; i++) m32[at + i] = l[t[i]];
}
function widen16(m32: Uint32Array, at: number, l: Uint32Array, t: Uint16Array): void {
  for (let i = 0; i < t.length; i++) m32[at + i] = l[t[i]];
}
function widen32(m32: Uint32Array, at: number, l: Uint32Array, t: Uint32Array): void {
  for (let i = 0; i < t.length; i++) m32[at + i] = l[t[i]];
}
