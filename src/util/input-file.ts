// Files (and stdin) the CLI and the daemon's start read client input from — manifests, a port, the
// config file, a capture to replay — read within a size bound: `wdp apply -f /dev/zero` (or a FIFO that never ends, or
// a multi-GB file given by mistake) grew the process by ~300 MB a second until V8 gave up. A
// regular file larger than the bound is refused from its size, before a byte is read; anything
// else (stdin, a FIFO, a device) is read until the bound is passed.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Why an input file could not be read; the message names it. */
export class InputFileError extends Error {
  constructor(message: string) { super(message); this.name = 'InputFileError'; }
}

const CHUNK = 1 << 20;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** The text of `path` ("-" or 0: stdin), at most `maxBytes` bytes, as UTF-8. `name` names it in
 * errors (default: the path, or <stdin>). */
export function readInputFile(path: string | 0, maxBytes: number, name = path === 0 || path === '-' ? '<stdin>' : path): string {
  return readInputBytes(path, maxBytes, name).toString('utf8');
}

/** The bytes of `path`, as readInputFile reads them. */
export function readInputBytes(path: string | 0, maxBytes: number, name = path === 0 || path === '-' ? '<stdin>' : path): Buffer {
  const stdin = path === 0 || path === '-';
  let fd: number;
  try { fd = stdin ? 0 : openSync(path, 'r'); } catch (e) { throw new InputFileError(`cannot read ${name}: ${codeOf(e)}`); }
  try {
    let st;
    try { st = fstatSync(fd); } catch (e) { throw new InputFileError(`cannot read ${name}: ${codeOf(e)}`); }
    if (st.isDirectory()) throw new InputFileError(`cannot read ${name}: EISDIR`);
    if (st.isFile() && st.size > maxBytes) throw new InputFileError(tooLarge(name, maxBytes));
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK);
      let n: number;
      try { n = readSync(fd, buf, 0, CHUNK, null); } catch (e) {
        // a non-blocking stdin (some terminals and pipes) has nothing yet: wait for it
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') { Atomics.wait(sleeper, 0, 0, 10); continue; }
        throw new InputFileError(`cannot read ${name}: ${codeOf(e)}`);
      }
      if (n === 0) break;
      total += n;
      if (total > maxBytes) throw new InputFileError(tooLarge(name, maxBytes));
      chunks.push(n === CHUNK ? buf : buf.subarray(0, n));
    }
    return Buffer.concat(chunks, total);
  } finally {
    if (!stdin) closeSync(fd);
  }
}

function tooLarge(name: string, maxBytes: number): string {
  return `${name}: larger than ${maxBytes >= 1 << 20 ? `${maxBytes / (1 << 20)} MiB` : `${maxBytes} bytes`}: refused (is it the file you meant?)`;
}

function codeOf(e: unknown): string { return (e as NodeJS.ErrnoException).code ?? (e as Error).message; }
