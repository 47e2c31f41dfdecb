// The router of the route-via end-to-end tests, in a suite's lab (removed with it):
//
//   dp:g0 -- rtr eth0 (192.168.50.1, fd00:50::1; MAC `mac`)
//            rtr eth1 (10.50.0.1, fd00:51::1) -- srv eth0 (10.50.0.10, fd00:51::10)
//
// The router routes the client's networks (10.0.0.0/24, fd00::/64) back via the gw port's
// gateway addresses (192.168.50.2, fd00:50::2).
//
// The link-local router (`linkLocal: true`, buildLinkLocalRouter), IPv6 only, as a router that
// announces itself by router advertisements is known on the link:
//
//   dp:g0 (MAC WDP_MAC) -- rtr eth0 (fe80::1 and its EUI-64 link-local, nothing global; MAC `mac`)
//                          rtr eth1 (fd00:51::1) -- srv eth0 (fd00:51::10)
//
// The router routes the client's, the pods' and the node address's networks (fd00::/64,
// fd00:244::/64, fd00:100::/64) back via the gw port's link-local address (EUI-64 of WDP_MAC),
// which it resolves by NS like any neighbour.
import { api, e2eSuite, waitFor, serviceYaml, sliceYaml, POD_SERVER } from './topology.js';

/** The router and server namespaces; made before the daemon starts (e2eSuite's configure). */
export function buildRouter(topo, mac) {
  const { lab } = topo;
  const rtr = lab.namespace('rtr');
  const srv = lab.namespace('srv');
  lab.veth(rtr, 'eth0', topo.ns.dp, 'g0', { macA: mac });
  lab.veth(rtr, 'eth1', srv, 'eth0');
  lab.sysctl(rtr, 'net.ipv4.ip_forward', '1');
  lab.addr(rtr, 'eth0', '192.168.50.1/24');
  lab.addr(rtr, 'eth1', '10.50.0.1/24');
  lab.route(rtr, '10.0.0.0/24', '192.168.50.2');
  lab.addr(srv, 'eth0', '10.50.0.10/24');
  lab.route(srv, 'default', '10.50.0.1');
  // IPv6: the same through fd00:50::1 (resolved by NS/NA)
  lab.sysctl(rtr, 'net.ipv6.conf.all.forwarding', '1');
  lab.addr(rtr, 'eth0', 'fd00:50::1/64');
  lab.addr(rtr, 'eth1', 'fd00:51::1/64');
  lab.route(rtr, 'fd00::/64', 'fd00:50::2');
  lab.addr(srv, 'eth0', 'fd00:51::10/64');
  lab.route(srv, 'default', 'fd00:51::1');
  return { rtr, srv };
}

/** The gw port's MAC and link-local address (modified EUI-64) on the link-local router's link. */
export const WDP_MAC = '02:dd:00:00:00:01';
export const WDP_LINK_LOCAL = 'fe80::dd:ff:fe00:1';

/** An IPv6 Service (ClusterIP fd00:96::5:1, port 80) whose endpoint is the server behind the router. */
export const WEB6 = [
  serviceYaml({ name: 'web6', clusterIP: 'fd00:96::5:1', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], extra: { ipFamilies: ['IPv6'] } }),
  sliceYaml({ name: 'web6-1', service: 'web6', addressType: 'IPv6', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: [{ addresses: ['fd00:51::10'], conditions: { ready: true }, nodeName: 'node-b' }] }),
];

/** The link-local router and the server behind it (see the top of the file). */
export function buildLinkLocalRouter(topo, mac) {
  const { lab } = topo;
  const rtr = lab.namespace('rtr');
  const srv = lab.namespace('srv');
  lab.veth(rtr, 'eth0', topo.ns.dp, 'g0', { macA: mac, macB: WDP_MAC });
  lab.veth(rtr, 'eth1', srv, 'eth0');
  lab.sysctl(rtr, 'net.ipv6.conf.all.forwarding', '1');
  lab.addr(rtr, 'eth0', 'fe80::1/64');
  lab.addr(rtr, 'eth1', 'fd00:51::1/64');
  lab.route(rtr, 'fd00::/64', WDP_LINK_LOCAL, 'eth0');
  lab.route(rtr, 'fd00:244::/64', WDP_LINK_LOCAL, 'eth0');
  lab.route(rtr, 'fd00:100::/64', WDP_LINK_LOCAL, 'eth0');
  lab.addr(srv, 'eth0', 'fd00:51::10/64');
  lab.route(srv, 'default', 'fd00:51::1');
  return { rtr, srv };
}

/** The server behind the router (pod-server: HTTP :8080 answering `srv`, UDP :5353), stopped
 * with the topology's pods; resolves once it listens. */
export async function startServer(topo, srv) {
  const server = topo.lab.spawn(srv, process.execPath, [POD_SERVER, 'srv', '--http', '8080', '--udp', '5353']);
  topo.podProcs.push(server);
  let out = '';
  server.stdout.on('data', (d) => { out += d; });
  await waitFor('the server to listen', async () => out.includes('ready'), 10000);
}

/** The route for `prefix` in the daemon's node config (nextHopMac: its next hop's MAC, if resolved). */
export async function routeOf(topo, prefix) {
  return (await api(topo, 'GET', '/api/v1/nodeconfig')).json?.spec?.routes?.find((r) => r.prefix === prefix);
}

/** An e2eSuite with the router (MAC `mac`) on the daemon's uplink `gw` (gateways 192.168.50.2,
 * fd00:50::2; with `linkLocal`, the link-local router and no gateways), the config's `routes`
 * and neighbourReachableMs, `pods` (default none), with `host` a host port bridged with gw, and
 * the server started: `ready` resolves with
 * { topo, rtr, srv } once it is (topo undefined where the suite cannot run). */
export function routeViaSuite(test, { mac, routes, neighbourReachableMs, linkLocal = false, pods = [], host }) {
  const env = {};
  env.suite = e2eSuite(test, {
    pods,
    configure(config) {
      Object.assign(env, (linkLocal ? buildLinkLocalRouter : buildRouter)(env.suite.topo, mac));
      config.ports.push({ name: 'gw', type: 'afpacket', ifname: 'g0', role: 'uplink', gateways: linkLocal ? [] : ['192.168.50.2', 'fd00:50::2'] });
      // the node recipe: a host port bridged with gw (`host`: its hostAddresses, hostRoutes)
      if (host) config.ports.push({ name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', uplink: 'gw', gateways: ['10.244.0.1'], ...host });
      config.routes = routes;
      config.neighbourReachableMs = neighbourReachableMs;
    },
  });
  env.ready = env.suite.ready.then(async () => {
    if (env.suite.topo) await startServer(env.suite.topo, env.srv);
    return { topo: env.suite.topo, rtr: env.rtr, srv: env.srv };
  });
  env.ready.catch(() => undefined);
  return env;
}
