// A nearly full state directory (ext4 on a loop device, tens of KiB left) under a running daemon:
// a write to SQLite's memory-mapped index (state.db-shm) could fault there and the kernel killed
// the daemon with SIGBUS mid-apply — and every start after it, a crash loop (found by the chaos
// driver, seed 3). Now the apply is refused (500, ENOSPC, nothing applied) and the daemon runs on;
// a start on that disk fails with a clear error; with space freed, the acknowledged state is back.
import test from 'ava';
import { rmSync, statfsSync, writeFileSync } from 'node:fs';
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
