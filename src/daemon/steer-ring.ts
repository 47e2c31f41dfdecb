// Hand-off of frames between forwarding workers that share interfaces (PACKET_FANOUT): a frame the
// kernel gave to worker A but whose flow worker B owns (assembly/steer.ts decides) is copied into
// the ring from A to B and processed by B in its next batch. One single-producer single-consumer
// ring per ordered pair of workers, in a SharedArrayBuffer both threads map.
//
// Layout: a 128-byte header (Int32 words: [0] head = next slot the consumer reads, [16] tail = next
// slot the producer writes; on separate cache lines), then `slots` records of 8 + slotSize bytes
// (u16 length, u16 input port, u32 flags — RING_RECHECK: the consumer steers the frame once more —
// the frame). The producer writes frames, then publishes them all with
// one Atomics.store of the tail per burst; the consumer copies up to what it can take and publishes
// its head once. Bounded: a full ring refuses the frame (the caller counts it, steer_ring_full) —
// the same as a full socket buffer, never a wait. Cost: one copy per handed-off frame, made in
// 32-bit words between two Uint32Array views (no per-frame view or allocation: both ends are
// 4-byte aligned, and rounding the length up stays inside the slot).
const HEAD = 0;
const TAIL = 16;        // Int32 index: 64 bytes after HEAD
const HEADER = 128;
const META = 8;

/** A record's flag: the frame is handed over for its consumer to steer once more (steering.ts). */
export const RING_RECHECK = 1;

export function steerRingBuffer(slots: number, slotSize: number): SharedArrayBuffer {
  if (!Number.isInteger(slots) || slots < 2 || (slots & (slots - 1)) !== 0) throw new RangeError(`steer ring slots must be a power of two >= 2, got ${slots}`);
  return new SharedArrayBuffer(HEADER + slots * (META + slotSize));
}

export class SteerRing {
  private readonly idx: Int32Array;
  private readonly u32: Uint32Array;
  private readonly dv: DataView;
  private readonly slots: number;
  private readonly stride: number;
  private tail: number;        // producer side: written but maybe not yet published
  private published: number;
  private head: number;        // producer side: the consumer's head as last read

  constructor(buf: SharedArrayBuffer, readonly slotSize: number) {
    this.idx = new Int32Array(buf, 0, HEADER / 4);
    this.u32 = new Uint32Array(buf);
    this.dv = new DataView(buf);
    this.stride = META + slotSize;
    this.slots = (buf.byteLength - HEADER) / this.stride;
    this.tail = this.published = Atomics.load(this.idx, TAIL);
    this.head = Atomics.load(this.idx, HEAD);
  }

  /** Producer: copies `len` bytes at byte offset `off` (4-aligned) of `src` (arrived on port
   * `inPort`, record flags `flags`); false when full. */
  push(src: Uint32Array, off: number, len: number, inPort: number, flags = 0): boolean {
    if (len > this.slotSize) return false;
    // the consumer's head is read again only when the copy seen last says full: one shared-line
    // read per lap instead of one per frame (the line the consumer writes)
    if (((this.tail - this.head) | 0) >= this.slots) {
      this.head = Atomics.load(this.idx, HEAD);
      if (((this.tail - this.head) | 0) >= this.slots) return false;
    }
    const at = HEADER + (this.tail & (this.slots - 1)) * this.stride;
    this.dv.setUint16(at, len, true);
    this.dv.setUint16(at + 2, inPort, true);
    this.u32[(at + 4) >>> 2] = flags;
    copyWords(this.u32, (at + META) >>> 2, src, off >>> 2, (len + 3) >>> 2);
    this.tail = (this.tail + 1) | 0;
    return true;
  }

  /** Producer: makes the frames pushed since the last publish visible; true if there were any. */
  publish(): boolean {
    if (this.tail === this.published) return false;
    Atomics.store(this.idx, TAIL, this.tail);
    this.published = this.tail;
    return true;
  }

  /** Consumer: hands up to `max` frames to `take(words, wordOff, len, inPort, flags)` in order (the
   * frame is `len` bytes from word `wordOff` of `words`), then frees their slots; returns how many. */
  drain(max: number, take: (words: Uint32Array, wordOff: number, len: number, inPort: number, flags: number) => void): number {
    const head = Atomics.load(this.idx, HEAD);
    const avail = (Atomics.load(this.idx, TAIL) - head) | 0;
    const n = avail < max ? avail : max;
    for (let k = 0; k < n; k++) {
      const at = HEADER + ((head + k) & (this.slots - 1)) * this.stride;
      take(this.u32, (at + META) >>> 2, this.dv.getUint16(at, true), this.dv.getUint16(at + 2, true), this.u32[(at + 4) >>> 2]);
    }
    if (n > 0) Atomics.store(this.idx, HEAD, (head + n) | 0);
    return n;
  }

  /** Frames pushed and not yet taken by the consumer (published or not). */
  backlog(): number { return (this.tail - Atomics.load(this.idx, HEAD)) | 0; }

  /** Frames the ring holds. */
  get capacity(): number { return this.slots; }

  /** Consumer: whether frames are waiting. */
  pending(): boolean { return Atomics.load(this.idx, TAIL) !== Atomics.load(this.idx, HEAD); }
}

/** dst[d..d+n) = src[s..s+n), word by word (both views may be different buffers). */
export function copyWords(dst: Uint32Array, d: number, src: Uint32Array, s: number, n: number): void {
  for (let k = 0; k < n; k++) dst[d + k] = src[s + k];
}
