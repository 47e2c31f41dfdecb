// A nearly full state directory (ext4 on a loop device, tens of KiB left) under a running daemon:
// a write to SQLite's memory-mapped index (state.db-shm) could fault there and the kernel killed
// the daemon with SIGBUS mid-apply — and every start after it, a crash loop (found by the chaos
// driver, seed 3). Now the apply is refused (500, ENOSPC, nothing applied) and the daemon runs on;
// a start on that disk fails with a clear error; with space freed, the acknowledged state is back.
import test from 'ava';
import { rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { ChaosRig, loopWorks, sleep } from './lib/chaos.js';

const gate = rootGate(test, { tools: ['unshare', 'nsenter', 'mount', 'losetup', 'mkfs.ext4', 'e2fsck'] });
const serial = gate.ok && !loopWorks() ? (title, ...rest) => test.skip(`${title} (skipped: no loop devices here)`, ...rest) : gate.serial;

const svc = (i, g) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'chaos', labels: { g: String(g) } }, spec: { clusterIP: `10.96.${1 + (i >> 8)}.${i & 255}`, ports: [{ port: 80, protocol: 'TCP' }] } });
const slice = (i, g) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `s${i}-a`, namespace: 'chaos', labels: { 'kubernetes.io/service-name': `s${i}`, g: String(g) } },
  addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: [`10.244.${1 + (i >> 8)}.${i & 255}`], conditions: { ready: true } }] });

serial('a nearly full disk refuses applies and a start clearly, never SIGBUS; freed, the acknowledged state is back', async (t) => {
  const rig = await ChaosRig.create({ fs: 'ext4' });
  try {
    let d = rig.start();
    t.is(await rig.ready(d), 'ready', d.stderr());
    const objs = [];
    for (let i = 0; i < 600; i++) objs.push(svc(i, 1), slice(i, 1));
    t.is((await rig.req('POST', '/api/v1/apply', objs)).status, 200);
    // killed in the middle of its stop, then started again: its index made afresh
    process.kill(d.pid, 'SIGTERM');
    await sleep(300);
    await rig.kill(d, 'kill');
    d = rig.start();
    t.is(await rig.ready(d), 'ready', d.stderr());
    await sleep(2500);
    const free = () => { const s = statfsSync(rig.path()); return s.bavail * s.bsize; };
    writeFileSync(rig.path('filler'), Buffer.alloc(Math.max(0, free() - 48 * 1024)));
    let s0 = 1; // (the label of s0 as acknowledged)
    for (let k = 0; k < 4; k++) {
      const r = await rig.req('POST', '/api/v1/apply', [svc(k, 10 + k)]);
      t.not(r.status, 0, `the daemon answers (${r.error}; ${JSON.stringify(d.done)})`);
      if (r.status === 200 && k === 0) s0 = 10;
      else t.regex(r.text, /ENOSPC/);
    }
    await sleep(1500);
    t.is(d.done, null, 'the daemon runs on');
    await rig.kill(d, 'kill');
    const again = rig.start();
    const st = await rig.ready(again);
    t.not(st, 'ready');
    t.deepEqual(st, { code: 1, signal: null }, again.stderr());
    t.regex(again.stderr(), /cannot open the store: ENOSPC: the filesystem of \S+ has \d+ bytes free/);
    rmSync(rig.path('filler'));
    d = rig.start();
    t.is(await rig.ready(d), 'ready', d.stderr());
    const items = (await rig.req('GET', '/api/v1/namespaces/chaos/services/s0')).json;
    t.is(items.metadata.labels.g, String(s0));
  } finally { await rig.teardown(); }
});

// The free-space check and the write are not one step: another process can take the space
// between them, and a commit takes some itself. On a filesystem with blocks smaller than a memory
// page (this small ext4: 1 KiB) SQLite extends its index file (state.db-shm) one byte per 4 KiB
// page — most of each page a hole — and clears a region of it at the first frame the region
// indexes: with the WAL's own write taking the last blocks, that write into the holes faulted and
// killed the process (SIGBUS). The store now writes its index file whole once it is open: with the
// check passed and the space then gone, a commit succeeds or fails with an error.
const FILL_CHILD = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { StateStore } from ${JSON.stringify(new URL('../dist/src/state/store.js', import.meta.url).pathname)};
const [dir, step] = process.argv.slice(2);
const svc = (i, n) => ({ kind: 'Service', key: 'd/s' + i, raw: { metadata: { name: 's' + i, namespace: 'd' }, spec: { n, pad: 'x'.repeat(400) } } });
const st = new StateStore(dir);
st.open();
if (step === 'seed') {
  for (let i = 0; i < 50; i++) st.commit({ upsert: [svc(i, 0)], remove: [] });
  await st.close(); // (the WAL copied and removed: the next commit starts a new one)
} else {
  // the store's check passed; then another process takes all but ~40 KiB: the first commit's
  // WAL (two 16 KiB pages) takes most of that
  const free = () => { const s = fs.statfsSync(dir); return s.bavail * s.bsize; };
  const fd = fs.openSync(dir + '/filler', 'w');
  for (const size of [1 << 20, 1 << 16, 4096, 1024]) {
    const b = Buffer.alloc(size);
    try { while (free() - size >= 40 << 10) fs.writeSync(fd, b); } catch { /* full */ }
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const left = free();
  fs.statfsSync = () => ({ type: 0, bsize: 4096, blocks: 1 << 30, bfree: 1 << 30, bavail: 1 << 30, files: 0, ffree: 0 });
  syncBuiltinESMExports();
  let ok = 0, failed = 0, error = '';
  for (let i = 0; i < 20; i++) { try { st.commit({ upsert: [svc(i, 1)], remove: [] }); ok++; } catch (e) { failed++; error = e.message; } }
  console.log(JSON.stringify({ left, ok, failed, error }));
  process.exit(0);
}
`;

serial('the space taken between the free-space check and the commit\'s index write: the commits fail with an error or succeed, never SIGBUS', async (t) => {
  const rig = await ChaosRig.create({ fs: 'ext4' });
  try {
    const script = join(rig.work, 'fill-child.mjs');
    writeFileSync(script, FILL_CHILD);
    const run = (step) => rig.inMountNs(process.execPath, [script, rig.dir, step]);
    const seed = run('seed');
    t.is(seed.status, 0, seed.stderr);
    const r = run('fill');
    t.is(r.signal, null, `the process was killed: ${r.signal}; ${r.stderr}`);
    t.is(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    t.log(out);
    if (out.failed) t.regex(out.error, /full|ENOSPC|space/i);
  } finally { await rig.teardown(); }
});
