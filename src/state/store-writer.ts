// The main thread's side of the store writer thread (src/state/store-writer-thread.ts): a large
// write (a full sync: 20k rows at 10k Services × 10) is inserted by another thread, on its own
// connection to the same WAL database, while the main thread compiles and programs the change.
// The main thread pays only for serialising the objects that did not come as text (JSON.stringify,
// ~70–100 ms at 10k × 10; those that did go as places in the request's text, whose bytes are moved
// to the thread, not copied) and posting the rest (a few ms); the inserts (~0.1–0.5 s) and the
// commit's fsync leave its critical path.
//
// The thread's connection is the store's only writing connection (StateStore): it holds the
// database in locking_mode=EXCLUSIVE, so SQLite keeps its wal-index in the connection's heap and
// maps no file — a memory-mapped state.db-shm turns a failing disk's read error into SIGBUS
// (test chaos-disk-evicted-index). Every write goes through it: a small one as one `write`
// request (rows, then COMMIT), a large one staged (`stage`, then `commit` or `rollback`). The
// store's synchronous calls (commit(), probe(), the revision read in them: tools and tests; the
// daemon's are all asynchronous) wait for their answer
// (requestSync: the main thread blocks on an Atomics word the thread sets after posting the answer
// on a port of their own, read with receiveMessageOnPort).
//
// Requests are answered in order. A thread that fails (an exception, exit, terminate, a message
// either way that cannot be deserialised) rejects every request in flight and is replaced by a new
// one on the next write; its uncommitted transaction dies with its connection, so nothing of that
// write stays.
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';

export interface WriterSettings { path: string; busyTimeoutMs: number; cacheKiB: number }

/** What the thread is started with: the settings, the port its synchronous requests come on, and
 * the word it sets to SYNC_ANSWERED after posting each answer there (SYNC_STOPPED as it exits). */
export interface WriterData extends WriterSettings { syncPort: MessagePort; syncFlag: Int32Array }
export const SYNC_WAITING = 0, SYNC_ANSWERED = 1, SYNC_STOPPED = 2;
/** How long a synchronous request waits for its answer (a write's fsync on a failing disk can
 * take long) before the thread is given up: stopped, its outcome then read back by the store. */
const SYNC_WAIT_MS = 30_000;

/** A write's rows by column (see `stage` below). */
export interface WriteRows { kinds: Uint8Array; keys: string; keyEnds: Int32Array; text: string | Uint8Array; starts: Int32Array; ends: Int32Array; bodies: string[]; removeKinds: string[]; removeKeys: string[]; meta: Array<[string, string]> }

/** What the main thread asks of the thread. `stage` carries its rows by column, in few and flat
 * values (a structured clone pays per value: 20k keys as strings were ~10 ms to post): row i is
 * of kind STORED_KINDS[kinds[i]], its key keys.slice(keyEnds[i - 1] ?? 0, keyEnds[i]), and its body
 * text.slice(starts[i], ends[i]) — or, where starts[i] is -1, the next of `bodies`; a text of bytes
 * is UTF-8 (a request body's: ASCII only, src/util/body-text.ts; the store's own serialisation of
 * a large write: StateStore.serialisedBytes), its spans byte offsets. `meta`: [key,
 * value] rows of the meta table written in the same transaction (the store's next revision). */
export type WriterCall =
  | ({ op: 'stage' } & WriteRows)
  | ({ op: 'write' } & WriteRows)
  | { op: 'commit'; checkpoint?: boolean }
  | { op: 'probe' }
  | { op: 'revision' }
  | { op: 'peek' }
  | { op: 'rollback' }
  | { op: 'checkpoint' };
export type WriterRequest = (WriterCall & { id: number }) | { op: 'open'; id: number } | { op: 'close' };

/** The id of the thread's last words when it could not deserialise a request (it exits next). */
export const THREAD_LOST_REQUEST = 0;

