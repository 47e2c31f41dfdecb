// A worker's end of several workers sharing interfaces (PACKET_FANOUT, config `fanout: true`):
// frames handed to it by the other workers go into its batch first; of the frames it read from
// its ports, those another worker owns (the core's steer(), assembly/steer.ts) are copied into that
// worker's ring (steer-ring.ts) and the rest are moved together, in order, for process(). A frame
// handed over marked for a second look (STEER_RECHECK: it landed on neither of the two workers
// that may hold its flow) is steered once more by its receiver, which hands it on, unmarked, when
// the flow is not there: at most two hand-overs.
// Why steering rather than one shared flow table: docs/performance.md, "Several workers on one
// interface".
import * as L from '../../assembly/layout.js';
import type { Core } from '../core/host.js';
import { RING_RECHECK, SteerRing, copyWords, steerRingBuffer } from './steer-ring.js';

/** Rings between every ordered pair of workers: rings[from][to] (undefined on the diagonal). */
export interface SteerPlan {
  workers: number;
  self: number;
  rings: Array<Array<SharedArrayBuffer | undefined>>;
  slotSize: number;
  /** Int32: how many workers have opened their ports (they join the fanout groups in order). */
  joinTurn?: SharedArrayBuffer;
  /** The block the cores age the retired set's filter by (src/core/retired-sweep.ts). */
  retiredSweep?: SharedArrayBuffer;
}

/** Frames a ring holds: four bursts of the default batch (256), ~2 MiB per ordered pair of workers. */
const RING_SLOTS = 1024;

/** The rings for `workers` workers sharing their ports, frames up to `slotSize` bytes. */
export function steerRingsFor(workers: number, slotSize = L.DEFAULT_SLOT_SIZE, slots = RING_SLOTS): Array<Array<SharedArrayBuffer | undefined>> {
  return Array.from({ length: workers }, (_, from) => Array.from({ length: workers }, (_, to) => (from === to ? undefined : steerRingBuffer(slots, slotSize))));
}

/** handedOff: frames read from this worker's ports and handed to another (each such frame once,
 * however many hand-overs it takes); handedOn: frames another worker handed over for a second look
 * that this one handed on again (the second hand-over of a frame counted in some worker's
 * handedOff); received: frames taken from the rings (every hand-over, so summed over the workers
 * handedOff + handedOn = received once the rings are drained); ringFull: frames a full ring refused
 * (dropped). */
export interface SteerStats { handedOff: number; handedOn: number; received: number; ringFull: number }

export class Steering {
  private readonly out: Array<SteerRing | undefined>;
  private readonly in: SteerRing[];
  readonly stats: SteerStats = { handedOff: 0, handedOn: 0, received: 0, ringFull: 0 };
  private readonly toWake: boolean[];

  constructor(private readonly core: Core, plan: SteerPlan, private readonly wake: (worker: number) => void = () => undefined) {
    this.out = plan.rings[plan.self].map((b) => (b ? new SteerRing(b, plan.slotSize) : undefined));
    this.in = [];
    for (let w = 0; w < plan.workers; w++) { const b = plan.rings[w][plan.self]; if (b && w !== plan.self) this.in.push(new SteerRing(b, plan.slotSize)); }
    this.toWake = new Array<boolean>(plan.workers).fill(false);
  }

