// SQLite's wal-index grows a 32 KiB region for every 4096 frames of WAL. Mapped from a file
// (state.db-shm), SQLite extends it one byte per 4 KiB, leaving holes on a filesystem with 1 KiB
// blocks: a write there with the disk full killed the process (SIGBUS), and so does any read of an
// evicted page when the disk fails (test chaos-disk-evicted-index). The store's writing connection
// now keeps its index in its heap (locking_mode=EXCLUSIVE on the writer thread's connection): one
// write of ~70 MiB, past the first region (4062 frames, ~64 MiB of WAL), grows no file and maps
// none, written on either path (a small write's request, a staged write), on 1 KiB blocks.
import test from 'ava';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { rootGate } from './lib/root-gate.js';
import { ChaosRig, loopWorks } from './lib/chaos.js';

const gate = rootGate(test, { tools: ['unshare', 'nsenter', 'mount', 'losetup', 'mkfs.ext4', 'e2fsck'] });
const serial = gate.ok && !loopWorks() ? (title, ...rest) => test.skip(`${title} (skipped: no loop devices here)`, ...rest) : gate.serial;

const CHILD = `
import fs from 'node:fs';
import { StateStore } from ${JSON.stringify(new URL('../dist/src/state/store.js', import.meta.url).pathname)};
const [dir, how] = process.argv.slice(2);
const st = new StateStore(dir);
st.open();
const shm = () => { try { return fs.statSync(dir + '/state.db-shm').size; } catch { return null; } };
const mapped = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes(dir)).length;
const atOpen = shm();
const pad = 'x'.repeat(15000);
const rows = Array.from({ length: 4500 }, (_, i) => ({ kind: 'Service', key: 'd/s' + i, raw: { metadata: { name: 's' + i, namespace: 'd' }, spec: { how, pad } } }));
let beforeCommit = null;
if (how === 'staged') {
  st.stageOnThreadRows = 1000;
  const w = st.stage({ upsert: rows, remove: [] });
  beforeCommit = shm(); // (the rows are being inserted on the writer thread: nothing committed)
  await w.commit();
} else st.commit({ upsert: rows, remove: [] });
const wal = fs.statSync(dir + '/state.db-wal').size;
console.log(JSON.stringify({ bsize: fs.statfsSync(dir).bsize, atOpen, beforeCommit, after: shm(), wal, mapped: mapped() }));
await st.close();
`;

serial('a WAL grown past the first index region grows no index file and maps none (the writing connection\'s index is in its heap)', async (t) => {
  const rig = await ChaosRig.create({ fs: 'ext4', sizeMiB: 320 });
  try {
    const script = join(rig.work, 'growth-child.mjs');
    writeFileSync(script, CHILD);
    for (const how of ['main', 'staged']) {
      const r = rig.inMountNs(process.execPath, [script, rig.dir, how]);
      t.is(r.signal, null, r.stderr);
      t.is(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').pop());
      t.log(how, out);
      t.true(out.bsize < 4096, 'a filesystem with blocks smaller than SQLite\'s 4 KiB step');
      t.true(out.wal > 4062 * (16384 + 24), 'the WAL needs a second region');
      t.is(out.after, out.atOpen, 'the index file (the start\'s read-only connection\'s, if any) did not grow');
      t.is(out.mapped, 0, 'no file of the state directory is mapped');
    }
  } finally { await rig.teardown(); }
});
