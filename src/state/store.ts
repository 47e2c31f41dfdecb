// Desired-state persistence: the Services, EndpointSlices and node config exactly as applied, one
// row per object in SQLite (better-sqlite3), <stateDir>/state.db.
//
// Write path: an apply that changed K objects is ONE transaction of K row upserts/deletes, made
// durable (WAL, synchronous=FULL: the commit fsyncs the write-ahead log) before the apply is
// acknowledged. Its cost is O(K) — serialising the K objects, a few B-tree pages and one fsync —
// whatever the size of the cluster (the whole-state JSON file this replaced cost ~140 ms an
// apply at 10k services). SQLite's WAL makes a commit atomic: a crash at any point leaves the
// last committed transaction, and an interrupted one is discarded at the next open (its frames'
// checksums do not match).
//
// Every write goes through the store writer thread (src/state/store-writer.ts), whose connection
// is the store's only writing one, in locking_mode=EXCLUSIVE: SQLite keeps its wal-index in that
// connection's heap, and no file of the store is memory-mapped once it is open (a mapped
// state.db-shm made a failing disk's read error a SIGBUS that killed the daemon: test
// chaos-disk-evicted-index). No other connection, in any process, can open the database then.
// An apply's write is staged ahead of its commit (stage()): handed over here (a large one,
// STAGE_ON_THREAD_ROWS rows or more, as the request's text, or its bytes, and each object's place
// in it; the objects that did not come as text, and a small write's, serialised), inserted by the
// thread in a transaction while this thread compiles the change, and committed only when the
// caller says so — one durable transaction, off the main thread's critical path. Until then
// nothing of it is durable: an abort, a failed insert or a crash discards it. The daemon's own
// writes and checks never wait for the thread (commitAsync, probeAsync, writeProblemAsync: a
// hung disk must not stop its API); the synchronous commit() and probe() (tools, tests) do.
//
// Read path (start): the file is opened (a file that is not a database fails here), checked with
// PRAGMA quick_check, every row's body is checked against its CRC-32 and parsed, and the caller
// validates the content. Anything wrong fails start with a StateError naming the file and the
// rows; nothing is deleted, renamed or rewritten — the operator decides (docs/api.md).
//
// Migration: with no state.db but a state.json (+ .bak) of the previous format, the state is read
// with the old checks (src/state/legacy-json.ts), written to state.db.new, made durable and
// renamed to state.db; the JSON files are then renamed *.migrated and kept.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { access, open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { LegacyStateFile, STATE_FILE } from './legacy-json.js';
import { emptiedProblem, lostCommits, walEmptiedClaim, walProblem } from './wal-check.js';
import { WAL_MARK_SUFFIX } from './wal-mark.js';
import { holdIndex, releaseIndex, waitReleased } from './index-holder.js';
import { NotSentError, StoreWriterThread, ThreadStoppedError, type WriteRows } from './store-writer.js';
import { bodySlice } from '../util/body-text.js';
import { LATE, within } from '../util/within.js';
import { checkFree, freeNote, SET_META_SQL, STORED_KINDS, tooFull } from './store-sql.js';
import { StateError, StoreStateUncertain, type DesiredState, type StoredKind, type StoreWrite } from './types.js';

export { StateError, StoreStateUncertain } from './types.js';
export type { DesiredState, SourceText, StoredKind, StoredRef, StoreWrite } from './types.js';

export const STATE_DB = 'state.db';
/** PRAGMA user_version of the schema below; a file with another version is refused. */
export const STORE_SCHEMA_VERSION = 2;
/** PRAGMA application_id: "wdp1" — tells a wdp store from another SQLite file. */
const APPLICATION_ID = 0x77647031;
/** How long a write waits for a lock held by another process before it fails (and the apply with it). */
const BUSY_TIMEOUT_MS = 200;
/** WAL bytes after which the log is copied into the database file (a checkpoint). SQLite's own
 * automatic checkpoint runs inside the commit that crosses its threshold, i.e. before that apply is
 * acknowledged (~100 ms after a 10 MB full sync); here the store writer thread runs it, on its own
 * connection, while this thread goes on (a checkpoint on this thread held it 5–12 ms, every few
 * hundred one-endpoint changes, and the change that arrived meanwhile waited for it). */
const CHECKPOINT_BYTES = 4 << 20;
/** WAL length, in CHECKPOINT_BYTES, from which an apply's commit waits for a checkpoint first. */
const WAL_BEHIND_CHECKPOINTS = 4;

/** How long healthz's checks of the store (the state directory's sync, the probe's durable write)
 * are waited for before it answers without them: not writable, saying which has not answered. The
 * check goes on meanwhile (one at a time), and a later healthz uses its answer. */
const HEALTH_WAIT_MS = 500;
/** A durable write (a commit, the probe) the writer thread has not answered for this long makes
 * the store count as not writable (healthz 503): its disk does not complete writes. A 13 MB full
 * sync's COMMIT is ~30 ms, one-row commits' p99 tens of ms on a loaded node. */
const WRITE_STUCK_MS = 5000;

/** Rows from which a write is staged as places in the request's text (its bytes handed over);
 * smaller ones (a one-endpoint change: one row) are serialised here, and the thread checkpoints
 * after a large one's commit only. */
export const STAGE_ON_THREAD_ROWS = 1000;

/** The meta row naming the store's revision: "<store id>:<commit count>" — a random id made once
 * per store (a store moved away and created afresh never repeats an earlier revision) and a
 * counter every commit raises in its own transaction, whichever connection commits it. A table image (src/daemon/table-image-file.ts)
 * records it, with the store files' size and time, and is trusted only while it is unchanged.
 * One row: read without reading the objects. */
const REVISION_KEY = 'revision';

/** The revision row's value as `db` reads it now; null when the store has none yet. */
function readRevisionRow(db: Database.Database): string | null {
  return (db.prepare('SELECT value FROM meta WHERE key = ?').get(REVISION_KEY) as { value: string } | undefined)?.value ?? null;
}

export interface LoadResult {
  state: DesiredState | null;      // null: nothing saved yet
  source: 'store' | 'migrated' | 'none';
  problems: string[];              // what was found and done (a migration, a kept legacy file)
}

/** What the last commit wrote: the apply's objects, not the state's (tests and the bench read it). */
export interface CommitStats { rows: number; bytes: number }

/** A write begun before it is committed (StateStore.stage). Exactly one of commit and abort is
 * called. */
export interface StagedWrite {
  /** Makes the write durable; rejects, keeping nothing of it, on failure. */
  commit(): Promise<CommitStats>;
  /** Drops it: nothing of it is kept. Never throws. */
  abort(): void;
}

function fsyncDir(dir: string): void {
  try { const d = openSync(dir, 'r'); try { fsyncSync(d); } finally { closeSync(d); } } catch { /* directory fsync unsupported: best effort */ }
}

