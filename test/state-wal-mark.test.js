// The commit record (state.db-walmark, src/state/wal-mark.ts) the writer thread keeps after each
// commit must name exactly the frame SQLite's recovery ends at — more would refuse an intact store
// at its next start (a false alarm), fewer only weakens the check. A store killed again and again
// across everything that moves the log — the thread's first commit on a log a crash left, small
// commits, writes staged on the thread (the thread's own checkpoint after them), the health probe,
// checkpoints after which the log starts again with new salts — is checked at each kill: the
// record's salts and frame are the log's own, and the store opens with every commit.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateStore } from '../dist/src/state/store.js';
import { checksum } from '../dist/src/state/wal-format.js';
import { readWalMark } from '../dist/src/state/wal-mark.js';
import { walEnd } from './lib/wal-end.js';

const STORE = new URL('../dist/src/state/store.js', import.meta.url).pathname;
const ROUNDS = 5, OPS = 30, KEYS = 50;

/** Op j of round r: 0 a commit on the main thread's call, 1 a write staged on the thread (8 rows:
 * past the lowered threshold), 2 the probe, 3 a checkpoint, 4 a small staged write. */
const opOf = (r, j) => (r * 31 + j * 7) % 5;
const keysOf = (r, j) => Array.from({ length: opOf(r, j) === 1 ? 8 : 1 }, (_, m) => `shop/s${(r * OPS + j + m) % KEYS}`);

test('killed across checkpoints, log restarts, staged writes and probes: the record names the log\'s own last commit frame, and the store opens whole', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-walmark-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const expected = new Set();
  const generations = new Set();
  for (let r = 0; r < ROUNDS; r++) {
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', `import { StateStore } from '${STORE}';
const dir = process.argv[1], r = ${r}, s = new StateStore(dir); s.open();
s.stageOnThreadRows = 5; s.checkpointBytes = 64 << 10;
const opOf = ${opOf.toString()}, keysOf = (r, j) => Array.from({ length: opOf(r, j) === 1 ? 8 : 1 }, (_, m) => 'shop/s' + ((r * ${OPS} + j + m) % ${KEYS}));
const w = (j) => ({ upsert: keysOf(r, j).map((key) => ({ kind: 'Service', key, raw: { metadata: { name: key.slice(5), namespace: 'shop' }, spec: { r, j, pad: 'x'.repeat(2000) } } })), remove: [] });
for (let j = 0; j < ${OPS}; j++) {
  const op = opOf(r, j);
  if (op === 0) s.commit(w(j));
  else if (op === 1 || op === 4) await s.stage(w(j)).commit();
  else if (op === 2) s.probe();
  else await s.checkpoint();
}
StateStore.peek(dir); // (answered after the last commit's record was written)
process.kill(process.pid, 'SIGKILL');`, dir], { encoding: 'utf8', timeout: 120_000 });
    t.is(res.signal, 'SIGKILL', res.stderr);
    for (let j = 0; j < OPS; j++) if (opOf(r, j) !== 2 && opOf(r, j) !== 3) for (const k of keysOf(r, j)) expected.add(k);
    const mark = readWalMark(join(dir, 'state.db-walmark'));
    const end = walEnd(join(dir, 'state.db-wal'));
    t.truthy(mark, `round ${r}: a record`);
    t.deepEqual([mark.salt1, mark.salt2, mark.frames], [end.salt1, end.salt2, end.last], `round ${r}: the record is the log's recovery end`);
    generations.add(`${end.salt1}:${end.salt2}`);
    // the open (the check with it) in this process, closed again: the next round's child reopens
    const s = new StateStore(dir);
    const got = s.open().state;
    t.is(got?.services.length, expected.size, `round ${r}: every commit`);
    t.is(s.revision()?.split(':')[1], mark.revision.split(':')[1], `round ${r}: the record's revision is the store's`);
    // closed without a write: its writer thread never started, so the log stays as the kill left
    // it for the next round (a close of the writing connection would checkpoint and remove it); and
    // the next open here checks the log again (not while this process has the store open)
    t.is(s.writerThreadForTests, null);
    await s.close();
  }
  t.true(generations.size > 1, 'the log started again between kills (new salts)');
});

test('the WAL checksum: the same sums read in place (the host\'s order, aligned) or word by word (the other order, unaligned), as SQLite defines them', (t) => {
  // SQLite's definition, word by word (fileformat.html: "Checksum Algorithm")
  const ref = (b, be, s1, s2) => {
    for (let i = 0; i < b.length; i += 8) {
      s1 = (s1 + (be ? b.readUInt32BE(i) : b.readUInt32LE(i)) + s2) >>> 0;
      s2 = (s2 + (be ? b.readUInt32BE(i + 4) : b.readUInt32LE(i + 4)) + s1) >>> 0;
    }
    return [s1, s2];
  };
  const raw = Buffer.alloc(4096 + 8);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919 + 13) & 255;
  const aligned = raw.subarray(8, 8 + 4096), unaligned = Buffer.concat([Buffer.alloc(1), aligned]).subarray(1);
  t.not(unaligned.byteOffset % 4, 0);
  for (const be of [false, true]) {
    for (const seed of [[0, 0], [0xffffffff, 0x80000001]]) {
      const want = ref(Buffer.from(aligned), be, ...seed);
      t.deepEqual(checksum(aligned, be, ...seed), want);
      t.deepEqual(checksum(unaligned, be, ...seed), want);
    }
  }
});
