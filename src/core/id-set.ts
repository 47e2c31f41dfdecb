// The table writer's record of which backend ids it wrote.
import { checkId } from '../ir/id-map.js';

/** A set of ids as a bitmap: the table writer's record of which backend ids it wrote (100k at
 * 10k services × 10 endpoints). A Set<number> of that size was ~30 ms to build on every regrow;
 * this is 12.5 KB and one pass. Memory follows the highest id, like IdMap. */
export class IdSet {
  private bits = new Uint32Array(64);
  private count = 0;

  get size(): number { return this.count; }

  /** The set of `ids`, the highest of which is `maxId` (the caller has it: a regrow's capacities
   * needed it; a second pass to find it was ~100k ids again), its bitmap allocated once for it.
   * Each id is checked as add() does, and against maxId (a RangeError above it). */
  static of(ids: ArrayLike<number>, maxId: number): IdSet {
    checkId('IdSet', maxId);
    const set = new IdSet();
    const bits = set.bits = new Uint32Array(Math.max(64, (maxId >>> 5) + 1)); // (no add() per id)
    let count = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      // (id >>> 0) === id: an integer in 0..2^32-1 (a fraction, a negative or NaN differs)
      if ((id >>> 0) !== id || id > maxId) throw new RangeError(`IdSet: id ${id} is not an integer in 0..${maxId}`);
      const w = id >>> 5, m = 1 << (id & 31);
      if ((bits[w] & m) === 0) { bits[w] |= m; count++; }
    }
    set.count = count;
    return set;
  }

  has(id: number): boolean { const w = id >>> 5; return w < this.bits.length && (this.bits[w] & (1 << (id & 31))) !== 0; }

  add(id: number): void {
    checkId('IdSet', id);
    const w = id >>> 5;
    if (w >= this.bits.length) { const b = new Uint32Array(Math.max(w + 1, this.bits.length * 2)); b.set(this.bits); this.bits = b; }
    const m = 1 << (id & 31);
    if ((this.bits[w] & m) === 0) { this.bits[w] |= m; this.count++; }
  }

  delete(id: number): boolean {
    if (!this.has(id)) return false;
    this.bits[id >>> 5] &= ~(1 << (id & 31));
    this.count--;
    return true;
  }

  /** The ids in ascending order. */
  forEach(fn: (id: number) => void): void {
    const bits = this.bits;
    for (let w = 0; w < bits.length; w++) {
      let x = bits[w];
      while (x !== 0) {
        const low = x & -x; // lowest set bit
        fn(w * 32 + 31 - Math.clz32(low));
        x ^= low;
      }
    }
  }
}
