// End to end, a config route whose next hop is the router's IPv6 link-local address — what
// `ip -6 route` shows on a node whose router is known by its router advertisements
// (`default via fe80::1 dev eth0`):
//
//   pod-a (fd00:244::11) --v0-- dp --g0 (MAC WDP_MAC, no addresses)-- rtr eth0 (fe80::1 only; MAC changed by the tests)
//                                                                     rtr eth1 (fd00:51::1) -- srv (fd00:51::10, HTTP :8080)
//
// routes: ::/0 via fe80::1 on the gw port, which has no IPv6 address configured: wdp asks for the
// router from the port's own link-local address (modified EUI-64 of WDP_MAC), and answers the
// router's NS for it (the router routes the pods' network back via that address).
// neighbourReachableMs 1000: a MAC changed without a word is found by the next unicast probes.
// (test/lib/route-via-router.js)
import test from 'ava';
import { api, curlOk, waitFor, startDaemon } from './lib/topology.js';
import { routeViaSuite, routeOf as routeOfIn, WDP_MAC, WDP_LINK_LOCAL, WEB6 } from './lib/route-via-router.js';

const ROUTER_MAC = '02:bb:00:00:02:01';
const env = routeViaSuite(test, {
  mac: ROUTER_MAC,
  linkLocal: true,
  pods: [{ name: 'pod-a', attach: 'afpacket' }],
  routes: [{ prefix: '::/0', port: 'gw', via: 'fe80::1%gw' }],
  neighbourReachableMs: 1000,
});
const { serial, apply } = env.suite;
let topo, rtr;
test.before(async () => { ({ topo, rtr } = await env.ready); });

const routeOf = () => routeOfIn(topo, '::/0');
const counters = async () => (await api(topo, 'GET', '/api/v1/counters')).json;
const WEB = 'http://[fd00:96::5:1]/';
/** The router's neighbour entry for the gw port's link-local address ('' when it has none). */
const routerEntry = async () => (await topo.lab.execAsync(rtr, 'ip', ['-6', 'neigh', 'show', 'to', WDP_LINK_LOCAL, 'dev', 'eth0'])).stdout.trim();

serial('the route resolves to the router\'s MAC before any traffic: the router answered the NS wdp sent from its link-local address', async (t) => {
  const route = await waitFor('the route resolved', async () => { const r = await routeOf(); return r?.nextHopMac ? r : undefined; }, 20000);
  t.is(route.nextHopMac, ROUTER_MAC, JSON.stringify(route));
  t.true(((await counters()).global.slowpath_nd_advert_seen ?? 0) >= 1, 'learned from the router\'s NA');
  // the router took the NS's source (and link-layer address option) as a neighbour
  t.regex(await routerEntry(), new RegExp(`lladdr ${WDP_MAC}`));
  // the router's only addresses on the link are link-local
  const addrs = (await topo.lab.execAsync(rtr, 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
  t.notRegex(addrs, /scope global/);
});

serial('a Service whose IPv6 endpoint is behind the link-local next hop carries a pod\'s curl traffic', async (t) => {
  await apply(WEB6);
  const r = await curlOk(topo, topo.pods[0].ns, WEB, 30);
  t.is(r.code, 0, `curl: ${r.stderr}\n${topo.daemonLog.slice(-1500)}`);
  t.is(r.body.trim(), 'srv');
  // the link-local next hop is no host route of the node config (it is only meaningful on its link)
  const spec = (await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec;
  t.false(spec.neighbours.some((n) => n.address.startsWith('fe80:')), JSON.stringify(spec.neighbours));
});

serial('the router resolves the port\'s link-local address: wdp answers its NS', async (t) => {
  // (flushed until it stays so: on a loaded machine the router's own traffic from the test before
  // can resolve the address again between the flush and the look)
  const flushed = await waitFor('the router\'s entry flushed', async () => {
    await topo.lab.execAsync(rtr, 'ip', ['-6', 'neigh', 'flush', 'dev', 'eth0']);
    const e = await routerEntry();
    return /lladdr/.test(e) ? undefined : `[${e}]`;
  }, 10000).catch((e) => `${e.message}: ${topo.lab.exec(rtr, 'ip', ['-6', 'neigh', 'show', 'dev', 'eth0']).stdout}`);
  t.notRegex(flushed, /lladdr/, 'flushed');
  // a datagram to the address makes the router ask (NS to its solicited-node group; again while
  // unanswered, the kernel giving up after 3)
  const answered = new RegExp(`lladdr ${WDP_MAC} .*(REACHABLE|STALE|DELAY|PROBE)`);
  const entry = await waitFor('the router\'s entry for the link-local address', async () => {
    await topo.lab.execAsync(rtr, process.execPath, ['-e', `const s = require('dgram').createSocket('udp6'); s.send('x', 9, '${WDP_LINK_LOCAL}%eth0', () => setTimeout(() => process.exit(0), 500));`]);
    const e = await routerEntry();
    return answered.test(e) ? e : undefined;
  }, 15000).catch((e) => `${e.message}: ${topo.lab.exec(rtr, 'ip', ['-6', 'neigh', 'show', 'dev', 'eth0']).stdout}`);
  t.regex(entry, answered);
  const r = await curlOk(topo, topo.pods[0].ns, WEB, 30);
  t.is(r.code, 0, r.stderr);
});

serial('the router\'s MAC changes and its unsolicited NA announces it: the route follows and so does the traffic', async (t) => {
  const mac = '02:bb:00:00:02:02';
  topo.lab.sysctl(rtr, 'net.ipv6.conf.eth0.ndisc_notify', '1');
  try {
    topo.lab.mac(rtr, 'eth0', mac);
    await waitFor('the route re-programmed with the new MAC', async () => (await routeOf())?.nextHopMac === mac, 20000);
  } finally {
    topo.lab.sysctl(rtr, 'net.ipv6.conf.eth0.ndisc_notify', '0');
  }
  const r = await curlOk(topo, topo.pods[0].ns, WEB, 30);
  t.is(r.code, 0, r.stderr);
  t.is(r.body.trim(), 'srv');
});

serial('the router\'s MAC changes without a word: the unicast NS to the old one fail, a multicast NS finds the new one', async (t) => {
  const mac = '02:bb:00:00:02:03';
  topo.lab.mac(rtr, 'eth0', mac);
  await waitFor('the route re-programmed with the new MAC', async () => (await routeOf())?.nextHopMac === mac, 30000);
  const r = await curlOk(topo, topo.pods[0].ns, WEB, 30);
  t.is(r.code, 0, r.stderr);
  t.is(r.body.trim(), 'srv');
});

serial('the router replaced while the daemon was down: the restored next hop is asked for again from the link-local address, the route follows', async (t) => {
  const d = topo.daemon;
  const exited = new Promise((res) => d.once('exit', (code) => res(code)));
  d.kill('SIGTERM');
  t.is(await exited, 0, topo.daemonLog.slice(-2000));
  const mac = '02:bb:00:00:02:04';
  topo.lab.mac(rtr, 'eth0', mac);
  await startDaemon(topo);
  await waitFor('the route re-programmed with the new MAC', async () => (await routeOf())?.nextHopMac === mac, 20000);
  const r = await curlOk(topo, topo.pods[0].ns, WEB, 30);
  t.is(r.code, 0, r.stderr);
  t.is(r.body.trim(), 'srv');
});
