// The addresses a worker still has to resolve (backends without a next hop, configured pods
// without a MAC), probed round-robin: each round takes the next `max` entries after where the
// last round stopped and moves them to the back, so with N entries every one is asked for within
// ceil(N / max) rounds — however many of them never answer. (Taking the first `max` of a set
// every round starved everything after them as soon as `max` addresses were unresolvable.)
//
// A Map keeps insertion order, so "move to the back" is delete + set: O(max) per round, no
// per-round copy of the whole set.
export interface ProbeTarget {
  addr: string;
  /** Ports to ask on; undefined: every pod-facing port of the worker. */
  ports?: number[];
}

interface Entry { refs: number; ports?: number[] }

export class ProbeRing {
  private readonly q = new Map<string, Entry>();

  /** One more reason to resolve `addr` (a backend id, a configured pod). New addresses join at
   * the back; the ports of the first holder are kept. */
  hold(addr: string, ports?: number[]): void {
    const e = this.q.get(addr);
    if (e) { e.refs++; return; }
    this.q.set(addr, { refs: 1, ...(ports ? { ports } : {}) });
  }

  /** One reason fewer; the address leaves the ring when none is left. */
  release(addr: string): void {
    const e = this.q.get(addr);
    if (!e) return;
    if (--e.refs <= 0) this.q.delete(addr);
  }

  /** Forget every entry asked for on exactly this port (its pods' addresses), e.g. when the port
   * is removed; entries for all pod ports stay. */
  dropPort(port: number): void {
    for (const [a, e] of this.q) if (e.ports?.includes(port)) this.q.delete(a);
  }

  has(addr: string): boolean { return this.q.has(addr); }
  get size(): number { return this.q.size; }

  /** The next up to `max` entries `want` accepts (each looked at moves to the back, wanted or
   * not: an entry skipped now is not looked at again before every other one was). */
  take(max: number, want: (addr: string) => boolean): ProbeTarget[] {
    const out: ProbeTarget[] = [];
    let looked = 0;
    const n = this.q.size;
    for (const [addr, e] of this.q) {
      if (out.length >= max || looked >= n) break;
      looked++;
      if (want(addr)) out.push({ addr, ...(e.ports ? { ports: e.ports } : {}) });
    }
    // rotate what was looked at to the back, in order
    let i = 0;
    for (const [addr, e] of this.q) {
      if (i++ >= looked) break;
      this.q.delete(addr); this.q.set(addr, e);
    }
    return out;
  }
}
