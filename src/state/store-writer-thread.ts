// The store writer thread's entry (src/state/store-writer.ts starts it): the store's only writing
// better-sqlite3 connection, in locking_mode=EXCLUSIVE (the wal-index in its heap: no mapped
// state.db-shm, whose read error on a failing disk would be SIGBUS). A small write is one `write`
// request (its rows, then COMMIT); `probe` writes the health probe's row, `revision` reads the
// revision row. A large write's row inserts run here while the main thread compiles the same
// change: it is two steps, so nothing of it is durable before the main
// thread says so: `stage` opens a write transaction and inserts the rows (not committed: a crash
// or a `rollback` discards them), `commit` makes it durable (synchronous=FULL: the WAL is fsynced
// before the answer), `rollback` drops it. Every failure is answered, and leaves no transaction
// open. After answering a commit, the thread copies the WAL into the database file (a passive
// checkpoint: a large write's ~13 MB, ~20–100 ms that the main thread would otherwise spend), and
// `checkpoint` does the same for the main thread's own (small) commits when it asks.
// `open` (StoreWriterThread.prestart) only opens the connection ahead of the first write.
// After answering a request that committed (a write, a commit, the probe), the thread writes the
// commit record (state.db-walmark, wal-mark.ts): how far the log was committed, which the check at
// the next open compares the log with (wal-check.ts) — no fsync, no time in the commit's answer
// (~35 µs of this thread's CPU a one-row commit, once the requests queued meanwhile are answered).
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { checkFree, DELETE_OBJECT_SQL, SET_META_SQL, setWriteSettings, STORED_KINDS, tooFull, UPSERT_OBJECT_BYTES_SQL, UPSERT_OBJECT_SQL } from './store-sql.js';
import { WalMarkWriter } from './wal-mark.js';
import { SYNC_ANSWERED, SYNC_STOPPED, THREAD_LOST_REQUEST, type WriteRows, type WriterData, type WriterReply, type WriterRequest } from './store-writer.js';

const settings = workerData as WriterData;
const port = parentPort!;
let db: Database.Database;
let up: Database.Statement<[string, string, string, number]>;
let upBytes: Database.Statement<[string, string, Uint8Array, number]>;
let del: Database.Statement<[string, string]>;
let setMeta: Database.Statement<[string, string]>;
const mark = new WalMarkWriter(settings.path);
/** The store's revision as of the last commit answered, and the one a staged write will make. */
let revision = '';
let stagedRevision = '';

/** The revision row a write's meta rows set ('' when none). */
const revisionOf = (m: WriteRows): string => m.meta.find(([k]) => k === 'revision')?.[1] ?? '';

/** A commit record to write (a commit answered since the last one was written). */
let markDue = false;

/** After the answer to `m`: when `m` committed, the commit record is brought up to date once the
 * requests already queued are answered (setImmediate: after this turn's messages) — commits back
 * to back do not wait for it, and one record covers them all. Written at once before any other
 * request (a peek, the revision read, a checkpoint, the close): what follows a write in this
 * thread sees its record written. */
function afterAnswer(m: WriterRequest, reply: WriterReply): void {
  if (!reply.ok || (m.op !== 'write' && m.op !== 'commit' && m.op !== 'probe')) return;
  if (markDue) return;
  markDue = true;
  setImmediate(writeMark);
}

function writeMark(): void {
  if (!markDue) return;
  markDue = false;
  mark.committed(revision);
}

/** Opens the connection; `db` is set only once it is ready (a failure part-way leaves it unset and
 * the connection closed, so the next request opens it again instead of using a half-made one). */
