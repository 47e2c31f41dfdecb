// End to end, the rate limit of reject answers (docs/core.md "Reject rate limit") through `wdp
// start` with a real client in a network namespace: a burst of connected UDP sockets to a
// ClusterIP without endpoints. Under kube-proxy the kernel answers such a burst with about 6 port
// unreachables (its per-destination limit: a burst of 6, then one a second); wdp the same: 6
// sockets see ECONNREFUSED, the others' datagrams are counted drop_reject_rate_limited, and a
// second later the client is answered again. Every datagram is counted under one of the two.
import test from 'ava';
import { e2eSuite, api, serviceYaml, sleep, waitFor } from './lib/topology.js';

const suite = e2eSuite(test, { kind: 'rl', pods: [{ name: 'pod-a', attach: 'tap' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

const VIP = '10.96.8.10';
const reasons = async () => (await api(topo, 'GET', '/api/v1/counters')).json.reasons;
const sum = (r) => (r.reject_no_endpoints ?? 0) + (r.drop_reject_rate_limited ?? 0);

/** n connected UDP sockets in the client namespace, one datagram each, sent back to back: how many
 * got ECONNREFUSED (an ICMP port unreachable came back) within 2 s, and how long the sends took. */
async function burst(n) {
  const r = await topo.lab.execAsync(topo.ns.client, process.execPath, ['-e', `
    const dgram = require('dgram');
    let refused = 0, t0 = Date.now(), span = 0, sent = 0;
    for (let i = 0; i < ${n}; i++) {
      const s = dgram.createSocket('udp4');
      s.on('message', () => {});
      s.on('error', (e) => { if (e.code === 'ECONNREFUSED') refused++; });
      s.connect(80, ${JSON.stringify(VIP)}, () => s.send('x', () => { if (++sent === ${n}) span = Date.now() - t0; }));
    }
    setTimeout(() => { console.log(JSON.stringify({ refused, span })); process.exit(0); }, 2000);`], { timeoutMs: 10000 });
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

serial('a burst of 20 connected UDP datagrams to a ClusterIP without endpoints: ECONNREFUSED 6 times, the rest counted drop_reject_rate_limited; again after a second', async (t) => {
  await apply([serviceYaml({ name: 'refused', clusterIP: VIP, ports: [{ name: 'udp', port: 80, targetPort: 5353, protocol: 'UDP' }] })]);
  const before = await reasons();
  const first = await burst(20);
  t.log(first);
  // the client's bucket is full (nothing was refused to it before): 6 answers, plus one per second
  // the burst took to arrive
  t.true(first.refused >= 6, `the burst of 6 (${first.refused})`);
  t.true(first.refused <= 6 + Math.floor(first.span / 1000) + (first.span >= 500 ? 1 : 0), `at most 6 at once (${first.refused} in ${first.span} ms)`);
  const mid = await waitFor('all 20 counted', async () => { const r = await reasons(); return sum(r) - sum(before) >= 20 && r; }, 10000);
  t.is(sum(mid) - sum(before), 20, 'every datagram counted under one of the two reasons');
  t.is((mid.reject_no_endpoints ?? 0) - (before.reject_no_endpoints ?? 0), first.refused, 'each answer reached its socket');
  t.is((mid.drop_reject_rate_limited ?? 0) - (before.drop_reject_rate_limited ?? 0), 20 - first.refused);
  // more than a second later the client has at least one answer again
  await sleep(1200);
  const again = await burst(3);
  t.log(again);
  t.true(again.refused >= 1, `answered again after a second (${again.refused})`);
  const end = await waitFor('all 23 counted', async () => { const r = await reasons(); return sum(r) - sum(before) >= 23 && r; }, 10000);
  t.is((end.reject_no_endpoints ?? 0) - (mid.reject_no_endpoints ?? 0), again.refused);
});
