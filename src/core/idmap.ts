// A Map<number, T> for small dense ids (frontend and backend ids: 1, 2, 3, … reused when freed).
//
// The compiler's Ir holds ~110k entries at 10k services × 10 endpoints. A V8 Map spends a hash,
// a probe and an ordered-table slot per set (and rehashes as it grows); indexing an array by the
// id costs one store. The price is that memory follows the highest id, not the count — the same
// bound the core's own tables already have (they are sized by the high-water id).
//
// It implements the whole Map<number, T> interface, so code written against Map (the table writer,
// the reference model, workers patching an Ir) takes either. Iteration is in ascending id order
// (a Map iterates in insertion order): deterministic, and what listings sort by anyway.

/** Largest id accepted: ids index the core's u32-addressed tables; beyond this is a caller bug. */
const MAX_ID = 0x7fffffff;

export class IdMap<T> implements Map<number, T> {
  private items: Array<T | undefined> = [undefined];
  private count = 0;

  get size(): number { return this.count; }
  get [Symbol.toStringTag](): string { return 'IdMap'; }

  get(id: number): T | undefined { return id >= 0 && id < this.items.length ? this.items[id] : undefined; }
  has(id: number): boolean { return this.get(id) !== undefined; }

  set(id: number, value: T): this {
    if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new RangeError(`IdMap: id ${id} is not an integer in 0..${MAX_ID}`);
    if (value === undefined) throw new TypeError('IdMap: undefined is not a storable value (it marks a free id)');
    const items = this.items;
    // grow by appending, never by writing past the end: a far write would turn the array's
    // backing store into a dictionary
    while (items.length <= id) items.push(undefined);
    if (items[id] === undefined) this.count++;
    items[id] = value;
    return this;
  }

  delete(id: number): boolean {
    if (this.get(id) === undefined) return false;
    this.items[id] = undefined;
    this.count--;
    return true;
  }

  clear(): void { this.items = [undefined]; this.count = 0; }

  forEach(fn: (value: T, id: number, map: Map<number, T>) => void, thisArg?: unknown): void {
    const items = this.items;
    for (let i = 0; i < items.length; i++) { const v = items[i]; if (v !== undefined) fn.call(thisArg, v, i, this); }
  }

  *entries(): IterableIterator<[number, T]> {
    const items = this.items;
    for (let i = 0; i < items.length; i++) { const v = items[i]; if (v !== undefined) yield [i, v]; }
  }
  *keys(): IterableIterator<number> {
    const items = this.items;
    for (let i = 0; i < items.length; i++) if (items[i] !== undefined) yield i;
  }
  *values(): IterableIterator<T> {
    const items = this.items;
    for (let i = 0; i < items.length; i++) { const v = items[i]; if (v !== undefined) yield v; }
  }
  [Symbol.iterator](): IterableIterator<[number, T]> { return this.entries(); }
}

/** A set of ids as a bitmap: the table writer's record of which backend ids it wrote (100k at
 * 10k services × 10 endpoints). A Set<number> of that size was ~30 ms to build on every regrow;
 * this is 12.5 KB and one pass. Memory follows the highest id, like IdMap. */
export class IdSet {
  private bits = new Uint32Array(64);
  private count = 0;

  get size(): number { return this.count; }

  has(id: number): boolean { const w = id >>> 5; return w < this.bits.length && (this.bits[w] & (1 << (id & 31))) !== 0; }

  add(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new RangeError(`IdSet: id ${id} is not an integer in 0..${MAX_ID}`);
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
