// Stable id allocation. An id stays with what it names (a service port's frontend address, a
// service port's endpoint) for as long as that exists, so conntrack entries and counters keep
// meaning the same thing across generations. The allocator only hands out numbers; which number
// belongs to what is kept per service by the compiler (it looks the previous ids up in the
// service's previous output), so a full compile of 100k backends builds no global key→id map.
//
// Freed ids are reused first-in-first-out: the id freed longest ago comes back first, so a removed
// backend's id names something else as late as possible. A flow never relies on that: the core
// compares the flow's address and port with what its id names in force (assembly/stale.ts). A
// flow whose backend left keeps its address, forwarded by the route to it: an open TCP/SCTP one.
// A new SYN, or a UDP flow, is decided again (docs/core.md, "Original-direction hit").
/** Undo log of a transaction; null when the transaction cannot need one (it started from empty). */
export type Undo = Array<() => void> | null;

export class IdAllocator {
  private free: number[] = [];
  private head = 0;
  private next = 1;
  private live = 0;

  /** Ids currently handed out. */
  get size(): number { return this.live; }
  /** Highest id ever handed out (table capacity needed). */
  get highWater(): number { return this.next - 1; }

  /** A free id. Every state change is undoable via `undo`. */
  allocate(undo: Undo): number {
    let id: number;
    if (this.head < this.free.length) { id = this.free[this.head++]; undo?.push(() => { this.head--; this.live--; }); }
    else { id = this.next++; undo?.push(() => { this.next--; this.live--; }); }
    this.live++;
    return id;
  }

  /** Returns `id` to the pool. The caller guarantees it was allocated and not yet released. */
  release(id: number, undo: Undo): void {
    this.free.push(id);
    this.live--;
    undo?.push(() => { this.free.pop(); this.live++; });
  }

  /** Drops the consumed prefix of the free queue. Only call outside a transaction (undo closures
   * remember positions in it). */
  compact(): void {
    if (this.head > 1024 && this.head * 2 > this.free.length) { this.free = this.free.slice(this.head); this.head = 0; }
  }
}
