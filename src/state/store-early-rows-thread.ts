// The store writer thread's side of early rows (src/state/store-early-rows.ts): a large apply's
// rows, sent while its body arrives, inserted into a scratch database attached to the thread's
// connection (':memory:', schema `wdp_early`), each chunk in a transaction of the scratch alone —
// the store's own database is neither locked nor written. The apply's stage then copies them into
// the store in its transaction when its rows are exactly the batch's (takeEarly), and the scratch
// is detached (its memory freed) once that stage is committed or rolled back, when a newer batch
// begins, or when no stage came for it within EARLY_IDLE_MS.
//
// What it saves the compile's stretch: the stage's inserts of 20k rows (~50 ms of this thread's
// CPU on a quiet machine, ~100 ms in a loaded daemon) become one INSERT … SELECT in key order
// (~17 ms measured apart); what it costs: the scratch inserts (~50 ms) in the upload's stretch.
import type Database from 'better-sqlite3';
import { crc32 } from 'node:zlib';
import type { EarlyChunk } from './store-early-rows.js';
import { STORED_KINDS } from './store-sql.js';

const SCHEMA = 'wdp_early';
/** A batch no stage took within this long is dropped (an apply refused, a dry run, a client gone). */
const EARLY_IDLE_MS = 30_000;

/** The batch in the scratch (-1: none), and what it holds: row i's kind code, its key (all keys
 * joined, as a stage sends them), its place in the body; `failed`: a chunk could not be inserted
 * (the batch then matches no stage). */
let batch = -1;
let attached = false;
let failed = false;
let kinds: number[] = [];
let keys = '';
let starts: number[] = [];
let ends: number[] = [];
let bytes = 0;
/** Whether a stage took (or was offered and refused) the batch: dropped after its commit or rollback. */
let offered = false;
/** Chunks that came while a stage's transaction was open (inserted into the scratch then, they
 * would be part of that transaction and go with its rollback): inserted before the next stage. */
const queued: EarlyChunk[] = [];
let ins: Database.Statement<[string, string, Uint8Array, number]> | null = null;
let idle: NodeJS.Timeout | null = null;
/** Whether the connection's open transaction is the scratch's own (it wrote the scratch only). */
let scratchTx = false;

/** Ends the scratch's transaction (before any other request: it then finds the connection as it
 * always did). A COMMIT of the scratch alone: the store is not written, nothing is synced. */
export function closeScratch(db: Database.Database | undefined): void {
  if (!scratchTx) return;
  scratchTx = false;
  if (!db?.inTransaction) return;
  try { db.exec('COMMIT'); } catch {
    failed = true;
    try { db.exec('ROLLBACK'); } catch { /* rolled back */ }
  }
}

/** Drops the scratch (outside a transaction only: DETACH refuses inside one). */
function drop(db: Database.Database | undefined): void {
  if (idle) { clearTimeout(idle); idle = null; }
  closeScratch(db);
  batch = -1; failed = false; offered = false;
  kinds = []; keys = ''; starts = []; ends = []; bytes = 0;
  ins = null;
  if (attached && db && !db.inTransaction) {
    try { db.exec(`DETACH DATABASE ${SCHEMA}`); attached = false; } catch { /* detached at the next batch */ }
  }
}

