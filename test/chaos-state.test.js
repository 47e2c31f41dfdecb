// The state-directory chaos run (test/lib/chaos-driver.js) on a fixed set of seeds, a few
// iterations each: SIGKILL / SIGSTOP+SIGKILL of a real `wdp start` during large (writer thread)
// and small applies, deletes, port adds and removes, checkpoints (every second), the start and the
// stop; a full and a nearly full disk, a filesystem failing read-only under the daemon (ext4 on a
// loop device; tmpfs where there are none) and one mounted read-only; damaged store, log, table
// image, checkpoint and ports files; a legacy state.json migration killed midway; two daemons on
// one state directory. After each, the restart must show exactly an acknowledged state (or the one
// in flight, whole) with its runtime ports, or fail with a clear error deleting nothing. With the
// Kubernetes watcher (test/lib/apiserver-double.js in the daemon's namespace): killed during its
// syncs of small and large changes, the restarted daemon converges on what the API server serves.
//
// A failure names its seed: `WDP_CHAOS_SEED=n npx ava test/chaos-state.test.js` replays it (with
// `WDP_CHAOS_ITERATIONS=n` for a longer run of that seed).
import test from 'ava';
import { rootGate } from './lib/root-gate.js';
import { runChaos } from './lib/chaos-driver.js';

const { serial } = rootGate(test, { tools: ['unshare', 'nsenter', 'mount'] });
const SEEDS = process.env.WDP_CHAOS_SEED ? [Number(process.env.WDP_CHAOS_SEED)] : [11, 23];
// (11 scenarios: each seed runs every one once, in an order and with moments drawn from the seed)
const ITERATIONS = Number(process.env.WDP_CHAOS_ITERATIONS ?? 11);

for (const seed of SEEDS) {
  serial(`chaos seed ${seed}: ${ITERATIONS} faults, every restart shows an acknowledged state or fails clearly`, async (t) => {
    t.timeout(10 * 60_000);
    const r = await runChaos({ seed, iterations: ITERATIONS, cover: !process.env.WDP_CHAOS_ITERATIONS, budgetMs: 8 * 60_000, log: (s) => t.log(s) });
    t.log(`seed ${seed}: ${r.iterations} iterations ${JSON.stringify(r.scenarios)}`);
    t.true(r.iterations > 0);
  });
}

serial(`chaos with the Kubernetes watcher (seed ${SEEDS[0]}): killed during its syncs from the API-server double, the restarted daemon converges on it`, async (t) => {
  t.timeout(10 * 60_000);
  const r = await runChaos({ seed: SEEDS[0], kube: true, cover: true, iterations: 6, budgetMs: 8 * 60_000, log: (s) => t.log(s) });
  t.log(`seed ${SEEDS[0]} (kube): ${r.iterations} iterations ${JSON.stringify(r.scenarios)}`);
  t.true(r.iterations > 0);
});
