// The reject rate limit's buckets shared by several workers' cores (assembly/ratelimit.ts): the
// kernel's buckets are the node's, whichever CPU a packet arrives on, while each worker's core
// has its own Wasm memory. The node's block lives in a SharedArrayBuffer every worker maps; a
// core deciding an answer calls reject_limit_enter(now, bucket, client, family), which refuses at
// once when the global bucket or the client's, looked at without the lock, has no answer left,
// else takes the block's lock and copies the global bucket into the core's own block;
// reject_limit_bucket(bucket) when the global bucket lets the client's be looked at, which copies
// that client bucket (RL_WAYS entries) in; decides there; and calls reject_limit_leave(bucket,
// write), which copies back what a live decision changed and frees the lock. Only the reject path
// pays: one call out of Wasm and a read of the block for a refused packet (a flood's), three
// calls and ~140 bytes each way for an answer.
//
// Layout of the buffer: a 64-byte head — Int32 lock at 0 (0 free, else held), Int32 holdings at 4
// (the holder counts its holding in), Float64 clock epoch at 8 (performance.timeOrigin + performance.now() when it was made) — then an RL_BLOCK_SIZE
// copy of the core's block (layout.ts "Reject rate limit"). Its stamps (RL_STAMP, RLE_LAST) are
// ms on the shared clock: a core's clock + its offset (its clock's origin less the epoch), so
// two cores' clocks, each started at its own creation, compare in the block.
//
// The lock is held only while the core decides (no allocation, no wait inside); a worker that
// finds it held spins up to SPINS tries, then does not answer (the core counts the packet
// drop_reject_rate_limited), nor spins again while the same holding goes on (a holder descheduled
// inside a decision): under that contention it answers less than the kernel, never more. A flood
// meets the lock only while its answers are not refused: a decision first looks at the global
// bucket and the client's without the lock (enter).
// The lock word is the ms (shared clock, from the deciding batch's clock) it was taken at: one held
// for more than STALE_MS was left by a worker that died inside a decision and is taken over.
import * as L from '../../assembly/layout.js';

const HEAD = 64;
const LOCK = 0;        // Int32 index
const SEQ = 1;         // Int32 index: holdings so far (a holding's number, read by a worker that gave up)
const EPOCH = 8;       // byte offset of the Float64
const SPINS = 4096;
const STALE_MS = 1000;
const BUCKET_BYTES = L.RL_WAYS * L.RLE_SIZE;
const ANSWER = 1000;                 // one answer in the global credit's unit (assembly/ratelimit.ts)
const GLOBAL_REFILL_MAX_MS = 1000;   // elapsed time the global bucket counts at most (ratelimit.ts)

/** The later of two u32 ms stamps (modular: they are less than 2^31 ms apart). */
const later = (a: number, b: number): number => (((b - a) | 0) > 0 ? b : a);

/** A block for `rejectLimitShare` of every worker: the global bucket full, no client. */
export function rejectLimitBuffer(): SharedArrayBuffer {
  const b = new SharedArrayBuffer(HEAD + L.RL_BLOCK_SIZE);
  const dv = new DataView(b);
  dv.setFloat64(EPOCH, performance.timeOrigin + performance.now(), true);
  dv.setUint32(HEAD + L.RL_CREDIT, L.RL_GLOBAL_BURST * 1000, true);
  return b;
}

/** What a core needs to share the block: the buffer, and the offset from its clock to the
 * block's (default: from the two clocks' origins; a caller driving a synthetic clock passes it). */
export interface RejectLimitShare { buffer: SharedArrayBuffer; clockOffset?: number }

export interface RejectLimitCore { readonly u8: Uint8Array; readonly u32: Uint32Array; readonly exports: { reject_limit_ptr(): number } }

const W_CREDIT = L.RL_CREDIT >>> 2, W_STAMP = L.RL_STAMP >>> 2, W_ENTRIES = L.RL_ENTRIES >>> 2;
const W_BUCKET = BUCKET_BYTES >>> 2, W_ENTRY = L.RLE_SIZE >>> 2, W_LAST = L.RLE_LAST >>> 2;
const W_FAMILY = L.RLE_FAMILY >>> 2, W_TOKENS = L.RLE_TOKENS >>> 2;

/** One core's end: the host functions its imports call. */
export class SharedRejectLimit {
  private readonly lock: Int32Array;
  private readonly shared: Uint32Array;
  private readonly offset: number;
  private readonly block: number;
  /** The deciding batch's clock (enter). */
  private now = 0;
  /** Decisions that found the lock held (another worker deciding), and of those the ones that
   * gave up after SPINS tries (not answered: counted drop_reject_rate_limited by the core). */
  contended = 0;
  gaveUp = 0;
  /** The holding (SEQ) this worker last gave up on. */
  private gaveUpOn = NaN;

  /** `clockOrigin`: performance.timeOrigin + performance.now() at the core clock's 0. */
  constructor(private readonly core: RejectLimitCore, share: RejectLimitShare, clockOrigin: number) {
    if (share.buffer.byteLength !== HEAD + L.RL_BLOCK_SIZE) throw new RangeError(`reject limit block: ${share.buffer.byteLength} bytes, want ${HEAD + L.RL_BLOCK_SIZE}`);
    this.lock = new Int32Array(share.buffer, 0, 2);
    this.shared = new Uint32Array(share.buffer, HEAD);
    this.offset = share.clockOffset ?? Math.round(clockOrigin - new DataView(share.buffer).getFloat64(EPOCH, true));
    this.block = core.exports.reject_limit_ptr() >>> 2;
  }

