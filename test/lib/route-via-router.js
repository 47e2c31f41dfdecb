// The router of the route-via end-to-end tests, in a suite's lab (removed with it):
//
//   dp:g0 -- rtr eth0 (192.168.50.1, fd00:50::1; MAC `mac`)
//            rtr eth1 (10.50.0.1, fd00:51::1) -- srv eth0 (10.50.0.10, fd00:51::10)
//
// The router routes the client's networks (10.0.0.0/24, fd00::/64) back via the gw port's
// gateway addresses (192.168.50.2, fd00:50::2).
import { api, e2eSuite, waitFor, POD_SERVER } from './topology.js';

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
 * fd00:50::2), the config's `routes` and neighbourReachableMs, and the server started: `ready`
 * resolves with { topo, rtr, srv } once it is (topo undefined where the suite cannot run). */
export function routeViaSuite(test, { mac, routes, neighbourReachableMs }) {
  const env = {};
  env.suite = e2eSuite(test, {
    pods: [],
    configure(config) {
      Object.assign(env, buildRouter(env.suite.topo, mac));
      config.ports.push({ name: 'gw', type: 'afpacket', ifname: 'g0', role: 'uplink', gateways: ['192.168.50.2', 'fd00:50::2'] });
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
