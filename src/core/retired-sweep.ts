// Ageing the retired set's filter (assembly/steer.ts: removed frontend addresses past the newest
// STEER_RETIRED_MAX, one bit an address) across the workers sharing one interface. A bit may be
// cleared once no worker holds a flow to any address behind it: a client's frame to a retired
// address lands on any worker, and the flow it must meet is on its client's worker, so a worker
// can clear a bit only on every worker's word.
//
// The rule (src/core/retired-fronts.ts runs it): every STEER_RETIRED_SWEEP_EVERY addresses the
// applies retire, a round begins; each worker notes the filter bits it sets from then on, scans
// its flow table (between batches, at that apply or later) and publishes here the filter bits of
// every flow's frontend address (whatever it is), with the round's number. The rounds begin at
// the same apply in every worker (they count the same applies' retirements), so once all have
// published round r, a worker keeps of the bits it had set before round r began only those some
// worker's flow still needs, and all it set since. Why that keeps every live flow: a flow alive
// now was either alive at its worker's scan (its bit is published: the table does not move an
// entry) or created since — by a frontend at its address, at an apply no earlier than the round's
// beginning, so the removal that made the address retired again came later and set its bit anew
// in every worker after the round began (or left the address in the exact set). A slot
// overwritten by a later round is no less right (a later scan, at a later apply); each 32-bit word
// is written whole, so a reader sees each word of one scan or another.
//
// Cost: a scan reads each flow entry's state and frontend address (O(the table's capacity), on the
// apply that starts the round: 0.2–0.4 ms for 100k entries, 6–15 ms for a million — a table of
// 96 MB read once — load 8); the shared block is 8 KiB a worker.
import * as L from '../../assembly/layout.js';

/** Filter words (32 bits each). */
export const FILTER_WORDS = L.STEER_RETIRED_FILTER_BITS >>> 5;
const SHIFT = 32 - Math.log2(L.STEER_RETIRED_FILTER_BITS);
/** Int32 words before the bitmaps: a round number per worker, each on a cache line of its own. */
const LINE = 16;

/** The block the workers share: for each worker its last published round and its bitmap. */
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

  /** This worker's scan of `round`: its flows' bits. */
  publish(round: number, bits: Uint32Array): void {
    const at = this.workers * LINE + this.self * FILTER_WORDS;
    for (let k = 0; k < FILTER_WORDS; k++) this.words[at + k] = bits[k]! | 0;
    Atomics.store(this.words, this.self * LINE, round);   // after the bits: a reader that sees the round sees them
  }

  /** Whether every worker has published `round` (or a later one). */
  complete(round: number): boolean {
    for (let w = 0; w < this.workers; w++) if (((Atomics.load(this.words, w * LINE) - round) | 0) < 0) return false;
    return true;
  }

  /** into &= (every worker's bits, OR'd); call after complete(). */
  keepNeeded(into: Uint32Array): void {
    const base = this.workers * LINE, words = this.words;
    for (let k = 0; k < FILTER_WORDS; k++) {
      let any = 0;
      for (let w = 0; w < this.workers; w++) any |= words[base + w * FILTER_WORDS + k]!;
      into[k] = into[k]! & any;
    }
  }
}
