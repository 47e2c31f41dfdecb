// End to end, a config route whose next hop is an address (`via`), resolved by ARP on its port:
//
//   client (10.0.0.2) --c0-- dp --g0-- rtr eth0 (192.168.50.1, MAC changed by the tests)
//                                      rtr eth1 (10.50.0.1) -- srv eth0 (10.50.0.10, HTTP :8080)
//
// routes: 10.50.0.0/24 via 192.168.50.1 and fd00:51::/64 via fd00:50::1 (the router; its MAC is
//         nowhere in the config; server fd00:51::10 behind it),
//         10.60.0.0/24 via 192.168.50.99 (nobody: never resolves),
//         10.60.0.0/16 mac 02:00:00:00:99:99 (the shorter route an unresolved /24 must not fall to).
// The router routes the client's /24 back via 192.168.50.2, the gw port's gateway address.
// neighbourReachableMs 1000: a MAC changed without a word is found by the next unicast probes.
import test from 'ava';
import { api, serviceYaml, sliceYaml, curlOk, waitFor, startDaemon } from './lib/topology.js';
import { routeViaSuite, routeOf as routeOfIn } from './lib/route-via-router.js';

const ROUTER_MAC = '02:bb:00:00:00:01';
const env = routeViaSuite(test, {
  mac: ROUTER_MAC,
  routes: [
    { prefix: '10.50.0.0/24', port: 'gw', via: '192.168.50.1' },
    { prefix: 'fd00:51::/64', port: 'gw', via: 'fd00:50::1' },
    { prefix: '10.60.0.0/24', port: 'gw', via: '192.168.50.99' },
    { prefix: '10.60.0.0/16', port: 'gw', mac: '02:00:00:00:99:99' },
  ],
  neighbourReachableMs: 1000,
});
const { serial, apply } = env.suite;
let topo, rtr;
test.before(async () => { ({ topo, rtr } = await env.ready); });

const counters = async () => (await api(topo, 'GET', '/api/v1/counters')).json;
const routeOf = (prefix) => routeOfIn(topo, prefix);
const WEB = 'http://10.96.5.1/';
const web = [
  serviceYaml({ name: 'web', clusterIP: '10.96.5.1', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
  sliceYaml({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: [{ addresses: ['10.50.0.10'], conditions: { ready: true }, nodeName: 'node-b' }] }),
];
const sendUdp = (dst) => topo.lab.execAsync(topo.ns.client, process.execPath, ['-e',
  `const s = require('dgram').createSocket('udp4'); s.send('x', 53, '${dst}', () => s.close());`]);

serial('a Service whose endpoint is behind a route via the router carries curl traffic; the route has the router\'s MAC as learned', async (t) => {
  await apply(web);
  const r = await curlOk(topo, topo.ns.client, WEB, 30);
  t.is(r.code, 0, `curl: ${r.stderr}\n${topo.daemonLog.slice(-1500)}`);
  t.is(r.body.trim(), 'srv');
  const route = await routeOf('10.50.0.0/24');
  t.is(route?.nextHopMac, ROUTER_MAC, JSON.stringify(route));
  t.is((await routeOf('10.60.0.0/24'))?.nextHopMac, undefined, 'nobody answers for 192.168.50.99: unresolved');
});

serial('IPv6: a Service behind a route via the router\'s IPv6 address (resolved by NS/NA) carries curl traffic', async (t) => {
  await apply([
    serviceYaml({ name: 'web6', clusterIP: 'fd00:96::5:1', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], extra: { ipFamilies: ['IPv6'] } }),
    sliceYaml({ name: 'web6-1', service: 'web6', addressType: 'IPv6', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: ['fd00:51::10'], conditions: { ready: true }, nodeName: 'node-b' }] }),
  ]);
  const r = await curlOk(topo, topo.ns.client, 'http://[fd00:96::5:1]/', 30);
  t.is(r.code, 0, `curl: ${r.stderr}\n${topo.daemonLog.slice(-1500)}`);
  t.is(r.body.trim(), 'srv');
  t.is((await routeOf('fd00:51::/64'))?.nextHopMac, ROUTER_MAC);
});

