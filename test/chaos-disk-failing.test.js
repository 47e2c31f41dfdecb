// The state directory's filesystem failing under a running daemon (ext4 on a loop device,
// errors=remount-ro: an error injected through sysfs turns it read-only, as a failing disk does).
// Every write is refused from then on: healthz answers 503 and the metrics say the store is not
// writable at once — before any apply is refused, not only after one (the store's cheap checks:
// StateStore.writeProblem) — an apply is refused (500, nothing applied), and the daemon runs on.
// Repaired, the restart shows exactly what was acknowledged.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { ChaosRig, loopWorks, sleep } from './lib/chaos.js';

const gate = rootGate(test, { tools: ['unshare', 'nsenter', 'mount', 'losetup', 'mkfs.ext4', 'e2fsck'] });
const serial = gate.ok && !loopWorks() ? (title, ...rest) => test.skip(`${title} (skipped: no loop devices here)`, ...rest) : gate.serial;

const svc = (i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'chaos' }, spec: { clusterIP: `10.96.1.${i}`, ports: [{ port: 80, protocol: 'TCP' }] } });

serial('the state directory\'s filesystem failing read-only under the daemon: healthz 503 and metrics at once, applies refused, the daemon runs on; repaired, the acknowledged state is back', async (t) => {
  const rig = await ChaosRig.create({ fs: 'ext4' });
  try {
    let d = rig.start();
    t.is(await rig.ready(d), 'ready', d.stderr());
    t.is((await rig.req('POST', '/api/v1/apply', [svc(1), svc(2)])).status, 200);
    t.is((await rig.req('GET', '/healthz')).status, 200);
    rig.injectFsError();
    t.is((await rig.req('GET', '/healthz')).status, 503, 'seen before any apply is refused');
    const st = (await rig.req('GET', '/api/v1/state')).json;
    t.false(st.store.writable);
    t.regex(st.store.lastError, /EROFS: the filesystem is read-only/);
    t.regex((await rig.req('GET', '/api/v1/state')).json.store.lastError, /EROFS: the filesystem is read-only/, 'and so does the probe that follows');
    let metrics = (await rig.req('GET', '/metrics')).text;
    t.regex(metrics, /^wdp_state_store_writable 0$/m);
    const r = await rig.req('POST', '/api/v1/apply', [svc(3)]);
    t.is(r.status, 500, r.text);
    t.regex(r.text, /saving the desired state failed \(nothing applied/);
    t.regex(r.text, /EROFS: the filesystem is read-only/);
    metrics = (await rig.req('GET', '/metrics')).text;
    t.regex(metrics, /^wdp_state_save_failures_total 1$/m);
    t.is((await rig.req('GET', '/api/v1/namespaces/chaos/services/s3')).status, 404);
    await sleep(1500);
    t.is(d.done, null, 'the daemon runs on');
    t.is((await rig.req('GET', '/healthz')).status, 503);
    await rig.kill(d, 'kill');
    rig.repairFs();
    d = rig.start();
    t.is(await rig.ready(d), 'ready', d.stderr());
    const items = (await rig.list('/api/v1/namespaces/chaos/services')).map((s) => s.metadata.name).sort();
    t.deepEqual(items, ['s1', 's2']);
    t.is((await rig.req('GET', '/healthz')).status, 200);
  } finally { await rig.teardown(); }
});

// The storage under the state directory's filesystem running out (a sparse disk image on a full
// tmpfs, as thin-provisioned storage does): its writes fail, and the commit's fsync returns EIO.
// The commit is refused naming it (SQLITE_IOERR_FSYNC), the filesystem then turns read-only
// (ext4 aborts its journal) and every later write is refused naming that; no process is killed,
// and the store read again after a repair holds exactly the acknowledged commits.
const EIO_CHILD = `
import fs from 'node:fs';
import { StateStore } from ${JSON.stringify(new URL('../dist/src/state/store.js', import.meta.url).pathname)};
const [dir, back, step] = process.argv.slice(2);
const svc = (i, n) => ({ kind: 'Service', key: 'd/s' + i, raw: { metadata: { name: 's' + i, namespace: 'd' }, spec: { n, pad: 'x'.repeat(300) } } });
const st = new StateStore(dir);
const load = st.open();
if (step === 'verify') { console.log(JSON.stringify({ n: load.state.services.map((s) => s.spec.n) })); process.exit(0); }
for (let i = 0; i < 20; i++) st.commit({ upsert: [svc(i, 0)], remove: [] });
const fd = fs.openSync(back + '/filler', 'w');
const b = Buffer.alloc(1 << 20);
try { for (;;) fs.writeSync(fd, b); } catch { /* the storage is full */ }
fs.closeSync(fd);
const errors = [];
for (let i = 0; i < 3; i++) { try { st.commit({ upsert: [svc(i, 1)], remove: [] }); errors.push(null); } catch (e) { errors.push(e.message); } }
let probe = null;
try { st.probe(); } catch (e) { probe = e.message; }
let staged = null;
try { await st.stage({ upsert: Array.from({ length: 1500 }, (_, i) => svc(i, 2)), remove: [] }).commit(); } catch (e) { staged = e.message; }
fs.rmSync(back + '/filler');
console.log(JSON.stringify({ errors, probe, staged, problem: st.writeProblem() }));
process.exit(0);
`;

serial('EIO on the commit\'s fsync (the storage under the filesystem ran out): refused naming it, later writes refused, no crash; repaired, exactly the acknowledged state', (t) => {
  const work = mkdtempSync(join(tmpdir(), `wdp-t${process.pid}-eio-`));
  try {
    const script = join(work, 'eio-child.mjs');
    writeFileSync(script, EIO_CHILD);
    mkdirSync(join(work, 'back')); mkdirSync(join(work, 'state'));
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `
      set -e
      mount -t tmpfs -o size=24m wdp-t-back "$1/back"
      truncate -s 64M "$1/back/img"; mkfs.ext4 -q -F -m 0 "$1/back/img"
      L=$(losetup -f --show "$1/back/img"); mount -o errors=continue "$L" "$1/state"; losetup -d "$L"
      "$2" "$3" "$1/state" "$1/back" run
      umount "$1/state"
      e2fsck -fy "$1/back/img" >/dev/null 2>&1 || [ $? -le 1 ]
      L=$(losetup -f --show "$1/back/img"); mount "$L" "$1/state"; losetup -d "$L"
      "$2" "$3" "$1/state" "$1/back" verify
      umount "$1/state"; umount "$1/back"`, 'sh', work, process.execPath, script], { encoding: 'utf8', timeout: 120000 });
    t.is(r.signal, null, r.stderr);
    t.is(r.status, 0, r.stderr);
    const [run, verify] = r.stdout.trim().split('\n').slice(-2).map((l) => JSON.parse(l));
    t.log(run);
    t.regex(run.errors[0], /disk I\/O error \((SQLITE_IOERR_FSYNC: the disk failed to make the write durable|.*EROFS|.*EIO)/);
    for (const e of [...run.errors.slice(1), run.probe, run.staged]) t.regex(e, /EROFS|EIO|disk I\/O error|readonly/);
    t.regex(run.problem, /EROFS|EIO/);
    t.deepEqual(verify.n, Array(20).fill(0), 'the 20 acknowledged commits, none of the refused ones');
  } finally { rmSync(work, { recursive: true, force: true }); }
});