function open(): void {
  const c = new Database(settings.path, { fileMustExist: true });
  try {
    c.pragma(`busy_timeout = ${settings.busyTimeoutMs}`);
    // (before the first read, which opens the WAL: the wal-index in this connection's heap, the
    // database locked for this connection alone; and no mapping of the database file either)
    c.pragma('locking_mode = EXCLUSIVE');
    c.pragma('mmap_size = 0');
    c.pragma('journal_mode = WAL');
    // (this thread checkpoints after answering a commit: below)
    setWriteSettings(c, settings.cacheKiB);
    up = c.prepare(UPSERT_OBJECT_SQL);
    upBytes = c.prepare(UPSERT_OBJECT_BYTES_SQL);
    del = c.prepare(DELETE_OBJECT_SQL);
    setMeta = c.prepare(SET_META_SQL);
  } catch (e) {
    try { c.close(); } catch { /* closing anyway */ }
    throw e;
  }
  db = c;
}

function dropTransaction(): void {
  if (db?.inTransaction) { try { db.exec('ROLLBACK'); } catch { /* rolled back already */ } }
}

/** The main thread's commits copied into the database file here, off its event loop (PASSIVE: its
 * commits go on meanwhile). Never touches a staged write (the main thread asks between applies). */
function checkpoint(id: number): WriterReply {
  try {
    if (!db) open();
    if (db.inTransaction) return { id, ok: false, error: 'a staged write is open: no checkpoint now' };
    checkFree(settings.path);
    // rows: the frames in the WAL when the checkpoint began (since it last started again);
    // bytes: how many of those it left uncopied (a reader held them) — at least 1 when it could not
    // run (busy: another connection's checkpoint held the lock; log and checkpointed are -1 then)
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    const log = Math.max(0, r?.log ?? 0);
    const left = !r || r.busy || r.log < 0 ? Math.max(1, log) : Math.max(0, r.log - r.checkpointed);
    return { id, ok: true, rows: log, bytes: left };
  } catch (e) { return { id, ok: false, error: (e as Error).message }; }
}

function handle(m: Exclude<WriterRequest, { op: 'close' }>): WriterReply {
  if (m.op !== 'write' && m.op !== 'stage' && m.op !== 'commit' && m.op !== 'probe') writeMark();
  if (m.op === 'checkpoint') return checkpoint(m.id);
  try {
    if (m.op === 'open') {
      if (!db) open();
      return { id: m.id, ok: true, rows: 0, bytes: 0 };
    }
    if (m.op === 'stage' || m.op === 'write') {
      if (!db) open();
      dropTransaction(); // (never open here: a stage follows a commit or rollback)
      checkFree(settings.path);
      db.exec('BEGIN IMMEDIATE');
      const { rows, bytes } = insert(m);
      stagedRevision = revisionOf(m) || revision;
      if (m.op === 'write') { db.exec('COMMIT'); revision = stagedRevision; }
      return { id: m.id, ok: true, rows, bytes };
    }
    if (m.op === 'probe') {
      if (!db) open();
      checkFree(settings.path);
      setMeta.run('probe', new Date().toISOString());
      return { id: m.id, ok: true, rows: 1, bytes: 0 };
    }
    if (m.op === 'peek') {
      if (!db) open();
      // (never inside a staged write: its rows are not committed)
      if (db.inTransaction) throw new Error('a staged write is open: its outcome is not known yet');
      return db.transaction(() => {
        const rev = db.prepare('SELECT value FROM meta WHERE key = ?').get('revision') as { value: string } | undefined;
        const row = db.prepare('SELECT body, crc FROM objects WHERE kind = ? AND key = ?').get('NodeConfig', '') as { body: unknown; crc: number } | undefined;
        return { id: m.id, ok: true as const, rows: 0, bytes: 0, value: rev?.value ?? null, body: typeof row?.body === 'string' ? row.body : null, crc: row?.crc };
      })();
    }
    if (m.op === 'revision') {
      if (!db) open();
      const row = db.prepare('SELECT value FROM meta WHERE key = ?').get('revision') as { value: string } | undefined;
      return { id: m.id, ok: true, rows: 0, bytes: 0, value: row?.value ?? null };
    }
    if (m.op === 'commit') {
      if (!db?.inTransaction) throw new Error('no staged write to commit');
      checkFree(settings.path);
      db.exec('COMMIT');
      revision = stagedRevision;
      return { id: m.id, ok: true, rows: 0, bytes: 0 };
    }
    dropTransaction();
    return { id: m.id, ok: true, rows: 0, bytes: 0 };
  } catch (e) {
    // a failed insert or COMMIT (I/O error, lock) may leave the transaction open: nothing stays
    dropTransaction();
    const code = (e as { code?: unknown }).code;
    return { id: m.id, ok: false, error: (e as Error).message, ...(typeof code === 'string' ? { code } : {}) };
  }
}

