// End to end, a route's next hop given by address (`via`) across a restart: the MAC restored from
// the flow checkpoint is asked for again by broadcast at once (src/daemon/worker.ts
// restoreNeighbour) — a router replaced while the daemon was down (another MAC) is followed
// without waiting for the restored neighbour to go stale (neighbourReachableMs is 10 minutes here:
// only the re-check can find it within the test); a router that answers nothing keeps the
// restored MAC in use.
//
//   client (10.0.0.2) --c0-- dp --g0-- rtr eth0 (192.168.50.1, fd00:50::1; MAC changed by the test)
//                                      rtr eth1 (10.50.0.1) -- srv eth0 (10.50.0.10, HTTP :8080)
// (test/lib/route-via-router.js)
import test from 'ava';
import { api, serviceYaml, sliceYaml, curlOk, waitFor, startDaemon } from './lib/topology.js';
import { routeViaSuite, routeOf as routeOfIn } from './lib/route-via-router.js';

const ROUTER_MAC = '02:bb:00:00:01:01';
const env = routeViaSuite(test, {
  mac: ROUTER_MAC,
  routes: [
    { prefix: '10.50.0.0/24', port: 'gw', via: '192.168.50.1' },
    { prefix: 'fd00:51::/64', port: 'gw', via: 'fd00:50::1' },
  ],
  neighbourReachableMs: 600_000,
});
const { serial, apply } = env.suite;
let topo, rtr;
test.before(async () => { ({ topo, rtr } = await env.ready); });

const routeOf = (prefix) => routeOfIn(topo, prefix);
const counters = async () => (await api(topo, 'GET', '/api/v1/counters')).json;
const WEB = 'http://10.96.5.1/';
const web = [
  serviceYaml({ name: 'web', clusterIP: '10.96.5.1', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
  sliceYaml({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: [{ addresses: ['10.50.0.10'], conditions: { ready: true }, nodeName: 'node-b' }] }),
];

async function restart(t, whileDown) {
  const d = topo.daemon;
  const exited = new Promise((res) => d.once('exit', (code) => res(code)));
  d.kill('SIGTERM');
  t.is(await exited, 0, topo.daemonLog.slice(-2000));
  whileDown();
  await startDaemon(topo);
}

serial('the router\'s MAC changed while the daemon was down: the restored next hop is asked for again at start and the routes follow the new MAC', async (t) => {
  await apply(web);
  t.is((await curlOk(topo, topo.ns.client, WEB, 30)).code, 0, topo.daemonLog.slice(-1500));
  await waitFor('both next hops learned', async () => (await routeOf('10.50.0.0/24'))?.nextHopMac === ROUTER_MAC && (await routeOf('fd00:51::/64'))?.nextHopMac === ROUTER_MAC, 20000);
  const mac = '02:bb:00:00:01:02';
  // replaced while the daemon is down (the router's kernel forgets its neighbours with its MAC:
  // it sends nothing to the node until the node asks; no traffic is sent before the check)
  await restart(t, () => topo.lab.mac(rtr, 'eth0', mac));
  await waitFor('the routes re-programmed with the new MAC', async () => (await routeOf('10.50.0.0/24'))?.nextHopMac === mac && (await routeOf('fd00:51::/64'))?.nextHopMac === mac, 20000);
  t.true(((await counters()).global.slowpath_probe_restored ?? 0) >= 1);
  const r = await curlOk(topo, topo.ns.client, WEB, 30);
  t.is(r.code, 0, r.stderr);
  t.is(r.body.trim(), 'srv');
});

serial('a router that answers nothing after the restart: the restored MAC stays in use once the re-checks went unanswered', async (t) => {
  const mac = topo.lab.mac(rtr, 'eth0');
  t.is((await routeOf('10.50.0.0/24'))?.nextHopMac, mac);
  try {
    await restart(t, () => {
      topo.lab.sysctl(rtr, 'net.ipv4.conf.eth0.arp_ignore', '8');
      topo.lab.exec(rtr, 'ip', ['neigh', 'flush', 'dev', 'eth0']);
    });
    // three broadcasts for 192.168.50.1 (fd00:50::1 is answered), then no more
    await waitFor('the re-checks sent', async () => ((await counters()).global.slowpath_probe_restored ?? 0) >= 4, 20000);
    t.is((await routeOf('10.50.0.0/24'))?.nextHopMac, mac, 'the restored MAC');
    const r = await curlOk(topo, topo.ns.client, WEB, 30);
    t.is(r.code, 0, r.stderr);
    t.is(r.body.trim(), 'srv');
  } finally {
    topo.lab.sysctl(rtr, 'net.ipv4.conf.eth0.arp_ignore', '0');
  }
});
