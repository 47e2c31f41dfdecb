// The store's write-ahead log damaged after a crash (src/state/wal-check.ts): SQLite reads a log up
// to its first bad frame and silently drops the rest, so a flipped byte in an early frame, or a log
// cut short, would start the daemon with an older state than was acknowledged. The open refuses
// such a log naming it, changing nothing; a torn tail (a crash in the middle of a write that was
// never acknowledged) and an intact log open as before. A log cut short, or damaged, in its last
// transactions is told by the commit record the writer thread keeps (state.db-walmark,
// src/state/wal-mark.ts); a record of an earlier generation of the log, a damaged one, or none
// (a store a wdp before it wrote) raise no alarm.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateStore } from '../dist/src/state/store.js';
import { checksum } from '../dist/src/state/wal-format.js';
import { readWalMark } from '../dist/src/state/wal-mark.js';
import { walEnd } from './lib/wal-end.js';

const STORE = new URL('../dist/src/state/store.js', import.meta.url).pathname;
const COMMITS = 8;
const FRAME = 24 + 16384;

/** A state dir as a SIGKILL leaves it after COMMITS small commits (one Service each): the WAL and
 * the commit record in place, nothing checkpointed. (A peek before the kill: a request the writer
 * thread answers after it wrote the last commit's record — it writes it after its answer.) */
