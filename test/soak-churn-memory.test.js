// A daemon's churn for months (bench/soak.mjs, BENCHMARKS.md "Soak"): Services created under new
// names, given flows and deleted, round after round. What a core holds for them is bounded by the
// live set, not by how many came and went: ids are reused, a deleted Service's table ranges and
// per-id counter slots are given back, so after a warm-up the Wasm memory, the end of its
// allocations (table sets and counter regions are bump-allocated and never freed: a regrow would
// show here) and the Ir's maps no longer move. Capacities are set small so a leak of ids or of
// Maglev ranges would regrow within the rounds below.
import test from 'ava';
import { LocalDataplane } from '../dist/src/core/dataplane.js';
import { ControlPlaneCore } from '../dist/src/api/controlplane.js';
import { nodeConfigObject, serviceObject, sliceObject } from '../dist/src/bench/control.js';
import { frame } from '../dist/src/packet/build.js';

const LIVE = 6, PER_ROUND = 2, WARMUP = 10, ROUNDS = 60;
const CLIENT = '192.168.200.7';

const service = (n) => ({
  namespace: 'churn', name: `svc-${n}`, clusterIP: `10.96.${(n >> 8) & 255}.${n & 255}`, portName: 'http', proto: 'TCP', port: 80, targetPort: 8080,
  // 1–4 endpoints, so Maglev ranges of several sizes come and go
  endpoints: Array.from({ length: 1 + (n % 4) }, (_, i) => ({ addr: `10.128.${n & 255}.${10 + i}`, port: 8080 })),
});
const objs = (s) => [serviceObject(s), sliceObject(s)];

function footprint(core) {
  return {
    memoryBytes: core.memory.buffer.byteLength,
    allocatedTo: core.map.end,
    svcMax: core.map.svcMax, beMax: core.map.beMax,
    frontends: core.ir.frontends.size, backends: core.ir.backends.size,
  };
}

test('Services created, used and deleted under new names round after round: the core\'s memory, allocations and Ir stay at the live set\'s size', async (t) => {
  const dp = new LocalDataplane({ flows: 256, capacities: { frontends: 16, backends: 32, maglevWords: 1 << 12, cidrs: 16, routes: 16 } });
  const cp = new ControlPlaneCore(dp, null);
  await cp.apply([nodeConfigObject()]);
  const live = [];
  let next = 1, now = 1000;
  const round = async () => {
    const made = Array.from({ length: PER_ROUND }, () => service(next++));
    await cp.apply(made.flatMap(objs));
    live.push(...made);
    // a connection to each new Service: a flow (and its per-Service counters) for it
    for (const s of made) {
      const [r] = dp.core.run([frame({ src: CLIENT, dst: s.clusterIP, proto: 'TCP', sport: 40000 + (s.name.length + next) % 1000, dport: 80, flags: 'S', seq: 1 })], now, 0);
      t.is(r.reason, 'fwd_nat', `${s.name} forwards`);
    }
    while (live.length > LIVE) await cp.remove(objs(live.shift()));
    now += 100;
  };
  for (let i = 0; i < WARMUP; i++) await round();
  const warm = footprint(dp.core);
  t.is(warm.frontends, LIVE);
  for (let i = 0; i < ROUNDS; i++) await round();
  const after = footprint(dp.core);
  t.is(next - 1, (WARMUP + ROUNDS) * PER_ROUND);
  t.deepEqual(after, warm, `after ${ROUNDS * PER_ROUND} more Services came and went`);
});
