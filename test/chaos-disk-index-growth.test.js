// SQLite's wal-index (state.db-shm) grows a 32 KiB region for every 4096 frames of WAL. The store
// writes its first regions out at open (256 KiB: ~512 MiB of WAL); a WAL longer than that is not
// ruled out by the checkpoint bound — one transaction's frames are as many as the pages it
// changes, a full sync of a store of ~750k objects — and SQLite extends the file one byte per 4
// KiB, leaving holes on a filesystem with 1 KiB blocks: a write there with the disk full kills the
// process (SIGBUS). The store now writes the regions a write could need ahead of it
// (StateStore.indexAhead). Here the index written at open is lowered to one region (the index of
// 4062 frames, ~64 MiB of WAL) and one write of ~70 MiB needs a second: before a staged write's
// commit the index file already has it, every block allocated, and the commit extends nothing.
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
st.indexBytes = 32768;
st.open();
const shm = () => { const s = fs.statSync(dir + '/state.db-shm'); return { size: s.size, allocated: s.blocks * 512 }; };
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
console.log(JSON.stringify({ bsize: fs.statfsSync(dir).bsize, atOpen, beforeCommit, after: shm(), wal }));
await st.close();
`;

serial('the WAL index grown past what the open wrote has its blocks written ahead of SQLite (no hole on 1 KiB blocks)', async (t) => {
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
      t.true(out.after.size > out.atOpen.size, 'the index grew');
      t.true(out.after.allocated >= out.after.size, `no hole: ${out.after.allocated} bytes allocated of ${out.after.size}`);
      // the regions the commit needed were there, with their blocks, before it began: SQLite
      // extended nothing (its extension leaves the holes that a full disk turns into SIGBUS)
      if (how === 'staged') {
        t.true(out.beforeCommit.size >= out.after.size, `written ahead: ${out.beforeCommit.size} bytes before the commit, ${out.after.size} after`);
        t.true(out.beforeCommit.allocated >= out.beforeCommit.size);
      }
    }
  } finally { await rig.teardown(); }
});
