// One daemon per state directory: a second `wdp start` on a state directory a live daemon holds
// fails at once with a clear error, before it opens a port, reads the checkpoint or takes the
// API socket — the first keeps its API and forwards on. A lock left by a daemon that is gone
// (SIGKILL, crash, a pid the kernel reused) never keeps the next start out.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, existsSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { buildTopology, startPods, startDaemon, destroyTopology, api, serviceYaml, sliceYaml, curlOk, WDP, waitFor } from './lib/topology.js';
import { lockStateDir, LOCK_FILE, StateDirInUseError } from '../dist/src/daemon/state-lock.js';

const { serial } = rootGate(test);

const tmp = () => mkdtempSync(join(tmpdir(), `wdp-lock-${process.pid}-`));
const startTimeOf = (pid) => { const s = readFileSync(`/proc/${pid}/stat`, 'utf8'); return s.slice(s.lastIndexOf(')') + 2).split(' ')[19]; };

test('the lock: a second holder is refused naming the first; released, it can be taken again', (t) => {
  const dir = tmp();
  try {
    const a = lockStateDir(dir);
    t.regex(readlinkSync(join(dir, LOCK_FILE)), new RegExp(`^${process.pid} \\d+$`));
    const e = t.throws(() => lockStateDir(dir), { instanceOf: StateDirInUseError });
    t.regex(e.message, new RegExp(`in use by another wdp \\(pid ${process.pid}`));
    a.release();
    t.throws(() => lstatSync(join(dir, LOCK_FILE)), { code: 'ENOENT' });
    const b = lockStateDir(dir);
    t.is(b.tookOver, undefined);
    b.release();
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('the lock of a process that is gone, or of a pid now another process\'s, is taken over', (t) => {
  const dir = tmp();
  try {
    const gone = spawnSync('true').pid;   // exited: no such process (until the pid is reused)
    symlinkSync(`${gone} 12345`, join(dir, LOCK_FILE));
    const a = lockStateDir(dir);
    t.is(a.tookOver, `${gone} 12345`);
    a.release();
    // a live process whose start time is not the holder's: the pid was reused
    symlinkSync(`${process.ppid} 1`, join(dir, LOCK_FILE));
    const b = lockStateDir(dir);
    t.is(b.tookOver, `${process.ppid} 1`);
    b.release();
    // this process's pid, not held by it (a daemon of this process that never stopped): taken over
    symlinkSync(`${process.pid} ${startTimeOf(process.pid)}`, join(dir, LOCK_FILE));
    const c = lockStateDir(dir);
    t.truthy(c.tookOver);
    c.release();
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a holder that has exited but is not reaped yet (a zombie) is gone: its lock is taken over', async (t) => {
  const dir = tmp();
  // a shell whose child exits at once and is never waited for while the shell sleeps
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const pid = Number(await new Promise((r) => parent.stdout.once('data', (d) => r(String(d).trim()))));
    let state = '';
    for (let i = 0; i < 100 && state !== 'Z'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      state = s.slice(s.lastIndexOf(')') + 2).split(' ')[0];
    }
    t.is(state, 'Z', 'the holder is a zombie');
    symlinkSync(`${pid} ${startTimeOf(pid)}`, join(dir, LOCK_FILE));
    const l = lockStateDir(dir);
    t.truthy(l.tookOver);
    l.release();
  } finally {
    parent.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a live other process holding the lock keeps it', async (t) => {
  const dir = tmp();
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await new Promise((r) => other.once('spawn', r));
    symlinkSync(`${other.pid} ${startTimeOf(other.pid)}`, join(dir, LOCK_FILE));
    const e = t.throws(() => lockStateDir(dir), { instanceOf: StateDirInUseError });
    t.regex(e.message, new RegExp(`pid ${other.pid}`));
    t.is(readlinkSync(join(dir, LOCK_FILE)), `${other.pid} ${startTimeOf(other.pid)}`, 'the holder\'s lock is left as it was');
  } finally {
    other.kill('SIGKILL');
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
  const code = await Promise.race([exit, new Promise((res) => setTimeout(() => res('still running'), 60000))]);
  if (code === 'still running') { second.kill('SIGKILL'); await exit; }
  t.is(code, 1, `the second start must fail: ${out.slice(-3000)}`);
  t.regex(out, new RegExp(`wdp start: cannot start: the state directory \\S+ is in use by another wdp \\(pid ${first.pid}`));
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
  t.true(lstatSync(join(topo.config.stateDir, LOCK_FILE)).isSymbolicLink());
  await startDaemon(topo);
  t.regex(topo.daemonLog, /state directory lock taken over from a wdp that is gone/);
  await waitFor('the service again', async () => (await curlOk(topo, topo.ns.client, 'http://10.96.7.10/')).body.includes('pod-a'), 30000);
  // a clean stop removes the lock
  const stopped = new Promise((res) => topo.daemon.once('exit', res));
  topo.daemon.kill('SIGTERM');
  t.is(await stopped, 0);
  t.throws(() => lstatSync(join(topo.config.stateDir, LOCK_FILE)), { code: 'ENOENT' }, 'a clean stop removes its lock');
});