/** `value`: the revision row's value (`revision`, `peek`; null: none); `body`, `crc`: the
 * NodeConfig row's (`peek`; null: none), read in the same transaction. */
export type WriterReply = { id: number; ok: true; rows: number; bytes: number; value?: string | null; body?: string | null; crc?: number } | { id: number; ok: false; error: string; code?: string };

export interface WriterAnswer { rows: number; bytes: number; value?: string | null; body?: string | null; crc?: number }

/** A request that was never sent to a thread (it stopped before): whatever it asked did not happen. */
export class NotSentError extends Error {}

/** A request in flight to a thread that stopped (`reason`: why) before it answered. */
export class ThreadStoppedError extends Error {
  constructor(readonly reason: string) { super(`the store writer thread stopped (${reason}): nothing of the write was kept`); }
}

/** `op`, `at`: what was asked and when (Date.now()): a write the disk does not complete is seen (stuck). */
type Pending = { resolve(r: WriterAnswer): void; reject(e: Error): void; op: WriterCall['op']; at: number };

/** The thread's error as an Error, with SQLite's code kept (the store names an I/O error's cause). */
function replyError(r: { error: string; code?: string }): Error {
  return Object.assign(new Error(r.error), r.code ? { code: r.code } : {});
}

export class StoreWriterThread {
  private worker: Worker | null = null;
  /** The requests in flight to the current thread (each thread has its own: one that stopped
   * rejects only its own, even when its exit comes after a new thread took requests). */
  private pending = new Map<number, Pending>();
  private nextId = 1;
  private tail: Promise<unknown> = Promise.resolve();
  private nThreads = 0;
  /** Why the last thread stopped (null: none did). */
  private lastStop: string | null = null;

  constructor(private readonly settings: WriterSettings) {}

  /** Sends `m` (without its id); resolves with the thread's answer, rejects with its error.
   * `handOver`: a buffer `m` holds that the caller gives up (moved to the thread, not copied; it
   * is copied when it cannot be moved). */
  request(m: WriterCall, thread?: number, handOver?: ArrayBufferLike): Promise<WriterAnswer> {
    if (thread !== undefined && (thread !== this.threadNo || !this.worker)) {
      // (a commit or rollback of a write staged by a thread that stopped since: it took the write
      // with it, and this request was never sent)
      return Promise.reject(new NotSentError(`the store writer thread stopped before the commit${this.lastStop ? ` (${this.lastStop})` : ''}: nothing of the write was kept`));
    }
    const w = this.thread();
    const id = this.nextId++;
    const p = new Promise<WriterAnswer>((resolve, reject) => this.pending.set(id, { resolve, reject, op: m.op, at: Date.now() }));
    w.ref(); // a write in flight keeps the process alive
    const msg = { ...m, id };
    try {
      if (!handOver || !(handOver instanceof ArrayBuffer)) w.postMessage(msg);
      else {
        try { w.postMessage(msg, [handOver]); } catch { w.postMessage(msg); } // (a pooled buffer cannot move)
      }
    } catch (e) {
      // not sent (e.g. a detached buffer cannot be cloned): nothing will answer it
      this.pending.delete(id);
      if (!this.pending.size) w.unref();
      return Promise.reject(e as Error);
    }
    // a checkpoint holds no lock a write on another connection waits for: idle() does not wait for it
    if (m.op !== 'checkpoint') this.tail = p.catch(() => undefined);
    return p;
  }

