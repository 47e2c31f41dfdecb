// The addon's waker: an eventfd a worker's `wait` polls with its ports, so a control message the
// main thread posts ends the wait at once. No timing here: each wait below has a timeout long
// enough that, were the wake ignored, it would return by timing out, and the waker's `taken`
// counter (wake-ups a wait found and reset) tells which of the two happened.
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { nativeAvailable, nativeAddon } from '../dist/src/ports/native.js';

const avail = nativeAvailable();
const nativeTest = avail.ok ? test : test.skip;
if (!avail.ok) console.log(`native-waker: skipped, addon unavailable: ${avail.reason}`);
const NATIVE_URL = new URL('../dist/src/ports/native.js', import.meta.url).href;
const NOT_WOKEN_MS = 5000;

nativeTest('a wake ends the next wait (even one started later), once; several wakes coalesce', (t) => {
  const a = nativeAddon();
  const w = a.wakerOpen();
  t.teardown(() => { try { a.wakerClose(w); } catch { /* closed by the test */ } });
  a.wake(w);
  t.deepEqual(a.wait([], NOT_WOKEN_MS, w), []);
  t.deepEqual(a.wakerStats(w), { posted: 1, taken: 1 }, 'the wait returned because of the wake');
  a.wake(w); a.wake(w); a.wake(w);
  a.wait([], NOT_WOKEN_MS, w);
  t.deepEqual(a.wakerStats(w), { posted: 4, taken: 2 }, 'three pending wakes are one wake-up');
  // the eventfd was reset: a zero-timeout wait finds nothing
  a.wait([], 0, w);
  t.is(a.wakerStats(w).taken, 2);
});

nativeTest('the main thread wakes a worker blocked in wait, by the waker handle', async (t) => {
  const a = nativeAddon();
  const w = a.wakerOpen();
  t.teardown(() => a.wakerClose(w));
  const src = `
    import { parentPort, workerData } from 'node:worker_threads';
    const { nativeAddon } = await import(${JSON.stringify(NATIVE_URL)});
    const a = nativeAddon();
    parentPort.postMessage('waiting');
    a.wait([], workerData.ms, workerData.waker);
    parentPort.postMessage(a.wakerStats(workerData.waker));`;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`), { workerData: { waker: w, ms: NOT_WOKEN_MS } });
  const stats = await new Promise((resolve, reject) => {
    worker.on('message', (m) => { if (m === 'waiting') a.wake(w); else resolve(m); });
    worker.once('error', reject);
  });
  await worker.terminate();
  t.deepEqual(stats, { posted: 1, taken: 1 });
});

nativeTest('a closed or unknown waker is a clear error, never another fd', (t) => {
  const a = nativeAddon();
  const w = a.wakerOpen();
  a.wakerClose(w);
  t.is(t.throws(() => a.wake(w)).code, 'ECLOSED');
  t.is(t.throws(() => a.wait([], 0, w)).code, 'ECLOSED');
  t.is(t.throws(() => a.wakerClose(w)).code, 'ECLOSED');
  t.is(t.throws(() => a.wake(w + 1000)).code, 'EINVAL');
  const next = a.wakerOpen();
  t.not(next, w, 'handles are never reused');
  a.wakerClose(next);
});
