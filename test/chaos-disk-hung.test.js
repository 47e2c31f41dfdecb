// A disk that takes the store's writes and never completes them (the state directory's ext4
// frozen with fsfreeze: every write to it blocks until it is thawed — the same, for the writer, as
// a disk that hangs) under a running control plane. Its main thread must never wait for the disk:
// healthz, the metrics and the rest of the API answer while a commit, or healthz's own probe, is
// stuck (src/state/store.ts: writeProblemAsync, probeAsync; the commits of the apply path through
// commitAsync), and healthz says 503 — at once while saves are failing (its probe does not answer),
// and once a commit has waited WRITE_STUCK_MS (5 s) when none had failed. Thawed, the stuck apply
// is acknowledged (after its commit was durable) and healthz is 200 again.
//
// The control plane runs in a child process (a blocked main thread there cannot block this test's
// client), on a unix socket (no network); the filesystem is mounted in a mount namespace of its
// own and reached through /proc/<holder>/root.
import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { loopWorks, sleep, unixRequest } from './lib/chaos.js';
import { within } from './lib/bounded-wait.js';

const gate = rootGate(test, { tools: ['unshare', 'mount', 'losetup', 'mkfs.ext4', 'fsfreeze', 'chattr', 'nsenter'] });
const serial = gate.ok && !loopWorks() ? (title, ...rest) => test.skip(`${title} (skipped: no loop devices here)`, ...rest) : gate.serial;

const SERVER = new URL('../dist/src/api/server.js', import.meta.url).pathname;
const DATAPLANE = new URL('../dist/src/core/dataplane.js', import.meta.url).pathname;
const svc = (i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'hung' }, spec: { clusterIP: `10.96.2.${i}`, ports: [{ port: 80, protocol: 'TCP' }] } });

/** One request over the unix socket: { status, json, text } or { status: 0, error } (a timeout). */
const req = (sock, method, path, body, timeoutMs = 10_000) => unixRequest(sock, method, path, body, timeoutMs);

/** Polls `fn` (every 200 ms, at most `ms`) until it returns true; the last value otherwise. */
async function until(fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > end) return false;
    await sleep(200);
  }
}