  /** Sends `m` and waits for its answer, blocking this thread (a synchronous caller: the store's
   * commit(), probe(), the revision read). Only while no write request is in flight (a staged
   * write holds the connection's transaction). Throws the thread's error; ThreadStoppedError when
   * the thread stopped, or did not answer within SYNC_WAIT_MS (it is stopped then: whatever it
   * was doing, its connection goes with it) — the request was sent, its outcome is not known. */
  requestSync(m: WriterCall, waitMs = SYNC_WAIT_MS): WriterAnswer {
    const w = this.thread();
    const sync = this.sync!;
    while (receiveMessageOnPort(sync.port)) { /* (the answer of a request given up on) */ }
    const id = this.nextId++;
    Atomics.store(sync.flag, 0, SYNC_WAITING);
    sync.port.postMessage({ ...m, id });
    sync.port.unref(); // (a post refs the port again: it never keeps the process alive)
    const end = Date.now() + waitMs;
    for (;;) {
      const got = receiveMessageOnPort(sync.port);
      if (got) {
        const r = got.message as WriterReply;
        if (r.id !== id) continue;
        if (r.ok) return { rows: r.rows, bytes: r.bytes, value: r.value, body: r.body, crc: r.crc };
        throw replyError(r);
      }
      if (Atomics.load(sync.flag, 0) === SYNC_STOPPED) throw new ThreadStoppedError(this.stopSync(w, 'it exited'));
      const left = end - Date.now();
      if (left <= 0) throw new ThreadStoppedError(this.stopSync(w, `it did not answer within ${waitMs / 1000} s`));
      Atomics.wait(sync.flag, 0, SYNC_WAITING, Math.min(left, 100));
    }
  }

  /** The thread given up on by a synchronous request: no longer used, and terminated. */
  private stopSync(w: Worker, why: string): string {
    if (this.worker === w) this.worker = null;
    this.exiting.add(w);
    void w.terminate().catch(() => undefined);
    return this.lastStop = why;
  }

  /** The current thread's synchronous channel: this thread's end and the thread's answer word. */
  private sync: { port: MessagePort; flag: Int32Array } | null = null;

  /** Starts the thread and has it open its connection now, in the background (a daemon once it
   * forwards: the thread's boot and open, ~130–200 ms of CPU, then fall outside the first large
   * write, where they competed with its compile for the node's cores). Unref'd: an idle thread
   * never keeps the process alive. Not a request: nothing waits for it (idle(), busy), and its
   * answer is dropped — a connection that failed to open is opened again, and its error reported,
   * by the first stage. */
  prestart(): void {
    if (this.worker) return;
    this.thread().postMessage({ op: 'open', id: this.nextId++ } satisfies WriterRequest);
  }

  /** The oldest durable write in flight (a write, a commit, the probe — each waits for the WAL's
   * fsync) when it was sent `ms` or more ago: what it is and how long it has waited; null when none
   * has. A staged write's inserts and a checkpoint are not counted (their time grows with the
   * write, and nothing waits for a checkpoint). */
  stuck(ms: number): { op: string; waitedMs: number } | null {
    const now = Date.now();
    let oldest: Pending | null = null;
    for (const p of this.pending.values()) {
      if ((p.op === 'write' || p.op === 'commit' || p.op === 'probe') && (!oldest || p.at < oldest.at)) oldest = p;
    }
    return oldest && now - oldest.at >= ms ? { op: oldest.op, waitedMs: now - oldest.at } : null;
  }

  /** Whether a thread runs that takes requests (false: none started yet, or the last one stopped). */
  get live(): boolean { return this.worker !== null; }

  /** Which thread answers the requests sent now (a later request that passes this number fails
   * when that thread stopped meanwhile). */
  get threadNo(): number { return this.nThreads; }

  /** Resolves when every write request (stage, commit, rollback) sent so far was answered (the
   * thread holds no transaction then, unless a stage was the last one); a checkpoint may still run. */
  idle(): Promise<unknown> { return this.tail; }

  /** Whether requests are in flight, or a thread that stopped has not exited yet: until it has,
   * its connection may hold the database's write lock (a staged write), which a write on another
   * connection would wait for (up to its busy timeout). */
  get busy(): boolean { return this.pending.size > 0 || this.exiting.size > 0; }

  /** Threads that stopped (an error, an unreadable message: being terminated) and have not exited. */
  private readonly exiting = new Set<Worker>();

  /** The thread, for tests that make it fail (null: none running). */
  get threadForTests(): Worker | null { return this.worker; }

