// Waking an idle forwarding worker when the main thread posts it a control message (a diff, a
// counters request), so the message is taken now instead of after the worker's idle timeout
// (IDLE_WAIT_MS in worker.ts): programming latency is the apply itself, not a poll interval.
//
// Two signals, because an idle worker sleeps in one of two ways:
//   - with native ports it blocks in the addon's `wait` (poll on the port fds): the addon's waker,
//     an eventfd polled with them, ends that poll. The worker opens it and reports its handle.
//   - with relay ports only (or none), or while held, it awaits on its event loop: a counter in a
//     SharedArrayBuffer, bumped and Atomics.notify'd, ends an Atomics.waitAsync.
// The sender raises both after every postMessage (one atomic add, one notify, one 8-byte eventfd
// write: ~1-2 µs per message). A wake while the worker is busy stays pending (the eventfd stays
// readable, the counter differs from the last one seen), so the next idle wait returns at once:
// at worst one spare loop, never a message left waiting for a timeout.
import { nativeAddon, type NativeAddon } from '../ports/native.js';

// Atomics.waitAsync (Node 16+) is typed only from lib es2024, above this project's target.
type WaitAsync = (a: Int32Array, i: number, v: number, ms: number) =>
  { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export function wakeSignalBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
}

/** The main thread's end: one per worker. */
export class WakeSender {
  private readonly seq: Int32Array;
  private addon?: NativeAddon;
  private waker = 0;

  constructor(buffer: SharedArrayBuffer) { this.seq = new Int32Array(buffer); }

  /** The worker's native waker (its handle from the worker's 'ready'); 0: none. */
  useWaker(handle: number): void {
    if (!handle) return;
    this.addon = nativeAddon();
    this.waker = handle;
  }

  wake(): void {
    Atomics.add(this.seq, 0, 1);
    Atomics.notify(this.seq, 0);
    if (!this.waker) return;
    try { this.addon!.wake(this.waker); } catch {
      // ECLOSED: the worker has stopped and closed its waker; nothing left to wake
      this.waker = 0;
    }
  }
}

/** The worker's end. `taken` counts idle waits ended (or skipped) because a message was posted. */
export class WakeReceiver {
  private readonly seq: Int32Array;
  private seen = 0;
  private takenHere = 0;
  /** The counter value the one pending Atomics.waitAsync waits to leave (null: none pending), and
   * the sleeps waiting on it. Every sleep shares that one wait: a sleep another promise won (a
   * relay port readable first) only leaves its resolver here until its own timer takes it out, so
   * at most one V8 waiter is pending however often the worker idles (pending waiters pile up in
   * V8 and stall the thread's event loop). */
  private armed: number | null = null;
  private readonly sleepers = new Set<() => void>();
  private waitsHere = 0;

  constructor(buffer: SharedArrayBuffer) { this.seq = new Int32Array(buffer); }

  /** Sleeps on the event loop for up to `ms`, or less when a message is (or was, since the last
   * sleep) posted. */
  async sleep(ms: number): Promise<void> {
    const now = Atomics.load(this.seq, 0);
    if (now !== this.seen) { this.seen = now; this.takenHere++; return; }
    if (!this.arm(now)) { this.seen = Atomics.load(this.seq, 0); this.takenHere++; return; }
    // a pending waitAsync does not keep the event loop alive (a worker with nothing else to do
    // would exit): the timer does, and takes this sleep's resolver out when it fires
    const woken = await new Promise<boolean>((resolve) => {
      const wake = () => { clearTimeout(timer); resolve(true); };
      const timer = setTimeout(() => { this.sleepers.delete(wake); resolve(false); }, ms);
      this.sleepers.add(wake);
    });
    if (woken && Atomics.load(this.seq, 0) !== this.seen) { this.seen = Atomics.load(this.seq, 0); this.takenHere++; }
  }

  /** Makes sure a waitAsync waits for the counter to leave `value`; false when it already has. */
  private arm(value: number): boolean {
    if (this.armed === value) return true;
    const w = waitAsync(this.seq, 0, value, Infinity);
    if (!w.async) return false; // 'not-equal' (no timeout: it cannot time out)
    this.waitsHere++;
    this.armed = value;
    void w.value.then(() => {
      this.armed = null;
      const ready = [...this.sleepers];
      this.sleepers.clear();
      for (const wake of ready) wake();
    });
    return true;
  }

  /** waitAsync waits started: one per wake, however many sleeps shared it. */
  get waitsStarted(): number { return this.waitsHere; }

  /** After a native wait (which the waker ended, if a message came): what was posted until now
   * has been seen, so the next sleep does not count it again. */
  seenAll(): void { this.seen = Atomics.load(this.seq, 0); }

  /** Sleeps ended (or skipped) by a posted message. */
  get taken(): number { return this.takenHere; }
}
