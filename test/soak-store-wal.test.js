// Found by the soak (bench/soak.mjs --feed api): under steady applies the store's WAL file grew
// step by step (4 → 8.6 → 13.8 → 18.3 MiB over 17k changes) and never came back. A checkpoint runs
// on the writer thread while the main thread goes on committing, so it leaves the frames appended
// meanwhile; only a WAL copied whole lets a commit start it again from its beginning, and the next
// checkpoint was asked for only after another CHECKPOINT_BYTES of commits — by then more frames
// had come; applies back to back never leave a checkpoint time to copy it whole. And SQLite keeps
// a WAL file at its largest size unless journal_size_limit says otherwise. Now an apply's commit
// waits for a checkpoint with no commit beside it once the WAL has not started again for a few
// checkpoints' worth, a checkpoint that left frames is asked for again at the next commit, and a
// WAL started again is cut back to WAL_SIZE_LIMIT.
import test from 'ava';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateStore } from '../dist/src/state/store.js';
import { WAL_SIZE_LIMIT } from '../dist/src/state/store-sql.js';

const write = (i) => ({ upsert: [{ kind: 'Service', key: `default/s${i % 50}`, raw: { metadata: { name: `s${i % 50}`, namespace: 'default' }, spec: { n: i, pad: 'x'.repeat(300) } } }], remove: [] });

test('after a burst of commits that outruns the checkpoints, the next few spaced commits bring the WAL file back to its limit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-soak-wal-'));
  const store = new StateStore(dir);
  t.teardown(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });
  store.open();
  const wal = () => statSync(join(dir, 'state.db-wal')).size;
  // a burst: each commit right after the last, without a turn of the event loop (the one
  // checkpoint asked for copies only what was there when it began: the WAL cannot start again)
  let i = 0;
  for (; i < 600; i++) store.commit(write(i));
  const burst = wal();
  t.true(burst > 2 * WAL_SIZE_LIMIT, `the burst grew the WAL: ${burst}`);
  // then applies at a human pace: 40 commits, 5 ms apart (a count, not a time limit, is checked)
  for (let k = 0; k < 40; k++, i++) { store.commit(write(i)); await new Promise((r) => setTimeout(r, 5)); }
  t.true(wal() <= WAL_SIZE_LIMIT, `the WAL file after the burst and 40 spaced commits: ${wal()} bytes (limit ${WAL_SIZE_LIMIT})`);
});

test('a checkpoint that left WAL frames behind is asked for again at the next commit, not after another CHECKPOINT_BYTES', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-soak-wal-'));
  const store = new StateStore(dir);
  t.teardown(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });
  store.open();
  store.checkpointBytes = 256 << 10; // a few commits
  // the thread's answers as they are, but for how many frames the checkpoint left: `left`
  const asked = [];
  let left = 7;
  const real = store.writerThread.bind(store);
  store.writerThread = () => ({ request: async (m) => { asked.push(m.op); const r = await real().request(m); return m.op === 'checkpoint' ? { ...r, bytes: left } : r; } });
  const settled = async () => { for (let k = 0; k < 200 && store.checkpointing !== null; k++) await new Promise((r) => setTimeout(r, 10)); };
  let i = 0;
  for (; i < 50 && asked.length === 0; i++) store.commit(write(i));
  t.is(asked.length, 1, 'the threshold asked for a checkpoint');
  await settled();
  left = 0;
  store.commit(write(i++));
  t.is(asked.length, 2, 'frames were left: the next commit asks again');
  await settled();
  store.commit(write(i++));
  t.is(asked.length, 2, 'that one copied the WAL whole: no more until the threshold');
});

test('applies committed back to back (each awaited) keep the WAL file within a few checkpoints\' worth', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-soak-wal-'));
  const store = new StateStore(dir);
  t.teardown(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });
  store.open();
  store.checkpointBytes = 1 << 20;
  const wal = () => statSync(join(dir, 'state.db-wal')).size;
  let largest = 0;
  // as the control plane commits an apply: staged, committed once it compiled (small writes)
  for (let i = 0; i < 600; i++) {
    await store.stage(write(i)).commit();
    await new Promise((r) => setImmediate(r));
    largest = Math.max(largest, wal());
  }
  t.true(largest <= 8 * store.checkpointBytes, `the largest WAL over 600 back-to-back commits: ${largest} bytes (checkpoints from ${store.checkpointBytes})`);
});
