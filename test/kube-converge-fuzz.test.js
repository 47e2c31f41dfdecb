// The Kubernetes watcher's convergence fuzzer (test/lib/kube-converge.js): random API-valid
// Services, EndpointSlices, Node and ServiceCIDR changes and API-server faults through the
// API-server double into the watcher and an in-thread core; after each phase, what the core
// serves must equal what a fresh watcher and core given only the final objects serve.
// A fresh seed each run (printed, and in the failure), WDP_KUBEFUZZ_SEED=<n> replays one,
// WDP_KUBEFUZZ_PHASES=<n> changes the count (default 20). A failing run is minimised (the ops
// up to the failing phase, dropped one at a time while it still fails) and the rest printed.
import test from 'ava';
import { kubeFuzzSeed, genPhases, runPhases, minimise, startSide, settle } from './lib/kube-converge.js';
import { ApiServerDouble } from './lib/apiserver-double.js';
import { until } from './lib/kube-fixture.js';

const PHASES = Number(process.env.WDP_KUBEFUZZ_PHASES ?? 20);

test('fresh-seed convergence fuzz: the watcher\'s incremental path ends where a fresh start does', async (t) => {
  t.timeout(240_000);
  const seed = kubeFuzzSeed();
  // one run in three on a host without IPv6: one proxier family, the objects cut to it (families.ts)
  const HOST_IPV6 = seed % 3 !== 0;
  t.log(`seed ${seed} (replay with WDP_KUBEFUZZ_SEED=${seed}), ${PHASES} phases, host ${HOST_IPV6 ? 'with' : 'without'} IPv6${seed % 4 === 1 ? ', a storm of faults' : ''}${(seed >>> 1) % 2 ? ', no watch cache' : ''}`);
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

// Findings of the fuzzer, minimised, replayed every run (a host without IPv6: one proxier family).
const node = (addrs) => ({ metadata: { name: 'node-a', labels: {} }, spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] }, status: { addresses: [...addrs.map((address) => ({ type: 'InternalIP', address })), { type: 'Hostname', address: 'node-a' }] } });
const dual = (name, spec) => ({
  metadata: { name, namespace: 'default', labels: { app: name } },
  spec: { type: 'ClusterIP', sessionAffinity: 'None', internalTrafficPolicy: 'Cluster', clusterIP: 'fd00:96::c', clusterIPs: ['fd00:96::c', '10.96.0.12'], ipFamilies: ['IPv6', 'IPv4'], ipFamilyPolicy: 'PreferDualStack', ports: [{ name: 'http', protocol: 'TCP', port: 443, targetPort: 8080 }], selector: { app: name }, ...spec },
  status: { loadBalancer: {} },
});
const slice = { metadata: { name: 'svc-v4', namespace: 'default', labels: { 'kubernetes.io/service-name': 'svc' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.1.10'], conditions: { ready: true }, nodeName: 'node-a' }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] };
const slice6 = { ...slice, metadata: { ...slice.metadata, name: 'svc-v6' }, addressType: 'IPv6', endpoints: [{ addresses: ['fd00:244:1::a'], conditions: { ready: true }, nodeName: 'node-a' }] };

const FINDINGS = [
  {
    what: 'the node\'s primary IP changes family: a dual-stack Service is programmed again for the new family',
    phases: [
      [(d) => d.create('nodes', node(['fd00:100::2', '192.168.100.2'])), (d) => d.create('services', dual('svc')), (d) => d.create('endpointslices', slice), (d) => d.create('endpointslices', slice6)],
      [(d) => d.apply('nodes', node(['192.168.100.2', 'fd00:100::2']))],
    ],
  },
  {
    what: 'an update leaves a ClusterIP Service external only through external IPs of the other family (externalTrafficPolicy Local)',
    phases: [
      [(d) => d.create('nodes', node(['192.168.100.2'])), (d) => d.create('services', dual('svc', { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', protocol: 'TCP', port: 443, targetPort: 8080, nodePort: 30030 }] })), (d) => d.create('endpointslices', slice)],
      [(d) => d.apply('services', dual('svc', { externalIPs: ['2001:db8:e::19'], externalTrafficPolicy: 'Local' }))],
    ],
  },
];

for (const f of FINDINGS) {
  test(`finding: ${f.what}`, async (t) => {
    t.timeout(60_000);
    const res = await runPhases(f.phases.map((p) => p.map((run, i) => ({ what: `op ${i}`, run }))), { seed: 1, hostIPv6: false });
    t.is(res, null, res ? `phase ${res.phase} differs from a fresh start:\n  ${res.diffs.slice(0, 10).join('\n  ')}` : '');
  });
}

test('finding: after a burst of dropped watch connections the watcher follows the next change after its own backoff, not an extra pause of up to 30 s', async (t) => {
  t.timeout(90_000);
  const double = new ApiServerDouble();
  await double.listen();
  const side = await startSide(double);
  try {
    double.apply('nodes', node(['192.168.100.2']));
    await settle(side, double);
    // each watch reset soon after it opens (a flapping load balancer in front of the API server)
    for (let i = 0; i < 10; i++) {
      await until(() => [...double.watchers].some((w) => w.resource === 'services' && w.live), { what: 'the services watch open', timeoutMs: 40_000 });
      double.dropWatches();
    }
    double.apply('services', dual('svc'));
    // (the informers' backoff is capped at 300 ms here: 10 s is ample; the pause was 30 s)
    await settle(side, double, { timeoutMs: 10_000 });
    t.pass();
  } finally { await side.stop(); await double.close(); }
});
