// Zeroed typed arrays carved out of shared buffers: the compiler's bulk memory on a full compile
// (Maglev tables, the backend table's typed columns).
//
// One ArrayBuffer per table costs a backing store allocation and external-memory GC pressure
// each, at 10k Maglev tables most of a full compile. A big compile's slab is also marked
// MADV_HUGEPAGE (src/core/hugepages.ts): its ~4 MB at 10k services x 10 endpoints fault in as
// two huge pages instead of ~1,000 small ones. Only the compiler and the table writer read these
// arrays, so the packet path is not affected (unlike the table sets, see docs/running.md). The price: a slab stays alive while any array in it does; the backend
// columns live as long as the table, so a full compile's slab is kept, tables of services
// replaced later included — bounded by that compile's size.
import { adviseHugePages } from '../core/hugepages.js';

/** Hands out zeroed typed arrays of `slots` entries of 1, 2 or 4 bytes. */
export type SlabAllocator = (slots: number, bytesPerSlot: 1 | 2 | 4) => Uint8Array | Uint16Array | Uint32Array;

/** A typed array of `slots` entries of `width` bytes, in `buf` at byte `at` or in a buffer of its own. */
export function typedArray(slots: number, width: 1 | 2 | 4, buf?: ArrayBufferLike, at = 0): Uint8Array | Uint16Array | Uint32Array {
  if (!buf) return width === 1 ? new Uint8Array(slots) : width === 2 ? new Uint16Array(slots) : new Uint32Array(slots);
  return width === 1 ? new Uint8Array(buf, at, slots) : width === 2 ? new Uint16Array(buf, at, slots) : new Uint32Array(buf, at, slots);
}

/** Huge pages are asked for from this slab size up (a smaller buffer holds at most one). */
const HUGE_SLAB_MIN = 4 << 20;

/** Carves zeroed runs out of `slabBytes` buffers, by offset: carve() answers an element offset
 * into `view` (the whole current buffer at the run's width), so a run costs no view object — the
 * compiler keeps 10k Maglev tables and id lists this way. A run larger than a quarter slab gets a
 * buffer of its own (offset 0). `shared`: the buffers are SharedArrayBuffers (another thread fills
 * runs in place). */
export class Slab {
  private buf: ArrayBufferLike | null = null;
  private used = 0;
  private v1: Uint8Array | null = null;
  private v2: Uint16Array | null = null;
  private v4: Uint32Array | null = null;
  /** What the last carve()'s offset indexes. */
  view: Uint8Array | Uint16Array | Uint32Array = new Uint8Array(0);
  constructor(readonly slabBytes = 1 << 20, readonly shared = false) {}
  /** The buffer runs are carved from now (null before the first carve). */
  get buffer(): ArrayBufferLike | null { return this.buf; }

  carve(slots: number, width: 1 | 2 | 4): number {
    const bytes = slots * width;
    if (bytes > this.slabBytes >> 2) { this.view = typedArray(slots, width); return 0; }
    this.used = (this.used + width - 1) & ~(width - 1); // runs are aligned to their element size
    if (!this.buf || this.used + bytes > this.slabBytes) {
      this.buf = this.shared ? new SharedArrayBuffer(this.slabBytes) : new ArrayBuffer(this.slabBytes);
      if (this.slabBytes >= HUGE_SLAB_MIN) adviseHugePages(this.buf);
      this.used = 0; this.v1 = null; this.v2 = null; this.v4 = null;
    }
    const at = this.used;
    this.used += bytes;
    const buf = this.buf;
    this.view = width === 1 ? (this.v1 ??= new Uint8Array(buf)) : width === 2 ? (this.v2 ??= new Uint16Array(buf)) : (this.v4 ??= new Uint32Array(buf));
    return at / width;
  }

  /** carve() as a typed array of its own (a view object: for the few long arrays, e.g. columns). */
  readonly alloc: SlabAllocator = (slots, width) => {
    const off = this.carve(slots, width), v = this.view;
    return off === 0 && v.length === slots ? v : typedArray(slots, width, v.buffer, v.byteOffset + off * width);
  };
}

/** A SlabAllocator over a new Slab. */
export function slabAllocator(slabBytes = 1 << 20, shared = false): SlabAllocator { return new Slab(slabBytes, shared).alloc; }
