// End to end, the host port's TAP MAC changed under the daemon (by hand, or a udev MAC policy
// applied after the daemon set it): the node addresses' frames are sent to the TAP's MAC, so with
// another MAC the host's kernel would drop them as not its own. The link check sets the MAC back
// to the one the TAP was created with (its uplink's: the node keeps one MAC on the wire), and the
// node address is reachable from outside again. The daemon runs in the dataplane namespace (the
// node); the host port's TAP (wdp-host) is there too.
import test from 'ava';
import { e2eSuite, curlOk, sleep, logged, NODE_V4, POD_SERVER } from './lib/topology.js';

const HOST_HTTP = 8081;
const OTHER_MAC = '02:00:5e:10:42:42';

const suite = e2eSuite(test, {
  pods: [{ name: 'pod-a', attach: 'afpacket' }],
  configure: (config) => config.ports.push({
    name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', uplink: 'remote', gateways: ['10.244.0.1'],
    hostAddresses: [`${NODE_V4}/24`], hostRoutes: [{ prefix: '10.244.0.0/16', via: '10.244.0.1' }],
  }),
});

test.before(async () => {
  await suite.ready;
  const topo = suite.topo;
  if (!topo) return;
  const web = topo.lab.spawn(topo.ns.dp, process.execPath, [POD_SERVER, 'host', '--http', String(HOST_HTTP)]);
  topo.podProcs.push(web);
  await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('host web server not ready')), 10000);
    web.stdout.on('data', (d) => { out += d; if (out.includes('ready')) { clearTimeout(timer); resolve(); } });
  });
});

const macOf = (topo, ifname) => /link\/ether ([0-9a-f:]{17})/.exec(topo.lab.exec(topo.ns.dp, 'ip', ['-o', 'link', 'show', 'dev', ifname]).stdout)?.[1];

suite.serial('a host port TAP whose MAC is changed under the daemon gets its MAC back; the node address is reached from outside again', async (t) => {
  const topo = suite.topo;
  const before = await curlOk(topo, topo.ns.remote, `http://${NODE_V4}:${HOST_HTTP}/`);
  t.is(before.code, 0, `${before.stderr}\n${topo.daemonLog.slice(-2000)}`);
  const created = macOf(topo, 'wdp-host');
  t.truthy(created);
  const set = topo.lab.exec(topo.ns.dp, 'ip', ['link', 'set', 'dev', 'wdp-host', 'address', OTHER_MAC]);
  t.is(set.code, 0, set.stderr);
  t.is(macOf(topo, 'wdp-host'), OTHER_MAC);
  // the link check runs every 2 s: a few tries of 3 s for it to notice (bounded)
  const after = await curlOk(topo, topo.ns.remote, `http://${NODE_V4}:${HOST_HTTP}/`, 6);
  t.is(after.code, 0, `the node address from outside after the change: ${after.stderr}\n${topo.daemonLog.slice(-2000)}`);
  t.is(after.body.trim(), 'host');
  t.is(macOf(topo, 'wdp-host'), created, 'set back to the MAC it was created with');
  await logged(topo, /the host port's MAC was changed under the daemon: set back/);
});
