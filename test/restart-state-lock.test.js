// One daemon per state directory: a second `wdp start` on a state directory a live daemon holds
// fails at once with a clear error, before it opens a port, reads the checkpoint or takes the
// API socket — the first keeps its API and forwards on. A lock left by a daemon that is gone
// (SIGKILL, crash, OOM) never keeps the next start out; a holder in another PID namespace (a
// container without hostPID beside a start on the host) is seen as alive.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { buildTopology, startPods, startDaemon, destroyTopology, api, serviceYaml, sliceYaml, curlOk, WDP, waitFor, logged } from './lib/topology.js';
import { lockStateDir, LOCK_FILE, MUTEX_FILE, StateDirInUseError } from '../dist/src/daemon/state-lock.js';
import { within } from './lib/bounded-wait.js';
import { childDone } from './lib/child-done.js';

const { serial } = rootGate(test);

const tmp = () => mkdtempSync(join(tmpdir(), `wdp-lock-${process.pid}-`));

/** A node process listening on `path` as a holder does (answering its pid), via `sh` when
 * `zombie` (then killing it leaves it unreaped under the shell). Resolves { pid, child }. */
async function holderProcess(path, { zombie = false } = {}) {
  const listen = `require('net').createServer((s) => s.end(process.pid + '\\n')).listen(process.argv[1], () => console.log('up ' + process.pid))`;
  const child = zombie
    ? spawn('sh', ['-c', `"$0" -e "$1" "$2" & exec sleep 30`, process.execPath, listen, path], { stdio: ['ignore', 'pipe', 'ignore'] })
    : spawn(process.execPath, ['-e', listen, path], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('holder did not listen')), 10000);
    let out = '';
    child.stdout.on('data', (d) => { out += d; const m = /up (\d+)/.exec(out); if (m) { clearTimeout(t); resolve(Number(m[1])); } });
  });
  return { pid, child };
}
const stateOf = (pid) => { try { const s = readFileSync(`/proc/${pid}/stat`, 'utf8'); return s.slice(s.lastIndexOf(')') + 2).split(' ')[0]; } catch { return 'gone'; } };

