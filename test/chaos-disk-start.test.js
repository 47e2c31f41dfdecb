// The disk filling in the milliseconds of a start's first connection to the store. The first
// connection of any process to attach SQLite's wal-index (state.db-shm, a shared memory mapping)
// truncates it and extends it one byte per 4 KiB page; on a filesystem with 1 KiB blocks most of
// each page is then a hole, and SQLite rebuilding the index from the WAL writes into them: with
// the blocks gone since the free-space check (another process took them), the kernel killed the
// daemon with SIGBUS — at the peek of the store's revision, or at the open. Now that first attach
// is made by an index holder process (src/state/index-holder.ts): it is the one killed, and the
// peek answers nothing, the open fails with an error; with space, the state is there.
import test from 'ava';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { rootGate } from './lib/root-gate.js';
import { ChaosRig, loopWorks } from './lib/chaos.js';

const gate = rootGate(test, { tools: ['unshare', 'nsenter', 'mount', 'losetup', 'mkfs.ext4', 'e2fsck'] });
const serial = gate.ok && !loopWorks() ? (title, ...rest) => test.skip(`${title} (skipped: no loop devices here)`, ...rest) : gate.serial;

const STORE = JSON.stringify(new URL('../dist/src/state/store.js', import.meta.url).pathname);
// seed: a store whose process ended without closing it (its WAL and index left, as after a
// crash); the index file then removed, so that the next attach makes it from nothing.
// fill <KiB> <peek|open>: all but <KiB> of the filesystem taken, the store's free-space check then
// told there is room (statfs answers as before the fill), and the store peeked at or opened.
const CHILD = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { StateStore } from ${STORE};
const [dir, step, leaveKiB, what] = process.argv.slice(2);
const svc = (i, n) => ({ kind: 'Service', key: 'd/s' + i, raw: { metadata: { name: 's' + i, namespace: 'd' }, spec: { n, pad: 'x'.repeat(400) } } });
if (step === 'seed') {
  fs.rmSync(dir + '/filler', { force: true });
  const st = new StateStore(dir);
  st.open();
  for (let i = 0; i < 100; i++) st.commit({ upsert: [svc(i, 0)], remove: [] });
  process.exit(0);
}
fs.rmSync(dir + '/state.db-shm');
const before = fs.statfsSync(dir);
const free = () => { const s = fs.statfsSync(dir); return s.bavail * s.bsize; };
const fd = fs.openSync(dir + '/filler', 'w');
for (const size of [1 << 20, 1 << 16, 4096, 1024]) {
  const b = Buffer.alloc(size);
  try { while (free() - size >= Number(leaveKiB) << 10) fs.writeSync(fd, b); } catch { /* full */ }
}
fs.fsyncSync(fd);
fs.closeSync(fd);
const left = free();
fs.statfsSync = () => before;
syncBuiltinESMExports();
let out;
try {
  if (what === 'peek') out = { peek: StateStore.peek(dir).revision };
  else out = { services: new StateStore(dir).open().state?.services.length ?? 0 };
} catch (e) { out = { error: e.message }; }
console.log(JSON.stringify({ left, ...out }));
process.exit(0);
`;

serial('the disk filled at a start\'s first attach of the store\'s index: a peek answers nothing and an open fails with an error, never SIGBUS; with space, the store opens', async (t) => {
  const rig = await ChaosRig.create({ fs: 'ext4' });
  try {
    const script = join(rig.work, 'start-child.mjs');
    writeFileSync(script, CHILD);
    const run = (...args) => rig.inMountNs(process.execPath, [script, rig.dir, ...args]);
    for (const leave of [8, 16]) {
      for (const what of ['peek', 'open']) {
        const seed = run('seed');
        t.is(seed.status, 0, seed.stderr);
        const r = run('fill', String(leave), what);
        t.is(r.signal, null, `${what}, ${leave} KiB left: the process was killed: ${r.signal}; ${r.stderr}`);
        t.is(r.status, 0, r.stderr);
        const out = JSON.parse(r.stdout.trim().split('\n').pop());
        t.log(what, leave, out);
        if (what === 'peek') t.true(out.peek === null || /:100$/.test(out.peek));
        else if (out.error) t.regex(out.error, /cannot open the store: .*(SIGBUS|ENOSPC|disk I\/O error).*free some space/);
        else t.is(out.services, 100);
      }
    }
    // space again: the store opens with its state
    const seed = run('seed');
    t.is(seed.status, 0, seed.stderr);
    const r = run('fill', String(8 << 10), 'open');
    t.is(r.status, 0, r.stderr);
    t.is(JSON.parse(r.stdout.trim().split('\n').pop()).services, 100);
  } finally { await rig.teardown(); }
});
