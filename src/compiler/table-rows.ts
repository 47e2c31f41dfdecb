// A full compile's diff names every frontend and backend. Its lists read the compiler's column
// tables (backend-table.ts, frontend-table.ts) when they are read, instead of holding an object
// per record: at 10k services x 10 endpoints those would be 110k objects, more work than the
// compile. A list is valid while its table has not changed: the compiler's next change changes
// the tables, so a diff is applied (or copied) before the next change — a late read throws
// instead of listing the next state.
import type { IrList } from '../ir/list.js';
import type { WireColumnsSource } from '../ir/diff-wire.js';

/** The table a TableRows list reads. */
export interface RowTable<T> {
  /** Bumped by every change of the table. */
  readonly version: number;
  /** Record `id` as an object of its own (`id` exists). */
  get(id: number): T | undefined;
  /** Fills `out` with record `id` and returns it: a pass over many records allocates nothing. */
  load?(id: number, out: T): T;
}

export class TableRows<T> implements IrList<T> {
  private readonly version: number;
  private objects: T[] | null = null;

  /** Records `ids` of `table` — a list, or a count n meaning 1..n (no n-entry array). With
   * `cursor` and a table that can load(), forEach passes `cursor` refilled for each record;
   * otherwise the records are built once, on the first read, and kept. */
  constructor(private readonly table: RowTable<T>, private readonly ids: number[] | number, private readonly cursor?: T) {
    this.version = table.version;
  }

  get length(): number { return typeof this.ids === 'number' ? this.ids : this.ids.length; }

  forEach(fn: (item: T) => void): void {
    const load = this.table.load, cursor = this.cursor;
    if (this.objects !== null || load === undefined || cursor === undefined) {
      const all = this.all();
      for (let i = 0; i < all.length; i++) fn(all[i]);
      return;
    }
    this.checkFresh();
    const ids = this.ids, n = this.length;
    if (typeof ids === 'number') for (let id = 1; id <= n; id++) fn(load.call(this.table, id, cursor));
    else for (let i = 0; i < n; i++) fn(load.call(this.table, ids[i], cursor));
  }

  forEachId(fn: (id: number) => void): void {
    this.checkFresh();
    const ids = this.ids, n = this.length;
    if (typeof ids === 'number') for (let id = 1; id <= n; id++) fn(id);
    else for (let i = 0; i < n; i++) fn(ids[i]);
  }

  slice(start = 0, end = this.length): T[] {
    if (this.objects !== null) return this.objects.slice(start, end);
    this.checkFresh();
    const out: T[] = [], to = Math.min(end, this.length);
    for (let i = Math.max(0, start); i < to; i++) out.push(this.table.get(this.idAt(i))!);
    return out;
  }

  [Symbol.iterator](): Iterator<T> { return this.all()[Symbol.iterator](); }
  toJSON(): T[] { return this.slice(); }

  private idAt(i: number): number { return typeof this.ids === 'number' ? i + 1 : this.ids[i]; }

  private all(): T[] {
    if (this.objects === null) this.objects = this.slice();
    return this.objects;
  }

  protected checkFresh(): void {
    if (this.table.version !== this.version) throw new Error('internal: a full-compile diff was read after the compiler changed again; apply a diff before the next change');
  }
}

/** TableRows whose table also writes the rows into the diff's wire columns (diff-wire.ts):
 * encodeDiff takes them from there, without an object per record. */
export class WireRows<T, C> extends TableRows<T> implements WireColumnsSource<C> {
  constructor(table: RowTable<T>, private readonly rowIds: number[] | number, private readonly encode: (ids: number[] | number) => C, cursor?: T) {
    super(table, rowIds, cursor);
  }
  wireColumns(): C { this.checkFresh(); return this.encode(this.rowIds); }
}
