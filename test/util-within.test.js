// src/util/within.ts: a bounded wait whose timer goes with the wait (a race against a sleep left
// its timer pending, holding a bench's or a test's process until it fired).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { LATE, within } from '../dist/src/util/within.js';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test.serial('the promise first: its value, and no timer left behind', async (t) => {
  const before = timers();
  t.is(await within(Promise.resolve(7), 60_000), 7);
  t.is(timers(), before);
});

test.serial('the bound first: LATE, and the promise\'s rejection passes through when it comes first', async (t) => {
  t.is(await within(new Promise(() => {}), 20), LATE);
  await t.throwsAsync(within(Promise.reject(new Error('refused')), 60_000), { message: 'refused' });
});

test.serial('a wait that holds the process keeps it alive until its bound; one that does not lets it end', (t) => {
  const run = (hold) => spawnSync(process.execPath, ['--input-type=module', '-e',
    `import { within } from ${JSON.stringify(new URL('../dist/src/util/within.js', import.meta.url).href)};
     within(new Promise(() => {}), 300, { holdProcess: ${hold} }).then((r) => console.log(String(r)));`], { encoding: 'utf8', timeout: 10_000 });
  t.is(run(true).stdout.trim(), 'Symbol(late)', 'held: the bound fires');
  t.is(run(false).stdout.trim(), '', 'not held: the process ended first');
});
