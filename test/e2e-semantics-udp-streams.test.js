// End to end, with real UDP clients through `wdp start` in namespaces: DNS-like traffic — each query
// from a fresh socket, answered at once — through a conntrack table far smaller than the number of
// queries. As the kernel's UDP conntrack (which kube-proxy leaves as it is), a flow answered at
// once is not a stream: it keeps the unreplied timeout and may be evicted, so every query is
// answered. Were every answered flow a 120 s one that nothing may evict, after as many queries as
// the table has entries the next ones would be dropped (drop_ct_full) for two minutes.
import test from 'ava';
import { e2eSuite, serviceYaml, sliceYaml, udpMany, api } from './lib/topology.js';

const FLOWS = 32;
const suite = e2eSuite(test, { kind: 'uds', pods: [{ name: 'pod-a', attach: 'afpacket' }], configure: (c) => { c.conntrack = { flows: FLOWS }; } });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

serial('queries answered at once never fill the table: four times as many as it holds are all answered', async (t) => {
  const [a] = topo.pods;
  await apply([
    serviceYaml({ name: 'dns', clusterIP: '10.96.9.53', ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
    sliceYaml({ name: 'dns-1', service: 'dns', ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }], endpoints: [{ addresses: [a.ip], conditions: { ready: true } }] }),
  ]);
  const n = 4 * FLOWS;
  // (2 s a query: a loaded machine answers some later than 800 ms; the 96 a full table would drop
  // still fail well inside the test's time)
  const replies = await udpMany(topo, topo.ns.client, '10.96.9.53', 53, Array.from({ length: n }, (_, i) => ({ payload: `q${i}` })), { timeoutMs: 2000 });
  const lost = replies.map((r, i) => (r.reply === `pod-a:q${i}` ? null : i)).filter((i) => i !== null);
  t.deepEqual(lost, [], `every query answered (a ${FLOWS}-flow table)`);
  const g = (await api(topo, 'GET', '/api/v1/counters')).json;
  // (a flow whose unreplied timeout ran out before the table needed its room is freed as expired:
  // on a loaded machine the queries can take longer than that timeout; and a fresh socket may get
  // a source port an earlier query had, whose flow is still in the table: a hit, no new flow)
  const created = g.global.ct_new, freed = g.global.ct_evicted + g.global.ct_expired;
  t.true(created > 2 * FLOWS, `the queries overran the table: ${created} flows created`);
  t.true(freed >= created - FLOWS, `answered flows were evicted or expired to make room: ${created} created, ${g.global.ct_evicted} evicted, ${g.global.ct_expired} expired`);
  t.falsy(g.reasons?.drop_ct_full, 'no query met a full table');
});
