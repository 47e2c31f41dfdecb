// The store's commit record, `state.db-walmark`: how far the write-ahead log was committed, for the
// check at the next open (wal-check.ts) to refuse a log that lost its last acknowledged commits.
// SQLite's wal-index (`state.db-shm`) used to tell that, but the store's writing connection keeps
// its index in its heap now (locking_mode=EXCLUSIVE: no mapped file, store-writer-thread.ts).
//
// After each commit the writer thread reads back the frames the commit appended (they are in the
// page cache), follows their checksum chain the way SQLite's recovery does, and writes one small
// record — the log's salts, its page size, the number of its frames a recovery reads (up to its
// last commit frame) and the store's revision — over the record's 128 bytes with one pwrite. Never
// fsynced, and written after the answer: the commit's latency gains no fsync and no syscall.
//
// Why the record can only make the check weaker, never raise a false alarm:
// * It is written only after a commit whose fsync of the log succeeded, and names only frames that
//   fsync made durable (an fsync covers the whole file: the frames of earlier commits too). So a
//   record that reaches the disk, whenever and in whatever order, claims nothing the log could
//   lose without damage. A record that does not reach it (a crash first, a failed write, no
//   record at all: a store a wdp without it wrote) is an older claim, or none: the check sees less.
// * A record belongs to one generation of the log: its salts. SQLite starts the log again after a
//   checkpoint copied it whole, with new salts (the first one plus one, the second random) and
//   under synchronous=FULL syncs the new header before it writes a frame of the new generation
//   ("syncHeader" in SQLite's wal.c), so the disk never holds the old header with new frames: a
//   log whose salts are not the record's is another generation (the record is stale: ignored), and
//   one whose salts are keeps every frame the record names unless it was damaged or cut short. A
//   log SQLite made afresh (the last connection's close removes it) has random salts.
// * A log shorter than its header has no salts: the record's revision is compared with the
//   database file's instead (wal-check.ts, walEmptiedClaim), which SQLite's delete of a log at the
//   last close (after copying it whole) leaves at that revision — only a log emptied after its
//   commits leaves the file older.
// * A torn or damaged record fails its CRC-32 and is ignored. It is read before the log (wal-check):
//   a record written meanwhile by a running writer describes a log at most as long as the one read.
// * The chain followed here is SQLite's own recovery, over the same bytes: after the last commit
//   frame, frames left by a rolled-back transaction that spilled to the log, or by a commit whose
//   fsync failed, do not chain from the commit frame that replaced them — the count is the frame
//   SQLite's recovery ends at, which an open then reads again from an undamaged log.
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { FRAME_HEADER, frameOk, isCommit, readAt, storedChecksum, WAL_HEADER, walHeader } from './wal-format.js';

/** The record's file: `<state.db>` + this. */
export const WAL_MARK_SUFFIX = '-walmark';
const MAGIC = 'wdpwalm1';
const RECORD = 128;
const REVISION_MAX = RECORD - 28 - 4;
/** Frames read back a pread. */
const CHUNK = 4;

/** What a record says. */
export interface WalMarkRecord { salt1: number; salt2: number; pageSize: number; frames: number; revision: string }

export function encodeWalMark(r: WalMarkRecord): Buffer {
  const b = Buffer.alloc(RECORD);
  b.write(MAGIC, 0, 'latin1');
  b.writeUInt32BE(r.salt1, 8); b.writeUInt32BE(r.salt2, 12); b.writeUInt32BE(r.pageSize, 16); b.writeUInt32BE(r.frames, 20);
  const rev = Buffer.from(r.revision.slice(0, REVISION_MAX), 'latin1');
  b.writeUInt32BE(rev.length, 24);
  rev.copy(b, 28);
  b.writeUInt32BE(crc32(b.subarray(0, RECORD - 4)), RECORD - 4);
  return b;
}

