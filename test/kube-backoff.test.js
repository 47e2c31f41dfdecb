// The informers' restart backoff as client-go's reflector's (src/kube/backoff.ts).
import test from 'ava';
import { Backoff } from '../dist/src/kube/backoff.js';

test('steps double from 0.8 s to the 30 s cap, each jittered up to twice it', (t) => {
  let now = 0;
  const low = new Backoff({ initialMs: 800, capMs: 30_000, now: () => now, random: () => 0 });
  const steps = [];
  for (let i = 0; i < 8; i++) { steps.push(low.next()); now += 1000; }
  t.deepEqual(steps, [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
  now = 0;
  const high = new Backoff({ initialMs: 800, capMs: 30_000, now: () => now, random: () => 0.999 });
  const jittered = [high.next(), high.next(), high.next()];
  t.deepEqual(jittered, [1599, 3198, 6397], 'up to twice the step: a fleet cut at one moment comes back spread out');
});

test('a failure more than 2 minutes after the one before starts over; one sooner keeps backing off, whatever was delivered between', (t) => {
  let now = 0;
  const b = new Backoff({ initialMs: 800, capMs: 30_000, now: () => now, random: () => 0 });
  t.is(b.next(), 800);
  now += 60_000; t.is(b.next(), 1600, 'a server that accepts and drops every connection is not retried at the first step each time');
  now += 119_000; t.is(b.next(), 3200);
  now += 120_001; t.is(b.next(), 800, 'two quiet minutes: from the start');
});
