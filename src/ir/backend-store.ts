// A forwarding worker's backends: the column batches it received (backend-columns.ts) plus the
// backends that came one by one as objects, as one Map<number, IrBackend>.
//
//   id ─┬─ where[id]  0: none, -1: objects.get(id), k > 0: row row[id] of batches[k - 1]
//       └─ row[id]
//
// Why: a full sync's 100k backends as objects cost the worker ~100 ms to build and ~200 ms of
// GC (each survives: scavenged, promoted) plus the fresh heap's page faults; kept as received
// they are a few large arrays and strings. A backend is built as an object when asked for (get,
// the iterators: traces, listings, a flow restore): slower per call, rare. A batch is released
// when none of its rows is current any more (an endpoint change replaces one row by an object).
import type { IrBackend, IrRecords } from './ir.js';
import type { IrList } from './list.js';
import { checkId } from './id-map.js';
import { BackendColumnList } from './backend-columns.js';

const OBJECT = -1;

/** Every backend of a BackendStore: each batch with the rows of it that are current, in ascending
 * row order, and the backends held as objects (in ascending id order). */
export interface BackendParts {
  batches: Array<{ list: BackendColumnList; rows: Uint32Array }>;
  objects: IrBackend[];
}

export class BackendStore implements IrRecords<IrBackend> {
  private where = new Int32Array(64);
  private row = new Uint32Array(64);
  private readonly objects = new Map<number, IrBackend>();
  private batches: Array<BackendColumnList | null> = [];
  private live: number[] = [];
  private count = 0;

  get size(): number { return this.count; }
  get [Symbol.toStringTag](): string { return 'BackendStore'; }

  private room(id: number): void {
    checkId('BackendStore', id);
    if (id < this.where.length) return;
    let n = this.where.length;
    while (n <= id) n *= 2;
    const w = new Int32Array(n); w.set(this.where); this.where = w;
    const r = new Uint32Array(n); r.set(this.row); this.row = r;
  }

  /** Forgets what id holds now (a row of a batch or an object); returns whether it held one. */
  private drop(id: number): boolean {
    const w = id < this.where.length ? this.where[id] : 0;
    if (w === 0) return false;
    if (w === OBJECT) this.objects.delete(id);
    else if (--this.live[w - 1] === 0) this.batches[w - 1] = null; // every row replaced: release the batch
    this.where[id] = 0;
    this.count--;
    return true;
  }

  has(id: number): boolean { return id >= 0 && id < this.where.length && this.where[id] !== 0; }

  get(id: number): IrBackend | undefined {
    const w = id >= 0 && id < this.where.length ? this.where[id] : 0;
    if (w === 0) return undefined;
    return w === OBJECT ? this.objects.get(id) : this.batches[w - 1]!.row(this.row[id]);
  }

  set(id: number, b: IrBackend): this {
    if (b === undefined) throw new TypeError('BackendStore: undefined is not a storable value');
    this.room(id);
    this.drop(id);
    this.where[id] = OBJECT; this.objects.set(id, b); this.count++;
    return this;
  }

  delete(id: number): boolean { return this.drop(id); }

  clear(): void {
    this.where = new Int32Array(64); this.row = new Uint32Array(64); this.objects.clear();
    this.batches = []; this.live = []; this.count = 0;
  }