/** The record in `path`; null when there is none, or it is torn or damaged (nothing to trust). */
export function readWalMark(path: string): WalMarkRecord | null {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return null; }
  try {
    const b = readAt(fd, 0, RECORD);
    if (b.length < RECORD || b.toString('latin1', 0, 8) !== MAGIC || crc32(b.subarray(0, RECORD - 4)) !== b.readUInt32BE(RECORD - 4)) return null;
    const n = b.readUInt32BE(24);
    if (n > REVISION_MAX) return null;
    return { salt1: b.readUInt32BE(8), salt2: b.readUInt32BE(12), pageSize: b.readUInt32BE(16), frames: b.readUInt32BE(20), revision: b.toString('latin1', 28, 28 + n) };
  } catch { return null; } finally { closeSync(fd); }
}

/** The writer thread's side: follows the log's chain as commits append to it and writes the
 * record. Each call of `committed` reads only what was appended since the last one (the whole log
 * once, at the thread's first commit, and after the log starts again: only its new frames). */
export class WalMarkWriter {
  private readonly walPath: string;
  private readonly markPath: string;
  private wal: number | null = null;
  private mark: number | null = null;
  /** The log's generation followed, and where its chain was at its last commit frame. */
  private at: { salt1: number; salt2: number; pageSize: number; frames: number; sum: [number, number] } | null = null;
  private written = '';
  private buf: Buffer | null = null;

  constructor(dbPath: string) { this.walPath = dbPath + '-wal'; this.markPath = dbPath + WAL_MARK_SUFFIX; }

  /** After a commit whose fsync succeeded (`revision`: the store's revision it made, or the last
   * one known). Never throws: a record not written only leaves the check weaker. */
  committed(revision: string): void {
    // (the log unreadable: where its chain is is not known, followed again from its start next time)
    try { this.update(revision); } catch { this.at = null; }
  }

  private update(revision: string): void {
    // (the log's descriptor kept: a log deleted or replaced under the running store is refused by
    // the store — every write, StateStore.filesProblem — and a start finds no log, or another
    // generation, where this one was)
    this.wal ??= openSync(this.walPath, 'r');
    const h = walHeader(readAt(this.wal, 0, WAL_HEADER));
    if (!h.ok) { this.at = null; return; }
    let at = this.at;
    if (!at || at.salt1 !== h.salt1 || at.salt2 !== h.salt2 || at.pageSize !== h.pageSize) {
      at = this.at = { salt1: h.salt1, salt2: h.salt2, pageSize: h.pageSize, frames: 0, sum: h.seed };
    }
    // the chain from the last commit frame on, to the first frame that does not belong (the log's
    // end, a stale frame): its last commit frame is where SQLite's recovery ends. Read CHUNK frames
    // a call (a small commit's two frames and the one after them: one pread)
    const frameSize = FRAME_HEADER + h.pageSize;
    if (!this.buf || this.buf.length < CHUNK * frameSize) this.buf = Buffer.alloc(CHUNK * frameSize);
    let sum = at.sum;
    scan: for (let i = at.frames + 1; ;) {
      const b = readAt(this.wal, WAL_HEADER + (i - 1) * frameSize, CHUNK * frameSize, this.buf);
      const n = Math.floor(b.length / frameSize);
      for (let k = 0; k < n; k++, i++) {
        const f = b.subarray(k * frameSize, (k + 1) * frameSize);
        if (!frameOk(h, f, sum)) break scan;
        sum = storedChecksum(f);
        if (isCommit(f)) { at.frames = i; at.sum = sum; }
      }
      if (n < CHUNK) break;
    }
    const rec = { salt1: at.salt1, salt2: at.salt2, pageSize: at.pageSize, frames: at.frames, revision };
    const key = `${rec.salt1}:${rec.salt2}:${rec.frames}:${revision}`;
    if (key === this.written) return;
    // (opened once; O_CREAT without O_TRUNC: the record is overwritten in place, never emptied; a
    // write that fails leaves the record it had, or a torn one — the chain followed stays right)
    try {
      this.mark ??= openSync(this.markPath, constants.O_WRONLY | constants.O_CREAT, 0o600);
      writeSync(this.mark, encodeWalMark(rec), 0, RECORD, 0);
      this.written = key;
    } catch { this.written = ''; }
  }

  close(): void {
    for (const fd of [this.wal, this.mark]) { if (fd !== null) { try { closeSync(fd); } catch { /* closed */ } } }
    this.wal = this.mark = null;
  }
}
