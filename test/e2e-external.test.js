// End to end, external traffic: NodePort on the node address, LoadBalancer ingress IPs and
// externalIPs from a remote client; externalTrafficPolicy Local vs Cluster (masquerade);
// loadBalancerSourceRanges refusing clients outside the ranges, and admitting the LB IP itself as a
// source when they hold the node IP (kube-proxy's allowFromNode). `wdp start` runs in its own
// namespace; the pods sit behind AF_PACKET veths and a daemon-created TAP.
import test from 'ava';
import {
  curlOk, e2eSuite, api, curl, httpMany, serviceYaml, sliceYaml, sleep, waitFor, NODE_V4,
} from './lib/topology.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'tap' }, { name: 'pod-c', attach: 'afpacket' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

// pod-a is on this node (node-a); pod-b and pod-c claim to be on node-b.
const slice = (name, service) => sliceYaml({
  name, service, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: topo.pods.map((p, i) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: i === 0 ? 'node-a' : 'node-b' })),
});

async function spread(ns, url, n = 24) {
  const res = await httpMany(topo, ns, url, n);
  const failed = res.filter((r) => r.error);
  if (failed.length) throw new Error(`${failed.length}/${n} requests to ${url} failed: ${failed[0].error}`);
  return { pods: [...new Set(res.map((r) => r.pod))].sort(), peers: [...new Set(res.map((r) => r.peer))].sort() };
}

serial('NodePort (externalTrafficPolicy Cluster): remote client via the node address, masqueraded, spread over every endpoint', async (t) => {
  await apply([
    serviceYaml({ name: 'np', type: 'NodePort', clusterIP: '10.96.1.10', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080, protocol: 'TCP' }] }),
    slice('np-1', 'np'),
  ]);
  const first = await curlOk(topo, topo.ns.remote, `http://${NODE_V4}:30080/`);
  t.is(first.code, 0, `${first.stderr}\n${topo.daemonLog.slice(-2000)}`);
  const s = await spread(topo.ns.remote, `http://${NODE_V4}:30080/`);
  t.deepEqual(s.pods, ['pod-a', 'pod-b', 'pod-c']);
  t.deepEqual(s.peers, [NODE_V4], 'external traffic with policy Cluster is SNATed to the node address');
  // the same service's ClusterIP from the in-cluster client is not masqueraded
  const c = await curlOk(topo, topo.ns.client, 'http://10.96.1.10/');
  t.is(c.headers['x-peer'].replace('::ffff:', ''), '10.0.0.2');
});

serial('LoadBalancer ingress IP and externalIPs (externalTrafficPolicy Local): only the local endpoint, client address preserved', async (t) => {
  await apply([
    serviceYaml({
      name: 'lb', type: 'LoadBalancer', clusterIP: '10.96.1.11', lbIngress: ['203.0.113.10'],
      extra: { externalTrafficPolicy: 'Local', externalIPs: ['198.51.100.7'] },
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081, protocol: 'TCP' }],
    }),
    slice('lb-1', 'lb'),
  ]);
  for (const url of ['http://203.0.113.10/', 'http://198.51.100.7/', `http://${NODE_V4}:30081/`]) {
    const first = await curlOk(topo, topo.ns.remote, url);
    t.is(first.code, 0, `${url}: ${first.stderr}`);
    const s = await spread(topo.ns.remote, url, 12);
    t.deepEqual(s.pods, ['pod-a'], `${url} must only reach the node-local endpoint`);
    t.deepEqual(s.peers, ['192.168.100.10'], `${url} must keep the client address`);
  }
});

serial('LoadBalancer with externalTrafficPolicy Cluster spreads and masquerades', async (t) => {
  await apply([
    serviceYaml({
      name: 'lbc', type: 'LoadBalancer', clusterIP: '10.96.1.12', lbIngress: ['203.0.113.11'],
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30082, protocol: 'TCP' }],
    }),
    slice('lbc-1', 'lbc'),
  ]);
  t.is((await curlOk(topo, topo.ns.remote, 'http://203.0.113.11/')).code, 0);
  const s = await spread(topo.ns.remote, 'http://203.0.113.11/');
  t.deepEqual(s.pods, ['pod-a', 'pod-b', 'pod-c']);
  t.deepEqual(s.peers, [NODE_V4]);
});

