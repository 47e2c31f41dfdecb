// One daemon per state directory. Two daemons on one state directory would both forward on the
// same ports, write the same store, checkpoint and table images, and the second would take the
// first's API socket (a stale socket is unlinked before listening).
//
// The lock is a unix socket, `stateDir/wdp.lock`, that the holder listens on (answering each
// connection with its pid, for the error message). A start that finds the path connects to it: an
// answer means a live holder, in whatever PID or network namespace it runs (a daemon in a
// container without hostPID and one started on the host see each other: a pid in a lock file
// would not say so); a refused connection means the holder is gone — the kernel closes a killed
// process's socket (SIGKILL, a crash, OOM) — and the path is taken over. Creating it needs an
// inode, no data block, so a full disk does not keep a start from taking it. It is removed at stop.
//
// Taking a dead holder's socket over (unlink, then listen) is not atomic: two starts that both
// found it dead could each unlink and listen — the second unlinking the first's fresh socket —
// and both run. So the socket is taken (and taken over) only under a lock the kernel drops with
// its process: a POSIX record lock (fcntl) on `stateDir/wdp.lock.mutex`, held as long as the
// daemon runs — through SQLite's locking (the store's library): a write transaction opened and
// never committed on that empty file, its journal in memory (nothing written: an inode, no data block).
// The file stays (a lock file removed while another start has it open would let a third lock a
// new one). A start that finds it locked asks the socket who holds it, and waits a little for a
// holder that is being torn down (a killed process's descriptors close one by one).
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';

export const LOCK_FILE = 'wdp.lock';
/** The file whose record lock serialises taking the socket (above). */
export const MUTEX_FILE = 'wdp.lock.mutex';
/** How long a start waits for a locked mutex whose holder does not answer on the socket (one
 * being torn down, or one between taking the mutex and listening) before it refuses. */
const MUTEX_WAIT_MS = 3000;
/** sun_path holds 108 bytes with its NUL. */
const MAX_SOCKET_PATH = 107;

export class StateDirInUseError extends Error {
  constructor(message: string) { super(message); this.name = 'StateDirInUseError'; }
}

export interface StateDirLock {
  /** Set when a lock left by a holder that is gone was taken over. */
  tookOver?: true;
  /** Set when the directory could not be locked (a filesystem without unix sockets, say): the
   * start goes on, but another daemon on it would not be noticed. */
  unlocked?: string;
  release(): void;
}

function listen(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((s) => { s.on('error', () => {}); s.end(`${process.pid}\n`); });
    server.once('error', reject);
    server.listen(path, () => { server.off('error', reject); server.on('error', () => {}); server.unref(); resolve(server); });
  });
}

/** The pid a live holder answers with ('' when it said nothing), null when nothing listens. */
function holder(path: string): Promise<string | null> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    let said = '';
    const done = (v: string | null) => { clearTimeout(t); c.destroy(); resolve(v); };
    // a holder that accepts but cannot answer (stopped, overloaded) is alive all the same
    const t = setTimeout(() => done(said.trim()), 2000);
    c.on('data', (d) => { said += d; });
    c.on('end', () => done(said.trim()));
    c.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? null : said.trim()));
  });
}

/** The mutex taken: a release function; 'busy': another process (or connection) holds it; or why
 * it could not be taken at all (a read-only directory, say). */
function takeMutex(dir: string): { release(): void } | 'busy' | { error: string } {
  const path = join(dir, MUTEX_FILE);
  let db: Database.Database;
  try {
    closeSync(openSync(path, 'a', 0o600)); // (SQLite would create it with the umask's mode)
    db = new Database(path, { timeout: 0 });
  } catch (e) { return { error: (e as Error).message }; }
  try {
    // (the journal in memory: no journal file is made; OFF is refused on an empty file, and the
    // default would create wdp.lock.mutex-journal at the first page write of the transaction)
    if (String(db.pragma('journal_mode = MEMORY', { simple: true })).toLowerCase() !== 'memory') throw new Error('journal_mode MEMORY refused');
    db.exec('BEGIN IMMEDIATE');      // RESERVED: one holder at a time, dropped when the process ends
  } catch (e) {
    try { db.close(); } catch { /* closing anyway */ }
    return (e as { code?: string }).code === 'SQLITE_BUSY' ? 'busy' : { error: (e as Error).message };
  }
  return { release() { try { db.close(); } catch { /* closed */ } } };
}

/** Takes `dir`'s lock; rejects with StateDirInUseError when a live daemon holds it. */
export async function lockStateDir(dir: string): Promise<StateDirLock> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, LOCK_FILE);
  // a path longer than a socket address holds is reached through the directory's descriptor
  const dirFd = Buffer.byteLength(file) > MAX_SOCKET_PATH ? openSync(dir, 'r') : undefined;
  const path = dirFd === undefined ? file : `/proc/self/fd/${dirFd}/${LOCK_FILE}`;
  try {
    let mutex = takeMutex(dir);
    for (const end = Date.now() + MUTEX_WAIT_MS; mutex === 'busy';) {
      const pid = await holder(path);
      if (pid || Date.now() >= end) throw inUse(dir, file, pid);
      await new Promise((r) => setTimeout(r, 100));
      mutex = takeMutex(dir);
    }
    if ('error' in mutex) {
      // (no mutex: the socket alone, as before it; a second start racing this one would not be noticed)
      const l = await lockAt(dir, file, path);
      return l.unlocked ? l : { ...l, unlocked: `${MUTEX_FILE}: ${mutex.error}` };
    }
    const held = mutex;
    try {
      const l = await lockAt(dir, file, path);
      return { ...l, release() { l.release(); held.release(); } };
    } catch (e) { held.release(); throw e; }
  } finally { if (dirFd !== undefined) closeSync(dirFd); }
}

function inUse(dir: string, file: string, pid: string | null): StateDirInUseError {
  const who = pid ? `pid ${pid} in its PID namespace; its lock ${file} answers` : pid === '' ? `it did not say its pid; its lock ${file} answers` : `its lock ${join(dir, MUTEX_FILE)} is held`;
  return new StateDirInUseError(`the state directory ${dir} is in use by another wdp (${who}); stop it first, or give this one another stateDir`);
}

async function lockAt(dir: string, file: string, path: string): Promise<StateDirLock> {
  let tookOver = false;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const server = await listen(path);
      let released = false;
      return {
        ...(tookOver ? { tookOver: true as const } : {}),
        release() {
          if (released) return;
          released = true;
          server.close();
          try { unlinkSync(file); } catch { /* gone */ }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') return { unlocked: (e as Error).message, release() {} };
    }
    let pid = await holder(path);
    // a holder that accepted without answering may be one being torn down (a killed process's
    // threads exit one by one; its socket closes with the last): asked again, a gone one refuses
    for (let again = 0; pid === '' && again < 3; again++) {
      await new Promise((r) => setTimeout(r, 250));
      pid = await holder(path);
    }
    if (pid !== null) throw inUse(dir, file, pid);
    tookOver = true;
    try { unlinkSync(file); } catch (e) {
      // a dead holder's lock on a directory nothing can be written to (read-only, no permission):
      // nobody can take it over, nor write the state there — the start goes on unlocked, and its
      // store says what is wrong with the directory
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return { unlocked: `a dead wdp's lock ${file} cannot be removed: ${(e as Error).message}`, release() {} };
      /* removed meanwhile */
    }
  }
  throw new StateDirInUseError(`the state directory ${dir} could not be locked (${file} keeps coming back: something there that is not a live wdp's socket cannot be removed)`);
}