  /** Every row of `list` becomes current (a later row of the same id wins, as set() in order
   * would). Returns the undo: it puts back what the ids held before. */
  setRows(list: BackendColumnList): () => void {
    const k = this.batches.length + 1, n = list.length;
    this.batches.push(list); this.live.push(0);
    // what each row's id held before: made at the first id that held something (a first sync's
    // ids hold nothing: no 800 KB of fresh pages at 100k rows); absent, every id held nothing
    let prevWhere: Int32Array | null = null, prevRow: Uint32Array | null = null;
    const prevObjects = new Map<number, IrBackend>();
    const released: Array<[number, BackendColumnList]> = [];
    const ids = list.c.id;
    this.room(list.maxId); // once: not one doubling copy after another while 100k ids arrive
    const where = this.where, row = this.row; // (not reallocated below: room() was made)
    for (let i = 0; i < n; i++) {
      const id = ids[i], w = where[id];
      if (w !== 0) { // (a first sync's ids hold nothing: no drop())
        if (prevWhere === null || prevRow === null) { prevWhere = new Int32Array(n); prevRow = new Uint32Array(n); }
        prevWhere[i] = w; prevRow[i] = row[id];
        if (w === OBJECT && !prevObjects.has(id)) prevObjects.set(id, this.objects.get(id)!);
        if (w > 0 && w !== k && this.live[w - 1] === 1) released.push([w - 1, this.batches[w - 1]!]); // drop() is about to release it
        this.drop(id);
      }
      where[id] = k; row[id] = i;
    }
    // every row counted at once (an id listed twice dropped its first row above, below 0 on the way)
    this.live[k - 1] += n; this.count += n;
    this.batches[k - 1] = n > 0 ? list : null;
    return () => {
      for (const [b, l] of released) this.batches[b] = l;
      for (let i = n - 1; i >= 0; i--) { // in reverse: a repeated id ends with what it held first
        const id = list.idAt(i);
        this.drop(id);
        const w = prevWhere === null ? 0 : prevWhere[i];
        if (w === 0) continue;
        this.where[id] = w; this.count++;
        if (w === OBJECT) this.objects.set(id, prevObjects.get(id)!);
        else { this.row[id] = prevRow![i]; this.live[w - 1]++; }
      }
    };
  }

  /** The service of backend `id` (which exists), without building the backend. */
  serviceOf(id: number): string {
    const w = this.where[id];
    if (w === OBJECT) return this.objects.get(id)!.service;
    const c = this.batches[w - 1]!.c;
    return c.ownerService[c.owner[this.row[id]]];
  }

  /** The ids in ascending order, as an array. */
  idArray(): number[] {
    const out = new Array<number>(this.count), where = this.where;
    let n = 0;
    for (let id = 1; id < where.length; id++) if (where[id] !== 0) out[n++] = id;
    return out;
  }

  /** Every current backend by where it is kept (BackendParts): a regrow's rewrite of every
   * backend reads the batches' columns, without an object per row. */
  columnParts(): BackendParts {
    const where = this.where, counts = new Uint32Array(this.batches.length);
    for (let id = 1; id < where.length; id++) if (where[id] > 0) counts[where[id] - 1]++;
    const rows = Array.from(counts, (n) => new Uint32Array(n));
    const fill = new Uint32Array(this.batches.length);
    const objects: IrBackend[] = [];
    for (let id = 1; id < where.length; id++) {
      const w = where[id];
      if (w > 0) rows[w - 1][fill[w - 1]++] = this.row[id];
      else if (w === OBJECT) objects.push(this.objects.get(id)!);
    }
    const batches: BackendParts['batches'] = [];
    for (let k = 0; k < rows.length; k++) {
      if (rows[k].length === 0) continue;
      batches.push({ list: this.batches[k]!, rows: rows[k].sort() });
    }
    return { batches, objects };
  }

  /** Backends `ids` as a list read on demand (a regrow's rewrite of every backend). */
  rows(ids: number[] | number): IrList<IrBackend> {
    const list = typeof ids === 'number' ? Array.from({ length: ids }, (_, i) => i + 1) : ids;
    const store = this;
    return {
      length: list.length,
      forEach(fn: (b: IrBackend) => void): void { for (const id of list) fn(store.get(id)!); },
      slice(start?: number, end?: number): IrBackend[] { return list.slice(start, end).map((id) => store.get(id)!); },
      [Symbol.iterator](): Iterator<IrBackend> { return list.map((id) => store.get(id)!)[Symbol.iterator](); },
    };
  }

  forEach(fn: (value: IrBackend, id: number, map: Map<number, IrBackend>) => void, thisArg?: unknown): void {
    for (const id of this.idArray()) fn.call(thisArg, this.get(id)!, id, this);
  }
  *keys(): IterableIterator<number> { yield* this.idArray(); }
  *values(): IterableIterator<IrBackend> { for (const id of this.idArray()) yield this.get(id)!; }
  *entries(): IterableIterator<[number, IrBackend]> { for (const id of this.idArray()) yield [id, this.get(id)!]; }
  [Symbol.iterator](): IterableIterator<[number, IrBackend]> { return this.entries(); }
}
