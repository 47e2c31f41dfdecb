// Writing a file so that a crash leaves the old one or the new one, never a mix: `<name>.tmp` is
// written and fsynced, renamed over `<name>`, and the directory is fsynced (the rename itself
// durable). Mode 0600: what wdp keeps in its state directory names the node's services and flows.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Writes `buf` to dir/name atomically; returns its size. Throws on any failure (the old file
 * stays, the tmp is removed). */
export function writeFileAtomic(dir: string, name: string, buf: Uint8Array): number {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, name), tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    try {
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally { closeSync(fd); }
    renameSync(tmp, file);
  } catch (e) {
    // a failed write leaves nothing: a partial tmp on a full disk would hold the space the other
    // files of the directory (the store's) need until the next write of this one
    try { unlinkSync(tmp); } catch { /* never created, or gone */ }
    throw e;
  }
  try { const d = openSync(dir, 'r'); try { fsyncSync(d); } finally { closeSync(d); } } catch { /* directory fsync unsupported: best effort */ }
  return buf.length;
}
