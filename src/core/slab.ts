// Zeroed typed arrays carved out of shared buffers: the compiler's bulk memory on a full compile
// (Maglev tables, the backend table's typed columns).
//
// One ArrayBuffer per table costs a backing store allocation and external-memory GC pressure
// each; at 10k Maglev tables that was most of a full compile. A big compile's slab is also marked
// MADV_HUGEPAGE (src/core/hugepages.ts): its ~4 MB at 10k services x 10 endpoints were ~1,000
// first-touch page faults on 4 KiB pages (~14 µs each on the CI VM). Only the compiler and the
// table writer read these arrays, so the packet path is not affected (unlike the table sets,
// see docs/running.md). The price: a slab stays alive while any array in it does; the backend
// columns live as long as the table, so a full compile's slab is kept, tables of services
// replaced later included — bounded by that compile's size.
import { adviseHugePages } from './hugepages.js';

/** Hands out zeroed typed arrays of `slots` entries of 1, 2 or 4 bytes. */
export type SlabAllocator = (slots: number, bytesPerSlot: 1 | 2 | 4) => Uint8Array | Uint16Array | Uint32Array;

/** A typed array of `slots` entries of `width` bytes, in `buf` at byte `at` or in a buffer of its own. */
export function typedArray(slots: number, width: 1 | 2 | 4, buf?: ArrayBufferLike, at = 0): Uint8Array | Uint16Array | Uint32Array {
  if (!buf) return width === 1 ? new Uint8Array(slots) : width === 2 ? new Uint16Array(slots) : new Uint32Array(slots);
  return width === 1 ? new Uint8Array(buf, at, slots) : width === 2 ? new Uint16Array(buf, at, slots) : new Uint32Array(buf, at, slots);
}

/** Huge pages are asked for from this slab size up (a smaller buffer holds at most one). */
const HUGE_SLAB_MIN = 4 << 20;

/** Carves arrays out of `slabBytes` buffers; an array larger than a quarter slab gets its own.
 * `shared`: the slabs are SharedArrayBuffers (another thread fills arrays in place). */
export function slabAllocator(slabBytes = 1 << 20, shared = false): SlabAllocator {
  let slab: ArrayBufferLike | null = null, used = 0;
  return (slots, width) => {
    const bytes = slots * width;
    if (bytes > slabBytes >> 2) return typedArray(slots, width);
    used = (used + width - 1) & ~(width - 1); // views must be aligned to their element size
    if (!slab || used + bytes > slabBytes) {
      slab = shared ? new SharedArrayBuffer(slabBytes) : new ArrayBuffer(slabBytes);
      if (slabBytes >= HUGE_SLAB_MIN) adviseHugePages(slab);
      used = 0;
    }
    const at = used;
    used += bytes;
    return typedArray(slots, width, slab, at);
  };
}
