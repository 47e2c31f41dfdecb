// test/lib/bounded-wait.js within(): the promise's value when it wins, the bound's when the time
// runs out first (or what the bound throws), and in either case no timer left behind to hold the
// test file's worker after its last test. (Serial: each counts the process's timers.)
import test from 'ava';
import { within } from './lib/bounded-wait.js';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test.serial('the promise wins: its value, and the bound\'s timer is gone', async (t) => {
  const before = timers();
  t.is(await within(Promise.resolve('done'), 60_000, () => 'late'), 'done');
  t.is(timers(), before, 'no timer left');
});

test.serial('the promise fails: its error, and the bound\'s timer is gone', async (t) => {
  const before = timers();
  await t.throwsAsync(within(Promise.reject(new Error('broke')), 60_000), { message: 'broke' });
  t.is(timers(), before, 'no timer left');
});

test.serial('the time runs out first: what onTimeout gives (undefined by default), or what it throws', async (t) => {
  const never = new Promise(() => {});
  t.is(await within(never, 20, () => ({ code: 'timeout' })).then((v) => v.code), 'timeout');
  t.is(await within(never, 20), undefined);
  await t.throwsAsync(within(never, 20, () => { throw new Error('no answer in 20 ms'); }), { message: 'no answer in 20 ms' });
});
