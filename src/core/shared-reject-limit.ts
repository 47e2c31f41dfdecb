// The reject rate limit's buckets shared by several workers' cores (assembly/ratelimit.ts): the
// kernel's buckets are the node's, whichever CPU a packet arrives on, while each worker's core
// has its own Wasm memory. The node's block lives in a SharedArrayBuffer every worker maps; a
// core deciding an answer calls reject_limit_enter(bucket), which takes the block's lock and
// copies the global bucket and that client bucket (RL_WAYS entries) into the core's own block,
// decides there, and calls reject_limit_leave(bucket, write), which copies them back (a live
// decision) and frees the lock. Only the reject path pays: two calls out of Wasm and ~150 bytes
// copied each way.
//
// Layout of the buffer: a 64-byte head — Int32 lock at 0 (0 free, else held), Float64 clock epoch
// at 8 (performance.timeOrigin + performance.now() when it was made) — then an RL_BLOCK_SIZE
// copy of the core's block (layout.ts "Reject rate limit"). Its stamps (RL_STAMP, RLE_LAST) are
// ms on the shared clock: a core's clock + its offset (its clock's origin less the epoch), so
// two cores' clocks, each started at its own creation, compare in the block.
//
// The lock is held only while the core decides (no allocation, no wait inside); a worker that
// finds it held spins up to SPINS tries, then does not answer (the core counts the packet
// drop_reject_rate_limited): under that rare contention it answers less than the kernel, never more.
// The lock word is the ms (shared clock) it was taken at: one held for more than STALE_MS was left
// by a worker that died inside a decision and is taken over.
import * as L from '../../assembly/layout.js';

const HEAD = 64;
const LOCK = 0;        // Int32 index
const EPOCH = 8;       // byte offset of the Float64
const SPINS = 4096;
const STALE_MS = 1000;
const BUCKET_BYTES = L.RL_WAYS * L.RLE_SIZE;

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

export interface RejectLimitCore { readonly dv: DataView; readonly exports: { reject_limit_ptr(): number } }

/** One core's end: the host functions its imports call. */
export class SharedRejectLimit {
  private readonly lock: Int32Array;
  private readonly shared: DataView;
  private readonly offset: number;
  private readonly block: number;
  private readonly epoch: number;

  /** `clockOrigin`: performance.timeOrigin + performance.now() at the core clock's 0. */
  constructor(private readonly core: RejectLimitCore, share: RejectLimitShare, clockOrigin: number) {
    if (share.buffer.byteLength !== HEAD + L.RL_BLOCK_SIZE) throw new RangeError(`reject limit block: ${share.buffer.byteLength} bytes, want ${HEAD + L.RL_BLOCK_SIZE}`);
    this.lock = new Int32Array(share.buffer, 0, 1);
    this.shared = new DataView(share.buffer);
    this.epoch = this.shared.getFloat64(EPOCH, true);
    this.offset = share.clockOffset ?? Math.round(clockOrigin - this.epoch);
    this.block = core.exports.reject_limit_ptr();
  }

  /** Takes the lock and copies the global bucket and client bucket `bucket` in: 1, or 0 when the
   * lock stayed held (the answer is not sent). */
  enter(bucket: number): number {
    const me = ((performance.timeOrigin + performance.now() - this.epoch) | 0) || 1;
    for (let k = 0; ; k++) {
      const held = Atomics.compareExchange(this.lock, LOCK, 0, me);
      if (held === 0) break;
      if (((me - held) | 0) > STALE_MS && Atomics.compareExchange(this.lock, LOCK, held, me) === held) break;
      if (k >= SPINS) return 0;
    }
    this.copy(bucket, this.shared, HEAD, this.core.dv, this.block, -this.offset);
    return 1;
  }

  /** Copies them back when `write` (a live decision), and frees the lock. */
  leave(bucket: number, write: number): void {
    if (write) this.copy(bucket, this.core.dv, this.block, this.shared, HEAD, this.offset);
    Atomics.store(this.lock, LOCK, 0);
  }

  /** The global bucket and client bucket `bucket` from block `from` at `fo` to `to` at `tOff`,
   * the stamps moved by `shift` ms. */
  private copy(bucket: number, from: DataView, fo: number, to: DataView, tOff: number, shift: number): void {
    to.setUint32(tOff + L.RL_CREDIT, from.getUint32(fo + L.RL_CREDIT, true), true);
    to.setUint32(tOff + L.RL_STAMP, (from.getUint32(fo + L.RL_STAMP, true) + shift) >>> 0, true);
    const at = L.RL_ENTRIES + bucket * BUCKET_BYTES;
    for (let b = 0; b < BUCKET_BYTES; b += 4) to.setUint32(tOff + at + b, from.getUint32(fo + at + b, true), true);
    for (let w = 0; w < L.RL_WAYS; w++) {
      const e = tOff + at + w * L.RLE_SIZE + L.RLE_LAST;
      to.setUint32(e, (to.getUint32(e, true) + shift) >>> 0, true);
    }
  }
}
