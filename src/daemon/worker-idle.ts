// How a forwarding worker waits when an rx burst came back empty: blocked in the addon's
// `waitAny` (poll(2) on every native port's fd and the worker's waker eventfd) until a frame or a
// control message arrives or IDLE_WAIT_MS pass, or — with relay ports only — awaiting on its event
// loop. Each frame that wakes the worker pays this path once per crossing, so it builds nothing
// per wait: the port handles are an array built when the ports change, `waitAny` returns a count
// instead of an array of ready ports (the worker bursts every port anyway), and wait() is not
// async: with native ports it returns undefined once the poll returned (no promise, nothing for
// the caller to await: `const p = idle.wait(); if (p) await p;`), and a promise only when the event
// loop must run — relay ports (read on it: waiting for them is a promise by nature) or the loop's
// turn every YIELD_EVERY_MS. Garbage here became a young-generation scavenge every ~1,000 round
// trips (docs/performance.md, "The worker's loop, as built"); the promise an async wait() built was one every few
// thousand waits. A wake-up is no later for it: the worker goes on the moment the poll returns,
// without even the microtask the await took.
import type { Port } from '../ports/port.js';
import { NativePort, type NativeAddon } from '../ports/native.js';
import { RelayPort } from './relay-port.js';
import type { WakeReceiver } from './worker-wake.js';

// An idle worker's sleep when nothing is posted and no frame arrives: bounds how late timers
// (probes, neighbour ageing, checkpoint slices) run. Control messages do not wait for it.
export const IDLE_WAIT_MS = 10;
// A worker whose ports are all native yields to its event loop at most this often when idle
// (port opens, timers); with relay ports, after every wait.
const YIELD_EVERY_MS = 20;

export class WorkerIdle {
  private handles: number[] = [];
  private relays: RelayPort[] = [];
  private lastYield = 0;

  /** addon: the native addon (undefined: relay ports only); waker: its eventfd handle, 0 none. */
  constructor(private readonly addon: NativeAddon | undefined, private readonly waker: number, private readonly wake: WakeReceiver) {}

  /** The worker's ports changed (opened, added, removed). */
  setPorts(ports: readonly Port[]): void {
    this.relays = ports.filter((p): p is RelayPort => p instanceof RelayPort);
    this.handles = ports.filter((p): p is NativePort => p instanceof NativePort).map((p) => p.handle);
  }

  /** One idle wait: over when a port is readable, a control message was posted, or the timeout
   * passed. `nowMs`: the caller's clock (performance.now(), read just before), for the event
   * loop's turn. Returns undefined when it is over (native ports, the event loop not due: the common
   * case, nothing allocated); otherwise a promise to await first (relay ports, or the event loop's
   * turn). */
  wait(nowMs: number): Promise<unknown> | undefined {
    const relays = this.relays;
    if (this.handles.length === 0 || !this.addon) {
      if (relays.length) return Promise.race([...relays.map((r) => r.whenReadable()), this.wake.sleep(IDLE_WAIT_MS)]);
      return this.wake.sleep(IDLE_WAIT_MS);
    }
    this.addon.waitAny(this.handles, relays.length ? 1 : IDLE_WAIT_MS, this.waker);
    this.wake.seenAll();
    // Yield so relay ports (if mixed), port opens and timers get their turn — not after every
    // wake-up: an event-loop turn (setImmediate) sits between a frame's arrival and its rx
    // burst, and with native ports only nothing needs the loop more often than this.
    if (relays.length || nowMs - this.lastYield > YIELD_EVERY_MS || nowMs < this.lastYield) {
      this.lastYield = nowMs;
      return new Promise((r) => setImmediate(r));
    }
    return undefined;
  }
}
