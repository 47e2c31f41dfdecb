// A large apply's store rows sent to the store writer thread while its body still arrives
// (src/api/body-reader.ts), so that the thread does the costly part of their inserts — the
// binding of 20k rows, their CRC-32s, the B-tree inserts in the body's order — in the body's
// stretch of a full sync, where a CPU is spare, instead of in the compile's, where both are busy.
// The thread puts them in a scratch database of its own (an attached in-memory one:
// store-early-rows-thread.ts), outside any transaction on the store: nothing of the store is
// locked or written during the upload, and other applies' writes go on meanwhile. The apply's
// stage (StateStore.stage) then names the scratch batch; when its rows are exactly the rows the
// batch holds (same kinds, keys and places in the same body bytes), the thread copies them into
// the store in the stage's transaction with one INSERT … SELECT (in key order: the scratch's
// primary key), else it inserts the stage's rows as it always did. Durability and the
// acknowledgement are the stage's and commit's, unchanged: the scratch is memory, never the store.
import type { StoredKind } from './types.js';
import { STORED_KINDS } from './store-sql.js';

/** Bodies announced at least this long send their rows early (a full sync of 10k × 10: 13 MB;
 * a small apply never pays for the scratch). */
export const EARLY_ROWS_MIN_BYTES = 1 << 20;

/** One chunk's rows (`op: 'early'`): row i is of kind STORED_KINDS[kinds[i]], its key
 * keys.slice(keyEnds[i - 1] ?? 0, keyEnds[i]), its body the body's bytes [starts[i], ends[i]),
 * which are bytes[starts[i] - base, ends[i] - base). */
export interface EarlyChunk { op: 'early'; batch: number; base: number; bytes: Uint8Array; kinds: Uint8Array; keys: string; keyEnds: Int32Array; starts: Int32Array; ends: Int32Array }

/** The rows of one request body, collected as its objects are validated and sent a chunk at a
 * time. Any object that is not stored as the client wrote it stops the batch (its stage then
 * does not match it, and inserts its rows as always). */
export class EarlyRows {
  private kinds: number[] = [];
  private keys = '';
  private keyEnds: number[] = [];
  private starts: number[] = [];
  private ends: number[] = [];
  private stopped = false;

  /** `send`: posts a chunk to the writer thread (false: it could not; the batch stops). */
  constructor(readonly batch: number, private readonly send: (c: EarlyChunk) => boolean, private readonly onDone: (body: Uint8Array, batch: number) => void) {}

  /** An object stored as its text [start, end) of the body's bytes. */
  add(kind: StoredKind, key: string, start: number, end: number): void {
    if (this.stopped) return;
    this.kinds.push(STORED_KINDS.indexOf(kind));
    this.keys += kind === 'NodeConfig' ? '' : key;
    this.keyEnds.push(this.keys.length);
    this.starts.push(start);
    this.ends.push(end);
  }

  /** No more rows: the batch will not match its stage. */
  stop(): void {
    this.stopped = true;
    this.kinds.length = this.keyEnds.length = this.starts.length = this.ends.length = 0;
    this.keys = '';
  }

  /** Sends the rows added since the last flush, their bytes copied from `body` (the body so far). */
  flush(body: Uint8Array): void {
    const n = this.starts.length;
    if (this.stopped || !n) return;
    // (the bytes copied: a Buffer's slice() is a view, and the copy is moved to the thread)
    const base = this.starts[0], end = this.ends[n - 1];
    const c: EarlyChunk = {
      op: 'early', batch: this.batch, base, bytes: Uint8Array.prototype.slice.call(body, base, end), kinds: Uint8Array.from(this.kinds),
      keys: this.keys, keyEnds: Int32Array.from(this.keyEnds), starts: Int32Array.from(this.starts), ends: Int32Array.from(this.ends),
    };
    this.kinds.length = this.keyEnds.length = this.starts.length = this.ends.length = 0;
    this.keys = '';
    if (!this.send(c)) this.stop();
  }

  /** The body is complete and its objects are `body`'s (the reader's final bytes): a stage whose
   * rows come from `body` names this batch. */
  done(body: Uint8Array): void {
    if (!this.stopped) this.onDone(body, this.batch);
  }
}
