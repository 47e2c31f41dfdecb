// When the daemon re-programs its NodeConfig (src/daemon/node-programming.ts): a change that
// arrives while an apply is in flight — its node config was read before the change — gets its own
// apply. The daemon used to clear its "changed" mark after its first apply returned, so a
// neighbour learned during that apply (a pod re-addressed while the daemon restarted) was logged
// as learned and never programmed.
import test from 'ava';
import { NodeProgramming } from '../dist/src/daemon/node-programming.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** A fake control plane: each apply records the state it read, and waits for `release()`. */
function fakeApply() {
  const seen = [];
  let state = 0, gate;
  const f = {
    seen, set(v) { state = v; },
    hold() { let r; gate = new Promise((res) => { r = res; }); return r; },
    async apply() { seen.push(state); if (gate) await gate; },
  };
  return f;
}

test('a change during the first program (the daemon\'s start) is programmed once started', async (t) => {
  const f = fakeApply();
  const p = new NodeProgramming(() => f.apply(), 5, (e) => t.fail(e.message));
  const release = f.hold();
  const first = p.first(() => f.apply());
  await tick();
  f.set(1); p.changed();                // learned while the first apply runs
  release(); await first;
  t.true(p.pending, 'still marked: the first apply read the state before the change');
  p.start();
  await p.settled();
  t.deepEqual(f.seen, [0, 1], 'the change got its own apply');
  await p.stop();
});

test('a change during a running apply is programmed after it; changes before start wait for it', async (t) => {
  const f = fakeApply();
  const p = new NodeProgramming(() => f.apply(), 5, (e) => t.fail(e.message));
  f.set(1); p.changed();
  await tick(20);
  t.deepEqual(f.seen, [], 'not started: nothing programmed yet');
  p.start();
  await tick(0);
  t.deepEqual(f.seen, [1], 'start() programs what changed before it');
  const release = f.hold();
  p.changed(); await tick(20);          // the debounce timer starts the apply, which blocks
  t.deepEqual(f.seen, [1, 1]);
  f.set(2); p.changed();                // arrives while that apply is in flight
  release();
  await p.settled();
  t.deepEqual(f.seen, [1, 1, 2]);
  t.false(p.pending);
  await p.stop();
});

test('changes are debounced into one apply; nothing is programmed after stop; an error is reported, not thrown', async (t) => {
  const f = fakeApply();
  const errors = [];
  let fail = false;
  const p = new NodeProgramming(async () => { await f.apply(); if (fail) throw new Error('refused'); }, 10, (e) => errors.push(e.message));
  p.start();
  for (let i = 0; i < 5; i++) { f.set(i); p.changed(); }
  await p.settled();
  t.deepEqual(f.seen, [4], 'five changes within the debounce interval: one apply');
  fail = true;
  await p.now();
  t.deepEqual(errors, ['refused']);
  await p.stop();
  p.changed();
  await tick(30);
  await p.now();
  t.is(f.seen.length, 2, 'stopped: no more applies');
});
