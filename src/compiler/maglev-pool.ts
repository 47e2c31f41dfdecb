// Maglev fills of a full compile on a second thread.
//
// A full compile of 10k services x 10 endpoints fills 10k Maglev tables of 251 slots: ~35 ms of
// CPU, more than a third of the compile's, all of it independent per table. The compiler's thread publishes a job per
// active set — its IPv4 backends' addresses and ports as numbers (the worker hashes them), or for
// IPv6 the permutation starts and steps it hashed itself from the strings, plus the table size and
// where the table lives — and goes on compiling; a worker thread fills the tables meanwhile. At the
// end of the compile the compiler's thread fills whatever is still unclaimed itself and waits for
// the rest, so the compile returns with every table filled. The worker also first-touches the
// compile's slab (prefault) while the compiler's thread is busy with the model.
//
//   main thread                       shared memory                          worker
//   activeSet: keys or hashes ──▶ [ desc | posIn | skipIn | done ] ◀── claim (CAS), hash IPv4
//   publish job i (PUBLISHED++)                                          keys, fill, narrow into
//   drain(): claim the rest, wait for DONE == PUBLISHED                  the table, DONE++
//
// Tables live in SharedArrayBuffer slabs (the compiler's slab allocator with `shared: true`), so
// the worker writes them in place. Failure never costs correctness: no worker (it failed to start
// or is still starting), a full queue or a table outside a shared slab → the compiler's thread
// fills it; a claimed job that does not finish within WATCHDOG_MS is filled again by the
// compiler's thread — the fill is deterministic, so a late write from the worker stores the same
// bytes. The worker is unref'd: it never keeps a process alive.
import { Worker } from 'node:worker_threads';
import { fillIndexTable } from './maglev.js';
import { typedArray } from '../compiler/slab.js';

// control words of one compile's jobs (Int32 indexes)
export const C_PUBLISHED = 0, C_CLAIMED = 1, C_DONE = 2, C_WORDS = 4;
// the doorbell, one for the worker's lifetime: a sequence number it waits on, whether it sleeps,
// and the generation of the last compile whose buffers it let go of
export const B_SEQ = 0, B_SLEEPING = 1, B_RELEASED = 2, B_WORDS = 3;
// job descriptor words
export const D_N = 0, D_M = 1, D_IN = 2, D_SLAB = 3, D_OFF = 4, D_WIDTH = 5, D_KEYS = 6, D_WORDS = 7;
/** A claimed job not done after this long is filled by the compiler's thread too. */
const WATCHDOG_MS = 200;

/** What the worker is sent for each compile (and each new slab). */
export type PoolMessage =
  | { type: 'jobs'; gen: number; ctl: SharedArrayBuffer; desc: SharedArrayBuffer; posIn: SharedArrayBuffer; skipIn: SharedArrayBuffer; done: SharedArrayBuffer }
  | { type: 'slab'; slab: SharedArrayBuffer }
  | { type: 'touch'; buf: SharedArrayBuffer } // first-touch its pages (see MaglevJobs.prefault)
  | { type: 'idle'; gen: number }; // the compile is over: drop its buffers (and store gen in B_RELEASED)

/** One compile's job buffers. The next compile reuses the last one's once the worker has let go
 * of them (B_RELEASED): fresh buffers were ~250 first-touch page faults and a few ms each time. */
interface JobBuffers { ctl: SharedArrayBuffer; desc: SharedArrayBuffer; posIn: SharedArrayBuffer; skipIn: SharedArrayBuffer; done: SharedArrayBuffer }
let generation = 0;
let spare: { bufs: JobBuffers; gen: number; usedJobs: number } | null = null;

function jobBuffers(maxJobs: number, maxBackends: number): JobBuffers & { reused: boolean } {
  const words = (b: SharedArrayBuffer) => b.byteLength >> 2;
  const s = spare;
  spare = null;
  if (s && Atomics.load(bell, B_RELEASED) === s.gen && words(s.bufs.desc) >= maxJobs * D_WORDS && words(s.bufs.posIn) >= maxBackends) {
    new Int32Array(s.bufs.ctl).fill(0);
    new Int32Array(s.bufs.done).fill(0, 0, s.usedJobs);
    return { ...s.bufs, reused: true };
  }
  const sab = (n: number) => new SharedArrayBuffer(Math.max(1, n) * 4);
  return { ctl: sab(C_WORDS), desc: sab(maxJobs * D_WORDS), posIn: sab(maxBackends), skipIn: sab(maxBackends), done: sab(maxJobs), reused: false };
}

let worker: Worker | null = null;
let workerFailed = false;
const bell = new Int32Array(new SharedArrayBuffer(B_WORDS * 4));