serial('loadBalancerSourceRanges: clients outside the ranges are dropped, inside are served', async (t) => {
  await apply([
    serviceYaml({
      name: 'lbr', type: 'LoadBalancer', clusterIP: '10.96.1.13', lbIngress: ['203.0.113.12'],
      extra: { loadBalancerSourceRanges: ['10.0.0.0/24'] },
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30083, protocol: 'TCP' }],
    }),
    slice('lbr-1', 'lbr'),
  ]);
  const inside = await curlOk(topo, topo.ns.client, 'http://203.0.113.12/');
  t.is(inside.code, 0, inside.stderr);
  const before = (await api(topo, 'GET', '/api/v1/counters')).json.reasons.drop_source_range;
  const outside = await curl(topo, topo.ns.remote, 'http://203.0.113.12/', { timeout: 2 });
  t.is(outside.code, 28, `remote client must time out (dropped), got ${outside.code}: ${outside.body}`);
  // (counted when the worker gets to the SYNs: waited for, not read once)
  const drops = async () => (await api(topo, 'GET', '/api/v1/counters')).json.reasons.drop_source_range;
  const after = await waitFor('drop_source_range counted', async () => { const n = await drops(); return n > before && n; }, 10000).catch(drops);
  t.true(after > before, `drop_source_range ${before} -> ${after}`);
});

// kube-proxy's firewall "allowFromNode": a range holding the node IP also admits the LB IPs as
// sources — a node holding the VIP as a local address sends its own requests to it from the VIP.
// The remote namespace plays that node: the VIP on its lo, its own requests to the VIP routed out
// eth0 (a rule ahead of the local table for locally sent packets only), replies to it delivered.
serial('loadBalancerSourceRanges holding the node IP admit a request whose source is the LB IP itself; ranges without it do not', async (t) => {
  const vip = '203.0.113.14', ns = topo.ns.remote;
  const lbn = (ranges) => serviceYaml({
    name: 'lbn', type: 'LoadBalancer', clusterIP: '10.96.1.14', lbIngress: [vip],
    extra: { loadBalancerSourceRanges: ranges },
    ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30084, protocol: 'TCP' }],
  });
  // 192.168.100.0/30 holds the node address (192.168.100.2), not the remote client (.10)
  await apply([lbn(['192.168.100.0/30']), slice('lbn-1', 'lbn')]);
  const outside = await curl(topo, ns, `http://${vip}/`, { timeout: 2 });
  t.is(outside.code, 28, `the remote client's own address is outside the ranges: dropped, got ${outside.code}`);
  const sh = async (cmd, ...args) => {
    const r = await topo.lab.execAsync(ns, cmd, args);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  };
  const undo = [];
  try {
    await sh('ip', 'addr', 'add', `${vip}/32`, 'dev', 'lo'); undo.push(['ip', 'addr', 'del', `${vip}/32`, 'dev', 'lo']);
    await sh('ip', 'rule', 'add', 'pref', '1000', 'lookup', 'local'); undo.push(['ip', 'rule', 'del', 'pref', '1000', 'lookup', 'local']);
    await sh('ip', 'rule', 'del', 'pref', '0', 'lookup', 'local'); undo.push(['ip', 'rule', 'add', 'pref', '0', 'lookup', 'local']);
    await sh('ip', 'route', 'add', 'default', 'via', '192.168.100.1', 'dev', 'eth0', 'table', '77'); undo.push(['ip', 'route', 'flush', 'table', '77']);
    await sh('ip', 'rule', 'add', 'pref', '50', 'to', vip, 'iif', 'lo', 'lookup', '77'); undo.push(['ip', 'rule', 'del', 'pref', '50']);
    topo.lab.sysctl(ns, 'net.ipv4.conf.all.accept_local', '1', ['net.ipv4.conf.eth0.accept_local', '1'], ['net.ipv4.conf.eth0.arp_announce', '2']);
    const from = () => curl(topo, ns, `http://${vip}/`, { timeout: 3, extra: ['--interface', `host!${vip}`] });
    let admitted;
    for (let i = 0; i < 10 && !(admitted?.code === 0 && admitted.body); i++) admitted = await from();
    t.is(admitted.code, 0, `a request from the VIP itself is admitted, got ${admitted.code}: ${admitted.stderr}`);
    t.true(['pod-a', 'pod-b', 'pod-c'].includes(admitted.body.trim()), `served by an endpoint, got ${JSON.stringify(admitted.body)}`);
    // the ranges no longer hold the node IP: the VIP as source is outside them like any other
    await apply([lbn(['192.168.101.0/24'])]);
    const before = (await api(topo, 'GET', '/api/v1/counters')).json.reasons.drop_source_range;
    const refused = await from();
    t.is(refused.code, 28, `ranges without the node IP admit no LB IP, got ${refused.code}`);
    const drops = async () => (await api(topo, 'GET', '/api/v1/counters')).json.reasons.drop_source_range;
    t.true(await waitFor('drop_source_range counted', async () => (await drops()) > before, 10000).catch(async () => (await drops()) > before));
  } finally {
    for (const u of undo.reverse()) await topo.lab.execAsync(ns, u[0], u.slice(1));
  }
});
