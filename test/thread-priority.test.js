// The forwarding worker's own priority and CPU: setThreadNice and pinThread change the calling
// thread only (Linux keeps nice and affinity per thread), and a refused change is a reason, never
// a throw.
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { currentTid, setThreadNice, pinThread } from '../dist/src/daemon/thread-priority.js';
import { nativeAvailable } from '../dist/src/ports/native.js';

const MODULE = fileURLToPath(new URL('../dist/src/daemon/thread-priority.js', import.meta.url));
const niceOf = (tid) => { const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8'); return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]); };

const linux = process.platform === 'linux';
(linux ? test : test.skip)('a worker thread lowers its own priority; the main thread keeps its own (Linux only)', async (t) => {
  const mainTid = currentTid();
  t.is(mainTid, process.pid);
  const before = niceOf(mainTid);
  const w = new Worker(`
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(MODULE)}).then((m) => {
      const tid = m.currentTid();
      const why = m.setThreadNice(Math.min(19, ${before} + 3));
      parentPort.postMessage({ tid, why });
      parentPort.on('message', () => {});   // alive (a listening port) until terminated: the parent reads its nice first
    });
  `, { eval: true });
  const { tid, why } = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  try {
    t.is(why, null);
    t.not(tid, mainTid);
    t.is(niceOf(tid), Math.min(19, before + 3));
    t.is(niceOf(mainTid), before);
  } finally { await w.terminate(); }
});

const ROOT = process.getuid?.() === 0;
const SETPRIV = spawnSync('setpriv', ['--version']).status === 0;
(linux && (!ROOT || SETPRIV) ? test : test.skip)(`raising priority without CAP_SYS_NICE: the reason says what it needs${linux && (!ROOT || SETPRIV) ? '' : ' (skipped: Linux only; as root this needs setpriv to drop CAP_SYS_NICE)'}`, (t) => {
  // in a process of its own without the capability (as root: dropped from the bounding set)
  const cmd = [process.execPath, '--input-type=module', '-e', `console.log(JSON.stringify((await import(${JSON.stringify(MODULE)})).setThreadNice(-1)))`];
  const r = ROOT ? spawnSync('setpriv', ['--bounding-set=-sys_nice', ...cmd], { encoding: 'utf8' }) : spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.regex(JSON.parse(r.stdout), /^not permitted \(raising priority needs CAP_SYS_NICE\): .*EACCES/);
});

test('bad nice values are a reason, not a throw', (t) => {
  t.regex(setThreadNice(-21), /-20\.\.19/);
  t.regex(setThreadNice(1.5), /integer/);
});

const allowedOf = (tid) => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))[1];

(linux && nativeAvailable().ok ? test : test.skip)('a worker thread pins itself to one CPU; the main thread keeps its CPUs; a CPU it may not use is a reason (Linux, native addon)', async (t) => {
  const mainTid = currentTid();
  const before = allowedOf(mainTid);
  const cpu = Number(before.split(/[,-]/).pop());   // the last CPU this process may use
  const w = new Worker(`
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(MODULE)}).then((m) => {
      const tid = m.currentTid();
      const bad = m.pinThread(1023);
      const why = m.pinThread(${cpu});
      parentPort.postMessage({ tid, why, bad });
      parentPort.on('message', () => {});   // alive (a listening port) until terminated: the parent reads its affinity first
    });
  `, { eval: true });
  const { tid, why, bad } = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  try {
    t.is(why, null);
    t.is(allowedOf(tid), String(cpu));
    t.is(allowedOf(mainTid), before);
    t.regex(bad, /sched_setaffinity\(\[1023\]\)/);
  } finally { await w.terminate(); }
  t.regex(pinThread(1.5) ?? '', /cpus/);
});
