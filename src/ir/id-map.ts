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
export const MAX_ID = 0x7fffffff;

/** Throws unless `id` is an integer in 0..MAX_ID (`who`: the container, named in the message). */
export function checkId(who: string, id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new RangeError(`${who}: id ${id} is not an integer in 0..${MAX_ID}`);
}

export class IdMap<T> implements Map<number, T> {
  private items: Array<T | undefined> = [undefined];
  private count = 0;

  get size(): number { return this.count; }
  get [Symbol.toStringTag](): string { return 'IdMap'; }

  get(id: number): T | undefined { return id >= 0 && id < this.items.length ? this.items[id] : undefined; }
  has(id: number): boolean { return this.get(id) !== undefined; }

  set(id: number, value: T): this {
    checkId('IdMap', id);
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
