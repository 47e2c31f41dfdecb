// The statements and connection settings both of the store's writing connections use — the main
// thread's (store.ts) and the store writer thread's (store-writer-thread.ts) — so that a row
// written by either is the same row, kept as durably.
import type Database from 'better-sqlite3';
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StoredKind } from './types.js';

/** The kinds of stored objects; a staged write names them by index (store-writer.ts). */
export const STORED_KINDS: readonly StoredKind[] = ['Service', 'EndpointSlice', 'NodeConfig'];

/** One object's row, inserted or replaced: (kind, key, body, crc32(body)). */
export const UPSERT_OBJECT_SQL = 'INSERT INTO objects (kind, key, body, crc) VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body, crc = excluded.crc';
/** The same row from the body's bytes (ASCII only: src/util/body-text.ts) bound as a blob: SQLite
 * takes the bytes as the database's UTF-8 text (CAST), so the row is the same TEXT row as
 * UPSERT_OBJECT_SQL's — without a JavaScript string of the body made first and converted back to
 * UTF-8 to be bound (~25 ms of the writer thread's CPU at 20k rows, profiled). */
export const UPSERT_OBJECT_BYTES_SQL = 'INSERT INTO objects (kind, key, body, crc) VALUES (?, ?, CAST(? AS TEXT), ?) ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body, crc = excluded.crc';
/** One meta row (the store's revision) inserted or replaced: (key, value). */
export const SET_META_SQL = 'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value';
/** One object's row removed: (kind, key). */
export const DELETE_OBJECT_SQL = 'DELETE FROM objects WHERE kind = ? AND key = ?';

/** The WAL file's size kept after a checkpoint let it start again (SQLite keeps its largest otherwise). */
export const WAL_SIZE_LIMIT = 4 << 20;

/** A connection that commits: FULL (a commit returns only after the WAL is fsynced — the apply is
 * acknowledged after that) and no automatic checkpoint inside a COMMIT, before its answer (the
 * store checkpoints after answering: store.ts, CHECKPOINT_BYTES). */
export function setWriteSettings(db: Database.Database, cacheKiB: number): void {
  db.pragma('synchronous = FULL');
  db.pragma('wal_autocheckpoint = 0');
  // a WAL file grown past this (a large write) is cut back to it when a commit starts it again
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
  db.pragma(`cache_size = -${cacheKiB}`);
}

/** The free space the store's writes leave on its filesystem. A start's read-only connections map
 * SQLite's wal-index (state.db-shm), whose pages, on a filesystem with blocks smaller than a page,
 * are mostly holes until written: on a nearly full ext4 (measured: ~40–100 KiB free; not with
 * 1.2 MiB) a write to one faults, and the kernel kills the process with SIGBUS. The start refuses
 * below this (and the index holder makes the index: index-holder.ts); so does every write (a
 * commit, a staged write, a checkpoint, the health probe), as on a full disk: a commit that finds
 * no block for its WAL fails part-way (an error, nothing kept), and a store that stops there is
 * seen as failing before an apply is. The writing connection maps no file (its index is in its
 * heap: store-writer-thread.ts). */
export const MIN_FREE_BYTES = 2 << 20;

/** Why `dbPath`'s filesystem is too full for a write (null: it is not, or statfs is not there). */
export function tooFull(dbPath: string): string | null {
  let free: number;
  try { const s = statfsSync(dirname(dbPath)); free = s.bavail * s.bsize; } catch { return null; }
  return free < MIN_FREE_BYTES
    ? `ENOSPC: the filesystem of ${dirname(dbPath)} has ${free} bytes free; the store keeps ${MIN_FREE_BYTES} free (below that a start cannot make SQLite's index safely, and commits fail part-way)`
    : null;
}

/** "; the filesystem of <dir> has N bytes free" when it has less than MIN_FREE_BYTES; '' otherwise. */
export function freeNote(dbPath: string): string {
  try { const s = statfsSync(dirname(dbPath)); const free = s.bavail * s.bsize; return free < MIN_FREE_BYTES ? `; the filesystem of ${dirname(dbPath)} has ${free} bytes free` : ''; } catch { return ''; }
}

/** Throws an ENOSPC error when tooFull says so. */
export function checkFree(dbPath: string): void {
  const why = tooFull(dbPath);
  if (why) throw Object.assign(new Error(why), { code: 'ENOSPC' });
}