function killedStore(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-wal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { StateStore } from '${STORE}';
const s = new StateStore(process.argv[1]); s.open();
for (let i = 0; i < ${COMMITS}; i++) s.commit({ upsert: [{ kind: 'Service', key: 'shop/s' + i, raw: { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' + i, namespace: 'shop' }, spec: { clusterIP: '10.96.0.' + (10 + i), ports: [{ port: 80 }] } } }], remove: [] });
StateStore.peek(process.argv[1]);
process.kill(process.pid, 'SIGKILL');`, dir], { encoding: 'utf8' });
  t.is(r.signal, 'SIGKILL', r.stderr);
  return dir;
}

const copy = (t, dir) => { const d = mkdtempSync(join(tmpdir(), 'wdp-wal-')); t.teardown(() => rmSync(d, { recursive: true, force: true })); cpSync(dir, d, { recursive: true }); return d; };
const open = (dir) => { const s = new StateStore(dir); try { return s.open().state?.services.length ?? 0; } finally { void s.close(); } };
const files = (dir) => Object.fromEntries(['state.db', 'state.db-wal'].map((f) => [f, readFileSync(join(dir, f)).toString('base64')]));

test('an intact log after a SIGKILL opens with every commit; so does a torn tail (a write never acknowledged)', (t) => {
  const dir = killedStore(t);
  t.true(statSync(join(dir, 'state.db-wal')).size > 32 + COMMITS * FRAME, 'the commits are in the log');
  t.is(open(copy(t, dir)), COMMITS);
  const torn = copy(t, dir);
  // half a frame after the last commit: what a crash in the middle of the next write leaves
  appendFileSync(join(torn, 'state.db-wal'), Buffer.alloc(FRAME / 2, 7));
  t.is(open(torn), COMMITS);
});

test('a flipped byte in an early frame of the log: the open refuses it, naming it, and changes nothing', (t) => {
  const dir = copy(t, killedStore(t));
  const wal = join(dir, 'state.db-wal');
  const b = readFileSync(wal);
  b[32 + FRAME + 24 + 100] ^= 0x40;          // the second frame's page
  writeFileSync(wal, b);
  const before = files(dir);
  const e = t.throws(() => open(dir));
  t.is(e.name, 'StateError');
  t.regex(e.message, /state\.db-wal \(the store's write-ahead log, holding its latest commits\): frame 2 of \d+ fails its checksum, and \d+ committed transactions follow it/);
  t.regex(e.message, /Nothing was deleted or changed/);
  t.deepEqual(files(dir), before);
});

test('a log cut short (its last commits gone): the commit record says how many frames were committed, the open refuses it', (t) => {
  const dir = copy(t, killedStore(t));
  const wal = join(dir, 'state.db-wal');
  truncateSync(wal, statSync(wal).size - 2 * FRAME);
  const before = files(dir);
  const e = t.throws(() => open(dir));
  t.is(e.name, 'StateError');
  t.regex(e.message, /state\.db-wal \(the store's write-ahead log, holding its latest commits\): its commit record \(\S+state\.db-walmark\) records \d+ committed frames \(the store's revision [0-9a-f-]{36}:8\), but only \d+ can be read: the log ends after frame \d+/);
  t.regex(e.message, /Nothing was deleted or changed/);
  t.deepEqual(files(dir), before);
});

test('a log emptied, or cut inside its 32-byte header, after its commits were durable: refused through the commit record, nothing changed', (t) => {
  const killed = killedStore(t);
  for (const size of [0, 20]) {
    const dir = copy(t, killed);
    truncateSync(join(dir, 'state.db-wal'), size);
    const before = { ...files(dir), mark: readFileSync(join(dir, 'state.db-walmark')).toString('base64') };
    const e = t.throws(() => open(dir), undefined, `a log of ${size} bytes`);
    t.is(e.name, 'StateError');
    t.regex(e.message, new RegExp(`state\\.db-wal \\(the store's write-ahead log, holding its latest commits\\): it is ${size} bytes long, shorter than its 32-byte header, but its commit record \\(\\S+state\\.db-walmark\\) records \\d+ committed frames up to the store's revision ([0-9a-f-]{36}):8, and \\S+state\\.db holds only revision \\1:0: the log was emptied or cut after those commits were durable`));
    t.regex(e.message, /Nothing was deleted or changed/);
    t.deepEqual({ ...files(dir), mark: readFileSync(join(dir, 'state.db-walmark')).toString('base64') }, before);
    // the peek at start (a table image's revision check) trusts nothing of it either
    t.deepEqual(StateStore.peek(dir), { revision: null, node: null });
    t.is(StateStore.peek(killed).revision?.split(':')[1], '8', 'the intact store peeks at its revision');
  }
});

test('a log SQLite removed (a clean close of the writing connection) and a connection made afresh, then a crash before a commit: the database file holds the revision the record names, no alarm', (t) => {
  // at a new start, and at a new writer thread in the same process (the first one closed): each
  // time the log is made afresh, empty, beside a record of the log that was removed
  // and at a store made afresh (state.db moved away, the record of the old one left behind: another
  // store id, so it says nothing of the new one)
  for (const how of ['restart', 'thread', 'moved']) {
    const dir = mkdtempSync(join(tmpdir(), 'wdp-wal-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { StateStore } from '${STORE}';
import { existsSync, renameSync } from 'node:fs';
import { readWalMark } from '${new URL('../dist/src/state/wal-mark.js', import.meta.url).pathname}';
const dir = process.argv[1];
let s = new StateStore(dir); s.open();
for (let i = 0; i < 3; i++) s.commit({ upsert: [{ kind: 'Service', key: 'shop/s' + i, raw: { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' + i, namespace: 'shop' }, spec: { clusterIP: '10.96.0.' + (10 + i), ports: [{ port: 80 }] } } }], remove: [] });
StateStore.peek(dir);
if ('${how}' === 'thread') await s.writerThreadForTests.close();
else { await s.close(); if ('${how}' === 'moved') renameSync(dir + '/state.db', dir + '/old.db'); s = new StateStore(dir); s.open(); }
if (existsSync(dir + '/state.db-wal') && '${how}' === 'thread') throw new Error('the closed thread left its log');
StateStore.peek(dir); // (the writer thread opens its connection: the log made afresh)
process.kill(process.pid, 'SIGKILL');`, dir], { encoding: 'utf8' });
    t.is(r.signal, 'SIGKILL', r.stderr);
    t.true(statSync(join(dir, 'state.db-wal')).size < 32, `${how}: the log made afresh, empty`);
    let n = -1;
    t.notThrows(() => { n = open(copy(t, dir)); }, how);
    t.is(n, how === 'moved' ? 0 : 3, how);
  }
});

test('a flipped byte in the log\'s last frame: refused through the commit record', (t) => {
  const dir = copy(t, killedStore(t));
  const wal = join(dir, 'state.db-wal');
  const b = readFileSync(wal);
  b[b.length - 50] ^= 0x01;
  writeFileSync(wal, b);
  const before = files(dir);
  const e = t.throws(() => open(dir));
  t.is(e.name, 'StateError');
  t.regex(e.message, /state\.db-walmark\) records \d+ committed frames \(the store's revision \S+\), but only \d+ can be read: frame \d+ fails its checksum/);
  t.deepEqual(files(dir), before);
});

test('a commit record of an earlier generation of the log (a crash after the log started again, before its first record): no alarm', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-wal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // COMMITS commits, the record kept aside; a checkpoint copies the log whole and the next commit
  // starts it again (new salts, from its first frame); the record from before put back
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { StateStore } from '${STORE}';
import { copyFileSync } from 'node:fs';
const dir = process.argv[1], s = new StateStore(dir); s.open();
const put = (i) => s.commit({ upsert: [{ kind: 'Service', key: 'shop/s' + i, raw: { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' + i, namespace: 'shop' }, spec: { clusterIP: '10.96.0.' + (10 + i), ports: [{ port: 80 }] } } }], remove: [] });
for (let i = 0; i < ${COMMITS}; i++) put(i);
StateStore.peek(dir);
copyFileSync(dir + '/state.db-walmark', dir + '/old-walmark');
await s.checkpoint();
put(${COMMITS});
StateStore.peek(dir);
copyFileSync(dir + '/old-walmark', dir + '/state.db-walmark');
process.kill(process.pid, 'SIGKILL');`, dir], { encoding: 'utf8' });
  t.is(r.signal, 'SIGKILL', r.stderr);
  const old = readWalMark(join(dir, 'state.db-walmark'));
  const now = walEnd(join(dir, 'state.db-wal'));
  t.truthy(old);
  t.not(old.salt1, now.salt1, 'the log started again: another generation');
  t.true(old.frames > now.last, `the old record names more frames (${old.frames}) than the new generation holds (${now.last}): its salts alone tell it apart`);
  t.is(open(dir), COMMITS + 1);
});

test('no commit record (a store a wdp before it wrote, a crash before the first record) or a damaged one: the store opens as SQLite reads it', (t) => {
  const dir = killedStore(t);
  t.true(existsSync(join(dir, 'state.db-walmark')));
  const none = copy(t, dir);
  rmSync(join(none, 'state.db-walmark'));
  t.is(open(copy(t, none)), COMMITS);
  // (without a record a log cut short is not told: it opens with what it holds)
  const wal = join(none, 'state.db-wal');
  truncateSync(wal, statSync(wal).size - 2 * FRAME);
  t.is(open(none), COMMITS - 1);
  // a record torn or damaged: its CRC-32 fails, it is not trusted
  const bad = copy(t, dir);
  const mark = readFileSync(join(bad, 'state.db-walmark'));
  mark[21] ^= 0x10;
  writeFileSync(join(bad, 'state.db-walmark'), mark);
  truncateSync(join(bad, 'state.db-wal'), statSync(join(bad, 'state.db-wal')).size - 2 * FRAME);
  t.is(open(bad), COMMITS - 1);
});

test('a torn tail after the record (a whole frame of a transaction never committed, then half a frame) opens with every commit', (t) => {
  const dir = copy(t, killedStore(t));
  const wal = join(dir, 'state.db-wal');
  const b = readFileSync(wal);
  const { last } = walEnd(wal);
  t.is(readWalMark(join(dir, 'state.db-walmark')).frames, last, 'the record names the last commit frame');
  // frame last+1: the last frame's page again, not a commit frame, its checksum chained from the
  // last commit frame's — what a crash leaves after the first frame of the next transaction
  const at = 32 + (last - 1) * FRAME, f = Buffer.from(b.subarray(at, at + FRAME));
  const be = (b.readUInt32BE(0) & 1) === 1;
  f.writeUInt32BE(0, 4);
  const x = checksum(f.subarray(24), be, ...checksum(f.subarray(0, 8), be, b.readUInt32BE(at + 16), b.readUInt32BE(at + 20)));
  f.writeUInt32BE(x[0], 16); f.writeUInt32BE(x[1], 20);
  writeFileSync(wal, Buffer.concat([b.subarray(0, 32 + last * FRAME), f, Buffer.alloc(FRAME / 2, 7)]));
  t.is(walEnd(wal).last, last);
  t.is(open(dir), COMMITS);
});

test('a store refused at open (its objects do not validate, or it is damaged) keeps its log: nothing is folded into the file or removed', (t) => {
  const dir = copy(t, killedStore(t));
  const before = files(dir);
  const s = new StateStore(dir);
  const e = t.throws(() => s.open(() => { throw new Error('a field is wrong'); }));
  t.regex(e.message, /the saved objects do not validate: a field is wrong/);
  t.deepEqual(files(dir), before, 'state.db and state.db-wal byte for byte as they were');
  // a file cut short (quick_check or the read fails): the same
  const cut = copy(t, killedStore(t));
  truncateSync(join(cut, 'state.db'), 1000);
  const cutBefore = files(cut);
  t.throws(() => open(cut), { name: 'StateError' });
  t.deepEqual(files(cut), cutBefore);
  t.is(open(copy(t, dir)), COMMITS, 'the log kept holds every commit');
});
