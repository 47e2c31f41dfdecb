// What a diff lists (upserted records, removed ids) is read through one small interface: a length,
// an in-order pass and slices. A plain array is one. The compiler's full compile hands out lists
// that read its column tables on demand instead (src/compiler/table-rows.ts): its diff names every
// record, and an object per record would cost more than the compile itself.

/** An ordered, read-only list of records or ids. */
export interface IrList<T> extends Iterable<T> {
  readonly length: number;
  /** fn(item) in order. A list read from columns may pass one reused object for every call:
   * fn copies what it keeps. */
  forEach(fn: (item: T) => void): void;
  /** Items start..end (default: to the end) as objects of their own, in an array. */
  slice(start?: number, end?: number): T[];
  /** fn(id) for every record in order, without reading the records (lists of records read from
   * columns: the table writer's passes that need only the ids). */
  forEachId?(fn: (id: number) => void): void;
}

/** The ids 1..n as a list, without an n-entry array (a full compile's undo removes every id it
 * made; the list is read only on rollback). */
export class IdRange implements IrList<number> {
  constructor(readonly length: number) {}
  forEach(fn: (id: number) => void): void { for (let id = 1; id <= this.length; id++) fn(id); }
  slice(start = 0, end = this.length): number[] {
    const from = Math.max(0, start), to = Math.min(this.length, end), out: number[] = [];
    for (let i = from; i < to; i++) out.push(i + 1);
    return out;
  }
  *[Symbol.iterator](): Iterator<number> { for (let id = 1; id <= this.length; id++) yield id; }
  toJSON(): number[] { return this.slice(); }
}