serial('a disk that never completes the store\'s writes: healthz (503), metrics and the API answer while a commit or the probe is stuck; thawed, the apply is acknowledged and healthz is 200', async (t) => {
  const work = mkdtempSync(join(tmpdir(), `wdp-t${process.pid}-hung-`));
  const mnt = join(work, 'mnt');
  mkdirSync(mnt);
  const image = join(work, 'fs.img');
  execFileSync('truncate', ['-s', '48M', image]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
  const loop = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
  const pdeath = spawnSync('sh', ['-c', 'command -v setpriv']).status === 0 ? ['setpriv', '--pdeathsig', 'KILL'] : [];
  const holder = spawn(pdeath[0] ?? 'unshare', [...pdeath.slice(1), ...(pdeath.length ? ['unshare'] : []), '-m', '--propagation', 'private', 'sh', '-c',
    'mount "$2" "$1" && mkdir -m 0700 "$1/state" && echo up && exec sleep 100000', 'sh', mnt, loop], { stdio: ['ignore', 'pipe', 'pipe'] });
  let child = null;
  const root = () => `/proc/${holder.pid}/root${mnt}`;
  const thaw = () => spawnSync('fsfreeze', ['-u', root()]);
  t.teardown(async () => {
    thaw(); // (first: a process blocked on the frozen filesystem cannot end before)
    spawnSync('chattr', ['-i', `${root()}/state/state.db-wal`]);
    if (child && child.exitCode === null) { const gone = new Promise((r) => child.once('exit', r)); child.kill('SIGKILL'); await within(gone, 10_000); }
    if (holder.exitCode === null) { const gone = new Promise((r) => holder.once('exit', r)); holder.kill('SIGKILL'); await within(gone, 5000); }
    spawnSync('losetup', ['-d', loop]); // (detached at the unmount already, when autoclear was set)
    rmSync(work, { recursive: true, force: true });
  });
  await new Promise((resolve, reject) => {
    let out = '', err = '';
    const timer = setTimeout(() => reject(new Error(`the mount did not come up: ${err}`)), 15_000);
    holder.stderr.on('data', (d) => { err += d; });
    holder.stdout.on('data', (d) => { out += d; if (out.includes('up')) { clearTimeout(timer); resolve(); } });
    holder.on('exit', (c) => { clearTimeout(timer); reject(new Error(`the mount holder exited ${c}: ${err}`)); });
  });
  spawnSync('losetup', ['-d', loop]); // (mounted: freed by the kernel once unmounted)
  // (the control plane in the mount namespace: SQLite resolves /proc/<pid>/root as a link, to this
  // namespace's path; this process reaches the files through it)
  const stateDir = `${root()}/state`, sock = join(work, 'api.sock');
  child = spawn('nsenter', ['-t', String(holder.pid), '-m', '--', process.execPath, '--input-type=module', '-e', `import { createControlPlane } from '${SERVER}';
import { LocalDataplane } from '${DATAPLANE}';
await createControlPlane({ dataplane: new LocalDataplane(), listen: 'unix:' + process.argv[1], healthz: false, stateDir: process.argv[2] });
console.log('listening');`, sock, `${mnt}/state`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let childErr = '';
  child.stderr.on('data', (d) => { childErr += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the control plane did not start: ${childErr}`)), 60_000);
    child.stdout.on('data', (d) => { if (String(d).includes('listening')) { clearTimeout(timer); resolve(); } });
    child.on('exit', (c) => { clearTimeout(timer); reject(new Error(`the control plane exited ${c}: ${childErr}`)); });
  });

  t.is((await req(sock, 'POST', '/api/v1/apply', [svc(1)], 60_000)).status, 200);
  t.is((await req(sock, 'GET', '/healthz')).status, 200);

  // 1. saves failing (the WAL immutable: EPERM), then the disk hangs: healthz's probe does not
  // answer — healthz is 503 without waiting for it (it waited 30 s for the writer thread before)
  t.is(spawnSync('chattr', ['+i', `${stateDir}/state.db-wal`]).status, 0);
  t.is((await req(sock, 'POST', '/api/v1/apply', [svc(2)], 60_000)).status, 500);
  t.is(spawnSync('chattr', ['-i', `${stateDir}/state.db-wal`]).status, 0);
  t.is(spawnSync('fsfreeze', ['-f', root()]).status, 0);
  let h = await req(sock, 'GET', '/healthz');
  t.is(h.status, 503, `healthz answers while the probe is stuck (${h.error ?? h.text})`);
  const stuck = req(sock, 'POST', '/api/v1/apply', [svc(3)], 120_000);
  t.is((await req(sock, 'GET', '/api/v1/generation')).status, 200, 'the API answers');
  const m = await req(sock, 'GET', '/metrics');
  t.is(m.status, 200);
  t.regex(m.text, /^wdp_state_store_writable 0$/m);
  const st = await req(sock, 'GET', '/api/v1/state');
  t.false(st.json?.store?.writable, st.text ?? st.error);
  t.regex(st.json?.store?.lastError ?? '', /has not answered|waited/);
  thaw();
  t.is((await stuck).status, 200, 'thawed: the apply that waited is acknowledged');
  t.true(await until(async () => (await req(sock, 'GET', '/healthz')).status === 200, 30_000), 'healthz is 200 again');

  // 2. no failure before: a commit stuck for WRITE_STUCK_MS turns healthz 503, and every healthz
  // meanwhile answers
  t.is(spawnSync('fsfreeze', ['-f', root()]).status, 0);
  const stuck2 = req(sock, 'POST', '/api/v1/apply', [svc(4)], 120_000);
  let unanswered = 0;
  const seen503 = await until(async () => {
    const r = await req(sock, 'GET', '/healthz');
    if (r.status === 0) unanswered++;
    return r.status === 503;
  }, 30_000);
  t.is(unanswered, 0, 'every healthz answered');
  t.true(seen503, 'a commit stuck on the disk: healthz 503');
  thaw();
  t.is((await stuck2).status, 200);
  t.true(await until(async () => (await req(sock, 'GET', '/healthz')).status === 200, 30_000));
  const names = (await req(sock, 'GET', '/api/v1/services')).json?.items?.map((s) => s.metadata?.name ?? s.name).sort();
  t.deepEqual(names, ['s1', 's3', 's4']);
});
