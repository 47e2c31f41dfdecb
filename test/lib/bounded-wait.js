// A test's bounded wait: src/util/within.ts (the timer goes away with the wait — a
// `Promise.race([p, sleep(60_000)])` left its timer pending once `p` had won, and ava ends a test
// file's worker only when its event loop is empty), with what the bound gives chosen by the test.
import { LATE, within as bounded } from '../../dist/src/util/within.js';

/** `promise`'s value, or `onTimeout()`'s once `ms` have passed first (what it throws is thrown);
 * the timer is cleared either way. */
export async function within(promise, ms, onTimeout = () => undefined) {
  const r = await bounded(promise, ms);
  return r === LATE ? onTimeout() : r;
}
