// SQLite's wal-index (state.db-shm) is a shared memory mapping of a file. The first connection of
// any process to attach it truncates the file and extends it one byte per 4 KiB page
// (unixShmMap), then rebuilds the index in the mapping from the WAL. On a filesystem whose blocks
// are smaller than that step (ext4 under 512 MiB: 1 KiB blocks) most of each page is then a
// hole, and the first write to one needs blocks: with none left the kernel kills the process with
// SIGBUS — no error SQLite could return. A free-space check before the attach narrows that to the
// milliseconds after it, which another process can fill.
//
// (Only the start's read-only connections map the index — the peek of the store's revision and
// the check and read of open(): the store's writing connection keeps its index in its heap,
// locking_mode=EXCLUSIVE, store-writer-thread.ts.)
//
// So on such a filesystem the first attach is made by another process, the index holder
// (index-holder-child.ts): it attaches, writes the index file out whole and answers `ready`,
// keeping its connection open. This process's connections then find the index attached (SQLite's
// read lock on the file, held by the holder) and do not truncate it: every page of it has its
// blocks (StateStore.indexAhead keeps it so as the WAL grows). A fault kills the holder, and the open fails with an error. The holder ends
// when released (its stdin closed), or with this process. On a filesystem whose blocks are 4 KiB
// or larger, each step SQLite extends has its block or the write that extends it fails (ENOSPC,
// an error): no holder is needed.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';

/** SQLite extends an index file one byte per this many bytes (unixShmMap: a constant, whatever
 * the memory page size). */
const SHM_STEP = 4096;

/** Whether SQLite can leave holes in an index file in `dir`: its filesystem's blocks are smaller
 * than SQLite's step (a larger memory page is made of whole steps, each with its block); false
 * when that cannot be told. */
export function indexHolesPossible(dir: string): boolean {
  try { return statfsSync(dir).bsize < SHM_STEP; } catch { return false; }
}

const HOLDER = new URL('./index-holder-child.js', import.meta.url).pathname;
const WAIT_MS = 20_000;
const holders = new Map<string, { child: ChildProcess; timer: NodeJS.Timeout | null }>();

/** Makes sure the wal-index of `dbPath` is attached by a holder process (when its filesystem can
 * leave holes in it: indexHolesPossible), starting one if none holds it, and waits for it.
 * `indexBytes`: the index file's size the holder writes out. `releaseAfterMs`: the holder is
 * released then unless releaseIndex is called first (a peek that an open follows). Throws an
 * Error naming why the holder could not make the index (its fault, its error); nothing of the
 * store was changed but the index, which SQLite makes afresh at the next first attach. */
export function holdIndex(dbPath: string, indexBytes: number, releaseAfterMs = 0): void {
  const held = holders.get(dbPath);
  if (held && alive(held.child)) { if (held.timer) clearTimeout(held.timer); held.timer = null; }
  else {
    if (!indexHolesPossible(dirname(dbPath))) return;
    const child = startHolder(dbPath, indexBytes);
    if (!child) return; // (no process could be started: the attach is this process's own, as before)
    holders.set(dbPath, { child, timer: null });
  }
  if (releaseAfterMs > 0) { const h = holders.get(dbPath)!; h.timer = setTimeout(() => releaseIndex(dbPath), releaseAfterMs); h.timer.unref(); }
}

/** Whether the holder still runs (read from /proc: its exit is not seen while this thread is busy). */
function alive(child: ChildProcess): boolean {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return false;
  try {
    const fd = openSync(`/proc/${child.pid}/stat`, 'r');
    try {
      const b = Buffer.alloc(512);
      const s = b.toString('latin1', 0, readSync(fd, b, 0, b.length, 0));
      return !/^\S+ \(.*\) [ZX]/s.test(s);
    } finally { closeSync(fd); }
  } catch { return false; }
}

/** Starts the holder and waits for its answer; null when no process could be started at all (the
 * spawn failed: no pid). */
function startHolder(dbPath: string, indexBytes: number): ChildProcess | null {
  let child: ChildProcess;
  try { child = spawn(process.execPath, [HOLDER, dbPath, String(indexBytes)], { stdio: ['pipe', 'pipe', 'ignore'] }); } catch { return null; }
  if (!child.pid) { child.on('error', () => undefined); return null; }
  child.unref();
  (child.stdin as unknown as { unref(): void }).unref();
  const out = child.stdout as unknown as { _handle?: { fd?: number }; destroy(): void };
  const fd = out._handle?.fd;
  let line = '';
  try {
    if (typeof fd !== 'number' || fd < 0) throw new Error('its answer cannot be read (no pipe descriptor)');
    // (synchronous: the store opens synchronously. The pipe is non-blocking: EAGAIN until it answers;
    // end of file when it ended without answering)
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    const b = Buffer.alloc(4096);
    const end = Date.now() + WAIT_MS;
    for (;;) {
      let n: number;
      try { n = readSync(fd, b, 0, b.length, null); } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        if (Date.now() > end) throw new Error(`it did not answer within ${WAIT_MS / 1000} s`);
        Atomics.wait(sleeper, 0, 0, 2);
        continue;
      }
      if (n === 0) throw new Error('it ended without answering (killed: a write to the index that finds no free block ends a process with SIGBUS)');
      line += b.toString('utf8', 0, n);
      if (line.includes('\n')) break;
    }
    line = line.slice(0, line.indexOf('\n'));
    if (line !== 'ready') throw new Error(line.replace(/^error /, ''));
  } catch (e) {
    child.kill('SIGKILL');
    out.destroy();
    throw new Error(`the index holder could not attach ${dbPath}-shm: ${(e as Error).message}`);
  }
  out.destroy();
  return child;
}

/** Holders released and maybe not gone yet, by database path (waitReleased). */
const released = new Map<string, ChildProcess[]>();

/** Ends the holder of `dbPath`'s index, if any (once the start's read-only connections are done). */
export function releaseIndex(dbPath: string): void {
  const h = holders.get(dbPath);
  if (!h) return;
  holders.delete(dbPath);
  if (h.timer) clearTimeout(h.timer);
  h.child.stdin?.destroy();
  released.set(dbPath, [...(released.get(dbPath) ?? []), h.child]);
}

/** Waits (this thread blocked, up to `waitMs`, then kills it) until the holders released for
 * `dbPath` are gone: their connection holds a shared lock on the database, which the store's
 * exclusive writing connection cannot open beside. Usually done already (a holder exits within
 * milliseconds of its release; the writer thread opens later). */
export function waitReleased(dbPath: string, waitMs = 3000): void {
  const children = released.get(dbPath);
  if (!children) return;
  released.delete(dbPath);
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + waitMs;
  for (const child of children) {
    while (alive(child) && Date.now() < end) Atomics.wait(sleeper, 0, 0, 2);
    if (alive(child)) child.kill('SIGKILL');
  }
}
