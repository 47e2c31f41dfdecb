// End to end, a host port whose TAP cannot take its uplink's MAC (logged: `the host port's MAC
// cannot be set to its uplink's`): the node's frames leave with the TAP's own MAC, so the peers
// would answer to that MAC, which the uplink's other-host filter drops, and the node's own traffic
// through the host port would fail. The bridge rewrites the TAP's MAC to the uplink's in what the
// host sends (Ethernet source, ARP sender, ND options) and back in what comes for it
// (src/daemon/l2.ts): the peers know the node by the uplink's MAC only. The daemon runs an `ip`
// stub on PATH that refuses to set the TAP's MAC (as a udev policy or a driver that keeps its own
// MAC would); the test changes the TAP's MAC by hand, as in e2e-host-mac. The daemon's namespace
// is the node (dp); the remote peer is on the uplink.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { refusingIpStub } from './lib/ip-stub.js';
import { buildTopology, startDaemon, startPods, destroyTopology, api, curl, curlOk, logged, waitFor, rootGate, NODE_V4, POD_SERVER } from './lib/topology.js';

const gate = rootGate(test, { tools: ['curl'] });
const OTHER_MAC = '02:00:5e:10:42:43';
const HOST_HTTP = 8081, REMOTE_HTTP = 8082;

function serve(topo, ns, name, port) {
  const p = topo.lab.spawn(ns, process.execPath, [POD_SERVER, name, '--http', String(port)]);
  topo.podProcs.push(p);
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  return waitFor(`${name} listening`, async () => out.includes('ready'), 10000);
}

gate.serial('a host port TAP that cannot take its uplink\'s MAC: the node keeps the uplink\'s MAC on the wire, and its own traffic keeps working', async (t) => {
  const topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'afpacket' }] });
  const stub = refusingIpStub('link set dev wdp-host address');
  try {
    topo.config.ports.push({
      name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', uplink: 'remote', gateways: ['10.244.0.1'],
      hostAddresses: [`${NODE_V4}/24`], hostRoutes: [{ prefix: '10.244.0.0/16', via: '10.244.0.1' }],
    });
    writeFileSync(topo.configFile, JSON.stringify(topo.config, null, 2));
    const path = process.env.PATH;
    process.env.PATH = `${stub.dir}:${path}`;   // the daemon (and only it) runs the stub
    try { await startDaemon(topo); } finally { process.env.PATH = path; }
    await startPods(topo);
    await serve(topo, topo.ns.dp, 'host', HOST_HTTP);
    await serve(topo, topo.ns.remote, 'remote', REMOTE_HTTP);
    const remoteUrl = `http://192.168.100.10:${REMOTE_HTTP}/`;
    t.is((await curlOk(topo, topo.ns.dp, remoteUrl)).code, 0, `the node reaches the remote peer: ${topo.daemonLog.slice(-2000)}`);

    // the TAP gets another MAC, and the daemon cannot set it back
    t.is(topo.lab.exec(topo.ns.dp, 'ip', ['link', 'set', 'dev', 'wdp-host', 'address', OTHER_MAC]).code, 0);
    await logged(topo, /the host port's MAC cannot be set to its uplink's/);
    // the node's kernel and the remote peer forget each other: they ask again by ARP, the node
    // from the TAP's MAC, and the peer answers to it
    topo.lab.exec(topo.ns.dp, 'ip', ['neigh', 'flush', 'dev', 'wdp-host']);
    topo.lab.exec(topo.ns.remote, 'ip', ['neigh', 'flush', 'dev', 'eth0']);
    const out = await curl(topo, topo.ns.dp, remoteUrl, { timeout: 5 });
    t.is(out.code, 0, `the node reaches the remote peer from the TAP's MAC: ${out.stderr}\n${topo.daemonLog.slice(-2000)}`);
    t.is(out.body?.trim(), 'remote');
    const back = await curl(topo, topo.ns.remote, `http://${NODE_V4}:${HOST_HTTP}/`, { timeout: 5 });
    t.is(back.code, 0, `the remote peer reaches the node address: ${back.stderr}`);
    t.is(back.body?.trim(), 'host');
    const c = (await api(topo, 'GET', '/api/v1/counters')).json;
    t.true((c.global.slowpath_host_mac_rewritten ?? 0) > 0, 'the host\'s bridged frames left with the uplink\'s MAC');
    // the peer knows the node by the uplink's MAC only
    const neigh = topo.lab.exec(topo.ns.remote, 'ip', ['neigh', 'show', NODE_V4, 'dev', 'eth0']).stdout;
    t.false(neigh.includes(OTHER_MAC), neigh);
  } finally {
    await destroyTopology(topo);
    stub.remove();
  }
});
