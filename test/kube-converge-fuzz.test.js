// The Kubernetes watcher's convergence fuzzer (test/lib/kube-converge.js): random API-valid
// Services, EndpointSlices, Node and ServiceCIDR changes and API-server faults through the
// API-server double into the watcher and an in-thread core; after each phase, what the core
// serves must equal what a fresh watcher and core given only the final objects serve.
// A fresh seed each run (printed, and in the failure), WDP_KUBEFUZZ_SEED=<n> replays one,
// WDP_KUBEFUZZ_PHASES=<n> changes the count (default 20). A failing run is minimised (the ops
// up to the failing phase, dropped one at a time while it still fails) and the rest printed.
import test from 'ava';
import { kubeFuzzSeed, genPhases, runPhases, minimise } from './lib/kube-converge.js';

const PHASES = Number(process.env.WDP_KUBEFUZZ_PHASES ?? 20);

test('fresh-seed convergence fuzz: the watcher\'s incremental path ends where a fresh start does', async (t) => {
  t.timeout(240_000);
  const seed = kubeFuzzSeed();
  // one run in three on a host without IPv6: one proxier family, the objects cut to it (families.ts)
  const HOST_IPV6 = seed % 3 !== 0;
  t.log(`seed ${seed} (replay with WDP_KUBEFUZZ_SEED=${seed}), ${PHASES} phases, host ${HOST_IPV6 ? 'with' : 'without'} IPv6`);
  const phases = genPhases(seed, PHASES);
  const lines = [];
  const res = await runPhases(phases, { seed, hostIPv6: HOST_IPV6, log: (l) => lines.push(l) });
  for (const l of lines) t.log(l);
  if (!res) { t.pass(); return; }
  const shown = res.diffs.slice(0, 20).join('\n  ');
  let min = '';
  if (!process.env.WDP_KUBEFUZZ_NO_MINIMISE) {
    const m = await minimise(phases, res.phase, { seed, hostIPv6: HOST_IPV6, deadline: Date.now() + 120_000 });
    const show = (o) => `${o.what}${o.obj ? ` ${JSON.stringify(o.obj)}` : ''}${o.gap ? ` (then ${o.gap} ms)` : ''}`;
    min = m.diffs ? `\nminimal sequence (${m.phases.length} phases, each settled; the last compared):\n${m.phases.map((p, i) => `  phase ${i}:\n    ${p.map(show).join('\n    ')}`).join('\n')}\nits differences:\n  ${m.diffs.slice(0, 10).join('\n  ')}` : `\n(${m.note})`;
  }
  t.fail(`seed ${seed} (reproduce: WDP_KUBEFUZZ_SEED=${seed}): phase ${res.phase} differs from a fresh start (${res.diffs.length} differences):\n  ${shown}\nphase ops:\n  ${phases[res.phase].map((o) => o.what).join('\n  ')}${min}`);
});