/** Creates the (empty) file with mode 0600 before SQLite opens it: SQLite would create it with the
 * process umask, and its -wal/-shm files copy the database file's mode. */
function createPrivate(path: string): void { closeSync(openSync(path, 'wx', 0o600)); }

/** 16 KiB pages (SQLite's default is 4): a row is one object (~0.5 KB for a 10-endpoint slice),
 * and a 20k-object full sync wrote ~3x faster with 16 KiB pages and the cache below than with the
 * defaults (1.7 s → 0.6 s on the loaded development VM, the same rows side by side). */
const PAGE_SIZE = 16384;
/** The page cache: up to 64 MiB, used as the database grows (a full sync of 10k services × 10 is
 * ~12 MB); the default 2 MiB spilled pages to the WAL mid-transaction. */
const CACHE_KIB = 65536;

function schema(db: Database.Database): void {
  db.pragma(`page_size = ${PAGE_SIZE}`); // (before the first table: fixed from then on)
  // (the file is new and no one else's: its WAL's index in this connection's memory, no
  // state.db-shm mapping — index-holder.ts)
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE objects (kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, crc INTEGER NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;
           CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`);
  db.pragma(`application_id = ${APPLICATION_ID}`);
  db.pragma(`user_version = ${STORE_SCHEMA_VERSION}`);
}

/** The wal-index file's size the index holder writes out (index-holder.ts): 8 of SQLite's 32 KiB
 * regions, the index of ~32k WAL frames (~512 MiB of WAL) — for the start's read-only connections
 * only (the writing connection keeps its index in its heap). */
const INDEX_BYTES = 8 * 32768;

/** How long the index holder a peek started waits for the open that follows it (index-holder.ts). */
const PEEK_HOLD_MS = 30_000;

/** The stores this process has open (their state.db paths): the log check reads their index only
 * while none is (wal-check.ts). */
const OPEN_STORES = new Map<string, StateStore>();

export class StateStore {
  readonly path: string;
  /** Open: every write goes to the writer thread's connection, the store's only writing one. */
  private opened = false;
  lastCommit: CommitStats = { rows: 0, bytes: 0 };
  /** WAL bytes this thread's commits appended that no checkpoint is known to have copied. */
  private walBytes = 0;
  /** WAL bytes this thread's commits appended since the store opened (counted as walBytes). */
  private appended = 0;
  /** The checkpoint in flight, if any. */
  private checkpointing: Promise<void> | null = null;
  /** WAL frames the last checkpoint found (the WAL's length since it last started again; 0 when it
   * left the WAL to start again at the next commit), and `appended` when it was asked: the WAL is
   * at most walFrames pages and what this thread appended since (walLength). */
  private walFrames = 0;
  private walFramesAt = 0;
  /** The last checkpoint did not leave the WAL copied whole (it left frames, or commits were made
   * beside it): the WAL cannot start again until one does, so the next commit asks again. */
  private checkpointAgain = false;
  private writer: StoreWriterThread | null = null;
  private rev: { id: string; n: number } | null = null;
  /** A staged commit whose outcome is not known (StoreStateUncertain): the revision it would have
   * made, and the write that puts the previous objects back if it was durable after all (null:
   * keep it). `durable`: it was, and only the undo is left. Settled before any other write. */
  private unsettled: { revision: number; undo: StoreWrite | null; durable: boolean } | null = null;
  /** Rows from which stage() uses the writer thread (tests lower it). */
  stageOnThreadRows = STAGE_ON_THREAD_ROWS;
  /** WAL bytes (as counted by committed()) from which a checkpoint runs (tests lower it). */
  checkpointBytes = CHECKPOINT_BYTES;

  constructor(readonly dir: string) { this.path = join(dir, STATE_DB); }

  /** Opens the store (creating or migrating it) and returns the saved state. `check` validates the
   * content and throws to refuse it. Throws StateError for anything unusable, deleting nothing. */
  open(check: (s: DesiredState) => void = () => {}): LoadResult {
    // 0700: the objects name every service and pod address of the node
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const problems: string[] = [];
    let source: LoadResult['source'] = 'store';
    this.checkSpace();
    const legacy = new LegacyStateFile(this.dir);
    const hasLegacy = existsSync(legacy.primary) || existsSync(legacy.backup);
    if (!existsSync(this.path)) {
      if (hasLegacy) { this.migrate(legacy, check, problems); source = 'migrated'; }
      else { this.create(); source = 'none'; }
    } else if (hasLegacy) {
      // a migration that stopped after state.db was in place: state.db is the state
      this.keepLegacy(legacy, problems, `${STATE_DB} already holds the state`);
    }
    try {
      const ro = this.openDb();
      let state: DesiredState, revision: string | null;
      try {
        revision = readRevisionRow(ro);
        // (a log emptied below its header: the database file must hold what the commit record
        // says was committed — wal-check.ts)
        const claim = this.emptiedClaim;
        if (claim && lostCommits(revision, claim.mark.revision)) throw this.walRefused(emptiedProblem(claim, this.path + WAL_MARK_SUFFIX, this.path, revision));
        state = this.readAll(ro);
      } finally { ro.close(); this.emptiedClaim = null; }
      try { check(state); } catch (e) {
        throw new StateError(`${this.path}: the saved objects do not validate: ${(e as Error).message}. Nothing was changed; fix or remove the objects named (e.g. with the sqlite3 tool), or move ${STATE_DB} away to start empty`);
      }
      this.checkSpace();
      // (the holder's connection goes before the writing one, which locks the database for itself)
      releaseIndex(this.path);
      this.prepare(revision);
      const empty = !state.services.length && !state.endpointSlices.length && !state.node;
      return { state: empty && source === 'none' ? null : state, source: empty && source === 'store' ? 'none' : source, problems };
    } finally { releaseIndex(this.path); } // (this process's connection holds the index now, or none is open)
  }

  /** Throws the start's StateError when the store's filesystem is too full for a write (tooFull). */
  private checkSpace(): void {
    const full = tooFull(this.path);
    if (full) throw new StateError(`${this.path}: cannot open the store: ${full}. Nothing was deleted or changed; free some space there and start again`);
  }

  /** The commit record's claim on a log shorter than its header, found by openDb's check and
   * compared with the database file's revision once it is read (wal-check.ts, walEmptiedClaim). */
  private emptiedClaim: ReturnType<typeof walEmptiedClaim> = null;

  /** The start's refusal of a damaged log (`why`: walProblem's words). */
  private walRefused(why: string): StateError {
    return new StateError(`${this.path}-wal (the store's write-ahead log, holding its latest commits): ${why}. Nothing was deleted or changed; restore the state directory from a backup — moving ${STATE_DB}-wal and ${STATE_DB}-shm away starts with the state as of the log's last checkpoint into ${STATE_DB}, without the commits after it`);
  }

  private openDb(): Database.Database {
    let db: Database.Database;
    const refuse = (why: string): never => {
      throw new StateError(`${this.path}: ${why}. Nothing was deleted or changed; move the file away to start empty, or restore it from a backup`);
    };
    // a store that cannot be written (a read-only filesystem, a file or directory without write
    // permission) is not a damaged one: say so, and never advise moving it away
    const unwritable = this.unwritable();
    if (unwritable) {
      throw new StateError(`${this.path} cannot be written (${unwritable}): wdp commits every apply to its store, so it does not start on one it cannot write. The store was not changed; make ${this.dir} writable (e.g. remount it read-write) and start again — do not move the file away, it holds the saved state`);
    }
    this.checkSpace();
    // (before SQLite reads the log: it would drop what follows a damaged frame without a word)
    const openHere = OPEN_STORES.has(this.path);
    const wal = walProblem(this.path + '-wal', openHere ? null : this.path + WAL_MARK_SUFFIX);
    if (wal) throw this.walRefused(wal);
    this.emptiedClaim = openHere ? null : walEmptiedClaim(this.path + '-wal', this.path + WAL_MARK_SUFFIX);
    // (the index attached by a process of its own: index-holder.ts)
    try { holdIndex(this.path, INDEX_BYTES); } catch (e) {
      throw new StateError(`${this.path}: cannot open the store: ${(e as Error).message}${freeNote(this.path)}. Nothing was deleted or changed; free some space there and start again`);
    }
    // checked and read on a read-only connection: closing the last read-write connection copies the
    // log into the database file and removes it — a refused store must stay exactly as it was
    try { db = new Database(this.path, { fileMustExist: true, readonly: true }); } catch (e) { this.checkSpace(); return refuse(`cannot open: ${(e as Error).message}`); }
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      const app = db.pragma('application_id', { simple: true }) as number;
      const ver = db.pragma('user_version', { simple: true }) as number;
      if (app !== APPLICATION_ID) refuse(`not a wdp state store (application_id ${app})`);
      if (ver !== STORE_SCHEMA_VERSION) refuse(`state store schema version ${ver}; this wdp reads version ${STORE_SCHEMA_VERSION}`);
      const qc = db.pragma('quick_check', { simple: true }) as string;
      if (qc !== 'ok') refuse(`the database is corrupt (quick_check: ${qc})`);
    } catch (e) {
      db.close();
      if (e instanceof StateError) throw e;
      this.checkSpace(); // (a full disk is not a damaged store)
      return refuse(`cannot read: ${(e as Error).message}`);
    }
    return db;
  }

  /** Why the store file, or the directory its WAL and index files are made in, cannot be written
   * (EROFS, EACCES, ...); null when both can. */
  private unwritable(): string | null {
    try { closeSync(openSync(this.path, 'r+')); accessSync(this.dir, constants.W_OK); return null; } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EROFS') return 'EROFS: the filesystem is read-only';
      if (code === 'EACCES' || code === 'EPERM') return `${code}: ${(e as Error).message}`;
      return null; // (anything else is the open's to report)
    }
  }

  private readAll(db: Database.Database): DesiredState {
    const state: DesiredState = { services: [], endpointSlices: [], node: null };
    const bad: string[] = [];
    // row by row, as arrays: a row's text is garbage once parsed (all() kept every row's text and
    // an object per row alive until the last was read: at 200k rows ~15 % more CPU, docs/performance.md)
    try {
      for (const r of db.prepare('SELECT kind, key, body, crc FROM objects ORDER BY kind, key').raw(true).iterate() as IterableIterator<[string, string, unknown, number]>) {
        const [kind, key, body, crc] = r;
        if (!STORED_KINDS.includes(kind as StoredKind)) { bad.push(`${kind} ${key || '(node)'}: unknown kind`); continue; }
        if (typeof body !== 'string' || crc32(body) !== crc) { bad.push(`${kind} ${key || '(node)'}: checksum mismatch (the row was modified or damaged)`); continue; }
        let obj: unknown;
        try { obj = JSON.parse(body); } catch (e) { bad.push(`${kind} ${key || '(node)'}: not JSON: ${(e as Error).message}`); continue; }
        if (kind === 'Service') state.services.push(obj);
        else if (kind === 'EndpointSlice') state.endpointSlices.push(obj);
        else state.node = obj;
      }
    } catch (e) {
      throw new StateError(`${this.path}: cannot read the objects (the database is corrupt?): ${(e as Error).message}. Nothing was deleted or changed`);
    }
    if (bad.length) {
      throw new StateError(`${this.path}: ${bad.length} damaged object${bad.length > 1 ? 's' : ''}: ${bad.slice(0, 5).join('; ')}${bad.length > 5 ? '; ...' : ''}. Nothing was deleted or changed; move the file away to start empty, or restore it from a backup`);
    }
    return state;
  }

  /** The store's revision alone (peek). */
  static peekRevision(dir: string): string | null { return StateStore.peek(dir).revision; }

  /** The store's revision (REVISION_KEY) and its NodeConfig without opening it for use: two rows
   * read in one read transaction (the node config is the one at that revision), no quick_check, no
   * other objects. revision null when there is no store or it has no revision yet; node null when
   * none is saved, or its row fails its CRC-32 or is not JSON (the real open reports that). Never
   * throws (a store this cannot read fails the real open later, with its reason). */
  static peek(dir: string): { revision: string | null; node: unknown } {
    const none = { revision: null, node: null };
    const path = join(dir, STATE_DB);
    if (!existsSync(path)) return none;
    // open in this process: its connection holds the database for itself, and reads both rows
    const open = OPEN_STORES.get(path);
    if (open) {
      try {
        const r = open.opened ? open.writerThread().requestSync({ op: 'peek' }) : null;
        if (!r) return none;
        let node: unknown = null;
        if (typeof r.body === 'string' && crc32(r.body) === r.crc) { try { node = JSON.parse(r.body); } catch { /* reported by the real open */ } }
        return { revision: r.value ?? null, node };
      } catch { return none; }
    }
    // a damaged log: nothing is trusted (the real open refuses it, with its reason)
    if (walProblem(path + '-wal', path + WAL_MARK_SUFFIX)) return none;
    const claim = walEmptiedClaim(path + '-wal', path + WAL_MARK_SUFFIX);
    // (a filesystem too full for the index: the real open says so)
    if (tooFull(path)) return none;
    try {
      // the index attached by a process of its own (index-holder.ts), kept for the open that
      // follows a peek at start
      if (!OPEN_STORES.has(path)) holdIndex(path, INDEX_BYTES, PEEK_HOLD_MS);
      // read-only: closing it never checkpoints the WAL (a write the start does not need yet)
      const db = new Database(path, { fileMustExist: true, readonly: true });
      try {
        db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
        return db.transaction(() => {
          const revision = readRevisionRow(db);
          if (claim && lostCommits(revision, claim.mark.revision)) return none;
          const row = db.prepare('SELECT body, crc FROM objects WHERE kind = ? AND key = ?').get('NodeConfig', '') as { body: unknown; crc: number } | undefined;
          let node: unknown = null;
          if (row && typeof row.body === 'string' && crc32(row.body) === row.crc) {
            try { node = JSON.parse(row.body); } catch { /* reported by the real open */ }
          }
          return { revision, node };
        })();
      } finally { db.close(); }
    } catch { return none; }
  }

  /** The revision now (changes with every commit); null before open(), and while the outcome of a
   * commit is not known (StoreStateUncertain: what the store holds is not known either). */
  revision(): string | null { return this.rev && !this.unsettled ? `${this.rev.id}:${this.rev.n}` : null; }

  /** Settles a commit whose outcome was not known (stage's commit) before anything else is
   * written: reads the revision row (this connection's read: every commit of either connection
   * that returned) — the commit's revision: it was durable, and its undo is committed now, so the
   * store holds what the caller kept (the apply was refused); the revision before it: it was not.
   * Throws StoreStateUncertain while the row cannot be read or the undo cannot be committed. */
  private settle(): void {
    const u = this.unsettled;
    if (!u || !this.opened) return;
    if (!u.durable) {
      let now: string | null;
      try { now = this.readRevision(); } catch (e) { throw this.unreadable(e as Error); }
      if (!this.settleRead(u, now)) return;
    }
    if (u.undo) {
      try { this.lastCommit = this.writeSync(u.undo); } catch (e) { throw this.undoFailed(e as Error); }
      this.committed(this.lastCommit);
    }
    this.unsettled = null;
  }

  /** settle(), this thread not waiting for the writer thread (an apply's write, the health probe). */
  private async settleAsync(): Promise<void> {
    const u = this.unsettled;
    if (!u || !this.opened) return;
    if (!u.durable) {
      let now: string | null;
      try { now = await this.readRevisionAsync(); } catch (e) { throw this.unreadable(e as Error); }
      if (this.unsettled !== u) return; // (settled meanwhile by another caller)
      if (!this.settleRead(u, now)) return;
    }
    if (u.undo) {
      try { this.lastCommit = await this.writeAsync(u.undo); } catch (e) { throw this.undoFailed(e as Error); }
      this.committed(this.lastCommit);
    }
    if (this.unsettled === u) this.unsettled = null;
  }

  /** settle's verdict on the revision row `now`: false when the commit was not durable (settled:
   * nothing to undo); true when it was (u.durable: its undo is left). Throws when another process
   * wrote. */
  private settleRead(u: NonNullable<StateStore['unsettled']>, now: string | null): boolean {
    const rev = this.rev!, name = (n: number) => `${rev.id}:${n}`;
    if (now === name(rev.n)) { this.unsettled = null; return false; } // (not committed: nothing to undo)
    if (now !== name(u.revision)) throw new StoreStateUncertain(`the store's revision is ${now}, neither ${name(rev.n)} nor ${name(u.revision)}: another process wrote to ${this.path}; restart wdp to resynchronise`);
    u.durable = true;
    rev.n = u.revision;
    return true;
  }

  private unreadable(e: Error): StoreStateUncertain {
    return new StoreStateUncertain(`the store's state is uncertain (whether a refused write's commit is durable is not known: ${this.path}'s revision cannot be read: ${e.message}); writes are refused until it can be read`);
  }

  private undoFailed(e: Error): StoreStateUncertain {
    return new StoreStateUncertain(`the store holds a write that was refused (its commit was durable after all), and putting the previous objects back failed: ${e.message}; writes are refused until it succeeds`);
  }

  /** The revision row as the writer thread's connection reads it now (every commit that returned). */
  private readRevision(): string | null {
    return this.writerThread().requestSync({ op: 'revision' }).value ?? null;
  }

  /** readRevision(), this thread not waiting (the request queued behind the writes in flight). */
  private async readRevisionAsync(): Promise<string | null> {
    return (await this.writerThread().request({ op: 'revision' })).value ?? null;
  }

  /** writeSync(), this thread not waiting for it. */
  private async writeAsync(w: StoreWrite): Promise<CommitStats> {
    const revision = this.rev!.n + 1;
    let r: CommitStats;
    try { r = await this.writerThread().request({ op: 'write', ...this.serialised(w, revision) }); } catch (e) {
      if (e instanceof NotSentError || !await this.lostAsync(e as Error, revision, undefined)) throw this.explained(e as Error);
      r = { rows: w.upsert.length + w.remove.length, bytes: -1 };
    }
    this.rev!.n = revision;
    return { rows: r.rows, bytes: r.bytes };
  }

  /** `w` committed by the writer thread, this thread waiting for it (commit(), an undo), as the
   * store's next revision. Throws like commit. */
  private writeSync(w: StoreWrite): CommitStats {
    const revision = this.rev!.n + 1;
    let r: CommitStats;
    try { r = this.writerThread().requestSync({ op: 'write', ...this.serialised(w, revision) }); } catch (e) {
      if (!this.lost(e as Error, revision, undefined)) throw this.explained(e as Error);
      r = { rows: w.upsert.length + w.remove.length, bytes: -1 };
    }
    this.rev!.n = revision;
    return { rows: r.rows, bytes: r.bytes };
  }

  /** `w` as a write request's rows, every body a string made here (a small write: no text handed
   * over), with the revision row naming commit `revision`. */
  private serialised(w: StoreWrite, revision: number): WriteRows {
    return this.writeRows(w, revision, '');
  }

  /** `w` as a write request's rows: objects that came as `text` go as places in it (posted once,
   * no string per object on either side; bytes are handed over, not copied), the others
   * serialised; kinds as codes, keys as one string; the revision row naming commit `revision`. */
  private writeRows(w: StoreWrite, revision: number, text: string | Uint8Array): WriteRows {
    const n = w.upsert.length;
    const kinds = new Uint8Array(n), keyEnds = new Int32Array(n), starts = new Int32Array(n), ends = new Int32Array(n);
    const bodies: string[] = [];
    let keys = '';
    for (let i = 0; i < n; i++) {
      const o = w.upsert[i];
      kinds[i] = STORED_KINDS.indexOf(o.kind);
      keys += o.key;
      keyEnds[i] = keys.length;
      if (o.source && text.length && o.source.text === text) {
        // (bytes moved by an earlier stage are empty here: the thread would store empty bodies)
        if (o.source.end > text.length) throw new StateError(`${o.kind} ${o.key}: its text [${o.source.start}, ${o.source.end}) is past the body's ${text.length} characters (its bytes were handed over already)`);
        starts[i] = o.source.start; ends[i] = o.source.end; continue;
      }
      starts[i] = -1;
      bodies.push(o.source ? bodySlice(o.source.text, o.source.start, o.source.end) : JSON.stringify(o.raw));
    }
    return { kinds, keys, keyEnds, text, starts, ends, bodies, removeKinds: w.remove.map((r) => r.kind), removeKeys: w.remove.map((r) => r.key), meta: [this.revisionRow(revision)] };
  }

  /** `w`, none of whose objects came as JSON array text (the Kubernetes watcher's full sync: 20k
   * objects at 10k × 10; a YAML or List body), as a large write's rows: every body serialised here into one buffer of UTF-8 bytes,
   * each row a place in it, the buffer handed to the thread (moved, not copied) as a request
   * body's bytes are. The thread binds the same bytes as the TEXT a string row stores (its CRC-32
   * is the string's: zlib's crc32 takes a string as UTF-8). Posting the bodies as 20k strings
   * instead was a structured clone of ~13 MB, value by value, on this thread (and their young
   * copies for the collector); here each string is garbage as soon as it is written.
   * JSON.stringify escapes lone surrogates, so every body is valid UTF-8. */
  private serialisedBytes(w: StoreWrite, revision: number): WriteRows {
    const n = w.upsert.length;
    const kinds = new Uint8Array(n), keyEnds = new Int32Array(n), starts = new Int32Array(n), ends = new Int32Array(n);
    // (a Buffer of its own, not the pool's: its ArrayBuffer is transferred whole)
    let buf = Buffer.allocUnsafeSlow(Math.max(1 << 16, n * 768));
    let keys = '', at = 0;
    for (let i = 0; i < n; i++) {
      const o = w.upsert[i];
      kinds[i] = STORED_KINDS.indexOf(o.kind);
      keys += o.key;
      keyEnds[i] = keys.length;
      const body = JSON.stringify(o.raw);
      // a character is at most 3 bytes of UTF-8 (a surrogate pair, 2 characters, is 4): room for
      // the whole body, so write() never stops short
      if (at + 3 * body.length > buf.length) {
        const grown = Buffer.allocUnsafeSlow(Math.max(2 * buf.length, at + 3 * body.length));
        buf.copy(grown, 0, 0, at);
        buf = grown;
      }
      starts[i] = at;
      at += buf.write(body, at);
      ends[i] = at;
    }
    return { kinds, keys, keyEnds, text: new Uint8Array(buf.buffer, 0, at), starts, ends, bodies: [], removeKinds: w.remove.map((r) => r.kind), removeKeys: w.remove.map((r) => r.key), meta: [this.revisionRow(revision)] };
  }

  /** A write request to the thread failed with `e`. When the thread stopped after it was sent
   * (ThreadStoppedError: it may have committed before), the revision row tells: true when the
   * write is durable (commit `revision`); false when it is not (the caller throws `e`). When the
   * row cannot be read either, the outcome is not known: recorded (settled before the next write;
   * `undo` puts the previous objects back if it was durable) and StoreStateUncertain thrown. */
  private lost(e: Error, revision: number, undo: (() => StoreWrite) | undefined): boolean {
    if (!(e instanceof ThreadStoppedError)) return false;
    let now: string | null;
    try { now = this.readRevision(); } catch (e2) { throw this.lostUncertain(e, e2 as Error, revision, undo); }
    return now === `${this.rev!.id}:${revision}`;
  }

  /** lost(), this thread not waiting for the revision read. */
  private async lostAsync(e: Error, revision: number, undo: (() => StoreWrite) | undefined): Promise<boolean> {
    if (!(e instanceof ThreadStoppedError)) return false;
    let now: string | null;
    try { now = await this.readRevisionAsync(); } catch (e2) { throw this.lostUncertain(e, e2 as Error, revision, undo); }
    return now === `${this.rev!.id}:${revision}`;
  }

  /** A write's outcome not known (`e`: its thread stopped; `e2`: why the revision cannot be read):
   * recorded, to be settled before the next write; the error to throw. */
  private lostUncertain(e: ThreadStoppedError, e2: Error, revision: number, undo: (() => StoreWrite) | undefined): StoreStateUncertain {
    this.unsettled = { revision, undo: undo?.() ?? null, durable: false };
    return new StoreStateUncertain(`the store's state is uncertain: the store writer thread stopped (${e.reason}) after the write was sent, and ${this.path}'s revision, which tells whether it is durable, cannot be read (${e2.message}). ` +
      'If it is, the previous objects are put back before the next write; writes are refused until the revision can be read (a restart before then starts with the change)');
  }

  /** The revision row naming commit count `n`, written in that commit's transaction. */
  private revisionRow(n: number): [string, string] { return [REVISION_KEY, `${this.rev!.id}:${n}`]; }

  /** Device and inode of state.db and state.db-wal as the connections opened them (filesProblem). */
  private files: { dev: number; ino: number; walIno: number | null } | null = null;
  /** The writer thread (its number) whose WAL `files` names. */
  private filesThread = -1;

  private walIno(): number | null {
    try { return statSync(this.path + '-wal').ino; } catch { return null; }
  }

  /** Why the files at the store's paths are not those its connections write (null: they are): the
   * state directory deleted or moved, state.db or its WAL deleted or replaced while the store was
   * open. SQLite goes on committing to the files it has open — files no start reads. */
  private filesProblem(): string | null {
    const f = this.files;
    if (!f) return null;
    let st;
    try { st = statSync(this.path); } catch (e) {
      return `${this.path} is gone (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}: the state directory, or the file, was deleted or moved while wdp ran)`;
    }
    if (st.dev !== f.dev || st.ino !== f.ino) return `${this.path} was replaced while wdp ran (another file is there now)`;
    // The WAL is the writer thread's connection's: a thread that stopped closed it, which removed
    // the WAL, and the next thread's connection makes a new one — compared only within one live
    // thread (learned at the first check under it that finds a file)
    const thread = this.writer?.live ? this.writer.threadNo : -1;
    if (thread !== this.filesThread) { this.filesThread = thread; f.walIno = null; }
    const wal = this.walIno();
    if (thread < 0) { /* no connection open: nothing to compare */ } else if (f.walIno === null) f.walIno = wal;
    else if (wal !== f.walIno) return `${this.path}-wal (the store's write-ahead log, holding its latest commits) was ${wal === null ? 'deleted' : 'replaced'} while wdp ran`;
    return null;
  }

  /** Throws (code ESTALE) when filesProblem finds the store's files gone or replaced. */
  private checkFiles(): void {
    const p = this.filesProblem();
    if (p) {
      throw Object.assign(new StateError(`${p}: a commit now would go to files that no start reads, so every write is refused until wdp is restarted ` +
        `(the state it serves is in its memory only). Restore ${this.dir} from a backup before the restart, or it begins with whatever is there then`), { code: 'ESTALE' });
    }
  }

  /** Why the store cannot take a write now, as far as cheap checks tell (null: nothing seen; a
   * write can still fail): its files gone or replaced (filesProblem), the directory not writable
   * (a read-only remount or a failed filesystem: EROFS, EIO), its filesystem too full (tooFull).
   * For healthz between writes (~50 µs). */
  writeProblem(): string | null {
    if (!this.opened) return null;
    const gone = this.filesProblem();
    if (gone) return gone;
    // (a filesystem that failed — ext4's errors=remount-ro, a shutdown — may still pass access():
    // syncing the directory, with nothing to write out, fails there)
    try { accessSync(this.dir, constants.W_OK); const d = openSync(this.dir, 'r'); try { fsyncSync(d); } finally { closeSync(d); } } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return `${this.dir} cannot be written (${code ?? (e as Error).message}${code === 'EROFS' ? ': the filesystem is read-only' : code === 'EIO' ? ': the disk fails' : ''})`;
    }
    return tooFull(this.path);
  }

  /** The state directory's check in flight (writeProblemAsync): one at a time, however many
   * callers wait for it — a disk that does not answer holds one of libuv's threads, not more. */
  private dirCheck: { at: number; done: Promise<string | null> } | null = null;

  /** writeProblem, this thread never waiting for the disk (healthz, the writable metric): the
   * directory's access and sync run on libuv's threads, and are waited for HEALTH_WAIT_MS at most —
   * then the answer is that the directory does not answer. Also a durable write the writer thread
   * has not answered for WRITE_STUCK_MS (a disk that takes writes and never completes them). */
  async writeProblemAsync(): Promise<string | null> {
    if (!this.opened) return null;
    const gone = this.filesProblem();
    if (gone) return gone;
    const stuck = this.writer?.stuck(WRITE_STUCK_MS);
    if (stuck) return `the store's ${stuck.op === 'probe' ? 'probe (a small durable write)' : stuck.op} has waited ${(stuck.waitedMs / 1000).toFixed(1)} s for ${this.dir}'s disk to complete it`;
    if (!this.dirCheck) {
      const c = { at: Date.now(), done: this.dirProblem() };
      this.dirCheck = c;
      void c.done.finally(() => { if (this.dirCheck === c) this.dirCheck = null; });
    }
    const c = this.dirCheck;
    const r = await within(c.done, HEALTH_WAIT_MS, { holdProcess: false });
    return r === LATE ? `${this.dir} has not answered a check (its sync) for ${((Date.now() - c.at) / 1000).toFixed(1)} s: its disk does not complete what it is asked` : r;
  }

  /** writeProblem's directory and free-space checks, on libuv's threads. */
  private async dirProblem(): Promise<string | null> {
    try {
      await access(this.dir, constants.W_OK);
      const d = await openFile(this.dir, 'r');
      try { await d.sync(); } finally { await d.close(); }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return `${this.dir} cannot be written (${code ?? (e as Error).message}${code === 'EROFS' ? ': the filesystem is read-only' : code === 'EIO' ? ': the disk fails' : ''})`;
    }
    return tooFull(this.path);
  }

  /** probe(), this thread not waiting: null once the probe's write is durable; else why not —
   * its error, or that it has not answered within HEALTH_WAIT_MS (it goes on: stagingBusy until
   * it answers, and a later call probes again). Never throws. */
  async probeAsync(): Promise<string | null> {
    if (!this.opened) return `${this.path} is not open`;
    if (!this.probing) {
      // (an uncertain commit settled first: its revision read and undo wait for the thread too;
      // so does a new thread's boot, ~0.1–0.2 s)
      let sent = false;
      const done = (async () => {
        this.checkFiles();
        if (this.unsettled) await this.settleAsync();
        checkFree(this.path);
        sent = true;
        await this.writerThread().request({ op: 'probe' });
        return null;
      })().catch((e: Error) => sent ? this.explained(e).message : e.message);
      this.probing = done;
    }
    const p = this.probing;
    const r = await within(p, HEALTH_WAIT_MS, { holdProcess: false });
    if (r === LATE) return `the store's probe (a small durable write) has not answered within ${HEALTH_WAIT_MS} ms: ${this.dir}'s disk does not complete its writes`;
    if (this.probing === p) this.probing = null;
    return r;
  }

  /** The probe in flight, or answered after its caller stopped waiting: the next call takes its
   * answer (a probe slower than HEALTH_WAIT_MS — a loaded node, a new thread's boot — counts once
   * it answers). */
  private probing: Promise<string | null> | null = null;

  /** The store open for writes, at `revision` (the revision row the start read). */
  private prepare(revision: string | null): void {
    this.opened = true;
    OPEN_STORES.set(this.path, this);
    const st = statSync(this.path);
    this.files = { dev: st.dev, ino: st.ino, walIno: null };
    const m = /^([0-9a-f-]{36}):(\d+)$/.exec(revision ?? '');
    this.rev = m ? { id: m[1], n: Number(m[2]) } : { id: randomUUID(), n: 0 };
    // a store without one (created before revisions): once, through the writer thread
    if (!m) {
      try { this.writerThread().requestSync({ op: 'write', ...this.serialised({ upsert: [], remove: [] }, 0) }); } catch (e) {
        this.opened = false;
        OPEN_STORES.delete(this.path);
        void this.writer?.close();
        this.writer = null;
        throw new StateError(`${this.path}: cannot set up for writing: ${(e as Error).message}. Nothing was deleted or changed`);
      }
    }
  }

  private create(): void {
    const tmp = this.path + '.new';
    rmSync(tmp, { force: true }); rmSync(tmp + '-wal', { force: true }); rmSync(tmp + '-shm', { force: true });
    createPrivate(tmp);
    const db = new Database(tmp);
    try {
      schema(db);
      // (its revision row from the start: the open needs no write to make one)
      db.prepare(SET_META_SQL).run(REVISION_KEY, `${randomUUID()}:0`);
    } finally { db.close(); }
    this.install(tmp);
  }

  /** A complete state.db.new (closed: its WAL checkpointed into it), made durable, then renamed
   * into place: a crash before the rename leaves no state.db, and the next start begins again. */
  private install(tmp: string): void {
    const fd = openSync(tmp, 'r+');
    try { fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(tmp, this.path);
    fsyncDir(this.dir);
  }

  private migrate(legacy: LegacyStateFile, check: (s: DesiredState) => void, problems: string[]): void {
    const old = legacy.load(check); // throws StateError when no copy is usable, keeping the files
    problems.push(...old.problems);
    const tmp = this.path + '.new';
    rmSync(tmp, { force: true }); rmSync(tmp + '-wal', { force: true }); rmSync(tmp + '-shm', { force: true });
    createPrivate(tmp);
    const db = new Database(tmp);
    let n = 0;
    try {
      schema(db);
      db.pragma('synchronous = FULL');
      db.pragma(`cache_size = -${CACHE_KIB}`);
      const st = old.state;
      if (st) {
        const up = db.prepare('INSERT INTO objects (kind, key, body, crc) VALUES (?, ?, ?, ?)');
        db.transaction(() => {
          const put = (kind: StoredKind, raw: unknown) => {
            const body = JSON.stringify(raw);
            up.run(kind, kind === 'NodeConfig' ? '' : objectKeyOf(raw), body, crc32(body));
            n++;
          };
          for (const s of st.services) put('Service', s);
          for (const s of st.endpointSlices) put('EndpointSlice', s);
          if (st.node) put('NodeConfig', st.node);
        })();
      }
    } finally { db.close(); }
    this.install(tmp);
    problems.push(`migrated ${n} objects from ${old.source === 'backup' ? legacy.backup : legacy.primary} to ${this.path}`);
    this.keepLegacy(legacy, problems, 'migrated');
  }

  private keepLegacy(legacy: LegacyStateFile, problems: string[], why: string): void {
    for (const f of [legacy.primary, legacy.backup]) {
      if (!existsSync(f)) continue;
      const kept = `${f}.migrated`;
      try { renameSync(f, kept); problems.push(`${why}: kept ${f} as ${kept}`); } catch (e) { problems.push(`${why}: could not rename ${f}: ${(e as Error).message}`); }
    }
    fsyncDir(this.dir);
  }

  /** Writes one apply's changes in one durable transaction; throws (writing nothing) on failure.
   * Not while a staged write is in flight (stage: its commit waits for the thread). */
  commit(w: StoreWrite): CommitStats {
    if (!this.opened) throw new StateError(`${this.path} is not open`);
    this.checkFiles();
    this.settle();
    checkFree(this.path);
    this.lastCommit = this.writeSync(w);
    this.committed(this.lastCommit);
    return this.lastCommit;
  }

  /** commit(), this thread not waiting: the writer thread commits while it goes on (an apply's
   * undo, the configured node config saved at restore; a deferred stage). Resolves once the write
   * is durable. `undo`: as stage's. */
  async commitAsync(w: StoreWrite, undo?: () => StoreWrite): Promise<CommitStats> {
    if (!this.opened) throw new StateError(`${this.path} is not open`);
    this.checkFiles();
    await this.settleAsync();
    checkFree(this.path);
    const revision = this.rev!.n + 1;
    const writer = this.writerThread();
    let r: CommitStats;
    try { r = await writer.request({ op: 'write', ...this.serialised(w, revision) }); } catch (e) {
      if (e instanceof NotSentError || !await this.lostAsync(e as Error, revision, undo)) throw this.explained(e as Error);
      r = { rows: w.upsert.length + w.remove.length, bytes: -1 };
    }
    this.rev!.n = revision;
    this.lastCommit = { rows: r.rows, bytes: r.bytes };
    this.committed(this.lastCommit);
    return this.lastCommit;
  }

  private committed(c: CommitStats): void {
    // a commit appends every page it changed, whole: the objects' leaf pages (the rows' bytes, at
    // least one page) and the meta row's page
    const pages = (2 + Math.ceil(c.bytes / PAGE_SIZE)) * PAGE_SIZE;
    this.walBytes += pages;
    this.appended += pages;
    if ((this.walBytes >= this.checkpointBytes || this.checkpointAgain) && !this.checkpointing) this.checkpoint();
  }

  /** The writer thread (started on first use: the first large write or checkpoint). */
  private writerThread(): StoreWriterThread {
    if (this.writer) return this.writer;
    // (its connection locks the database for itself: the start's index holder must be gone)
    waitReleased(this.path);
    return this.writer = new StoreWriterThread({ path: this.path, busyTimeoutMs: BUSY_TIMEOUT_MS, cacheKiB: CACHE_KIB });
  }

  /** Begins one apply's write, to be committed (or aborted) once the change is known to be good
   * (the control plane begins it before the compile, or — a large one with no source text — once
   * the diff went to the workers). It is serialised now and inserted by the writer thread meanwhile (a small one while the WAL is
   * ~WAL_BEHIND_CHECKPOINTS checkpoints long: sent at its commit, once they ran). A large write whose source texts are
   * bytes (a Buffer) hands them to the thread: they are unusable here afterwards (the request's
   * body, read by no one once its apply began); one with no source text goes as bytes serialised
   * here (serialisedBytes). `undo()`: the write that puts back what `w`
   * replaces, for a commit whose outcome is not known (StoreStateUncertain): committed before the
   * next write if it was durable after all (without one, such a commit is kept). */
  stage(w: StoreWrite, undo?: () => StoreWrite): StagedWrite {
    if (!this.opened) throw new StateError(`${this.path} is not open`);
    this.checkFiles();
    const small = w.upsert.length + w.remove.length < this.stageOnThreadRows;
    if (this.unsettled) {
      // (a commit whose outcome is not known is settled first — the revision row read, maybe an
      // undo committed — without this thread waiting: the write is sent at its commit, after it)
      const before = this.writer?.idle();
      return { commit: async () => { await before; return this.commitAsync(w, undo); }, abort: () => {} };
    }
    if (small && this.walLength() >= WAL_BEHIND_CHECKPOINTS * this.checkpointBytes) {
      // (the WAL must start again first: committed once the checkpoints ran, walCaughtUp)
      const before = this.writer?.idle();
      return { commit: async () => { await before; await this.walCaughtUp(); return this.commitAsync(w, undo); }, abort: () => {} };
    }
    checkFree(this.path);
    const writer = this.writerThread();
    // A small write (a one-endpoint change: one row) is staged too, its bodies serialised here (no
    // text handed over): its rows are inserted while this thread compiles, and its commit is only
    // the COMMIT's round trip. The thread checkpoints after a large write's commit only; a small
    // one's WAL is counted here (committed()), and checkpointed past CHECKPOINT_BYTES.
    const revision = this.rev!.n + 1;
    if (small) return this.staged(writer, writer.request({ op: 'stage', ...this.serialised(w, revision) }), revision, undo, true);
    const text = w.upsert.find((o) => o.source)?.source?.text;
    const rows = text === undefined ? this.serialisedBytes(w, revision) : this.writeRows(w, revision, text);
    // The revision goes in the thread's transaction: committed with the rows or not at all. The
    // counter it names stays right until the commit: the thread's transaction holds the database's
    // write lock from here (BEGIN IMMEDIATE), so no other commit moves the revision meanwhile.
    const staged = writer.request({ op: 'stage', ...rows }, undefined, typeof rows.text === 'string' ? undefined : rows.text.buffer);
    return this.staged(writer, staged, revision, undo, false);
  }

  /** The StagedWrite of a stage request sent (`staged`: its answer) for commit `revision`.
   * `small`: its commit is counted here for the checkpoints (a large one's the thread checkpoints
   * after its commit). */
  private staged(writer: StoreWriterThread, staged: Promise<CommitStats>, revision: number, undo: (() => StoreWrite) | undefined, small: boolean): StagedWrite {
    const thread = writer.threadNo; // the transaction lives in that thread's connection
    // answered through commit(); an aborted write's failure is moot. Its answer kept: a commit
    // begun once the stage answered is posted within the commit() call, not after an `await` — a
    // caller that begins the commit and then works on (an apply preparing its answer) would hold
    // the thread's COMMIT back until that work is done
    let stagedStats: { rows: number; bytes: number } | null = null;
    staged.then((r) => { stagedStats = r; }, () => undefined);
    let settled = false;
    return {
      commit: async () => {
        if (settled) throw new StateError('a staged write is committed or aborted once');
        settled = true;
        const stats = stagedStats ?? await staged.catch((e: Error) => { throw this.explained(e); });
        try { await writer.request({ op: 'commit', checkpoint: !small }, thread); } catch (e) {
          // (a commit never sent: nothing was committed)
          if (e instanceof NotSentError) throw e;
          // a thread that stopped after its COMMIT and before its answer (it exited, or the answer
          // could not be read) committed all the same: the revision row it wrote tells
          let now: string | null;
          try { now = await this.readRevisionAsync(); } catch (e2) {
            // not known: say so, and settle it before the next write (the caller refuses the
            // change, so a durable commit is undone then: the store ends as the caller's state)
            this.unsettled = { revision, undo: undo?.() ?? null, durable: false };
            throw new StoreStateUncertain(`the store's state is uncertain: ${e instanceof ThreadStoppedError ? `the store writer thread stopped (${e.reason})` : (e as Error).message} after the commit was sent, and ${this.path}'s revision, which tells whether it is durable, cannot be read (${(e2 as Error).message}). ` +
              'If it is, the previous objects are put back before the next write; writes are refused until the revision can be read (a restart before then starts with the change)');
          }
          if (now !== `${this.rev!.id}:${revision}`) throw this.explained(e as Error);
        }
        this.rev!.n = revision;
        this.lastCommit = { rows: stats.rows, bytes: stats.bytes };
        if (small) this.committed(this.lastCommit); // (a large one: the thread checkpoints after it)
        return this.lastCommit;
      },
      abort: () => {
        if (settled) return;
        settled = true;
        writer.request({ op: 'rollback' }, thread).catch(() => undefined); // a dead thread took the write with it
      },
    };
  }

  /** Starts the writer thread and opens its connection in the background, ahead of the first
   * large write (StoreWriterThread.prestart); no-op before open() or once started. */
  prestartWriter(): void {
    if (!this.opened) return;
    this.writerThread().prestart();
  }

  /** Whether a staged write is in flight on the writer thread (a probe on this thread would wait
   * for its lock). */
  get stagingBusy(): boolean { return this.writer?.busy ?? false; }

  /** The writer thread, for tests that make it fail (null: none started). */
  get writerThreadForTests(): StoreWriterThread | null { return this.writer; }

  /** A durable write outside the objects (the time of the probe): proves the store can commit
   * again (healthz calls it while saves are failing). Throws like commit. */
  probe(): void {
    if (!this.opened) throw new StateError(`${this.path} is not open`);
    this.checkFiles();
    this.settle();
    checkFree(this.path);
    try { this.writerThread().requestSync({ op: 'probe' }); } catch (e) { throw this.explained(e as Error); }
  }

  /** `e` (a failed write's error: SQLite's "disk I/O error" says little) with what writeProblem
   * finds now appended, or else SQLite's I/O error code. */
  private explained(e: Error): Error {
    const code = (e as { code?: unknown }).code;
    const why = this.writeProblem() ?? (code === 'SQLITE_IOERR_FSYNC' ? 'SQLITE_IOERR_FSYNC: the disk failed to make the write durable' : typeof code === 'string' && code.startsWith('SQLITE_IOERR') ? code : null);
    if (why && !e.message.includes(why)) e.message = `${e.message} (${why})`;
    return e;
  }

  /** The WAL's length since it last started again, at most (bytes): what the last checkpoint
   * found and what this thread appended since it was asked — a checkpoint slow to answer (its
   * thread starved of CPU) does not hide the commits made meanwhile. */
  private walLength(): number { return this.walFrames * PAGE_SIZE + this.appended - this.walFramesAt; }

  /** Resolves at once unless the WAL has not started again for WAL_BEHIND_CHECKPOINTS checkpoints'
   * worth: a commit starts it again only once a checkpoint copied it whole, and under applies
   * back to back each checkpoint ends after the next commit appended more (the WAL grew without
   * bound). Then once the checkpoint in flight and one with no commit beside it have run: the
   * commit that follows starts the WAL again. */
  private async walCaughtUp(): Promise<void> {
    if (this.walLength() < WAL_BEHIND_CHECKPOINTS * this.checkpointBytes) return;
    await this.checkpointing;
    await this.checkpoint();
    // (even if a reader of another process held frames: the next applies do not wait again for
    // another WAL_BEHIND_CHECKPOINTS' worth)
    this.walFrames = 0;
    this.walFramesAt = this.appended;
  }

  /** Has the writer thread copy the WAL into the database file (PASSIVE: never waits for, or
   * blocks, a reader or this thread's commits, which go on meanwhile). A failure is harmless: the
   * WAL keeps the data, and a checkpoint after the next commit tries again. Called only between
   * applies (no staged write is open on the thread then). Resolves when it is done; never rejects. */
  checkpoint(): Promise<void> {
    if (!this.opened) return Promise.resolve();
    if (this.checkpointing) return this.checkpointing;
    const counted = this.walBytes, askedAt = this.appended;
    return this.checkpointing = this.writerThread().request({ op: 'checkpoint' }).then(
      // The WAL starts again (and is cut back to WAL_SIZE_LIMIT) at the first commit after a
      // checkpoint that left it copied whole. One that left frames (a reader held them, or it could
      // not run), or beside which this thread committed (those frames may be past what it copied),
      // did not: it is asked for again at the next commit — not after another checkpointBytes, or
      // commits at any pace after a burst could leave the WAL at the burst's size.
      (r) => {
        const whole = r.bytes === 0, beside = this.appended !== askedAt;
        if (whole) this.walBytes -= counted;
        this.checkpointAgain = !whole || beside;
        this.walFrames = this.checkpointAgain ? r.rows : 0;
        this.walFramesAt = askedAt;
      },
      () => undefined,
    ).finally(() => { this.checkpointing = null; });
  }

  /** Closes the store: the writer thread's connection, the only one (its close checkpoints and
   * removes the WAL); the promise resolves once it did (the files no longer change: a table image
   * stamps them at stop), or after 5 s; never rejects. */
  close(): Promise<void> {
    this.opened = false;
    const writerClosed = (this.writer?.close() ?? Promise.resolve()).then(() => { OPEN_STORES.delete(this.path); });
    this.writer = null;
    return writerClosed;
  }
}

/** "namespace/name" of a raw Service or EndpointSlice, as the model keys it (namespace defaults to
 * "default"). Only for migrated objects, which their old file's checks validated. */
function objectKeyOf(raw: unknown): string {
  const md = (raw as { metadata?: { namespace?: unknown; name?: unknown } }).metadata ?? {};
  return `${typeof md.namespace === 'string' && md.namespace ? md.namespace : 'default'}/${String(md.name)}`;
}

export { STATE_FILE as LEGACY_STATE_FILE };
