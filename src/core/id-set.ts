// The table writer's record of which backend ids it wrote.
import { checkId } from '../ir/id-map.js';

/** A set of ids as a bitmap: the table writer's record of which backend ids it wrote (100k at
 * 10k services × 10 endpoints). A Set<number> of that size was ~30 ms to build on every regrow;
 * this is 12.5 KB and one pass. Memory follows the highest id, like IdMap. */
export class IdSet {
  private bits = new Uint32Array(64);
  private count = 0;

  get size(): number { return this.count; }

  /** The set of `ids` (each checked as add() does), its bitmap allocated once for the highest. */
  static of(ids: ArrayLike<number>): IdSet {
    let max = 0;
    for (let i = 0; i < ids.length; i++) { checkId('IdSet', ids[i]); if (ids[i] > max) max = ids[i]; }
    const set = new IdSet();
    set.bits = new Uint32Array(Math.max(64, (max >>> 5) + 1));
    const bits = set.bits; // (ids checked above, the bitmap sized for them: no add() per id)
    let count = 0;
    for (let i = 0; i < ids.length; i++) {
      const w = ids[i] >>> 5, m = 1 << (ids[i] & 31);
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
