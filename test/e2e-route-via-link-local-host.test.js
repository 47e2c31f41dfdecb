// End to end, the node recipe (docs/running.md "On a Kubernetes node: the host port") on an IPv6
// node whose router is known only by its link-local address: the uplink gw takes the NIC (g0, no
// gateways), the host port gives the node its address back on a TAP with the NIC's MAC, and both
// wdp and the host route IPv6 via fe80::1 —
//   wdp:      routes: [{ prefix: ::/0, port: gw, via: fe80::1 }]
//   the host: hostRoutes: [{ prefix: default, via: fe80::1 }]  (ip -6 route: default via fe80::1 dev wdp-host onlink)
//
//   pod-a (fd00:244::11) --v0-- dp (the node: wdp, and the host's stack on wdp-host, fd00:100::2)
//     dp --g0 (MAC WDP_MAC)-- rtr eth0 (fe80::1 only) ; rtr eth1 (fd00:51::1) -- srv (fd00:51::10, HTTP :8080)
//
// The node has one link-local address on the wire, the EUI-64 one of the NIC's MAC: wdp asks for
// the router from it, the host's kernel has it on the TAP (same MAC), the router routes the pods'
// and the node's networks back via it. (test/lib/route-via-router.js)
import test from 'ava';
import { api, curlOk, NODE_V6 } from './lib/topology.js';
import { routeViaSuite, routeOf as routeOfIn, WDP_LINK_LOCAL, WEB6 } from './lib/route-via-router.js';

const ROUTER_MAC = '02:bb:00:00:03:01';
const env = routeViaSuite(test, {
  mac: ROUTER_MAC,
  linkLocal: true,
  pods: [{ name: 'pod-a', attach: 'afpacket' }],
  routes: [{ prefix: '::/0', port: 'gw', via: 'fe80::1' }],
  neighbourReachableMs: 30000,
  host: { hostAddresses: [`${NODE_V6}/64`], hostRoutes: [{ prefix: 'default', via: 'fe80::1' }] },
});
const { serial, apply } = env.suite;
let topo;
test.before(async () => { ({ topo } = await env.ready); });

const counters = async () => (await api(topo, 'GET', '/api/v1/counters')).json;

serial('the host\'s TAP has the link-local address wdp asks from (the NIC\'s MAC, EUI-64)', async (t) => {
  const r = await topo.lab.execAsync(topo.ns.dp, 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'wdp-host', 'scope', 'link']);
  t.regex(r.stdout, new RegExp(`inet6 ${WDP_LINK_LOCAL}/64`), r.stdout);
});

serial('the host reaches a server behind the router by its own default route via fe80::1 (bridged through wdp both ways)', async (t) => {
  const r = await curlOk(topo, topo.ns.dp, 'http://[fd00:51::10]:8080/', 30);
  t.is(r.code, 0, `curl: ${r.stderr}\n${topo.daemonLog.slice(-1500)}`);
  t.is(r.body.trim(), 'srv');
  const c = await counters();
  t.true((c.global.slowpath_bridged_from_host ?? 0) >= 1 && (c.global.slowpath_bridged_to_host ?? 0) >= 1, JSON.stringify(c.global));
});

serial('a pod reaches a Service whose IPv6 endpoint is behind the router; wdp\'s route via fe80::1 has the router\'s MAC', async (t) => {
  await apply(WEB6);
  const r = await curlOk(topo, topo.pods[0].ns, 'http://[fd00:96::5:1]/', 30);
  t.is(r.code, 0, `curl: ${r.stderr}\n${topo.daemonLog.slice(-1500)}`);
  t.is(r.body.trim(), 'srv');
  t.is((await routeOfIn(topo, '::/0'))?.nextHopMac, ROUTER_MAC);
});
