// Found by the soak (bench/soak.mjs): flows that timed out stayed counted — in wdp_conntrack_entries
// and `wdp get counters`' flows — for as long as no frames arrived, because only a batch swept the
// table (CFG_EXPIRE_BUDGET entries per batch). A worker with nothing to forward now sweeps before
// each idle wait (ct_expire_step). Here: 40 UDP flows through a ClusterIP, then no traffic at all;
// once their 1 s timeout has passed the gauge must come back to 0 (without the idle sweep it stays
// at 40: a 65536-flow table needs ~1000 batches to sweep once, and nothing sends them).
import test from 'ava';
import {
  rootGate, buildTopology, startDaemon, startPods, destroyTopology, api, sleep, serviceYaml, sliceYaml, readyEndpoints, udpMany,
} from './lib/topology.js';
import { writeFileSync } from 'node:fs';
import { frame } from '../dist/src/packet/build.js';
import { irFrom, mkCore } from './lib/core-fixture.js';

const { ok: root, serial } = rootGate(test);

test('ct_expire_step: the sweep without a batch frees expired flows from its cursor and sets the gauge; no batch is counted', (t) => {
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 53, proto: 'UDP', backends: [1] }], backends: [{ id: 1, addr: '10.1.0.1', port: 53 }] });
  const core = mkCore(ir, { timeouts: { udpMs: 1000 }, flows: 64 });
  const T0 = 1000;
  core.run(Array.from({ length: 10 }, (_, i) => frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'UDP', sport: 2000 + i, dport: 53 })), T0, 1);
  const batches = core.counters().global.batches;
  t.is(core.counters().global.ct_active, 10);
  t.is(core.ctExpireStep(64, T0 + 500), 0, 'none expired yet');
  // budgeted: 4 entries at a time, from where the last step stopped
  let freed = 0;
  for (let k = 0; k < 16; k++) freed += core.ctExpireStep(4, T0 + 1500);
  t.is(freed, 10);
  const g = core.counters().global;
  t.is(g.ct_active, 0);
  t.is(g.ct_expired, 10);
  t.is(g.batches, batches, 'a step is not a batch');
});
const VIP = '10.96.70.10';
let topo;

test.before(async () => {
  if (!root) return;
  topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'tap' }], kind: 'sc' });
  try {
    topo.config.conntrack = { flows: 65536, udpSeconds: 1, checkpointSeconds: 0 };
    writeFileSync(topo.configFile, JSON.stringify(topo.config));
    await startDaemon(topo);
    await startPods(topo);
  } catch (e) { await destroyTopology(topo); topo = undefined; throw e; }
});
test.after.always(async () => { await destroyTopology(topo); });

const gauge = async () => Number(/^wdp_conntrack_entries (\d+)/m.exec((await api(topo, 'GET', '/metrics')).text)?.[1]);

serial('flows that timed out leave the flow gauge without any further traffic', async (t) => {
  const r = await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'dns', clusterIP: VIP, ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
    sliceYaml({ name: 'dns-1', service: 'dns', ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }], endpoints: readyEndpoints(topo.pods) }),
  ]);
  t.is(r.status, 200, r.text);
  // 40 flows (a fresh socket each); the first may race the pod's neighbour resolution
  const answers = await udpMany(topo, topo.ns.client, VIP, 53, Array.from({ length: 40 }, (_, i) => ({ payload: `q${i}` })));
  t.true(answers.filter((a) => a.reply).length >= 39, JSON.stringify(answers.slice(0, 3)));
  const during = await gauge();
  t.true(during >= 39, `flows counted while live: ${during}`);
  // no traffic from here on: every flow times out after 1 s; poll (bounded) for the gauge to follow
  let after = during;
  for (let i = 0; i < 40 && after > 0; i++) { await sleep(250); after = await gauge(); }
  t.is(after, 0, `flows still counted ~10 s after they timed out: ${after}`);
  const c = (await api(topo, 'GET', '/api/v1/counters')).json;
  t.is(c.global.ct_active, 0);
  t.true(c.global.ct_expired >= during, `the sweep counted them expired: ${c.global.ct_expired}`);
  t.deepEqual((await api(topo, 'GET', '/api/v1/conntrack')).json.items, []);
});
