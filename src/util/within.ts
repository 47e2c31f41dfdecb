// A wait with a bound whose timer goes away with the wait. `Promise.race([p, sleep(ms)])` leaves
// its timer pending once `p` has won: it holds the process (a bench, a test's worker) until it
// fires, and each such race is a timer nobody needs.

/** What `within` answers when its bound passed before the promise settled. */
export const LATE: unique symbol = Symbol('late');

/** `p`'s outcome, or LATE once `ms` have passed first; the timer is cleared either way. While it
 * runs it keeps the process alive (a step of a stop waits its bound out), unless `holdProcess` is
 * false (a health check's wait: nothing to keep a stopping process for). */
export function within<T>(p: Promise<T>, ms: number, { holdProcess = true } = {}): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), ms);
    if (!holdProcess) timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
