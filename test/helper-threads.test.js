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

const MODULE = fileURLToPath(new URL('../dist/src/daemon/helper-threads.js', import.meta.url));

// in a process of its own: the module renices the threads it found when it was imported
const SCRIPT = `
import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
const { setHelperThreadsNice } = await import(${JSON.stringify(MODULE)});
const nice = (tid) => { const st = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8'); return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]); };
const before = new Set(readdirSync('/proc/self/task').map(Number));
const w = new Worker('setInterval(() => {}, 1000)', { eval: true });
await new Promise((r) => w.once('online', r));
const later = readdirSync('/proc/self/task').map(Number).filter((t) => !before.has(t));
const result = setHelperThreadsNice(Number(process.argv[1]));
const name = (tid) => readFileSync('/proc/self/task/' + tid + '/comm', 'utf8').trim();
const others = [...before].filter((t) => t !== process.pid);
const out = { result, main: nice(process.pid), helpers: others.filter((t) => name(t) !== 'v8:ProfEvntProc').map(nice), profiler: others.filter((t) => name(t) === 'v8:ProfEvntProc').map(nice), later: later.map(nice) };
await w.terminate();
console.log(JSON.stringify(out));
`;

function run(nice, nodeArgs = []) {
  const r = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', SCRIPT, String(nice)], { encoding: 'utf8' });
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