function insertChunk(db: Database.Database, c: EarlyChunk): void {
  if (c.batch !== batch) {
    if (c.batch < batch) return; // (an older body's, after a newer one began)
    drop(db);
    if (attached) { failed = true; batch = c.batch; return; } // (it could not be detached)
    batch = c.batch;
  }
  if (failed) return;
  try {
    if (!attached) {
      db.exec(`ATTACH DATABASE ':memory:' AS ${SCHEMA}`);
      attached = true;
      db.pragma(`${SCHEMA}.page_size = 16384`);
      // (the store's table's shape: the copy is then in key order, without a sort)
      db.exec(`CREATE TABLE ${SCHEMA}.objects (kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, crc INTEGER NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID`);
      // (the scratch's pages are its storage: above its cache size each new page had SQLite look
      // for one to spill)
      db.pragma(`${SCHEMA}.cache_size = -65536`);
      ins = db.prepare(`INSERT INTO ${SCHEMA}.objects (kind, key, body, crc) VALUES (?, ?, CAST(? AS TEXT), ?)`);
    }
    const st = ins!;
    // One transaction for the whole batch, left open between chunks: a transaction per chunk
    // copied every page it dirtied into the memory journal (rows in random key order: ~a page a
    // row), 2–3x the inserts' cost. Any other request ends it first (closeScratch).
    if (!scratchTx) { db.exec('BEGIN'); scratchTx = true; }
    {
      let keyStart = 0;
      for (let i = 0; i < c.kinds.length; i++) {
        const key = c.keys.slice(keyStart, c.keyEnds[i]);
        keyStart = c.keyEnds[i];
        const body = c.bytes.subarray(c.starts[i] - c.base, c.ends[i] - c.base);
        // (a key twice in one body fails here: the batch then matches no stage)
        st.run(STORED_KINDS[c.kinds[i]], key, body, crc32(body));
        kinds.push(c.kinds[i]); starts.push(c.starts[i]); ends.push(c.ends[i]);
        bytes += body.length;
      }
      keys += c.keys;
    }
  } catch (e) { if (process.env.WDP_DEBUG_EARLY) process.stderr.write(`early chunk failed: ${(e as Error).message}\n`); failed = true; }
  if (idle) clearTimeout(idle);
  idle = setTimeout(() => { idle = null; if (!offered) drop(db); }, EARLY_IDLE_MS);
  idle.unref();
}

/** A chunk of early rows (never answered: a batch that fails only matches no stage). */
export function earlyChunk(db: Database.Database, c: EarlyChunk): void {
  if (db.inTransaction && !scratchTx) { queued.push(c); return; }
  insertChunk(db, c);
}

/** Before a stage's transaction begins: the chunks queued meanwhile go into the scratch. */
export function beforeStage(db: Database.Database): void {
  while (queued.length && (!db.inTransaction || scratchTx)) insertChunk(db, queued.shift()!);
  closeScratch(db);
}

/** Inside a stage's transaction: when batch `pre`'s rows are exactly the stage's (`m`: row i of
 * kind code m.kinds[i], key from m.keys, its body the body's bytes [m.starts[i], m.ends[i])),
 * copies them into the store's objects and answers their count and bytes; else null (the stage
 * inserts its rows itself). */
export function takeEarly(db: Database.Database, pre: number, m: { kinds: Uint8Array; keys: string; starts: Int32Array; ends: Int32Array; text: string | Uint8Array }): { rows: number; bytes: number } | null {
  if (process.env.WDP_DEBUG_EARLY) process.stderr.write(`early: pre ${pre} batch ${batch} attached ${attached} failed ${failed} n ${m.kinds.length}/${kinds.length}\n`);
  if (pre !== batch || !attached) return null;
  offered = true;
  if (failed || typeof m.text === 'string') return null;
  const n = m.kinds.length;
  if (n !== kinds.length || m.keys !== keys) return null;
  for (let i = 0; i < n; i++) if (m.kinds[i] !== kinds[i] || m.starts[i] !== starts[i] || m.ends[i] !== ends[i]) return null;
  if (process.env.WDP_DEBUG_EARLY) process.stderr.write(`early rows taken: ${n}\n`);
  db.exec(`INSERT INTO main.objects (kind, key, body, crc) SELECT kind, key, body, crc FROM ${SCHEMA}.objects WHERE true ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body, crc = excluded.crc`);
  return { rows: n, bytes };
}

/** After a commit or rollback: the batch a stage was offered is dropped. */
export function afterStage(db: Database.Database | undefined): void {
  if (offered) drop(db);
  else if (attached && batch < 0) drop(db); // (a detach that failed before)
}