test('the lock: a second holder is refused naming the first; released, it can be taken again', async (t) => {
  const dir = tmp();
  try {
    const a = await lockStateDir(dir);
    t.true(lstatSync(join(dir, LOCK_FILE)).isSocket());
    const e = await t.throwsAsync(lockStateDir(dir), { instanceOf: StateDirInUseError });
    t.regex(e.message, new RegExp(`in use by another wdp \\(pid ${process.pid} in its PID namespace`));
    a.release();
    t.throws(() => lstatSync(join(dir, LOCK_FILE)), { code: 'ENOENT' });
    const b = await lockStateDir(dir);
    t.is(b.tookOver, undefined);
    b.release();
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a live holder in another process keeps it; killed (SIGKILL), or a zombie not reaped yet, its lock is taken over', async (t) => {
  const dir = tmp();
  const path = join(dir, LOCK_FILE);
  const procs = [];
  try {
    const live = await holderProcess(path);
    procs.push(live.child);
    const e = await t.throwsAsync(lockStateDir(dir), { instanceOf: StateDirInUseError });
    t.regex(e.message, new RegExp(`pid ${live.pid} in its PID namespace`));
    t.true(lstatSync(path).isSocket(), 'the holder\'s lock is left as it was');
    live.child.kill('SIGKILL');
    await new Promise((r) => live.child.once('exit', r));
    t.true(lstatSync(path).isSocket(), 'a killed holder leaves its socket');
    const a = await lockStateDir(dir);
    t.true(a.tookOver);
    a.release();

    const z = await holderProcess(path, { zombie: true });
    procs.push(z.child);
    process.kill(z.pid, 'SIGKILL');
    for (let i = 0; i < 100 && stateOf(z.pid) !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
    t.is(stateOf(z.pid), 'Z', 'the holder is a zombie');
    const b = await lockStateDir(dir);
    t.true(b.tookOver);
    b.release();

    writeFileSync(path, 'not a socket');
    const c = await lockStateDir(dir);
    t.true(c.tookOver, 'a file of another kind at the path is nobody\'s');
    c.release();
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Runs `n` processes that each try to take `dir`'s lock at the same moment (each waits for the
 * go file), hold it 1.5 s if they got it, and print what happened: how many held it at once. */
async function raceProcesses(dir, n) {
  const go = join(dir, '..', `${dir.split('/').pop()}.go`);
  const script = `import { lockStateDir } from '${new URL('../dist/src/daemon/state-lock.js', import.meta.url).pathname}';
import { existsSync } from 'node:fs';
while (!existsSync(process.argv[2])) await new Promise((r) => setTimeout(r, 1));
try { const l = await lockStateDir(process.argv[1]); console.log('held'); await new Promise((r) => setTimeout(r, 1500)); l.release(); }
catch (e) { console.log(e.name); }`;
  const kids = Array.from({ length: n }, () => spawn(process.execPath, ['--input-type=module', '-e', script, dir, go], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 30000 }));
  const outs = kids.map((k) => new Promise((r) => { let o = ''; k.stdout.on('data', (d) => { o += d; }); void childDone(k).then(() => r(o.trim())); }));
  await new Promise((r) => setTimeout(r, 800)); // (every process loaded and polling)
  writeFileSync(go, '');
  try { return await Promise.all(outs); } finally { rmSync(go, { force: true }); }
}

test('starts racing over a dead holder\'s lock: exactly one takes it over (the takeover is not an unlink another start undoes)', async (t) => {
  for (let round = 0; round < 4; round++) {
    const dir = tmp();
    try {
      // a dead holder's lock: a socket nobody listens on
      const dead = await holderProcess(join(dir, LOCK_FILE));
      dead.child.kill('SIGKILL');
      await new Promise((r) => dead.child.once('exit', r));
      const got = await raceProcesses(dir, 4);
      t.is(got.filter((g) => g === 'held').length, 1, `round ${round}: ${got}`);
      t.is(got.filter((g) => g === 'StateDirInUseError').length, 3, `round ${round}: ${got}`);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  }
});

test('two takes in one process over a dead holder\'s lock: one holds it, the other is refused', async (t) => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, LOCK_FILE), 'not a socket'); // (nobody's: taken over)
    const [a, b] = await Promise.allSettled([lockStateDir(dir), lockStateDir(dir)]);
    const held = [a, b].filter((r) => r.status === 'fulfilled');
    t.is(held.length, 1, JSON.stringify([a.status, b.status, a.reason?.message, b.reason?.message]));
    t.true([a, b].find((r) => r.status === 'rejected').reason instanceof StateDirInUseError);
    t.deepEqual(readdirSync(dir).sort(), [LOCK_FILE, MUTEX_FILE], 'the mutex makes no journal file');
    held[0].value.release();
    (await lockStateDir(dir)).release();
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('something at the lock\'s path that cannot be removed (a directory) fails the lock with a clear error', async (t) => {
  const dir = tmp();
  try {
    mkdirSync(join(dir, LOCK_FILE));
    const e = await t.throwsAsync(lockStateDir(dir), { instanceOf: StateDirInUseError });
    t.regex(e.message, /could not be locked \(\S+wdp\.lock keeps coming back: something there that is not a live wdp's socket cannot be removed\)/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

const { serial: mountSerial } = rootGate(test, { tools: ['unshare', 'mount'] });
mountSerial('a read-only state directory (no socket can be made there) is not locked, and says so: the start goes on', (t) => {
  const dir = tmp();
  const script = join(dir, '..', `${dir.split('/').pop()}.mjs`);
  writeFileSync(script, `import { lockStateDir } from '${new URL('../dist/src/daemon/state-lock.js', import.meta.url).pathname}';
const l = await lockStateDir(process.argv[2]); console.log(JSON.stringify({ unlocked: l.unlocked ?? null })); l.release();`);
  try {
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o ro,size=64k wdp-test "$1" && exec "$2" "$3" "$1"', 'sh', dir, process.execPath, script], { encoding: 'utf8', timeout: 30000 });
    t.is(r.status, 0, r.stderr);
    t.regex(JSON.parse(r.stdout.trim()).unlocked ?? '', /EROFS/);
    // a dead daemon's lock left on it (a SIGKILL, then the filesystem went read-only): not "keeps
    // coming back" — unlocked too, the store then naming the read-only directory
    const r2 = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=64k wdp-test "$1" && { "$2" -e "$4" "$1/wdp.lock"; mount -o remount,ro "$1"; } && exec "$2" "$3" "$1"', 'sh', dir, process.execPath, script,
      "require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))"], { encoding: 'utf8', timeout: 30000 });
    t.is(r2.status, 0, r2.stderr);
    t.regex(JSON.parse(r2.stdout.trim()).unlocked ?? '', /a dead wdp's lock \S+ cannot be removed: EROFS/);
  } finally {
    rmSync(script, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a state directory whose path is longer than a socket address holds is locked too', async (t) => {
  const base = tmp();
  const dir = join(base, 'x'.repeat(60), 'y'.repeat(60));
  try {
    const a = await lockStateDir(dir);
    t.true(lstatSync(join(dir, LOCK_FILE)).isSocket());
    await t.throwsAsync(lockStateDir(dir), { instanceOf: StateDirInUseError });
    a.release();
    (await lockStateDir(dir)).release();
  } finally { rmSync(base, { recursive: true, force: true }); }
});

const { serial: pidnsSerial } = rootGate(test, { tools: ['unshare'] });
pidnsSerial('a holder in another PID namespace (its pid means nothing here) keeps the lock', async (t) => {
  const dir = tmp();
  const path = join(dir, LOCK_FILE);
  const listen = `require('net').createServer((s) => s.end(process.pid + '\\n')).listen(process.argv[1], () => console.log('up ' + process.pid))`;
  const child = spawn('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', process.execPath, '-e', listen, path], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const inside = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('holder did not listen')), 10000);
      let out = '';
      child.stdout.on('data', (d) => { out += d; const m = /up (\d+)/.exec(out); if (m) { clearTimeout(timer); resolve(Number(m[1])); } });
    });
    t.is(inside, 1, 'the holder is pid 1 of its own namespace');
    const e = await t.throwsAsync(lockStateDir(dir), { instanceOf: StateDirInUseError });
    t.regex(e.message, /pid 1 in its PID namespace/);
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => { if (child.exitCode !== null || child.signalCode !== null) r(); else child.once('exit', r); });
    rmSync(dir, { recursive: true, force: true });
  }
});

let topo;
test.after.always(async () => { await destroyTopology(topo); });

serial('a second `wdp start` on a live daemon\'s state directory fails at once; the first keeps its API and forwards', async (t) => {
  topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'afpacket' }] });
  await startDaemon(topo);
  await startPods(topo);
  const [podA] = topo.pods;
  const r = await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'web', clusterIP: '10.96.7.10', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: [podA.ip], conditions: { ready: true } }] }),
  ]);
  t.is(r.status, 200, r.text);
  t.regex((await curlOk(topo, topo.ns.client, 'http://10.96.7.10/')).body, /pod-a/);
  const first = topo.daemon;
  const ckpt = join(topo.config.stateDir, 'flows.ckpt');
  const before = existsSync(ckpt) ? readFileSync(ckpt) : null;

  // the same config, the same namespace: what a second unit or a manual start next to systemd's does
  const second = topo.lab.spawn(topo.ns.dp, process.execPath, [WDP, 'start', '--config', topo.configFile]);
  let out = '';
  second.stdout.on('data', (d) => { out += d; });
  second.stderr.on('data', (d) => { out += d; });
  const exit = new Promise((res) => second.once('exit', (code) => res(code)));
  const code = await within(exit, 60000, () => 'still running');
  if (code === 'still running') { second.kill('SIGKILL'); await exit; }
  t.is(code, 1, `the second start must fail: ${out.slice(-3000)}`);
  t.regex(out, new RegExp(`wdp start: cannot start: the state directory \\S+ is in use by another wdp \\(pid ${first.pid} in its PID namespace`));
  t.notRegex(out, /port open|AF_PACKET|control API listening/, 'nothing of the start happened');

  t.is(first.exitCode, null, 'the first daemon runs on');
  t.is((await api(topo, 'GET', '/healthz')).status, 200, 'its API socket is still its own');
  const st = spawnSync(process.execPath, [WDP, 'status', '--server', `unix:${topo.config.api.listen}`, '-o', 'json'], { encoding: 'utf8', timeout: 20000 });
  t.is(st.status, 0, st.stderr);
  t.is(JSON.parse(st.stdout).services, 1, 'the API answering is the first daemon\'s, with its state');
  t.regex((await curlOk(topo, topo.ns.client, 'http://10.96.7.10/')).body, /pod-a/);
  t.deepEqual(existsSync(ckpt) ? readFileSync(ckpt) : null, before, 'the checkpoint was not touched');

  // killed, its lock stays behind naming a dead process: the next start takes it over
  const killed = new Promise((res) => first.once('exit', res));
  first.kill('SIGKILL');
  await killed;
  t.true(lstatSync(join(topo.config.stateDir, LOCK_FILE)).isSocket(), 'a killed daemon leaves its lock socket');
  await startDaemon(topo);
  // (logged once the start is done, after the API answers)
  await logged(topo, /state directory lock taken over from a wdp that is gone/);
  await waitFor('the service again', async () => (await curlOk(topo, topo.ns.client, 'http://10.96.7.10/')).body.includes('pod-a'), 30000);
  // a clean stop removes the lock
  const stopped = new Promise((res) => topo.daemon.once('exit', res));
  topo.daemon.kill('SIGTERM');
  t.is(await stopped, 0);
  t.throws(() => lstatSync(join(topo.config.stateDir, LOCK_FILE)), { code: 'ENOENT' }, 'a clean stop removes its lock');
});
