// Ageing the retired set's filter (assembly/steer.ts: removed frontend addresses past the newest
// STEER_RETIRED_MAX, one bit an address) across the workers sharing one interface. A bit may be
// cleared once no worker holds a flow to any address behind it: a client's frame to a retired
// address lands on any worker, and the flow it must meet is on its client's worker, so a worker
// can clear a bit only on every worker's word.
//
// The rule (src/core/retired-fronts.ts runs it). Every worker counts the applies it has processed:
// every worker gets every apply, in one order, so the count names one point of the applies'
// sequence in all of them. Every STEER_RETIRED_SWEEP_EVERY addresses its applies retire, a worker
// begins a sweep at the apply it is processing (its mark, m): it keeps every filter bit set from
// that apply on, and asks here for every worker's scan from m on. A worker that sees a scan asked
// for from a point it has reached scans its flow table (between batches) and publishes here the
// filter bits of every flow's frontend address (whatever the address), with the count it was taken
// at. Once every worker's latest scan was taken at m or later, the sweeping worker keeps of the
// bits it had set before m only those some scan holds, and all it set since. Why that keeps every
// live flow: a flow alive now was either alive at its worker's scan (its bit is published: the
// table does not move an entry) or created since, at or after m — by a frontend at its address,
// so the removal that made the address retired again came later and set its bit anew after m (or
// left the address in the exact set). A slot overwritten by a later scan is no less right (taken
// later still); each 32-bit word is written whole, so a reader sees each word of one scan or
// another, each taken at m or later. (The count is the worker's own: a worker whose count ran
// ahead of the others' — an apply undone on some workers only — would let a sweep rely on a scan
// taken one apply early; the mark is taken before the apply's own additions to the filter, which
// absorbs one apply's difference.)
//
// Cost: a scan reads each flow entry's state and frontend address (O(the table's capacity),
// between two batches: 0.2–0.4 ms for 100k entries, 6–15 ms for a million — a table of 96 MB read
// once — load 8); a sweep reads the block's bitmaps and rewrites the filter; a worker that is not
// sweeping looks at the workers' asked counts once a batch. The block is 8 KiB a worker.
import * as L from '../../assembly/layout.js';

/** Filter words (32 bits each). */
export const FILTER_WORDS = L.STEER_RETIRED_FILTER_BITS >>> 5;
const SHIFT = 32 - Math.log2(L.STEER_RETIRED_FILTER_BITS);
/** Int32 words before the bitmaps: per worker, on a cache line of its own, [0] the apply count
 * its latest scan was taken at, [1] the count it asks every worker's scan from. */
const LINE = 16;

/** The block the workers share: for each worker its scan's count, the count it asks a scan from,
 * and its latest scan's bitmap. */
export function retiredSweepBuffer(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer((workers * LINE + workers * FILTER_WORDS) * 4);
}

/** assembly/steer.ts filterBit: the filter's bit of the 16-byte address at u32[w..w+4). */
export function filterBitAt(u32: Uint32Array, w: number): number {
  return Math.imul((u32[w]! ^ u32[w + 1]! ^ u32[w + 2]! ^ u32[w + 3]!) | 0, 0x85ebca6b | 0) >>> SHIFT;
}

export class RetiredSweep {
  private readonly words: Int32Array;
  readonly workers: number;

  constructor(buf: SharedArrayBuffer, readonly self: number) {
    this.words = new Int32Array(buf);
    this.workers = this.words.length / (LINE + FILTER_WORDS);
    if (!Number.isInteger(this.workers) || self < 0 || self >= this.workers) throw new RangeError(`retired sweep: worker ${self} of a block for ${this.workers}`);
  }

  /** This worker's scan, taken at apply count `at`: its flows' bits. */
  publish(at: number, bits: Uint32Array): void {
    const base = this.workers * LINE + this.self * FILTER_WORDS;
    for (let k = 0; k < FILTER_WORDS; k++) this.words[base + k] = bits[k]! | 0;
    Atomics.store(this.words, this.self * LINE, at);   // after the bits: a reader that sees the count sees them
  }

  /** Asks every worker for a scan taken at apply count `from` or later. */
  ask(from: number): void { Atomics.store(this.words, this.self * LINE + 1, from); }

  /** The latest count any worker asks a scan from. */
  asked(): number {
    let m = 0;
    for (let w = 0; w < this.workers; w++) { const a = Atomics.load(this.words, w * LINE + 1); if (a > m) m = a; }
    return m;
  }

  /** Whether every worker's latest scan was taken at `from` or later. */
  scannedFrom(from: number): boolean {
    for (let w = 0; w < this.workers; w++) if (Atomics.load(this.words, w * LINE) < from) return false;
    return true;
  }

  /** into &= (every worker's bits, OR'd); after scannedFrom(). */
  keepNeeded(into: Uint32Array): void {
    const base = this.workers * LINE, words = this.words;
    for (let k = 0; k < FILTER_WORDS; k++) {
      let any = 0;
      for (let w = 0; w < this.workers; w++) any |= words[base + w * FILTER_WORDS + k]!;
      into[k] = into[k]! & any;
    }
  }
}
