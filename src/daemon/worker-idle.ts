// How a forwarding worker waits when its rx rings were found empty: blocked in the addon's
// `waitReady` (poll(2) on every native port's fd and the worker's waker eventfd) until a frame or a
// control message arrives or IDLE_WAIT_MS pass, or — with relay ports only — awaiting on its event
// loop. Each frame that wakes the worker pays this path once per crossing, so it builds nothing
// per wait: the port handles are a Uint32Array built when the ports change, `waitReady` returns a
// mask of the readable ports (`ready`: the worker's next rx pass reads only those, see
// `mayHaveFrames`) instead of an array, and wait() is not async: with native ports it returns
// undefined once the poll returned (no promise, nothing for the caller to await: `const p =
// idle.wait(now); if (p) await p;`), and a promise only when the event loop must run — relay
// ports (read on it: waiting for them is a promise by nature) or the loop's turn every
// YIELD_EVERY_MS. Garbage here became a young-generation scavenge every ~1,000 round trips
// (docs/performance.md, "The worker's loop, as built"); the promise an async wait() built was one
// every few thousand waits. A wake-up is no later for it: the worker goes on the moment the poll
// returns, without even the microtask the await took.
import type { Port } from '../ports/port.js';
import { NativePort, readyBit, type NativeAddon } from '../ports/native.js';
import { RelayPort } from './relay-port.js';
import type { WakeReceiver } from './worker-wake.js';

// An idle worker's sleep when nothing is posted and no frame arrives: bounds how late timers
// (probes, neighbour ageing, checkpoint slices) run. Control messages do not wait for it.
export const IDLE_WAIT_MS = 10;
// A worker whose ports are all native yields to its event loop at most this often when idle
// (port opens, timers); with relay ports, after every wait.
const YIELD_EVERY_MS = 20;

export class WorkerIdle {
  private handles = new Uint32Array(0);
  private relays: RelayPort[] = [];
  private lastYield = 0;
  /** Per port of the last setPorts, in its order: the bit `ready` has when the port was readable,
   * 0 for a port the poll does not cover (a relay port: always read). */
  private bits: number[] = [];
  /** The readable native ports at the end of the last wait (readyBit of their position). */
  private ready = -1;

  /** addon: the native addon (undefined: relay ports only); waker: its eventfd handle, 0 none. */
  constructor(private readonly addon: NativeAddon | undefined, private readonly waker: number, private readonly wake: WakeReceiver) {}

  /** The worker's ports changed (opened, added, removed). */
  setPorts(ports: readonly Port[]): void {
    this.relays = ports.filter((p): p is RelayPort => p instanceof RelayPort);
    let k = 0;
    this.bits = ports.map((p) => p instanceof NativePort ? readyBit(k++) : 0);
    this.handles = Uint32Array.from(ports.filter((p): p is NativePort => p instanceof NativePort), (p) => p.handle);
    this.ready = -1;
  }

  /** Whether port `i` (its position in the last setPorts) may have frames after the last wait:
   * false only for a native port the wait found without any. Sound because a port left unread
   * stays readable: the next wait returns at once for it. */
  mayHaveFrames(i: number): boolean {
    const b = this.bits[i];
    return b === undefined || b === 0 || (this.ready & b) !== 0;
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
    this.ready = this.addon.waitReady(this.handles, relays.length ? 1 : IDLE_WAIT_MS, this.waker);
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
