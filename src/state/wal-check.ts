// The store's write-ahead log checked before SQLite opens it. SQLite reads a WAL up to its first
// frame that fails its checksum and silently ignores the rest: a torn last write after a crash
// (never acknowledged) reads the same as a damaged frame in the middle of the log — and then every
// commit after it, acknowledged, is dropped without a word (the store would start with an older
// state). So before the open this reads the log the way SQLite's recovery does and refuses it
// (StateError, nothing changed) when committed data past the damage can be proven:
//
// * its header is damaged while frames follow it (SQLite would ignore the whole log);
// * after the first bad frame, a commit frame whose own checksum holds (computed from the stored
//   checksum of the frame before it) is followed by more such frames, or two such commit frames
//   exist: a whole transaction was written after the damaged one. A torn tail — the one
//   transaction in flight at a crash, unacknowledged — has at most its own commit frame, last;
// * the commit record (`state.db-walmark`, wal-mark.ts: written by the writer thread after each
//   commit's fsync) names more committed frames of this log (its salts) than the readable prefix
//   holds: a log cut short or damaged in its last transaction(s), after they were durable. A
//   missing, stale (other salts: an earlier generation of the log) or damaged record says nothing.
//   A log shorter than its header (emptied, or cut inside its header) has no salts to compare the
//   record with: walEmptiedClaim then returns the record's revision, which the open compares with
//   the revision row of the database file (what SQLite starts with from such a log) — store.ts.
//   The wal-index (`state.db-shm`) is not read: the writing connection keeps its index in its heap
//   (locking_mode=EXCLUSIVE), so a `-shm` on disk is what some read-only connection saw once, no
//   account of what was committed — a refusal on its word could only be a false alarm.
//
// File formats: https://www.sqlite.org/fileformat.html ("The Write-Ahead Log", "WAL-Index Format").
import { closeSync, existsSync, fstatSync, openSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { FRAME_HEADER, frameOk, isCommit, readAt, storedChecksum, WAL_HEADER, walHeader } from './wal-format.js';
import { readWalMark, type WalMarkRecord } from './wal-mark.js';

/** What is wrong with `walPath` that SQLite would not say (null: nothing it can prove). Reads the
 * file (and `markPath`) only; never throws for a file it cannot read (the open reports that).
 * `markPath`: the commit record (wal-mark.ts); null: not read — as while a connection of this
 * process has the store open (its writer thread writes the record meanwhile). */
export function walProblem(walPath: string, markPath: string | null): string | null {
  if (!existsSync(walPath)) return null;
  // (the record before the log: one a running writer writes meanwhile describes a log at most as
  // long as the one read below — wal-mark.ts)
  const mark = markPath === null ? null : readWalMark(markPath);
  let fd: number;
  try { fd = openSync(walPath, 'r'); } catch { return null; }
  try {
    const size = fstatSync(fd).size;
    if (size < WAL_HEADER) return null;
    const h = walHeader(readAt(fd, 0, WAL_HEADER));
    if (!h.ok) {
      return size >= WAL_HEADER + FRAME_HEADER + 512 ? `its header is damaged (SQLite would ignore all ${size} bytes of it)` : null;
    }
    const { salt1, salt2, pageSize } = h;
    const frameSize = FRAME_HEADER + pageSize;
    const frames = Math.floor((size - WAL_HEADER) / frameSize);
    // the readable prefix, as SQLite's recovery reads it
    let s: [number, number] = h.seed;
    let lastCommit = 0, brokeAt = 0;
    const stored: Array<[number, number]> = [];
    for (let i = 1; i <= frames; i++) {
      const f = readAt(fd, WAL_HEADER + (i - 1) * frameSize, frameSize);
      stored[i] = storedChecksum(f);
      if (brokeAt === 0) {
        if (frameOk(h, f, s)) {
          s = stored[i];
          if (isCommit(f)) lastCommit = i;
          continue;
        }
        brokeAt = i;
        continue;
      }
    }
    if (brokeAt) {
      // frames after the break that check out from their predecessor's stored checksum
      const commitsAfter: number[] = [];
      let lastValid = 0;
      for (let i = brokeAt + 1; i <= frames; i++) {
        const f = readAt(fd, WAL_HEADER + (i - 1) * frameSize, frameSize);
        if (!frameOk(h, f, stored[i - 1])) continue;
        lastValid = i;
        if (isCommit(f)) commitsAfter.push(i);
      }
      if (commitsAfter.length >= 2 || (commitsAfter.length === 1 && lastValid > commitsAfter[0])) {
        return `frame ${brokeAt} of ${frames} fails its checksum, and ${commitsAfter.length} committed transaction${commitsAfter.length > 1 ? 's' : ''} follow${commitsAfter.length > 1 ? '' : 's'} it (SQLite would drop them silently)`;
      }
    }
    const why = brokeAt ? `frame ${brokeAt} fails its checksum` : `the log ends after frame ${frames}`;
    if (mark && mark.salt1 === salt1 && mark.salt2 === salt2 && mark.pageSize === pageSize && mark.frames > lastCommit) {
      return `its commit record (${markPath}) records ${mark.frames} committed frames${mark.revision ? ` (the store's revision ${mark.revision})` : ''}, but only ${lastCommit} can be read: ${why} ` +
        `(SQLite would drop the commits after it silently; a log older than the record on purpose, restored from a backup, opens with what it holds once ${markPath} is moved away)`;
    }
    return null;
  } finally { closeSync(fd); }
}

/** The commit record's claim to check against the database file when the log `walPath` exists but
 * is shorter than its header (it holds nothing SQLite would read: the store starts with what the
 * database file holds), and `markPath`'s record names committed frames; null otherwise. Its salts
 * went with the header, so the record cannot be matched to the log: SQLite empties a log only by
 * deleting it at the last connection's close, after copying it whole into the database file (and
 * the next connection makes it afresh, empty), which leaves the record's revision in the database
 * file — whereas a log emptied or cut after its commits were durable leaves the file older than the
 * record (the caller compares the revisions: lostCommits). */
export function walEmptiedClaim(walPath: string, markPath: string): { size: number; mark: WalMarkRecord } | null {
  let size: number;
  try { size = statSync(walPath).size; } catch { return null; }
  if (size >= WAL_HEADER) return null;
  const mark = readWalMark(markPath);
  return mark && mark.frames > 0 && mark.revision ? { size, mark } : null;
}

/** Whether a database file at revision `file` ("<store id>:<commits>", null: none) lacks commits
 * the record's revision `claimed` names: the same store, fewer commits. (Another store id: the
 * record is another store's — a store moved away and made afresh — and says nothing of this one.) */
export function lostCommits(file: string | null, claimed: string): boolean {
  const a = /^(.+):(\d+)$/.exec(file ?? ''), b = /^(.+):(\d+)$/.exec(claimed);
  if (!b) return false;
  if (!a) return file === null; // (a store with no revision row cannot hold the claimed one)
  return a[1] === b[1] && Number(a[2]) < Number(b[2]);
}

/** walProblem's words for an emptied log whose database file is at revision `file`. */
export function emptiedProblem(claim: { size: number; mark: WalMarkRecord }, markPath: string, dbPath: string, file: string | null): string {
  return `it is ${claim.size} bytes long, shorter than its ${WAL_HEADER}-byte header, but its commit record (${markPath}) records ${claim.mark.frames} committed frames up to the store's revision ${claim.mark.revision}, ` +
    `and ${dbPath} holds ${file === null ? 'no revision' : `only revision ${file}`}: the log was emptied or cut after those commits were durable (SQLite would start without them silently; a log emptied on purpose opens with what ${dbPath} holds once ${markPath} is moved away)`;
}
