// helperNice (src/daemon/helper-threads.ts): the threads a process has before the daemon starts
// any of its own — V8's platform threads among them — get the nice value; the main thread, V8's
// CPU profiler thread and every thread started afterwards (a forwarding worker, the Maglev
// thread) keep theirs.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const ROOT = process.getuid?.() === 0;
const SETPRIV = spawnSync('setpriv', ['--version']).status === 0;

const MODULE = fileURLToPath(new URL('../dist/src/daemon/helper-threads.js', import.meta.url));

// in a process of its own: the module renices the threads it found when it was imported
const SCRIPT = `
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { setPriority } from 'node:os';
const [nice, pre, ended] = process.argv.slice(1);
// 'ended': a thread the process has at the import (a worker's) ends before the call
const tasks = () => readdirSync('/proc/self/task').map(Number);
const first = new Set(tasks());
const early = ended === 'ended' ? new Worker('setInterval(() => {}, 1000)', { eval: true }) : null;
if (early) await new Promise((r) => early.once('online', r));
const earlyTids = early ? tasks().filter((t) => !first.has(t)) : [];
const { setHelperThreadsNice } = await import(${JSON.stringify(MODULE)});
const niceOf = (tid) => { const st = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8'); return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]); };
const name = (tid) => readFileSync('/proc/self/task/' + tid + '/comm', 'utf8').trim();
const before = new Set(readdirSync('/proc/self/task').map(Number));
const w = new Worker('setInterval(() => {}, 1000)', { eval: true });
await new Promise((r) => w.once('online', r));
const later = readdirSync('/proc/self/task').map(Number).filter((t) => !before.has(t));
if (early) {
  await early.terminate();
  // terminate() settles before the worker's OS thread has exited: wait (bounded) until it has,
  // so the call below and the reads after it see one state
  for (let i = 0; i < 400 && earlyTids.some((t) => existsSync('/proc/self/task/' + t)); i++) await new Promise((r) => setTimeout(r, 5));
}
const live = [...before].filter((t) => t !== process.pid && existsSync('/proc/self/task/' + t));
// pre: a nice value one helper thread is at already (a higher one cannot be lowered again
// without CAP_SYS_NICE)
if (pre !== '-') setPriority(live.find((t) => name(t) !== 'v8:ProfEvntProc'), Number(pre));
const result = setHelperThreadsNice(Number(nice));
const out = { result, main: niceOf(process.pid), ended: before.size - 1 - live.length, helpers: live.filter((t) => name(t) !== 'v8:ProfEvntProc').map(niceOf),
  profiler: live.filter((t) => name(t) === 'v8:ProfEvntProc').map(niceOf), later: later.map(niceOf) };
await w.terminate();
console.log(JSON.stringify(out));
`;

/** `pre`: one helper thread's nice before the call; `noNiceCap`: without CAP_SYS_NICE (as root:
 * through setpriv, which drops it from the bounding set); `endOne`: a thread the process has at
 * the import ends before the call. */
function run(nice, nodeArgs = [], { pre, noNiceCap = false, endOne = false } = {}) {
  const cmd = [process.execPath, ...nodeArgs, '--input-type=module', '-e', SCRIPT, '--', String(nice), pre === undefined ? '-' : String(pre), endOne ? 'ended' : '-'];
  const r = noNiceCap && ROOT ? spawnSync('setpriv', ['--bounding-set=-sys_nice', ...cmd], { encoding: 'utf8' }) : spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

test('the threads found at import get the nice value; the main thread and threads started later keep theirs', (t) => {
  const r = run(7);
  t.true(r.helpers.length >= 4, `V8's platform threads are among them: ${JSON.stringify(r)}`);
  t.deepEqual(r.result, { set: r.helpers.length });
  t.true(r.helpers.every((n) => n === 7), JSON.stringify(r));
  t.is(r.main, 0);
  t.true(r.later.length >= 1, 'the worker thread started after the import');
  t.true(r.later.every((n) => n === 0), JSON.stringify(r));
});

test('V8\'s CPU profiler thread (--cpu-prof) keeps its nice: it samples the main thread as the workers\' profiler threads sample theirs', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-helper-prof-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = run(7, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  t.is(r.profiler.length, 1, `the profiler's thread exists at import: ${JSON.stringify(r)}`);
  t.deepEqual(r.profiler, [0], JSON.stringify(r));
  t.true(r.helpers.length >= 4 && r.helpers.every((n) => n === 7), JSON.stringify(r));
  t.deepEqual(r.result, { set: r.helpers.length });
});

test('a nice value out of range is refused with its reason and changes nothing', (t) => {
  const r = run(20);
  t.is(r.result.set, 0);
  t.regex(r.result.reason, /nice must be an integer in -20\.\.19, got 20/);
  t.true(r.helpers.every((n) => n === 0), JSON.stringify(r));
});

(!ROOT || SETPRIV ? test : test.skip)(`a helper thread whose nice cannot be set is reported, beside the ones that were set${!ROOT || SETPRIV ? '' : ' (skipped: as root this needs setpriv to drop CAP_SYS_NICE)'}`, (t) => {
  // one helper thread at nice 10 already: without CAP_SYS_NICE it cannot go back to 7
  const r = run(7, [], { pre: 10, noNiceCap: true });
  t.is(r.result.set, r.helpers.length - 1, JSON.stringify(r));
  t.regex(r.result.reason ?? '', /not permitted \(raising priority needs CAP_SYS_NICE\)/, JSON.stringify(r));
  t.deepEqual([...r.helpers].sort((a, b) => a - b), [...Array(r.helpers.length - 1).fill(7), 10], JSON.stringify(r));
});

(!ROOT || SETPRIV ? test : test.skip)(`none set: every refusal is reported${!ROOT || SETPRIV ? '' : ' (skipped: as root this needs setpriv to drop CAP_SYS_NICE)'}`, (t) => {
  const r = run(-1, [], { noNiceCap: true });
  t.is(r.result.set, 0);
  t.regex(r.result.reason ?? '', /not permitted/, JSON.stringify(r));
  t.true(r.helpers.every((n) => n === 0), JSON.stringify(r));
});

test('a thread found at import that has ended by the call is skipped, not reported', (t) => {
  const r = run(7, [], { endOne: true });
  t.is(r.ended, 1, JSON.stringify(r));
  t.deepEqual(r.result, { set: r.helpers.length }, JSON.stringify(r));
  t.true(r.helpers.every((n) => n === 7), JSON.stringify(r));
});
