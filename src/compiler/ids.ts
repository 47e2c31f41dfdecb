// Stable id allocation. An id stays with its key (e.g. "ns/web|http|ClusterIP|10.96.0.10") for as
// long as the key exists, so conntrack entries and counters keep meaning the same thing across
// generations. Freed ids are reused first-in-first-out: the id freed longest ago comes back first,
// which gives flows still pinned to a removed backend id the longest time to be re-selected
// before the id names something else.
/** Undo log of a transaction; null when the transaction cannot need one (it started from empty). */
export type Undo = Array<() => void> | null;

export class IdAllocator {
  private readonly byKey = new Map<string, number>();
  private readonly keyOf: Array<string | undefined> = []; // ids are dense: an array beats a Map
  private free: number[] = [];
  private head = 0;
  private next = 1;

  get(key: string): number | undefined { return this.byKey.get(key); }
  key(id: number): string | undefined { return this.keyOf[id]; }
  get size(): number { return this.byKey.size; }
  /** Highest id ever handed out (table capacity needed). */
  get highWater(): number { return this.next - 1; }

  /** The id of `key`, allocating one if it has none. Every state change is undoable via `undo`. */
  idFor(key: string, undo: Undo): number {
    const have = this.byKey.get(key);
    if (have !== undefined) return have;
    let id: number;
    if (this.head < this.free.length) { id = this.free[this.head++]; undo?.push(() => { this.head--; }); }
    else { id = this.next++; undo?.push(() => { this.next--; }); }
    this.byKey.set(key, id); this.keyOf[id] = key;
    undo?.push(() => { this.byKey.delete(key); this.keyOf[id] = undefined; });
    return id;
  }

  release(id: number, undo: Undo): void {
    const key = this.keyOf[id];
    if (key === undefined) return;
    this.byKey.delete(key); this.keyOf[id] = undefined;
    this.free.push(id);
    undo?.push(() => { this.free.pop(); this.byKey.set(key, id); this.keyOf[id] = key; });
  }

  /** Drops the consumed prefix of the free queue. Only call outside a transaction (undo closures
   * remember positions in it). */
  compact(): void {
    if (this.head > 1024 && this.head * 2 > this.free.length) { this.free = this.free.slice(this.head); this.head = 0; }
  }
}