/** Wakes the worker if it sleeps (a futex call only then). The caller stored what the worker
 * should see (a job) before: the worker stores SLEEPING before its last look for work, so either
 * that look sees the job or this load sees SLEEPING (both sequentially consistent). */
function ring(): void {
  if (!Atomics.load(bell, B_SLEEPING)) return;
  Atomics.add(bell, B_SEQ, 1);
  Atomics.notify(bell, B_SEQ);
}

/** Starts the worker if it is not running (no-op once it failed to start); returns the thread
 * this call started, or null (one ran already, or none could start). Whoever started it for a
 * start that then failed stops it again (stopMaglevWorker with that thread): unref'd, it would
 * not keep the process alive, but it would stay in a process that goes on (a supervisor that
 * retries, a test). */
export function startMaglevWorker(): Worker | null {
  if (worker || workerFailed) return null;
  return ensureWorker();
}

/** Whether the worker is running (tests). */
export function maglevWorkerRunning(): boolean { return worker !== null; }

function ensureWorker(): Worker | null {
  if (worker || workerFailed) return worker;
  let w: Worker | null = null;
  try {
    w = new Worker(new URL('./maglev-worker.js', import.meta.url), { workerData: { bell: bell.buffer } });
    w.unref();
    const started = w;
    // a thread that failed is terminated, not only forgotten (an error may come before it exits);
    // only the pool's current thread is cleared: an old one's late exit must not orphan a new one
    started.on('error', () => { if (worker === started) worker = null; workerFailed = true; void started.terminate().catch(() => undefined); });
    started.on('exit', () => { if (worker === started) worker = null; });
    worker = started;
  } catch {
    workerFailed = true;
    if (w) void w.terminate().catch(() => undefined);
  }
  return worker;
}

/** Stops the worker — `only`: only if it is still that thread (what startMaglevWorker returned to
 * a start that failed). Tests, and a daemon start that failed; a running process never needs to:
 * the worker is unref'd. A compile holding jobs meanwhile fills them itself (its watchdog). */
export async function stopMaglevWorker(only?: Worker): Promise<void> {
  const w = worker;
  if (!w || (only && w !== only)) return;
  worker = null;
  await w.terminate();
}

/** What claims a compile's jobs: it is sent PoolMessages (the pool's worker). */
export type JobPort = Pick<Worker, 'postMessage'>;

/** One full compile's Maglev jobs. */
export class MaglevJobs {
  private readonly gen = ++generation;
  private readonly bufs: JobBuffers;
  private readonly ctl: Int32Array;
  private readonly desc: Int32Array;
  private readonly posIn: Int32Array;
  private readonly skipIn: Int32Array;
  private readonly done: Int32Array;
  private nPublished = 0;
  private readonly slabs: SharedArrayBuffer[] = []; // by the index jobs name them with
  private readonly slabIndex = new Map<SharedArrayBuffer, number>();
  private readonly worker: JobPort;
  private inUsed = 0;
  /** Jobs the compiler's thread filled itself at the end (claimed after the worker, or rescued). */
  filledHere = 0;
  /** Whether this compile reuses the previous one's job buffers. */
  readonly reusedBuffers: boolean;

  /** Jobs published so far (only this thread publishes). */
  get published(): number { return this.nPublished; }

  /** Room for `maxJobs` tables over `maxBackends` backends in all; null when no worker can help.
   * `port`: where the jobs' messages go — the pool's worker unless given (tests hand a stand-in
   * that claims jobs and dies holding them, test/lib/maglev-tables.js). */
  static create(maxJobs: number, maxBackends: number, port?: JobPort): MaglevJobs | null {
    const w = port ?? ensureWorker();
    return w ? new MaglevJobs(w, maxJobs, maxBackends) : null;
  }

  private constructor(w: JobPort, maxJobs: number, maxBackends: number) {
    this.worker = w;
    const { reused, ...bufs } = jobBuffers(maxJobs, maxBackends);
    this.bufs = bufs; this.reusedBuffers = reused;
    this.ctl = new Int32Array(bufs.ctl); this.desc = new Int32Array(bufs.desc);
    this.posIn = new Int32Array(bufs.posIn); this.skipIn = new Int32Array(bufs.skipIn); this.done = new Int32Array(bufs.done);
    const msg: PoolMessage = { type: 'jobs', gen: this.gen, ...bufs };
    w.postMessage(msg);
    ring();
  }

  /** Where backend j's start and step of the next job go, or -1 when there is no room (or the
   * table is not in a shared slab): the caller then fills the table itself. */
  reserve(n: number, table: Uint8Array | Uint16Array | Uint32Array): number {
    if (this.nPublished * D_WORDS + D_WORDS > this.desc.length || this.inUsed + n > this.posIn.length) return -1;
    if (!(table.buffer instanceof SharedArrayBuffer)) return -1;
    return this.inUsed;
  }

