// End to end, the time exceeded a routed packet gets at the node (docs/core.md "Time exceeded")
// through `wdp start`: a real traceroute from the client namespace to a server behind a router
//
//   client (10.0.0.2, fd00::2) --c0-- dp (wdp) --g0-- rtr (192.168.50.1, fd00:50::1) -- srv (10.50.0.10, fd00:51::10)
//
// (routes: the server's networks via the router, the client's address back through its port) shows
// the node at hop 1 with the client port's gateway address (10.0.0.1 / fd00::1, the address
// its ARP / ND probes use), the router at hop 2 and the server at hop 3 — the path a Linux node
// under kube-proxy shows. Without traceroute, `ping -t 1` must print the node's "Time to live
// exceeded"; without either tool the tests are skipped.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { api } from './lib/topology.js';
import { hops } from './lib/traceroute.js';
import { routeViaSuite } from './lib/route-via-router.js';

const has = (tool) => { try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); return true; } catch { return false; } };
const TRACEROUTE = has('traceroute');
const PING = has('ping');

const env = routeViaSuite(test, {
  mac: '02:bb:00:00:00:07',
  routes: [
    { prefix: '10.50.0.0/24', port: 'gw', via: '192.168.50.1' },
    { prefix: 'fd00:51::/64', port: 'gw', via: 'fd00:50::1' },
    // the way back to the client (an uplink learns no neighbours): resolved by ARP / ND on its port
    { prefix: '10.0.0.2/32', port: 'client', via: '10.0.0.2' },
    { prefix: 'fd00::2/128', port: 'client', via: 'fd00::2' },
  ],
  neighbourReachableMs: 5000,
});
const { serial } = env.suite;
let topo;
test.before(async () => { ({ topo } = await env.ready); });
const reasons = async () => (await api(topo, 'GET', '/api/v1/counters')).json.reasons ?? {};
const run = (cmd, args) => topo.lab.execAsync(topo.ns.client, cmd, args, { timeoutMs: 30000 });

for (const { fam, dst, node, router } of [
  { fam: 4, dst: '10.50.0.10', node: '10.0.0.1', router: '192.168.50.1' },
  { fam: 6, dst: 'fd00:51::10', node: 'fd00::1', router: 'fd00:50::1' },
]) {
  const title = `IPv${fam}: the node answers its hop with time exceeded from the client port's address (${node})`;
  if (TRACEROUTE) {
    serial(`${title}: traceroute shows node, router, server`, async (t) => {
      const before = await reasons();
      // the first run may spend its probes on resolving the router's MAC: try a few times
      let got, r;
      for (let i = 0; i < 5; i++) {
        r = await run('traceroute', [`-${fam}`, '-n', '-q', '1', '-w', '2', '-m', '4', dst]);
        got = hops(r.stdout);
        if (got.get(1) === node && got.get(2) === router && got.get(3) === dst) break;
      }
      t.is(got.get(1), node, `hop 1\n${r.stdout}\n${r.stderr}\n${topo.daemonLog.slice(-1500)}`);
      t.is(got.get(2), router, `hop 2\n${r.stdout}`);
      t.is(got.get(3), dst, `hop 3\n${r.stdout}`);
      const after = await reasons();
      t.true((after.reject_ttl_exceeded ?? 0) > (before.reject_ttl_exceeded ?? 0), 'counted reject_ttl_exceeded');
    });
  } else if (PING) {
    serial(`${title}: ping -t 1 prints Time to live exceeded from it`, async (t) => {
      let r;
      for (let i = 0; i < 5; i++) {
        r = await run('ping', [`-${fam}`, '-n', '-c', '1', '-W', '2', '-t', '1', dst]);
        if (r.stdout.includes(`From ${node}`)) break;
      }
      t.regex(r.stdout, new RegExp(`From ${node.replace(/[.:]/g, (c) => `\\${c}`)}.*(Time to live exceeded|Time exceeded: Hop limit)`), `${r.stdout}\n${r.stderr}`);
      t.true(((await reasons()).reject_ttl_exceeded ?? 0) > 0);
    });
  } else {
    test.skip(`${title} (neither traceroute nor ping is installed)`, () => {});
  }
}
