// The worker's event-loop sleep (src/daemon/worker-wake.ts), used by relay-only and held workers:
// ended by a posted message's wake, by its timeout, or by another promise it is raced with (a relay
// port readable first). However many sleeps another promise wins, they share one pending
// Atomics.waitAsync until a wake ends it — one new wait per sleep piled up V8 waiters, and a relay
// worker idling thousands of times a second stalled its event loop for seconds.
import test from 'ava';
import { WakeReceiver, WakeSender, wakeSignalBuffer } from '../dist/src/daemon/worker-wake.js';

test('sleeps that another promise wins share one pending wait; a wake ends it and the next sleep starts one', async (t) => {
  const buf = wakeSignalBuffer();
  const rx = new WakeReceiver(buf), tx = new WakeSender(buf);
  for (let i = 0; i < 2000; i++) await Promise.race([Promise.resolve(), rx.sleep(60_000)]);
  t.is(rx.waitsStarted, 1, 'one waitAsync for 2000 sleeps');
  t.is(rx.taken, 0);
  const sleeping = rx.sleep(60_000);
  tx.wake();
  await sleeping; // (a wake that did not end it would leave this test to its timeout)
  t.is(rx.taken, 1, 'the wake ended the sleep');
  await Promise.race([Promise.resolve(), rx.sleep(60_000)]);
  t.is(rx.waitsStarted, 2, 'a new wait after the wake');
  // the sleep that race left pending is ended (its 60 s timer cleared): else this file's worker,
  // which ava ends once its event loop is empty, idles on it for a minute after the tests
  tx.wake();
});

test('a wake posted while the worker was busy ends the next sleep at once; nothing posted, a sleep times out', async (t) => {
  const buf = wakeSignalBuffer();
  const rx = new WakeReceiver(buf), tx = new WakeSender(buf);
  tx.wake();
  await rx.sleep(60_000);
  t.is(rx.taken, 1);
  t.is(rx.waitsStarted, 0, 'no wait needed');
  await rx.sleep(20);
  t.is(rx.taken, 1, 'timed out, not taken');
});