  /** Takes the lock (at `now`, the core's clock) and copies the global bucket in: 1, or 0 when the
   * buckets, looked at without the lock, refuse the answer to the client (16 bytes at `client` in
   * the core's memory, of `family`, in client bucket `bucket`), or the lock stayed held (the answer
   * is not sent). */
  enter(now: number, bucket: number, client: number, family: number): number {
    const me = ((now + this.offset) | 0) || 1;
    // a flood's decision: the global bucket empty, or the client's, refilled to now, refuses and
    // would write back what it read refilled (below an answer: below the cap, so the same as
    // nothing): no lock, no write, so the workers' refusals share the block's lines read-only.
    // The words are read apart; a set torn by another worker's write can only refuse an answer
    // the kernel would send, never add one.
    let since = (me - this.shared[W_STAMP]) | 0;
    if (since < 0) since = 0; else if (since > GLOBAL_REFILL_MAX_MS) since = GLOBAL_REFILL_MAX_MS;
    if (this.shared[W_CREDIT] + since * L.RL_GLOBAL_PER_SEC < ANSWER) return 0;
    if (this.clientRefused(me, bucket, client, family)) return 0;
    for (let k = 0; ; k++) {
      const held = Atomics.compareExchange(this.lock, LOCK, 0, me);
      if (held === 0) break;
      if (((me - held) | 0) > STALE_MS && Atomics.compareExchange(this.lock, LOCK, held, me) === held) break;
      if (k === 0) {
        this.contended++;
        // the holding this worker gave up on goes on (its worker descheduled inside a decision):
        // no second spin for each packet until it ends
        if (Atomics.load(this.lock, SEQ) === this.gaveUpOn) { this.gaveUp++; return 0; }
      }
      if (k >= SPINS) { this.gaveUp++; this.gaveUpOn = Atomics.load(this.lock, SEQ); return 0; }
    }
    this.lock[SEQ] = (this.lock[SEQ] + 1) | 0;   // the holder alone writes it
    const to = this.core.u32, b = this.block;
    this.now = now >>> 0;
    to[b + W_CREDIT] = this.shared[W_CREDIT];
    to[b + W_STAMP] = this.notAfterNow(this.shared[W_STAMP] - this.offset);
    return 1;
  }

  /** Whether the client's entry in `bucket` of the block, refilled to `me` (shared clock), has no
   * answer left (a client without an entry starts with a full burst). */
  private clientRefused(me: number, bucket: number, client: number, family: number): boolean {
    const from = this.shared, mem = this.core.u8, at = W_ENTRIES + bucket * W_BUCKET;
    for (let e = at; e < at + W_BUCKET; e += W_ENTRY) {
      if ((from[e + W_FAMILY] & 0xff) !== family) continue;
      let same = true;
      for (let w = 0; w < 4 && same; w++) {
        const m = client + w * 4, x = from[e + w];
        same = x === ((mem[m] | (mem[m + 1] << 8) | (mem[m + 2] << 16) | (mem[m + 3] << 24)) >>> 0);
      }
      if (!same) continue;
      const ivl = family === 4 ? L.RL_HOST_INTERVAL_V4_MS : L.RL_HOST_INTERVAL_V6_MS, cap = ivl * L.RL_HOST_BURST;
      let t = (me - from[e + W_LAST]) | 0;
      if (t < 0) t = 0; else if (t > cap) t = cap;
      return from[e + W_TOKENS] + t < ivl;
    }
    return false;
  }

  /** Copies client bucket `bucket` in (the lock held). */
  bucket(bucket: number): void {
    const from = this.shared, to = this.core.u32, at = W_ENTRIES + bucket * W_BUCKET, b = this.block + at;
    for (let w = 0; w < W_BUCKET; w++) to[b + w] = from[at + w];
    for (let e = b + W_LAST; e < b + W_BUCKET; e += W_ENTRY) to[e] = this.notAfterNow(to[e] - this.offset);
  }

  /** A stamp on this core's clock, no later than the deciding batch's `now`: another worker's
   * batch may have begun later and decided first, and a stamp ahead of now would read as 49 days
   * elapsed (u32) — a full refill. */
  private notAfterNow(stamp: number): number {
    const s = stamp >>> 0;
    return ((s - this.now) | 0) > 0 ? this.now : s;
  }

  /** Copies back the global bucket (`write` 1) or it and client bucket `bucket` (2), and frees the
   * lock; 0: a dry run, nothing. A stamp never moves back: a decision whose batch clock was
   * behind the block's (notAfterNow) refilled nothing up to the block's stamp, and its own earlier
   * stamp would let the next decision refill that time again. */
  leave(bucket: number, write: number): void {
    if (write) {
      const from = this.core.u32, b = this.block, to = this.shared;
      to[W_CREDIT] = from[b + W_CREDIT];
      to[W_STAMP] = later(to[W_STAMP], from[b + W_STAMP] + this.offset);
      if (write === 2) {
        const at = W_ENTRIES + bucket * W_BUCKET;
        for (let e = at; e < at + W_BUCKET; e += W_ENTRY) {
          const last = to[e + W_LAST];
          for (let w = 0; w < W_ENTRY; w++) to[e + w] = from[b + e + w];
          to[e + W_LAST] = later(last, from[b + e + W_LAST] + this.offset);
        }
      }
    }
    Atomics.store(this.lock, LOCK, 0);
  }
}
