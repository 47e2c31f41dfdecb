// A test's own reading of a SQLite write-ahead log, independent of src/state/wal-check.ts: the log's
// header salts and the frame its recovery ends at (its last commit frame that chains).
import { readFileSync } from 'node:fs';
import { checksum } from '../../dist/src/state/wal-format.js';

export function walEnd(path) {
  const b = readFileSync(path);
  const be = (b.readUInt32BE(0) & 1) === 1, page = b.readUInt32BE(8), salt1 = b.readUInt32BE(16), salt2 = b.readUInt32BE(20);
  let s = checksum(b.subarray(0, 24), be, 0, 0), last = 0;
  for (let i = 1, at = 32; at + 24 + page <= b.length; i++, at += 24 + page) {
    const f = b.subarray(at, at + 24 + page);
    if (f.readUInt32BE(8) !== salt1 || f.readUInt32BE(12) !== salt2) break;
    const x = checksum(f.subarray(24), be, ...checksum(f.subarray(0, 8), be, ...s));
    if (x[0] !== f.readUInt32BE(16) || x[1] !== f.readUInt32BE(20)) break;
    s = x;
    if (f.readUInt32BE(4) !== 0) last = i;
  }
  return { salt1, salt2, last };
}