/** A write's rows inserted (upserted, removed) in the open transaction. */
function insert(m: WriteRows): { rows: number; bytes: number } {
  let bytes = 0, own = 0, keyStart = 0;
  const { kinds, keys, keyEnds, bodies, starts, ends, text } = m;
  for (let i = 0; i < kinds.length; i++) {
    const kind = STORED_KINDS[kinds[i]], key = keys.slice(keyStart, keyEnds[i]);
    keyStart = keyEnds[i];
    if (starts[i] >= 0 && typeof text !== 'string') {
      // the row's bytes as they are (UTF-8: their CRC-32 is that of the text a read returns)
      const body = text.subarray(starts[i], ends[i]);
      bytes += body.length;
      upBytes.run(kind, key, body, crc32(body));
      continue;
    }
    const body = starts[i] < 0 ? bodies[own++] : (text as string).slice(starts[i], ends[i]);
    bytes += body.length;
    up.run(kind, key, body, crc32(body));
  }
  for (let i = 0; i < m.removeKinds.length; i++) del.run(m.removeKinds[i], m.removeKeys[i]);
  for (const [k, v] of m.meta) setMeta.run(k, v);
  return { rows: kinds.length + m.removeKinds.length, bytes };
}

// The store's synchronous requests (StoreWriterThread.requestSync): answered on their own port,
// then the main thread, blocked on the flag, is woken.
// (absent when the module runs in a thread started otherwise: a test's)
const syncPort = settings.syncPort as MessagePort | undefined;
const syncFlag = settings.syncFlag as Int32Array | undefined;
if (syncPort && syncFlag) {
  syncPort.on('message', (m: WriterRequest) => {
    if (m.op === 'close') return;
    const reply = handle(m);
    syncPort.postMessage(reply);
    Atomics.store(syncFlag, 0, SYNC_ANSWERED);
    Atomics.notify(syncFlag, 0);
    afterAnswer(m, reply);
  });
  process.on('exit', () => { Atomics.store(syncFlag, 0, SYNC_STOPPED); Atomics.notify(syncFlag, 0); });
}

port.on('message', (m: WriterRequest) => {
  if (m.op === 'close') { writeMark(); dropTransaction(); try { db?.close(); } catch { /* closed */ } mark.close(); port.close(); syncPort?.close(); return; }
  const reply = handle(m);
  port.postMessage(reply);
  afterAnswer(m, reply);
  if (m.op === 'commit' && m.checkpoint && reply.ok) {
    // harmless when it fails or stops short: the WAL keeps the data, the next checkpoint copies it
    if (!tooFull(settings.path)) { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* retried by a later checkpoint */ } }
    // the page cache filled by the write (~13 MB at 10k × 10) is not needed until the next one
    try { db.pragma('shrink_memory'); } catch { /* only memory */ }
  }
});
// A request that cannot be deserialised: which one it was (a stage, a commit, a rollback) is not
// known here, and its sender waits for an answer. The thread drops any staged write, says why, and
// exits: the main thread then rejects every request in flight and starts a new thread for the next
// write (store-writer.ts).
const lost = (e: Error) => {
  dropTransaction();
  try { db?.close(); } catch { /* closed */ }
  port.postMessage({ id: THREAD_LOST_REQUEST, ok: false, error: `a request to the thread could not be read: ${e.message}` } satisfies WriterReply);
  process.exit(1);
};
port.on('messageerror', lost);
syncPort?.on('messageerror', lost);
