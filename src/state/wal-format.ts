// SQLite's write-ahead log format, as much of it as the store reads itself: the log's header and
// the checksum chain its frames carry (https://www.sqlite.org/fileformat.html, "The Write-Ahead
// Log"). Shared by the check at open (wal-check.ts) and the commit record the writer thread keeps
// (wal-mark.ts).
import { readSync } from 'node:fs';
import { endianness } from 'node:os';

export const WAL_HEADER = 32;
export const FRAME_HEADER = 24;

const LE_HOST = endianness() === 'LE';

/** SQLite's WAL checksum over `b` (a multiple of 8 bytes), from (s1, s2). */
export function checksum(b: Uint8Array, bigEndian: boolean, s1: number, s2: number): [number, number] {
  // (in int32 arithmetic, `| 0`, converted at the end: the same sums modulo 2^32, ~4x faster than
  // `>>> 0` on uint32 values, whose sums V8 keeps as doubles — a 16 KiB page ~4 µs instead of ~16)
  s1 |= 0; s2 |= 0;
  if (bigEndian !== LE_HOST && b.byteOffset % 4 === 0) {
    // the words in this host's order: read as they lie (a 13 MB write's frames are read back after
    // its commit, wal-mark.ts)
    const w = new Int32Array(b.buffer, b.byteOffset, b.length >> 2);
    for (let i = 0; i < w.length; i += 2) {
      s1 = (s1 + w[i] + s2) | 0;
      s2 = (s2 + w[i + 1] + s1) | 0;
    }
  } else {
    const v = new DataView(b.buffer, b.byteOffset, b.length);
    const le = !bigEndian;
    for (let i = 0; i < b.length; i += 8) {
      s1 = (s1 + v.getInt32(i, le) + s2) | 0;
      s2 = (s2 + v.getInt32(i + 4, le) + s1) | 0;
    }
  }
  return [s1 >>> 0, s2 >>> 0];
}

/** `len` bytes of `fd` at `pos` into `into` (or a new buffer); fewer at the file's end. */
export function readAt(fd: number, pos: number, len: number, into?: Buffer): Buffer {
  const b = into && into.length >= len ? into.subarray(0, len) : Buffer.alloc(len);
  let got = 0;
  while (got < len) { const n = readSync(fd, b, got, len - got, pos + got); if (n === 0) break; got += n; }
  return got === len ? b : b.subarray(0, got);
}

/** A log's header, read from its first WAL_HEADER bytes `h`. */
export interface WalHeader {
  /** Its magic number, checksum and fields are what SQLite writes. */
  ok: boolean;
  bigEndian: boolean;
  pageSize: number;
  salt1: number;
  salt2: number;
  /** The header's checksum: the seed of the first frame's. */
  seed: [number, number];
}

export function walHeader(h: Buffer): WalHeader {
  const magic = h.readUInt32BE(0), pageSize = h.readUInt32BE(8);
  const bigEndian = (magic & 1) === 1;
  const seed = checksum(h.subarray(0, 24), bigEndian, 0, 0);
  const ok = (magic & ~1) === 0x377f0682 && h.readUInt32BE(4) === 3007000 && pageSize >= 512 && pageSize <= 65536 &&
    (pageSize & (pageSize - 1)) === 0 && seed[0] === h.readUInt32BE(24) && seed[1] === h.readUInt32BE(28);
  return { ok, bigEndian, pageSize, salt1: h.readUInt32BE(16), salt2: h.readUInt32BE(20), seed };
}

/** Whether frame `f` (its header, then its page) belongs to the log `h` heads and its checksum
 * holds from `from` (the checksum of the frame before it, or the header's). */
export function frameOk(h: WalHeader, f: Buffer, from: [number, number]): boolean {
  if (f.readUInt32BE(8) !== h.salt1 || f.readUInt32BE(12) !== h.salt2 || f.readUInt32BE(0) === 0) return false;
  const x = checksum(f.subarray(FRAME_HEADER), h.bigEndian, ...checksum(f.subarray(0, 8), h.bigEndian, ...from));
  return x[0] === f.readUInt32BE(16) && x[1] === f.readUInt32BE(20);
}

/** Frame `f`'s stored checksum. */
export function storedChecksum(f: Buffer): [number, number] { return [f.readUInt32BE(16), f.readUInt32BE(20)]; }

/** Whether frame `f` ends a transaction (its header holds the database's size after the commit). */
export function isCommit(f: Buffer): boolean { return f.readUInt32BE(4) !== 0; }