  /** Backend j's start and step at `at` = reserve()'s answer. */
  setBackend(at: number, j: number, pos: number, skip: number): void { this.posIn[at + j] = pos; this.skipIn[at + j] = skip; }
  /** Backends 0 .. n-1's IPv4 addresses (as int32) and ports at `at`, for a job published with `keys`. */
  setKeys(at: number, n: number, v4: number[], ports: number[]): void {
    const posIn = this.posIn, skipIn = this.skipIn;
    for (let j = 0; j < n; j++) { posIn[at + j] = v4[j] | 0; skipIn[at + j] = ports[j]; }
  }

  /** Publishes the job whose inputs were set at `at`: its table, table[off .. off + m), is filled
   * by the worker or by drain(). `keys`: the inputs are addresses and ports, to be hashed. */
  publish(at: number, n: number, m: number, table: Uint8Array | Uint16Array | Uint32Array, off = 0, keys = false): void {
    const buf = table.buffer as SharedArrayBuffer;
    let slab = this.slabIndex.get(buf);
    if (slab === undefined) { // the worker must hold the slab before a job names it
      slab = this.slabs.length;
      this.slabs.push(buf);
      this.slabIndex.set(buf, slab);
      const msg: PoolMessage = { type: 'slab', slab: buf };
      this.worker.postMessage(msg);
    }
    const i = this.nPublished, d = i * D_WORDS;
    this.desc[d + D_N] = n; this.desc[d + D_M] = m; this.desc[d + D_IN] = at;
    this.desc[d + D_SLAB] = slab; this.desc[d + D_OFF] = table.byteOffset + off * table.BYTES_PER_ELEMENT; this.desc[d + D_WIDTH] = table.BYTES_PER_ELEMENT;
    this.desc[d + D_KEYS] = keys ? 1 : 0;
    this.nPublished = i + 1;
    this.inUsed = at + n;
    Atomics.store(this.ctl, C_PUBLISHED, i + 1); // the descriptor is visible before the count
    ring();
  }

  /** Fills every job not yet claimed, waits for the worker's, rescues any that stall. */
  drain(): void {
    const published = this.nPublished;
    for (;;) { // claim what is left
      const c = Atomics.load(this.ctl, C_CLAIMED);
      if (c >= published) break;
      if (Atomics.compareExchange(this.ctl, C_CLAIMED, c, c + 1) !== c) continue;
      this.fillJob(c);
      Atomics.store(this.done, c, 1);
      Atomics.add(this.ctl, C_DONE, 1);
    }
    let seen = Atomics.load(this.ctl, C_DONE), since = performance.now();
    while (seen < published) {
      Atomics.wait(this.ctl, C_DONE, seen, 5);
      const now = Atomics.load(this.ctl, C_DONE);
      if (now !== seen) { seen = now; since = performance.now(); continue; }
      if (performance.now() - since > WATCHDOG_MS) { // the worker stalled or died holding jobs
        for (let i = 0; i < published; i++) if (Atomics.load(this.done, i) === 0) { this.fillJob(i); Atomics.store(this.done, i, 1); }
        break;
      }
    }
    this.abandon();
  }

  /** Has the worker touch every page of `buf` (a compile's slab) while the compiler's thread
   * is still busy with the model, so the first touches (page faults) are mostly not the
   * compiler's. The worker touches
   * with an atomic add of 0: the compiler may already have written there. */
  prefault(buf: SharedArrayBuffer): void {
    const msg: PoolMessage = { type: 'touch', buf };
    this.worker.postMessage(msg);
    ring();
  }

  /** No job of this compile will be claimed any more (after drain(), or when the compile fails),
   * and the worker lets go of its buffers. */
  abandon(): void {
    if (Atomics.exchange(this.ctl, C_CLAIMED, 0x7fffffff) === 0x7fffffff) return; // once
    const msg: PoolMessage = { type: 'idle', gen: this.gen };
    this.worker.postMessage(msg);
    ring();
    // reusable by the next compile once the worker stored this gen in B_RELEASED: it does so
    // after its last write to them (it finishes a job before it reads messages)
    spare = { bufs: this.bufs, gen: this.gen, usedJobs: this.nPublished };
  }

  private fillJob(i: number): void {
    const d = i * D_WORDS;
    const m = this.desc[d + D_M];
    fillIndexTable(this.posIn, this.skipIn, this.desc[d + D_IN], this.desc[d + D_N], m,
      typedArray(m, this.desc[d + D_WIDTH] as 1 | 2 | 4, this.slabs[this.desc[d + D_SLAB]], this.desc[d + D_OFF]), 0, this.desc[d + D_KEYS] === 1);
    this.filledHere++;
  }
}
