// Test helpers around the compiler's Maglev fills (src/compiler/maglev.ts, maglev-pool.ts) that
// production code has no use for: a table as its own array, and a stand-in for the pool's worker
// that claims jobs and dies holding them.
import { maglevIndexTableAt, maglevSlotWidth } from '../../dist/src/compiler/maglev.js';
import { MaglevJobs, C_CLAIMED, C_PUBLISHED } from '../../dist/src/compiler/maglev-pool.js';
import { typedArray } from '../../dist/src/compiler/slab.js';

/** The index table of backends `${addrs[j]}:${ports[j]}` (key order) as a fresh array — or from
 * `alloc` (a slab allocator) — filled inline or published on `jobs`. */
export function maglevIndexTable(addrs, ports, m, alloc, n = addrs.length, jobs = null) {
  const width = maglevSlotWidth(n);
  const size = n ? m : 0;
  const out = alloc && size ? alloc(size, width) : typedArray(size, width);
  maglevIndexTableAt(addrs, ports, m, n, out, 0, jobs);
  return out;
}

/** MaglevJobs whose worker is a stand-in that receives the same messages a real worker does
 * (MaglevJobs.create's `port`) and claims jobs only when told: claimAndDrop() claims the next
 * job as the worker would (CAS on the shared C_CLAIMED word) and never finishes it, like a worker
 * that died holding it. */
export function jobsWithDyingWorker(maxJobs, maxBackends) {
  let ctl = null;
  const port = { postMessage(msg) { if (msg.type === 'jobs') ctl = new Int32Array(msg.ctl); } };
  const jobs = MaglevJobs.create(maxJobs, maxBackends, port);
  const claimAndDrop = () => {
    const c = Atomics.load(ctl, C_CLAIMED);
    return c < Atomics.load(ctl, C_PUBLISHED) && Atomics.compareExchange(ctl, C_CLAIMED, c, c + 1) === c;
  };
  return { jobs, claimAndDrop };
}
