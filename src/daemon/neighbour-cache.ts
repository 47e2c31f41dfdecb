// Learned neighbours with the kernel's reachability states (NUD_REACHABLE → NUD_STALE →
// NUD_PROBE → NUD_FAILED in include/net/neighbour.h; RFC 4861 7.3.2):
//
//   reachable  confirmed less than reachableMs ago (an ARP request/reply or NS/NA from it, IP
//              traffic from it reaching the slow path)
//   stale      not confirmed for reachableMs. The fast path's traffic to a backend never
//              reaches this code, so every stale neighbour counts as in use (the kernel's
//              DELAY state is skipped) and goes straight to:
//   probe      up to maxProbes unicast ARP requests / NS to its known MAC, retransMs apart;
//              any answer makes it reachable again
//   failed     no answer: the entry is dropped and reported, so the daemon stops sending to
//              that MAC (the backend goes back to broadcast probing until it answers again).
//
// Static neighbours (the config's pods with a MAC) never enter this cache.
// Entries are kept in the order they were last confirmed (delete + set on confirm), so tick()
// walks only the stale front of the map and stops at the first reachable entry.
import type { Neighbour } from './l2.js';

export type NeighbourState = 'reachable' | 'stale' | 'probe';

export interface NeighbourTiming {
  reachableMs: number;   // kernel: base_reachable_time (30 s)
  retransMs: number;     // kernel: retrans_time (1 s)
  maxProbes: number;     // kernel: ucast_solicit (3)
}

interface Entry { n: Neighbour; confirmed: number; probes: number; lastProbe: number }

/** Milliseconds from `then` to `now` on the core's u32 clock (wrap-safe). */
const since = (now: number, then: number): number => (now - then) >>> 0;

export class NeighbourCache {
  private readonly byAddr = new Map<string, Entry>();

  constructor(private readonly t: NeighbourTiming) {}

  /** `n` was heard from at `now`. Returns true when the entry is new or moved (port or MAC):
   * only then does the daemon need to hear about it. */
  confirm(n: Neighbour, now: number): boolean {
    const old = this.byAddr.get(n.addr);
    const changed = !old || old.n.port !== n.port || old.n.mac !== n.mac;
    this.byAddr.delete(n.addr);
    this.byAddr.set(n.addr, { n, confirmed: now, probes: 0, lastProbe: 0 });
    return changed;
  }

  has(addr: string): boolean { return this.byAddr.has(addr); }
  get(addr: string): Neighbour | undefined { return this.byAddr.get(addr)?.n; }
  get size(): number { return this.byAddr.size; }

  state(addr: string, now: number): NeighbourState | undefined {
    const e = this.byAddr.get(addr);
    if (!e) return undefined;
    if (since(now, e.confirmed) < this.t.reachableMs) return 'reachable';
    return e.probes > 0 ? 'probe' : 'stale';
  }

  delete(addr: string): boolean { return this.byAddr.delete(addr); }

  /** Drops every entry on `port` (the port was removed); returns them. */
  forgetPort(port: number): Neighbour[] {
    const out: Neighbour[] = [];
    for (const [a, e] of this.byAddr) if (e.n.port === port) { out.push(e.n); this.byAddr.delete(a); }
    return out;
  }

  /** What is due at `now`: unicast probes to send (at most `max`; the rest wait for the next
   * tick, oldest first) and neighbours that failed (removed from the cache). */
  tick(now: number, max: number): { probe: Neighbour[]; failed: Neighbour[] } {
    const probe: Neighbour[] = [], failed: Neighbour[] = [];
    for (const [a, e] of this.byAddr) {
      if (since(now, e.confirmed) < this.t.reachableMs) break;          // the rest are newer
      if (e.probes > 0 && since(now, e.lastProbe) < this.t.retransMs) continue;
      if (e.probes >= this.t.maxProbes) { failed.push(e.n); this.byAddr.delete(a); continue; }
      if (probe.length >= max) continue;
      e.probes++; e.lastProbe = now;
      probe.push(e.n);
    }
    return { probe, failed };
  }
}
