// The store's write-ahead log checked before SQLite opens it. SQLite reads a WAL up to its first
// frame that fails its checksum and silently ignores the rest: a torn last write after a crash
// (never acknowledged) reads the same as a damaged frame in the middle of the log — and then every
// commit after it, acknowledged, is dropped without a word (the store would start with an older
// state). So before the open this reads the log the way SQLite's recovery does and refuses it
// (StateError, nothing changed) when committed data past the damage can be proven:
//
// * its header is damaged while frames follow it (SQLite would ignore the whole log);
// * after the first bad frame, a commit frame whose own checksum holds (computed from the stored
//   checksum of the frame before it) is followed by more such frames, or two such commit frames
//   exist: a whole transaction was written after the damaged one. A torn tail — the one
//   transaction in flight at a crash, unacknowledged — has at most its own commit frame, last;
// * the wal-index (`state.db-shm`, what the last process left of it) records more committed
//   frames of this log than the readable prefix holds: a log cut short or damaged in its last
//   transaction, after that transaction was durable (the index is updated only after the log's
//   fsync). A missing, stale (other salts) or damaged index says nothing.
//
// File formats: https://www.sqlite.org/fileformat.html ("The Write-Ahead Log", "WAL-Index Format").
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';

const WAL_HEADER = 32;
const FRAME_HEADER = 24;
const SHM_HEADER = 136;

/** SQLite's WAL checksum over `b` (a multiple of 8 bytes), from (s1, s2). */
function checksum(b: Buffer, bigEndian: boolean, s1: number, s2: number): [number, number] {
  for (let i = 0; i < b.length; i += 8) {
    const x0 = bigEndian ? b.readUInt32BE(i) : b.readUInt32LE(i);
    const x1 = bigEndian ? b.readUInt32BE(i + 4) : b.readUInt32LE(i + 4);
    s1 = (s1 + x0 + s2) >>> 0;
    s2 = (s2 + x1 + s1) >>> 0;
  }
  return [s1, s2];
}

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  let got = 0;
  while (got < len) { const n = readSync(fd, b, got, len - got, pos + got); if (n === 0) break; got += n; }
  return got === len ? b : b.subarray(0, got);
}

/** What is wrong with `walPath` that SQLite would not say (null: nothing it can prove). Reads the
 * file (and `shmPath`) only; never throws for a file it cannot read (the open reports that).
 * `shmPath` null: the index is not read — as while a connection of this process has the store
 * open (closing a descriptor of the index drops every POSIX lock the process holds on it). */
export function walProblem(walPath: string, shmPath: string | null): string | null {
  if (!existsSync(walPath)) return null;
  let fd: number;
  try { fd = openSync(walPath, 'r'); } catch { return null; }
  try {
    const size = fstatSync(fd).size;
    if (size < WAL_HEADER) return null;
    const h = readAt(fd, 0, WAL_HEADER);
    const magic = h.readUInt32BE(0), pageSize = h.readUInt32BE(8);
    const bigEndian = (magic & 1) === 1;
    const [c1, c2] = checksum(h.subarray(0, 24), bigEndian, 0, 0);
    const frameSize = FRAME_HEADER + pageSize;
    const headerOk = (magic & ~1) === 0x377f0682 && h.readUInt32BE(4) === 3007000 && pageSize >= 512 && pageSize <= 65536 &&
      (pageSize & (pageSize - 1)) === 0 && c1 === h.readUInt32BE(24) && c2 === h.readUInt32BE(28);
    if (!headerOk) {
      return size >= WAL_HEADER + FRAME_HEADER + 512 ? `its header is damaged (SQLite would ignore all ${size} bytes of it)` : null;
    }
    const salt1 = h.readUInt32BE(16), salt2 = h.readUInt32BE(20);
    const frames = Math.floor((size - WAL_HEADER) / frameSize);
    // the readable prefix, as SQLite's recovery reads it
    let s: [number, number] = [c1, c2];
    let lastCommit = 0, brokeAt = 0;
    const stored: Array<[number, number]> = [];
    const frameOk = (fh: Buffer, page: Buffer, from: [number, number]): boolean => {
      if (fh.readUInt32BE(8) !== salt1 || fh.readUInt32BE(12) !== salt2 || fh.readUInt32BE(0) === 0) return false;
      const x = checksum(page, bigEndian, ...checksum(fh.subarray(0, 8), bigEndian, ...from));
      return x[0] === fh.readUInt32BE(16) && x[1] === fh.readUInt32BE(20);
    };
    for (let i = 1; i <= frames; i++) {
      const f = readAt(fd, WAL_HEADER + (i - 1) * frameSize, frameSize);
      const fh = f.subarray(0, FRAME_HEADER);
      stored[i] = [fh.readUInt32BE(16), fh.readUInt32BE(20)];
      if (brokeAt === 0) {
        if (frameOk(fh, f.subarray(FRAME_HEADER), s)) {
          s = stored[i];
          if (fh.readUInt32BE(4) !== 0) lastCommit = i;
          continue;
        }
        brokeAt = i;
        continue;
      }
    }
    if (brokeAt) {
      // frames after the break that check out from their predecessor's stored checksum
      const commitsAfter: number[] = [];
      let lastValid = 0;
      for (let i = brokeAt + 1; i <= frames; i++) {
        const f = readAt(fd, WAL_HEADER + (i - 1) * frameSize, frameSize);
        if (!frameOk(f.subarray(0, FRAME_HEADER), f.subarray(FRAME_HEADER), stored[i - 1])) continue;
        lastValid = i;
        if (f.readUInt32BE(4) !== 0) commitsAfter.push(i);
      }
      if (commitsAfter.length >= 2 || (commitsAfter.length === 1 && lastValid > commitsAfter[0])) {
        return `frame ${brokeAt} of ${frames} fails its checksum, and ${commitsAfter.length} committed transaction${commitsAfter.length > 1 ? 's' : ''} follow${commitsAfter.length > 1 ? '' : 's'} it (SQLite would drop them silently)`;
      }
    }
    const idx = shmPath === null ? null : shmHeader(shmPath);
    if (idx && idx.salt1 === salt1 && idx.salt2 === salt2 && idx.mxFrame > lastCommit) {
      const why = brokeAt ? `frame ${brokeAt} fails its checksum` : `the log ends after frame ${frames}`;
      return `its index (${shmPath}) records ${idx.mxFrame} committed frames, but only ${lastCommit} can be read: ${why} (SQLite would drop the commits after it silently)`;
    }
    return null;
  } finally { closeSync(fd); }
}

/** The wal-index header's committed frame count and salts, when both of its copies agree and
 * its checksum holds; null otherwise (no file, or nothing to trust in it). */
function shmHeader(path: string): { mxFrame: number; salt1: number; salt2: number } | null {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return null; }
  try {
    const b = readAt(fd, 0, SHM_HEADER);
    if (b.length < SHM_HEADER || !b.subarray(0, 48).equals(b.subarray(48, 96))) return null;
    // the index is in the writing host's byte order; its checksum too
    const le = endianness() === 'LE';
    const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    if (u32(0) !== 3007000 || b[12] !== 1) return null;
    const [k1, k2] = checksum(b.subarray(0, 40), !le, 0, 0);
    if (k1 !== u32(40) || k2 !== u32(44)) return null;
    // the salts are the log header's bytes, copied as they are (big-endian)
    return { mxFrame: u32(16), salt1: b.readUInt32BE(32), salt2: b.readUInt32BE(36) };
  } finally { closeSync(fd); }
}
