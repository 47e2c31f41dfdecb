// A wait with a bound whose timer goes away with the wait. `Promise.race([p, sleep(60_000)])`
// leaves its 60 s timer pending once `p` has won, and ava ends a test file's worker only when its
// event loop is empty: each such race kept its file's worker (and one of the run's two slots)
// idle for the rest of the minute after the file's last test.

/** `promise`'s value, or `onTimeout()`'s once `ms` have passed first (what it throws is thrown);
 * the timer is cleared either way. */
export async function within(promise, ms, onTimeout = () => undefined) {
  let timer;
  const bound = new Promise((resolve, reject) => {
    timer = setTimeout(() => { try { resolve(onTimeout()); } catch (e) { reject(e); } }, ms);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}
