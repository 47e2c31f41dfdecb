// The daemon's session scheduling group (src/daemon/autogroup.ts): a process that leads its own
// session raises its autogroup's nice; one that shares its session with whoever started it leaves
// the group alone and says why; bad values are a reason, never a throw. Each case runs in a child
// process, so this test's own group never changes. The adaptive group (raised at low packet
// rates, the session's own nice at high ones) is checked with a recording writer.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { raiseAutogroup, sessionId, autogroupNice, AdaptiveGroup, BUSY_FPS, QUIET_FPS } from '../dist/src/daemon/autogroup.js';
import { childDone } from './lib/child-done.js';

const MODULE = fileURLToPath(new URL('../dist/src/daemon/autogroup.js', import.meta.url));
const enabled = (() => {
  try { return existsSync('/proc/self/autogroup') && readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1'; } catch { return false; }
})();
const root = process.getuid?.() === 0;
const why = !enabled ? 'no autogroup scheduling on this kernel (or it is off)' : !root ? 'lowering a nice value needs root (CAP_SYS_NICE)' : '';
const rootTest = why ? (name, fn) => test.skip(`${name} — skipped: ${why}`, fn) : test;

/** Runs raiseAutogroup(nice) in a child (its own session when `detached`); returns what it
 * reported and its group's nice read by the child afterwards. */
function inChild(nice, detached) {
  const script = `import(${JSON.stringify(MODULE)}).then((m) => { const r = m.raiseAutogroup(${nice}); console.log(JSON.stringify({ r, after: m.autogroupNice(), sid: m.sessionId(), pid: process.pid })); });`;
  return runChild(script, detached);
}

/** Runs module `script` in a child (its own session when `detached`); resolves with the JSON of
 * its last line of output. */
function runChild(script, detached) {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { detached, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    const timer = setTimeout(() => { c.kill('SIGKILL'); reject(new Error('child timed out')); }, 20_000);
    c.stdout.on('data', (b) => { out += b; });
    c.stderr.on('data', (b) => { err += b; });
    void childDone(c).then(({ code }) => { clearTimeout(timer); code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`child exited ${code}: ${err}`)); });
  });
}

rootTest('a process leading its own session raises its group to the nice asked; a lower one is left as it is', async (t) => {
  const a = await inChild(-7, true);
  t.is(a.sid, a.pid, 'detached: the child leads its session');
  t.true(a.r.raised, JSON.stringify(a.r));
  t.is(a.r.to, -7);
  t.is(a.after, -7);
  const b = await inChild(5, true);
  t.false(b.r.raised, 'a fresh group is at 0, below 5: nothing to raise');
  t.regex(b.r.reason, /at nice 0 already/);
  t.is(b.after, 0);
});

rootTest('a process in its starter\'s session leaves that group alone and says why', async (t) => {
  const c = await inChild(-7, false);
  t.not(c.sid, c.pid);
  t.false(c.r.raised);
  t.regex(c.r.reason, /does not lead its session/);
  // null when this test runs in the kernel's default group (/proc/self/autogroup empty: a process
  // whose session never left init's, as under some CI runners): the child is in it too
  t.is(c.after, autogroupNice(), 'the shared group (this test\'s) is unchanged');
});

test('bad nice values are a reason, not a throw; the session id is this process\'s (Linux)', (t) => {
  t.regex(raiseAutogroup(-21).reason, /-20\.\.19/);
  t.regex(raiseAutogroup(1.5).reason, /integer/);
  if (process.platform === 'linux') t.is(typeof sessionId(), 'number');
});

test('adaptive group: back to its own nice above BUSY_FPS, raised again only below QUIET_FPS, in between it stays; a refused write changes nothing', (t) => {
  const writes = [];
  let ok = true;
  const g = new AdaptiveGroup(-10, 0, () => 0, 100, (n) => { writes.push(n); return ok; });
  g.tick(0, 0);                                  // first look: no interval yet
  let at = 0, frames = 0;
  const step = (fps) => { at += 100; frames += fps / 10; g.tick(at, frames); };
  step(10_000);
  t.deepEqual(writes, [], 'raised from the start; a low rate keeps it');
  step(BUSY_FPS + 10_000);
  t.deepEqual(writes, [0], 'a blast: back to the session\'s own nice');
  t.false(g.raisedNow);
  step((BUSY_FPS + QUIET_FPS) / 2);
  t.deepEqual(writes, [0], 'between the marks: stays');
  step(QUIET_FPS - 1_000);
  t.deepEqual(writes, [0, -10], 'quiet again: raised');
  t.true(g.raisedNow);
  ok = false;
  step(BUSY_FPS * 2);
  t.deepEqual(writes, [0, -10, 0], 'tried');
  t.true(g.raisedNow, 'the write was refused: the state says what the group is');
  t.is(g.switches, 2);
});

test('adaptive group: a refused write is reported once, not at every look (every 100 ms)', (t) => {
  const refused = [];
  const g = new AdaptiveGroup(-10, 0, () => 0, 100, () => false, (nice) => refused.push(nice));
  g.tick(0, 0);
  let at = 0, frames = 0;
  for (let i = 0; i < 20; i++) { at += 100; frames += BUSY_FPS; g.tick(at, frames); }   // a blast: back to 0, refused each time
  t.deepEqual(refused, [0]);
  t.true(g.raisedNow);
  t.is(g.switches, 0);
});

/** In a child leading its own session: holdSessionGroup(-7) with a frame counter, then stop();
 * the group's nice while held and after, and the counter's reads after stop() (its timer ended). */
function heldInChild() {
  const script = `import(${JSON.stringify(MODULE)}).then(async (m) => {
    let reads = 0;
    const h = m.holdSessionGroup(-7, () => { reads++; return 0; });
    const during = m.autogroupNice();
    await new Promise((r) => setTimeout(r, 250));
    h.stop();
    const readsAtStop = reads;
    await new Promise((r) => setTimeout(r, 400));
    console.log(JSON.stringify({ raised: h.result.raised, during, after: m.autogroupNice(), readsAtStop, readsLater: reads }));
  });`;
  return runChild(script, true);
}

rootTest('a daemon\'s session group (holdSessionGroup): raised while held; stop() ends the adapting and puts the group back', async (t) => {
  const r = await heldInChild();
  t.true(r.raised);
  t.is(r.during, -7);
  t.true(r.readsAtStop >= 1, 'the rate was read while held');
  t.is(r.readsLater, r.readsAtStop, 'no look at the rate after stop()');
  t.is(r.after, 0, 'the group is back at its nice from before');
});
