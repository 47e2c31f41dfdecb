// Frames waiting for a neighbour (the kernel's neigh unres_qlen): a new flow's first frames to a
// backend whose address has no next hop yet are dropped by the core (drop_no_route, untouched,
// no flow created). The worker copies them here, keyed by the backend's address; once a diff
// gives that backend a next hop they go back at the start of the next rx batch and the core
// decides them again as if just received. Without it a client's first SYN (1 s more to connect)
// or a lone UDP datagram (a first DNS query) is lost while ARP/ND resolves.
//
// Bounded and preallocated: `frames` slots of `slotBytes` each (within `bytes` in all), at most
// `perAddress` frames per address; a frame over a bound is refused (the caller counts it). The
// per-frame bookkeeping is typed arrays plus one string per slot (the address, shared with the
// worker's map of unresolved backends): nothing grows with traffic.

import { HOLD_MS, HOLD_PER_ADDRESS } from '../util/neighbour-hold.js';

export interface HoldQueueOptions {
  /** Most frames held at once (default 256). */
  frames?: number;
  /** Most bytes of slots in all (default 1 MiB): frames = min(frames, bytes / slotBytes). */
  bytes?: number;
  /** Most frames held per address (default HOLD_PER_ADDRESS, like a small unres_qlen). */
  perAddress?: number;
  /** The largest frame (the core's slot size). */
  slotBytes: number;
  /** How long a frame may wait (ms, default HOLD_MS: the probes' give-up time). */
  holdMs?: number;
}

/** Where a frame went: held, or refused (over a bound, or larger than a slot). */
export type HoldResult = 'held' | 'overflow';

export class HoldQueue {
  readonly capacity: number;
  readonly perAddress: number;
  readonly holdMs: number;
  private readonly slotBytes: number;
  private readonly buf: Uint8Array;
  private readonly len: Uint16Array;
  private readonly port: Uint16Array;
  private readonly at: Float64Array;
  /** The order frames were held in (slots are reused in any order, and frames held in one batch
   * share their `at`): a datagram's fragments go back first fragment first. */
  private readonly seq: Float64Array;
  private nextSeq = 0;
  /** The address a slot's frame waits for; undefined: the slot is free or released. */
  private readonly addr: Array<string | undefined>;
  private readonly free: Int32Array;          // stack of free slots
  private nFree: number;
  private readonly ready: Int32Array;         // FIFO of released slots, next rx batch takes them
  private readyHead = 0;
  private readyLen = 0;
  private readonly perAddr = new Map<string, number>();
  private waitingCount = 0;

  constructor(o: HoldQueueOptions) {
    if (!(o.slotBytes > 0)) throw new Error('hold queue: slotBytes must be positive');
    this.slotBytes = o.slotBytes;
    this.capacity = Math.max(0, Math.min(o.frames ?? 256, Math.floor((o.bytes ?? 1 << 20) / o.slotBytes)));
    this.perAddress = o.perAddress ?? HOLD_PER_ADDRESS;
    this.holdMs = o.holdMs ?? HOLD_MS;
    this.buf = new Uint8Array(this.capacity * this.slotBytes);
    this.len = new Uint16Array(this.capacity);
    this.port = new Uint16Array(this.capacity);
    this.at = new Float64Array(this.capacity);
    this.seq = new Float64Array(this.capacity);
    this.addr = new Array<string | undefined>(this.capacity).fill(undefined);
    this.free = new Int32Array(this.capacity);
    for (let i = 0; i < this.capacity; i++) this.free[i] = this.capacity - 1 - i;
    this.nFree = this.capacity;
    this.ready = new Int32Array(this.capacity);
  }

  /** Frames waiting for their address (not counting those released and not yet taken). */
  get waiting(): number { return this.waitingCount; }
  /** Frames released, to be put at the start of the next rx batch. */
  get releasedPending(): number { return this.readyLen; }