serial('before its next hop resolves a route drops its prefix (counted) and holds frames to a backend behind it, not a crash', async (t) => {
  await apply([
    serviceYaml({ name: 'far', clusterIP: '10.96.5.2', ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
    sliceYaml({ name: 'far-1', service: 'far', ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }],
      endpoints: [{ addresses: ['10.60.0.5'], conditions: { ready: true }, nodeName: 'node-c' }] }),
  ]);
  const before = await counters();
  // plain traffic to the prefix: dropped as no route, not sent by the shorter 10.60.0.0/16
  t.is((await sendUdp('10.60.0.7')).code, 0);
  const c = await waitFor('the datagram dropped, no route', async () => {
    const now = await counters();
    return (now.reasons?.drop_no_route ?? 0) > (before.reasons?.drop_no_route ?? 0) ? now : undefined;
  }, 15000);
  t.truthy(c);
  // to the Service: held for the backend's next hop (then expired: nobody answers)
  t.is((await sendUdp('10.96.5.2')).code, 0);
  await waitFor('the datagram held', async () => ((await counters()).global.slowpath_hold_queued ?? 0) > (before.global.slowpath_hold_queued ?? 0), 15000);
  t.is((await api(topo, 'GET', '/healthz')).status, 200, 'the daemon is up');
  t.is(topo.daemon.exitCode, null);
});

serial('the router\'s MAC changes and its ARP announces it: the route follows and so does the traffic', async (t) => {
  const mac = '02:bb:00:00:00:02';
  topo.lab.mac(rtr, 'eth0', mac);
  // the router's kernel forgot its neighbours with its old MAC: its next datagram to the link asks
  // for 192.168.50.2 by ARP, from the new MAC
  await topo.lab.execAsync(rtr, process.execPath, ['-e', "const s = require('dgram').createSocket('udp4'); s.send('x', 9, '192.168.50.2', () => s.close());"]);
  await waitFor('the route re-programmed with the new MAC', async () => (await routeOf('10.50.0.0/24'))?.nextHopMac === mac, 20000);
  const r = await curlOk(topo, topo.ns.client, WEB, 30);
  t.is(r.code, 0, r.stderr);
  t.is(r.body.trim(), 'srv');
});

serial('the router\'s MAC changes without a word: the unicast probes to the old one fail, a broadcast finds the new one', async (t) => {
  const mac = '02:bb:00:00:00:03';
  topo.lab.mac(rtr, 'eth0', mac);
  await waitFor('the route re-programmed with the new MAC', async () => (await routeOf('10.50.0.0/24'))?.nextHopMac === mac, 30000);
  const r = await curlOk(topo, topo.ns.client, WEB, 30);
  t.is(r.code, 0, r.stderr);
  t.is(r.body.trim(), 'srv');
});

serial('a restart keeps the learned next hop: the route is resolved while the router answers no ARP', async (t) => {
  const mac = topo.lab.mac(rtr, 'eth0');
  t.is((await routeOf('10.50.0.0/24'))?.nextHopMac, mac);
  const d = topo.daemon;
  const exited = new Promise((res) => d.once('exit', (code) => res(code)));
  d.kill('SIGTERM');
  t.is(await exited, 0, topo.daemonLog.slice(-2000));
  // the router stops answering ARP (and announcing): only the checkpoint can resolve its MAC now
  topo.lab.sysctl(rtr, 'net.ipv4.conf.eth0.arp_ignore', '8');
  topo.lab.exec(rtr, 'ip', ['neigh', 'flush', 'dev', 'eth0']);
  try {
    await startDaemon(topo);
    t.is((await routeOf('10.50.0.0/24'))?.nextHopMac, mac, 'programmed from the restored neighbour');
    const r = await curlOk(topo, topo.ns.client, WEB, 30);
    t.is(r.code, 0, r.stderr);
    t.is(r.body.trim(), 'srv');
  } finally {
    topo.lab.sysctl(rtr, 'net.ipv4.conf.eth0.arp_ignore', '0');
  }
});
