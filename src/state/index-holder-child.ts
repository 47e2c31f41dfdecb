// The index holder's process (src/state/index-holder.ts starts it): the first connection to the
// store's wal-index, in a process of its own. argv: the database's path, the index bytes to back.
// It opens a read-only connection (SQLite, first to attach, truncates state.db-shm and rebuilds it
// from the WAL in its shared memory mapping), writes the index file out whole (its bytes as they
// are, zeros up to the size asked), says `ready` on stdout and keeps the connection open until its
// stdin ends. A fault on the mapping (SIGBUS: the filesystem filled) kills this process, not the
// daemon. Any error is one line on stdout, `error <message>`.
import Database from 'better-sqlite3';
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

const [path, bytesArg] = process.argv.slice(2);
let db: Database.Database | null = null;
try {
  db = new Database(path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 200');
  db.prepare('SELECT count(*) FROM sqlite_master').get(); // (the attach: the index made afresh)
  // (this descriptor stays open with the connection: closing one would drop every POSIX lock this
  // process holds on the file — SQLite's read lock on it, which is what holds the index)
  const fd = openSync(path + '-shm', 'r+');
  const size = fstatSync(fd).size;
  const b = Buffer.alloc(Math.max(size, Number(bytesArg)));
  for (let got = 0; got < size;) { const n = readSync(fd, b, got, size - got, got); if (n === 0) break; got += n; }
  for (let put = 0; put < b.length;) put += writeSync(fd, b, put, b.length - put, put);
  process.stdout.write('ready\n');
  process.stdin.on('data', () => undefined);
  process.stdin.on('end', () => { try { db?.close(); } catch { /* exiting */ } closeSync(fd); process.exit(0); });
  process.stdin.resume();
} catch (e) {
  process.stdout.write(`error ${(e as Error).message.replace(/\n/g, ' ')}\n`);
  try { db?.close(); } catch { /* exiting */ }
  process.exit(1);
}