  /** Keeps a copy of `src[off, off+len)`, received on `port` at `now`, until `addr` resolves. A
   * frame taken and held again is passed the `takenArrivedAt` it was taken with, so holdMs bounds
   * its whole wait, not each turn (a backend removed while its Service has others unresolved). */
  hold(addr: string, src: Uint8Array, off: number, len: number, port: number, now: number): HoldResult {
    const have = this.perAddr.get(addr) ?? 0;
    if (have >= this.perAddress || this.nFree === 0 || len > this.slotBytes) return 'overflow';
    const s = this.free[--this.nFree];
    this.buf.set(src.subarray(off, off + len), s * this.slotBytes);
    this.len[s] = len; this.port[s] = port; this.at[s] = now; this.addr[s] = addr; this.seq[s] = this.nextSeq++;
    this.perAddr.set(addr, have + 1);
    this.waitingCount++;
    return 'held';
  }

  /** `addr` has a next hop (or its backend is gone): its frames go to the next rx batch, oldest
   * first. Returns how many. */
  release(addr: string): number {
    if (!this.perAddr.has(addr)) return 0;
    const order: number[] = [];
    for (let s = 0; s < this.capacity; s++) if (this.addr[s] === addr) order.push(s);
    // the 32-bit clock's signed difference (across its wrap too), then the order they were held in
    order.sort((a, b) => ((this.at[a] - this.at[b]) | 0) || this.seq[a] - this.seq[b]);
    for (const s of order) {
      this.addr[s] = undefined;
      this.ready[(this.readyHead + this.readyLen++) % this.capacity] = s;
    }
    this.perAddr.delete(addr);
    this.waitingCount -= order.length;
    return order.length;
  }

  /** Frames held longer than holdMs are dropped; returns how many. `now` is the core's 32-bit ms
   * clock: the age is taken modulo 2^32, so frames held across its wrap (every ~49.7 days) still
   * expire (a plain difference is negative there: the slots and the address's quota were lost). */
  expire(now: number): number {
    if (this.waitingCount === 0) return 0;
    let n = 0;
    for (let s = 0; s < this.capacity; s++) {
      if (this.addr[s] !== undefined && ((now - this.at[s]) >>> 0) > this.holdMs) { this.dropSlot(s); n++; }
    }
    return n;
  }

  /** Port `port` is gone: the frames received on it are dropped (held or released); returns how many. */
  dropPort(port: number): number {
    let n = 0;
    for (let s = 0; s < this.capacity; s++) {
      if (this.addr[s] !== undefined && this.port[s] === port) { this.dropSlot(s); n++; }
    }
    // released ones not yet taken: keep the others in order
    let kept = 0;
    for (let k = 0; k < this.readyLen; k++) {
      const s = this.ready[(this.readyHead + k) % this.capacity];
      if (this.port[s] === port) { this.free[this.nFree++] = s; n++; } else this.ready[(this.readyHead + kept++) % this.capacity] = s;
    }
    this.readyLen = kept;
    return n;
  }

  /** When the frame takeReleased last returned was first held. */
  takenArrivedAt = 0;

  /** The next released frame is copied to `dst[off…]` (room for slotBytes); returns its length and
   * in port as `len + port * 0x10000` (no object per frame; its first hold time in takenArrivedAt),
   * or -1 when none is released. */
  takeReleased(dst: Uint8Array, off: number): number {
    if (this.readyLen === 0) return -1;
    const s = this.ready[this.readyHead];
    this.readyHead = (this.readyHead + 1) % this.capacity;
    this.readyLen--;
    const len = this.len[s];
    this.takenArrivedAt = this.at[s];
    dst.set(this.buf.subarray(s * this.slotBytes, s * this.slotBytes + len), off);
    this.free[this.nFree++] = s;
    return len + this.port[s] * 0x10000;
  }

  private dropSlot(s: number): void {
    const a = this.addr[s]!;
    const left = (this.perAddr.get(a) ?? 1) - 1;
    if (left > 0) this.perAddr.set(a, left); else this.perAddr.delete(a);
    this.addr[s] = undefined;
    this.free[this.nFree++] = s;
    this.waitingCount--;
  }
}