  /** Frames the other workers handed over, into slots 0.. (up to `max`); returns how many. Those
   * marked for a second look that are another's are handed on (unmarked) instead. */
  receive(max: number): number {
    this.filled = 0; this.rechecks = 0; this.max = max;
    // the core's views once per batch, not per frame (each getter checks the memory buffer)
    this.u32 = this.core.u32; this.dv = this.core.dv;
    for (const r of this.in) if (this.filled + this.rechecks < max) r.drain(max - this.filled - this.rechecks, this.take);
    this.stats.received += this.filled + this.rechecks;
    if (this.rechecks === 0) return this.filled;
    // the marked frames (taken into the last slots, backwards) follow the others, in order
    const core = this.core, u8 = core.u8, dv = this.dv, first = this.filled;
    for (let k = 0; k < this.rechecks; k++) {
      const from = max - 1 - k, to = first + k, d = core.descOffset(from), dt = core.descOffset(to), len = dv.getUint16(d + L.D_LEN, true);
      u8.copyWithin(core.slotOffset(to), core.slotOffset(from), core.slotOffset(from) + len);
      dv.setUint16(dt + L.D_LEN, len, true);
      dv.setUint16(dt + L.D_IN_PORT, dv.getUint16(d + L.D_IN_PORT, true), true);
    }
    return this.hand(first, first + this.rechecks, false);
  }

  private filled = 0;
  private rechecks = 0;
  private max = 0;
  private u32!: Uint32Array;
  private dv!: DataView;
  // one function for every drain (no allocation per batch): the next slot gets the frame (from
  // the top, backwards, if it is marked for a second look)
  private readonly take = (src: Uint32Array, wordOff: number, len: number, inPort: number, flags: number): void => {
    const core = this.core, i = flags & RING_RECHECK ? this.max - 1 - this.rechecks++ : this.filled++;
    copyWords(this.u32, core.slotOffset(i) >>> 2, src, wordOff, (len + 3) >>> 2);
    const d = core.descOffset(i), dv = this.dv;
    dv.setUint16(d + L.D_LEN, len, true);
    dv.setUint16(d + L.D_IN_PORT, inPort, true);
  };

  /** Whether some worker's ring from this one is more than half full (its consumer lags). */
  backedUp(): boolean { return this.out.some((r) => !!r && r.backlog() * 2 > r.capacity); }

  /** Whether another worker has handed over frames not yet received. */
  pending(): boolean { return this.in.some((r) => r.pending()); }

  /** Frames first..n-1 were read from the ports: hands those another worker owns to it and packs
   * the rest into first..; returns the new batch length. */
  dispatch(first: number, n: number): number { return this.hand(first, n, true); }

  /** dispatch(); `mark`: a frame the core marks STEER_RECHECK goes marked (read from a port), else
   * unmarked (a second look: it is not handed on again). */
  private hand(first: number, n: number, mark: boolean): number {
    const core = this.core;
    if (n <= first || core.steer(first, n) === 0) return n;
    const u8 = core.u8, u32 = core.u32, dv = core.dv;
    let j = first;
    for (let i = first; i < n; i++) {
      const d = core.descOffset(i);
      const verdict = dv.getUint8(d + L.D_VERDICT), owner = verdict === L.STEER_LOCAL ? verdict : verdict & ~L.STEER_RECHECK;
      const len = dv.getUint16(d + L.D_LEN, true);
      if (owner === L.STEER_LOCAL) {
        if (j !== i) {
          const from = core.slotOffset(i);
          u8.copyWithin(core.slotOffset(j), from, from + len);
          const dj = core.descOffset(j);
          dv.setUint16(dj + L.D_LEN, len, true);
          dv.setUint16(dj + L.D_IN_PORT, dv.getUint16(d + L.D_IN_PORT, true), true);
        }
        j++;
        continue;
      }
      const ring = this.out[owner];
      if (ring && ring.push(u32, core.slotOffset(i), len, dv.getUint16(d + L.D_IN_PORT, true), mark && verdict & L.STEER_RECHECK ? RING_RECHECK : 0)) {
        if (mark) this.stats.handedOff++; else this.stats.handedOn++;
        this.toWake[owner] = true;
      } else {
        this.stats.ringFull++;
      }
    }
    for (let w = 0; w < this.toWake.length; w++) {
      if (!this.toWake[w]) continue;
      this.toWake[w] = false;
      if (this.out[w]!.publish()) this.wake(w);
    }
    return j;
  }
}
