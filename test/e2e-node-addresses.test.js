// End to end, node addresses that change while wdp runs: a NodeConfig applied through the API
// (what `wdp apply` sends; the Kubernetes watcher's Node updates reach the same hook) re-points
// the uplinks' ARP answers — a new address is answered without a restart, a dropped one no longer.
import test from 'ava';
import { e2eSuite, api, arpAnswered, NODE_V4 } from './lib/topology.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'afpacket' }] });
const NEW_V4 = '192.168.100.20';

async function applyNodeAddresses(t, addresses) {
  const cur = await api(suite.topo, 'GET', '/api/v1/nodeconfig');
  t.is(cur.status, 200, cur.text);
  const node = { ...cur.json, spec: { ...cur.json.spec, nodeAddresses: addresses } };
  await suite.apply([node]);
}

/** Whether ask(ip) gives `want` within 5 tries: the apply is acknowledged before every worker took
 * the new addresses (between two of its batches). */
async function settlesTo(ask, ip, want) {
  for (let i = 0; i < 5; i++) if ((await ask(ip)) === want) return true;
  return false;
}

suite.serial('a node address added by a NodeConfig is answered by ARP on the uplink at once; a removed one no longer', async (t) => {
  const topo = suite.topo;
  const ask = (ip) => arpAnswered(topo, topo.ns.remote, 'eth0', ip);
  t.true(await ask(NODE_V4), 'the configured node address is answered');
  t.false(await ask(NEW_V4), 'not a node address yet: not answered');
  await applyNodeAddresses(t, [NODE_V4, NEW_V4]);
  t.true(await settlesTo(ask, NEW_V4, true), `the added node address is answered without a restart\n${topo.daemonLog.slice(-2000)}`);
  t.true(await ask(NODE_V4));
  const pod = topo.pods[0];
  t.false(await arpAnswered(topo, pod.ns, pod.ifname, NEW_V4), 'never on a pod port');
  await applyNodeAddresses(t, [NODE_V4]);
  t.true(await settlesTo(ask, NEW_V4, false), 'the removed node address is no longer claimed');
  t.true(await ask(NODE_V4));
});