  private thread(): Worker {
    if (this.worker) return this.worker;
    // the process's node flags, less --input-type (a worker from a file refuses it: a process
    // started with -e, as a test's child, would otherwise have no writer thread)
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    const entry = new URL('./store-writer-thread.js', import.meta.url);
    const channel = new MessageChannel();
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const workerData: WriterData = { ...this.settings, syncPort: channel.port2, syncFlag: flag };
    const transferList = [channel.port2];
    let w: Worker;
    try { w = new Worker(entry, { workerData, transferList, execArgv }); } catch (e) {
      // V8 and process-wide flags (--trace-gc, --max-old-space-size) apply to every thread already
      // and a worker refuses them by name: start it with the rest
      const refused = (e as { code?: string }).code === 'ERR_WORKER_INVALID_EXEC_ARGV' ? /flags: (.*)$/.exec((e as Error).message)?.[1].split(', ') : undefined;
      if (!refused) throw e;
      w = new Worker(entry, { workerData, transferList, execArgv: execArgv.filter((a) => !refused.includes(a)) });
    }
    channel.port1.unref(); // (read only with receiveMessageOnPort: no listener, never keeps the process alive)
    this.sync = { port: channel.port1, flag };
    this.nThreads++;
    const pending = this.pending = new Map<number, Pending>();
    w.on('message', (r: WriterReply) => {
      if (r.id === THREAD_LOST_REQUEST) { stopping ??= (r as { error: string }).error; return; } // (it exits next)
      const p = pending.get(r.id);
      if (!p) return;
      pending.delete(r.id);
      if (!pending.size) w.unref();
      if (r.ok) p.resolve({ rows: r.rows, bytes: r.bytes, value: r.value }); else p.reject(replyError(r));
    });
    // why the thread stopped: the first reason given (its last words, an unreadable message, an
    // error), which its 'exit' that follows keeps — what the requests in flight are rejected with
    let stopping: string | null = null;
    /** The thread is no longer used for new requests; it counts as busy until its 'exit'. */
    const detach = (why: string): string => {
      stopping ??= why;
      if (this.worker === w) this.worker = null;
      this.exiting.add(w);
      return this.lastStop = stopping;
    };
    const fail = (why: string) => {
      const reason = detach(why);
      for (const p of pending.values()) p.reject(new ThreadStoppedError(reason));
      pending.clear();
    };
    // A message that cannot be deserialised, either way, leaves a request that nothing answers
    // (and which one is not known): the thread is stopped instead, which rejects every request in
    // flight once it exited — its connection closed, so an uncommitted write is gone by then (a
    // commit whose answer was lost is told apart by the store: StateStore.stage) — and the next
    // write starts a new thread. The thread's side says so before it exits (THREAD_LOST_REQUEST).
    w.on('messageerror', (e) => {
      detach(`an answer of the thread could not be read: ${(e as Error).message}`);
      void w.terminate().catch(() => undefined);
    });
    w.on('error', (e) => fail((e as Error).message));
    w.on('exit', (code) => { fail(`exit code ${code}`); this.exiting.delete(w); });
    w.unref(); // (after the listeners: adding a 'message' listener refs the worker's port again)
    this.worker = w;
    return w;
  }

  /** Lets the thread finish what it was sent, then end (drops a staged, uncommitted write).
   * Resolves when it ended (its connection closed: the last one checkpoints and removes the WAL),
   * or after `waitMs` at the latest; never rejects. */
  close(waitMs = 5000): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (!w) return Promise.resolve();
    // (kept referenced until it ended: a process that is stopping waits for it, up to waitMs)
    w.ref();
    const ended = new Promise<void>((resolve) => {
      const timer = setTimeout(() => { w.unref(); resolve(); }, waitMs);
      w.once('exit', () => { clearTimeout(timer); resolve(); });
    });
    w.postMessage({ op: 'close' } satisfies WriterRequest);
    return ended;
  }
}
