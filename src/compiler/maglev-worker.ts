// The worker thread of maglev-pool.ts: claims published Maglev jobs of the current compile, fills
// each table in place (in a SharedArrayBuffer slab) and counts it done; sleeps on the doorbell
// when there is nothing to claim. Messages (a new compile's job buffers, a new slab) are read
// synchronously: the thread never returns to its event loop.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { fillIndexTable } from './maglev.js';
import { typedArray } from '../compiler/slab.js';
import { B_RELEASED, B_SEQ, B_SLEEPING, C_CLAIMED, C_DONE, C_PUBLISHED, D_IN, D_M, D_N, D_KEYS, D_OFF, D_SLAB, D_WIDTH, D_WORDS, type PoolMessage } from './maglev-pool.js';

const port = parentPort!;
const bell = new Int32Array((workerData as { bell: SharedArrayBuffer }).bell);
let ctl: Int32Array<ArrayBufferLike> | null = null;
let desc: Int32Array<ArrayBufferLike> = new Int32Array(0), posIn: Int32Array<ArrayBufferLike> = new Int32Array(0);
let skipIn: Int32Array<ArrayBufferLike> = new Int32Array(0), done: Int32Array<ArrayBufferLike> = new Int32Array(0);
let slabs: SharedArrayBuffer[] = [];

function takeMessages(): void {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const msg = m.message as PoolMessage;
    if (msg.type === 'jobs') {
      ctl = new Int32Array(msg.ctl); desc = new Int32Array(msg.desc);
      posIn = new Int32Array(msg.posIn); skipIn = new Int32Array(msg.skipIn); done = new Int32Array(msg.done);
      slabs = [];
    } else if (msg.type === 'slab') slabs.push(msg.slab);
    else if (msg.type === 'touch') { // adds 0: a write fault without changing what the compiler wrote
      const v = new Uint8Array(msg.buf);
      for (let i = 0; i < v.length; i += 4096) Atomics.add(v, i, 0);
    }
    else { // idle: let go of the compile's buffers, then say so (the compiler reuses them after)
      ctl = null; slabs = []; desc = posIn = skipIn = done = new Int32Array(0);
      Atomics.store(bell, B_RELEASED, msg.gen);
    }
  }
}

/** Claims and fills one job; false when there was none to claim. */
function workOne(): boolean {
  if (!ctl) return false;
  const c = Atomics.load(ctl, C_CLAIMED);
  if (c >= Atomics.load(ctl, C_PUBLISHED) || Atomics.compareExchange(ctl, C_CLAIMED, c, c + 1) !== c) return c < Atomics.load(ctl, C_PUBLISHED);
  const d = c * D_WORDS;
  if (desc[d + D_SLAB] >= slabs.length) takeMessages(); // posted before the job was published
  const slab = slabs[desc[d + D_SLAB]];
  if (slab === undefined) return true; // cannot happen; the compiler's watchdog fills it
  const m = desc[d + D_M];
  fillIndexTable(posIn, skipIn, desc[d + D_IN], desc[d + D_N], m, typedArray(m, desc[d + D_WIDTH] as 1 | 2 | 4, slab, desc[d + D_OFF]), 0, desc[d + D_KEYS] === 1);
  Atomics.store(done, c, 1);
  Atomics.add(ctl, C_DONE, 1);
  Atomics.notify(ctl, C_DONE);
  return true;
}

/** Between jobs of a compile the thread naps (a timed futex wait nobody rings) rather than
 * polling: the compiler's thread publishes a job every few microseconds and a wake per job was
 * ~0.5 µs of its time each (5 ms of a 10k-service compile), while polling kept this thread busy
 * for the whole compile, about twice its fills — CPU the compiler's thread and the store's
 * writer need on a 2-core node. A nap of NAP_MS lets ~25 jobs queue up (the compiler's thread
 * claims whatever is left at the end itself, so a nap never delays the compile's end); after
 * NAPS empty naps the thread sleeps until rung. */
const NAP_MS = 0.25, NAPS = 4;
const pending = (): boolean => ctl !== null && Atomics.load(ctl, C_CLAIMED) < Atomics.load(ctl, C_PUBLISHED);
function nap(): boolean {
  for (let i = 0; i < NAPS; i++) {
    Atomics.wait(bell, B_SEQ, Atomics.load(bell, B_SEQ), NAP_MS); // SLEEPING is 0: nobody rings
    if (pending()) return true;
  }
  return false;
}

for (;;) {
  // messages (a new compile's buffers, slabs, a slab to touch, idle) only when the current jobs
  // run out: a look at the port per job was ~1.5 µs, ~15 ms of a 10k-table compile on this thread
  // (a job in a slab not yet received reads its message itself, in workOne)
  if (workOne()) continue;
  takeMessages();
  if (workOne()) continue;
  if (ctl && nap()) continue;
  // nothing to do: sleep until rung. SLEEPING is set before the last look, so a job published
  // after that look finds it set and rings (notify); one published before is seen by the look —
  // which only looks: working with SLEEPING set would make every publish meanwhile ring
  Atomics.store(bell, B_SLEEPING, 1);
  const seq = Atomics.load(bell, B_SEQ);
  takeMessages();
  if (!pending()) Atomics.wait(bell, B_SEQ, seq, 10_000); // the timeout only bounds a missed ring
  Atomics.store(bell, B_SLEEPING, 0);
}
